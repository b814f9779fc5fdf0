-- First start of the compose PostgreSQL: the schema registry's database and role.
-- The application's own roles and schema come from migrations/ (the migrate service).
CREATE ROLE registry LOGIN PASSWORD 'registry';
CREATE DATABASE registry OWNER registry;
