"""Connection settings shared by the database tools (migrate, seed) and the DB tests.

Three roles, three URLs (see docs/database.md): the admin URL runs migrations and the seed, the API and the
workers connect as roles that are neither owners nor superusers, so Row-Level Security always applies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg2
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import cursor as PgCursor

# The native stack's port (infra/stack.env); overriding PG_PORT moves every default URL with it.
_PORT = os.environ.get("PG_PORT", "15432")
DEFAULT_ADMIN_URL = f"postgresql://postgres:postgres@127.0.0.1:{_PORT}/hashinsight"
DEFAULT_API_URL = f"postgresql://hashinsight_api:hashinsight_api@127.0.0.1:{_PORT}/hashinsight"
DEFAULT_WORKER_URL = f"postgresql://hashinsight_worker:hashinsight_worker@127.0.0.1:{_PORT}/hashinsight"

# The session setting every tenant_isolation policy reads.
TENANT_SETTING = "app.tenant_id"


def admin_url() -> str:
    """Superuser URL for migrations, the seed and test setup (ADMIN_DATABASE_URL)."""
    return os.environ.get("ADMIN_DATABASE_URL") or DEFAULT_ADMIN_URL


def api_url() -> str:
    """The API's URL (DATABASE_URL): role hashinsight_api."""
    return os.environ.get("DATABASE_URL") or DEFAULT_API_URL


def worker_url() -> str:
    """The consumers' URL (WORKER_DATABASE_URL): role hashinsight_worker."""
    return os.environ.get("WORKER_DATABASE_URL") or DEFAULT_WORKER_URL


def with_database(url: str, dbname: str) -> str:
    """The same URL pointing at another database (the tests' throwaway database)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(dbname)))


def with_credentials(url: str, user: str, password: str) -> str:
    """The same server and database, another role."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user)}:{quote(password)}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def as_role_of(role_url: str, target: str) -> str:
    """target's server and database with role_url's credentials (DATABASE_URL may name another host)."""
    parts = urlsplit(role_url)
    return with_credentials(target, unquote(parts.username or ""), unquote(parts.password or ""))


def owner_alive(pid: int) -> bool:
    """Throwaway test databases carry the creating process id: one whose process is gone is stale."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@", 1)))


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "hashinsight-tools", connect_timeout: int = 5
) -> PgConnection:
    """A psycopg2 connection; always UTC, so timestamps and day boundaries never depend on the host."""
    conn = psycopg2.connect(
        url, application_name=application_name, connect_timeout=connect_timeout, options="-c TimeZone=UTC"
    )
    conn.autocommit = autocommit
    return conn


def set_tenant(cur: PgCursor, tenant_id: str) -> None:
    """Scope the current transaction to one tenant.

    is_local=true: the setting ends with the transaction, so a pooled connection never carries a tenant
    into the next request or event. Afterwards the setting reads as '' and the policies match no row.
    """
    cur.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, tenant_id))


@contextmanager
def tenant_transaction(conn: PgConnection, tenant_id: str) -> Iterator[PgCursor]:
    """One transaction scoped to tenant_id: commits on success, rolls back on error."""
    # psycopg2's `with conn`: commit on exit, rollback on exception (the connection stays open).
    with conn, conn.cursor() as cur:
        set_tenant(cur, tenant_id)
        yield cur
