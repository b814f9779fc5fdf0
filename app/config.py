"""Settings from the environment, with defaults that match the native stack (infra/stack.env)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.domain.freshness import DEFAULT_THRESHOLD_MS


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


BUILTIN_JWT_SECRET = "dev-only-change-me-0123456789abcdef"  # public: in the repository, fit for development only
ENVIRONMENTS = ("development", "production")


def _flag(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() not in ("0", "false", "no", "off")


class _Port:
    """A port setting, read from the environment each time it is asked for."""

    def __init__(self, env: str, default: int) -> None:
        self.env, self.default = env, str(default)

    def __get__(self, settings: object, owner: type | None = None) -> int:
        return int(_env(self.env, self.default))


@dataclass(frozen=True)
class Settings:
    # Every value is read from the environment when asked for, so a Settings costs nothing to make: the web
    # asks for one on every request (the JWT keyring), and tests change the environment between calls.
    pg_port = _Port("PG_PORT", 15432)
    redis_port = _Port("REDIS_PORT", 16379)
    kafka_port = _Port("KAFKA_PORT", 19092)
    registry_port = _Port("REGISTRY_PORT", 18081)
    connect_port = _Port("CONNECT_PORT", 18083)
    web_port = _Port("WEB_PORT", 8000)

    @property
    def admin_database_url(self) -> str:
        return _env("ADMIN_DATABASE_URL", f"postgresql://postgres:postgres@127.0.0.1:{self.pg_port}/hashinsight")

    @property
    def database_url(self) -> str:
        return _env(
            "DATABASE_URL", f"postgresql://hashinsight_api:hashinsight_api@127.0.0.1:{self.pg_port}/hashinsight"
        )

    @property
    def worker_database_url(self) -> str:
        return _env(
            "WORKER_DATABASE_URL",
            f"postgresql://hashinsight_worker:hashinsight_worker@127.0.0.1:{self.pg_port}/hashinsight",
        )

    @property
    def redis_url(self) -> str:
        return _env("REDIS_URL", f"redis://127.0.0.1:{self.redis_port}/0")

    @property
    def kafka_brokers(self) -> str:
        return _env("KAFKA_BROKERS", f"127.0.0.1:{self.kafka_port}")

    @property
    def connect_url(self) -> str:
        return _env("CONNECT_URL", f"http://127.0.0.1:{self.connect_port}")

    @property
    def schema_registry_url(self) -> str:
        """Apicurio's Confluent-compatible API, which confluent-kafka's serdes speak."""
        return _env("SCHEMA_REGISTRY_URL", f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7")

    @property
    def registry_native_url(self) -> str:
        """Apicurio's own v3 API, which the Kafka Connect converter speaks."""
        return _env("REGISTRY_NATIVE_URL", f"http://127.0.0.1:{self.registry_port}/apis/registry/v3")

    @property
    def jwt_secret(self) -> str:
        return _env("JWT_SECRET", BUILTIN_JWT_SECRET)

    @property
    def environment(self) -> str:
        """HASHINSIGHT_ENV: `development` (make dev / apps-up / test set it) or `production`, the default. Outside
        development, web and workers refuse to start with the built-in or a short JWT secret (app/safe_defaults.py)
        and the login page mints no tokens."""
        return _env("HASHINSIGHT_ENV", "production").strip().lower()

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def jwt_keys(self) -> str:
        """JWT signing keyring as `kid1:secret1,kid2:secret2`; empty means {"default": JWT_SECRET}."""
        return _env("JWT_KEYS", "")

    @property
    def jwt_active_kid(self) -> str:
        """The kid that signs new tokens; empty means the first kid of JWT_KEYS (or "default")."""
        return _env("JWT_ACTIVE_KID", "")

    @property
    def idempotency_retention_hours(self) -> int:
        """How long an Idempotency-Key is remembered: an older one is a new request (service_layer/idempotency.py).
        The purge of old records (pg_cron, migrations/0030) keeps its own window in hashinsight_retention."""
        return int(_env("IDEMPOTENCY_RETENTION_HOURS", "24"))

    # Every engine bounds its statements and its lock waits, so a stuck query or a held row lock turns into an
    # error (a 503 with Retry-After in the API, a retry in the workers) instead of a request or batch that hangs.
    @property
    def api_statement_timeout_ms(self) -> int:
        """API statements: reads and single writes take milliseconds, a 10,000-miner bulk import about a second;
        10 s leaves room for a loaded machine and still ends a stuck statement."""
        return int(_env("API_STATEMENT_TIMEOUT_MS", "10000"))

    @property
    def api_lock_timeout_ms(self) -> int:
        """How long an API statement waits for a lock (e.g. a row a consumer batch is updating)."""
        return int(_env("API_LOCK_TIMEOUT_MS", "2000"))

    @property
    def worker_statement_timeout_ms(self) -> int:
        """Worker statements: one batch recalculates up to hundreds of users in one statement per table."""
        return int(_env("WORKER_STATEMENT_TIMEOUT_MS", "30000"))

    @property
    def worker_lock_timeout_ms(self) -> int:
        """How long a worker waits for a lock (rows, advisory user locks); past it the batch is retried."""
        return int(_env("WORKER_LOCK_TIMEOUT_MS", "10000"))

    @property
    def shed_writes_lag_ms(self) -> int:
        """The freshness guard (app/domain/freshness.py): past this much pipeline lag the API refuses a growing
        share of writes (all of them at twice it) with a 503; 0 turns it off."""
        return int(_env("SHED_WRITES_LAG_MS", str(DEFAULT_THRESHOLD_MS)))

    @property
    def rate_limit_enabled(self) -> bool:
        return _flag("RATE_LIMIT_ENABLED", True)


def get_settings() -> Settings:
    return Settings()
