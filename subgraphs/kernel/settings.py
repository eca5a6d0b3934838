"""Runtime settings, read from `REELGRAPH_*` environment variables with embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("auth", "video", "engagement", "billing")
MiB = 1024 * 1024
GiB = 1024 * MiB
DEFAULT_PORTS = {"router": 4000, "auth": 4001, "video": 4002, "engagement": 4003, "billing": 4004}


class Settings(BaseSettings):
    """Everything a process needs to know about where it runs and what it talks to."""

    model_config = SettingsConfigDict(env_prefix="REELGRAPH_", extra="ignore")

    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    router_port: int = DEFAULT_PORTS["router"]
    auth_port: int = DEFAULT_PORTS["auth"]
    video_port: int = DEFAULT_PORTS["video"]
    engagement_port: int = DEFAULT_PORTS["engagement"]
    billing_port: int = DEFAULT_PORTS["billing"]

    # Databases: SQLite files under data_dir unless a PostgreSQL URL is given. A server-wide
    # URL gives each service its own database, named `<database>_<service>`.
    database_url: str | None = None
    auth_database_url: str | None = None
    video_database_url: str | None = None
    engagement_database_url: str | None = None
    billing_database_url: str | None = None

    # Event bus: a SQLite file shared by the local processes, or Redis Streams.
    bus: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    bus_namespace: str = "reelgraph"
    bus_visibility_timeout: float = Field(default=30.0, gt=0)
    bus_retention: int = Field(default=100_000, gt=0)

    # Object storage: a local directory, or an S3-compatible bucket.
    storage: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "reelgraph"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    # Tokens.
    jwt_issuer: str = "reelgraph-auth"
    jwt_audience: str = "reelgraph"
    jwks_url: str | None = None
    jwks_cache_seconds: float = Field(default=300.0, ge=0)
    access_token_ttl: int = Field(default=900, gt=0)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, gt=0)

    # Auth service.
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    login_max_failures_per_account: int = Field(default=5, gt=0)
    login_max_failures_per_ip: int = Field(default=20, gt=0)
    login_failure_window: int = Field(default=900, gt=0)
    trusted_proxies: str = "127.0.0.1,::1"

    # The origin clients reach (the router): upload and media URLs are built on it.
    public_url: str | None = None

    # Video service. Sizes in bytes, durations in seconds.
    video_max_upload_bytes: int = Field(default=10 * GiB, gt=0)
    video_max_direct_upload_bytes: int = Field(default=256 * MiB, gt=0)
    video_user_quota_bytes: int = Field(default=50 * GiB, ge=0)  # 0: no quota
    video_upload_expiry_seconds: int = Field(default=24 * 3600, gt=0)
    video_upload_sweep_seconds: float = Field(default=300.0, gt=0)
    media_token_ttl: int = Field(default=6 * 3600, gt=0)
    # Base64 or any string of at least 32 characters; unset: a key file under data_dir/video.
    media_signing_key: str | None = Field(default=None, min_length=32)
    live_ingest_url: str | None = None

    log_level: str = "INFO"

    def port(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def service_url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"

    def resolved_public_url(self) -> str:
        return (self.public_url or self.service_url("router")).rstrip("/")

    def resolved_live_ingest_url(self) -> str:
        return (self.live_ingest_url or f"rtmp://{self.host}:1935/live").rstrip("/")

    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.service_url('auth')}/.well-known/jwks.json"

    def database_url_for(self, service: str) -> str:
        """The SQLAlchemy async URL of one service's own database."""
        explicit: str | None = getattr(self, f"{service}_database_url")
        if explicit:
            return _async_driver(explicit)
        if self.database_url:
            return _async_driver(_with_database_suffix(self.database_url, service))
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())


def _async_driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def _with_database_suffix(url: str, service: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    base = parsed.database or "reelgraph"
    return parsed.set(database=f"{base}_{service}").render_as_string(hide_password=False)
