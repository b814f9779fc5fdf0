"""Settings from the environment, with defaults that match the native stack (infra/stack.env)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _flag(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    pg_port: int = field(default_factory=lambda: int(_env("PG_PORT", "55432")))
    redis_port: int = field(default_factory=lambda: int(_env("REDIS_PORT", "56379")))
    kafka_port: int = field(default_factory=lambda: int(_env("KAFKA_PORT", "59092")))
    registry_port: int = field(default_factory=lambda: int(_env("REGISTRY_PORT", "58081")))
    connect_port: int = field(default_factory=lambda: int(_env("CONNECT_PORT", "58083")))
    web_port: int = field(default_factory=lambda: int(_env("WEB_PORT", "8000")))

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
        return _env("JWT_SECRET", "dev-only-change-me-0123456789abcdef")

    @property
    def jwt_keys(self) -> str:
        """JWT signing keyring as `kid1:secret1,kid2:secret2`; empty means {"default": JWT_SECRET}."""
        return _env("JWT_KEYS", "")

    @property
    def jwt_active_kid(self) -> str:
        """The kid that signs new tokens; empty means the first kid of JWT_KEYS (or "default")."""
        return _env("JWT_ACTIVE_KID", "")

    @property
    def outbox_retention_hours(self) -> int:
        """Processed outbox rows older than this are purged by the portfolio worker."""
        return int(_env("OUTBOX_RETENTION_HOURS", "72"))

    @property
    def idempotency_retention_hours(self) -> int:
        """Answered Idempotency-Keys older than this are purged by the portfolio worker."""
        return int(_env("IDEMPOTENCY_RETENTION_HOURS", "24"))

    @property
    def rate_limit_enabled(self) -> bool:
        return _flag("RATE_LIMIT_ENABLED", True)


def get_settings() -> Settings:
    return Settings()
