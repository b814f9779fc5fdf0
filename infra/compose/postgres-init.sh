#!/bin/sh
# First start of the compose PostgreSQL: the schema registry's database and role, its password from the env file
# (REGISTRY_DB_PASSWORD). The application's own roles and schema come from migrations/ (the migrate service).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v pw="$REGISTRY_DB_PASSWORD" <<'SQL'
CREATE ROLE registry LOGIN PASSWORD :'pw';
CREATE DATABASE registry OWNER registry;
SQL
