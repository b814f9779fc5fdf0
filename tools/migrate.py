"""Apply migrations/NNNN_name.sql in order: `make migrate` / `python -m tools.migrate`.

Each pending file runs in its own transaction together with its schema_migrations row, so a file is either
fully applied and recorded or not at all. An applied file whose checksum changed is refused: migrations are
append-only history; change the schema with a new file. Afterwards the daily partitions are topped up
(hashinsight_ensure_partitions), so running this daily also moves the partition window forward.
Connects with ADMIN_DATABASE_URL. Exit codes: 0 ok (including nothing to do), 1 refused or failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg2.extensions import connection as PgConnection

from tools import db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Serialises concurrent runs (make dev and make test on the same cluster): any 64-bit constant will do.
ADVISORY_LOCK_ID = 7_246_001
PARTITION_WINDOW = (120, 45)  # days back, days ahead: matches 0003 and covers the seed's 90 days

CREATE_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
  version     text PRIMARY KEY,
  name        text NOT NULL,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL
)"""


class MigrationError(Exception):
    """A migration cannot be applied safely; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    sql: str
    checksum: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        version, name = match.groups()
        if version in migrations:
            raise MigrationError(
                f"two migrations share version {version}: {migrations[version].path.name} and {path.name}"
            )
        raw = path.read_bytes()
        migrations[version] = Migration(version, name, path, raw.decode("utf-8"), hashlib.sha256(raw).hexdigest())
    return [migrations[v] for v in sorted(migrations)]


def applied_checksums(conn: PgConnection) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT version, checksum FROM public.schema_migrations")
        return dict(cur.fetchall())


def check_history(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """The pending migrations; raises if history was edited."""
    known = {m.version: m for m in migrations}
    for version, checksum in sorted(applied.items()):
        m = known.get(version)
        if m is None:
            raise MigrationError(
                f"version {version} is applied in the database but its file is missing from {MIGRATIONS_DIR.name}/"
            )
        if m.checksum != checksum:
            raise MigrationError(
                f"{m.path.name} was changed after it was applied (checksum {checksum[:12]} in the database, "
                f"{m.checksum[:12]} on disk). Applied migrations are history: restore the file and put the "
                f"change in a new migration."
            )
    pending = [m for m in migrations if m.version not in applied]
    newest_applied = max(applied, default="")
    for m in pending:
        if m.version < newest_applied:
            raise MigrationError(
                f"{m.path.name} is older than the newest applied version {newest_applied}; "
                f"renumber it after {newest_applied}"
            )
    return pending


def apply_one(conn: PgConnection, m: Migration) -> float:
    started = time.monotonic()
    # One transaction: the file and its schema_migrations row.
    with conn, conn.cursor() as cur:
        cur.execute("SET LOCAL lock_timeout = '30s'")
        cur.execute("SET LOCAL search_path = public")
        cur.execute(m.sql)  # no parameters: psycopg2 sends the file as-is, many statements at once
        cur.execute("RESET ROLE")  # files may SET LOCAL ROLE hashinsight_owner
        elapsed = time.monotonic() - started
        cur.execute(
            "INSERT INTO public.schema_migrations (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)",
            (m.version, m.name, m.checksum, int(elapsed * 1000)),
        )
    return elapsed


def ensure_partitions(conn: PgConnection) -> int | None:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regprocedure('public.hashinsight_ensure_partitions(integer, integer)')")
        if cur.fetchone()[0] is None:
            return None
        cur.execute("SELECT public.hashinsight_ensure_partitions(%s, %s)", PARTITION_WINDOW)
        return int(cur.fetchone()[0])


# Role -> the variable holding its password (docker-compose.yml passes them from the env file).
ROLE_PASSWORD_ENV = {"hashinsight_api": "API_DB_PASSWORD", "hashinsight_worker": "WORKER_DB_PASSWORD",
                     "debezium": "DEBEZIUM_DB_PASSWORD"}


def set_role_passwords(url: str, env: dict[str, str]) -> list[str]:
    """ALTER ROLE ... PASSWORD for each role whose variable is set; returns the roles changed. Migration 0001
    creates the roles with development passwords and never changes them; this is the step that replaces them."""
    changed = []
    conn = db.connect(url, application_name="hashinsight-migrate")
    try:
        with conn, conn.cursor() as cur:
            for role, var in ROLE_PASSWORD_ENV.items():
                if env.get(var):
                    cur.execute(f"ALTER ROLE {role} PASSWORD %s", (env[var],))  # role names are our constants
                    changed.append(role)
    finally:
        conn.close()
    return changed


def migrate(url: str, directory: Path = MIGRATIONS_DIR, *, maintenance: bool = True, out=print) -> list[str]:
    """Apply what is pending; returns the applied file names. Raises MigrationError when refused."""
    migrations = discover(directory)
    conn = db.connect(url, application_name="hashinsight-migrate")
    try:
        with conn, conn.cursor() as cur:
            # Session lock, held across the per-file transactions below.
            cur.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
            cur.execute(CREATE_TABLE_SQL)
        pending = check_history(migrations, applied_checksums(conn))
        applied: list[str] = []
        for m in pending:
            try:
                elapsed = apply_one(conn, m)
            except Exception as exc:
                raise MigrationError(f"{m.path.name} failed and was rolled back: {exc}".rstrip()) from exc
            applied.append(m.path.name)
            out(f"applied {m.path.name} ({elapsed * 1000:.0f} ms)")
        if not applied:
            out(f"nothing to do: {len(migrations)} migrations already applied to {db.database_name(url)}")
        if maintenance:
            created = ensure_partitions(conn)
            if created:
                out(f"created {created} daily partitions")
        return applied
    finally:
        conn.close()  # also releases the advisory lock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: $ADMIN_DATABASE_URL or the stack's")
    parser.add_argument("--dir", type=Path, default=MIGRATIONS_DIR, help="migrations directory")
    parser.add_argument("--no-maintenance", action="store_true", help="skip the partition top-up")
    parser.add_argument("--role-passwords-from-env", action="store_true",
                        help="then set the roles' passwords from " + ", ".join(ROLE_PASSWORD_ENV.values()))
    args = parser.parse_args(argv)
    url = args.database_url or db.admin_url()
    started = time.monotonic()
    try:
        migrate(url, args.dir, maintenance=not args.no_maintenance)
        if args.role_passwords_from_env:
            changed = set_role_passwords(url, dict(os.environ))
            print(f"migrate: passwords set for {', '.join(changed) or 'no role (no variable set)'}")
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # connection refused and the like: say where we tried to go
        print(f"migrate: cannot migrate {db.redact(url)}: {exc}".rstrip(), file=sys.stderr)
        return 1
    print(f"migrate: done in {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
