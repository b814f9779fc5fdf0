"""The migration runner: idempotent, transactional, and strict about edited history."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tools import db, migrate

if TYPE_CHECKING:
    from conftest import DbUnderTest

# Everything a migration can change, read from the catalogs.
FINGERPRINT_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, c.relowner::regrole::text, coalesce(c.relacl::text, ''),
               c.relrowsecurity, c.relforcerowsecurity, c.relreplident, c.relispartition,
               coalesce(pg_get_expr(c.relpartbound, c.oid), '')
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), coalesce(a.attacl::text, '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "policies": "SELECT * FROM pg_policies WHERE schemaname = 'public' ORDER BY tablename, policyname",
    "triggers": "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2",
    "functions": """
        SELECT p.oid::regprocedure::text, p.proowner::regrole::text, coalesce(p.proacl::text, ''),
               p.prosecdef, md5(p.prosrc)
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1""",
    "publications": """
        SELECT p.pubname, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, t.schemaname, t.tablename
        FROM pg_publication p LEFT JOIN pg_publication_tables t USING (pubname) ORDER BY 1, 6, 7""",
    "roles": """
        SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
               rolbypassrls FROM pg_roles WHERE rolname LIKE 'hashinsight%' OR rolname = 'debezium' ORDER BY 1""",
    "acl": """
        SELECT (SELECT datacl::text FROM pg_database WHERE datname = current_database()),
               (SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public')""",
    "history": "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY 1",
}


def fingerprint(url: str) -> dict[str, list[tuple]]:
    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            result = {}
            for key, sql in FINGERPRINT_QUERIES.items():
                cur.execute(sql)
                result[key] = cur.fetchall()
            return result
    finally:
        conn.close()


def test_first_run_applied_every_file(test_db: DbUnderTest) -> None:
    files = sorted(p.name for p in migrate.MIGRATIONS_DIR.glob("*.sql"))
    applied = [line.split()[1] for line in test_db.migrate_output if line.startswith("applied ")]
    assert applied == files


def test_migrating_twice_changes_nothing(test_db: DbUnderTest) -> None:
    before = fingerprint(test_db.admin)
    output: list[str] = []
    assert migrate.migrate(test_db.admin, out=output.append) == []
    assert output[0].startswith("nothing to do")
    assert migrate.main(["--database-url", test_db.admin]) == 0
    after = fingerprint(test_db.admin)
    for key in FINGERPRINT_QUERIES:
        assert after[key] == before[key], f"second migrate changed {key}"


def test_edited_applied_migration_is_refused(test_db: DbUnderTest, tmp_path: Path) -> None:
    edited = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, edited)
    target = edited / "0002_core_tables.sql"
    target.write_text(target.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(migrate.MigrationError, match="0002_core_tables.sql was changed after it was applied"):
        migrate.migrate(test_db.admin, edited)
    assert migrate.main(["--database-url", test_db.admin, "--dir", str(edited)]) == 1


def test_failing_migration_rolls_back_whole(test_db: DbUnderTest, tmp_path: Path) -> None:
    staged = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, staged)
    (staged / "9999_broken.sql").write_text("CREATE TABLE zz_half_done (id int);\nSELECT 1 / 0;\n")
    with pytest.raises(migrate.MigrationError, match="9999_broken.sql failed and was rolled back"):
        migrate.migrate(test_db.admin, staged, maintenance=False)
    conn = db.connect(test_db.admin)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT to_regclass('public.zz_half_done'), "
                "(SELECT count(*) FROM schema_migrations WHERE version = '9999')"
            )
            assert cur.fetchone() == (None, 0)
    finally:
        conn.close()


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_Oops.sql").write_text("SELECT 1;")
    with pytest.raises(migrate.MigrationError, match="NNNN_lower_snake.sql"):
        migrate.discover(tmp_path)


def test_statement_statistics_are_readable(test_db: DbUnderTest) -> None:
    """0055 created pg_stat_statements (the stack preloads its library): the runbook's view works on a fresh
    database and counts what the application roles run."""
    conn = db.connect(test_db.api, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 AS statement_statistics_probe")
    finally:
        conn.close()
    conn = db.connect(test_db.admin, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT r.rolname FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
                        " JOIN pg_database d ON d.oid = s.dbid AND d.datname = current_database()"
                        " WHERE s.query LIKE '%statement_statistics_probe%' AND s.query NOT LIKE '%pg_stat%'")
            assert [r for (r,) in cur.fetchall()] == ["hashinsight_api"]
    finally:
        conn.close()
