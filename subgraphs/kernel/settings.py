"""Runtime settings, read from `REELGRAPH_*` environment variables with embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from subgraphs.kernel.proxies import DEFAULT_TRUSTED_PROXIES, TrustedProxies, parse_trusted_proxies

SERVICES = ("auth", "video", "engagement", "billing")
MiB = 1024 * 1024
GiB = 1024 * MiB
DEFAULT_PORTS = {"router": 4000, "auth": 4001, "video": 4002, "engagement": 4003, "billing": 4004}
# x264's speed/quality presets, fastest first.
X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


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
    # Peers whose X-Forwarded-For is believed: addresses and CIDR ranges (the router's hosts).
    trusted_proxies: str = DEFAULT_TRUSTED_PROXIES

    # Engagement service: comments, chat, view counting and live presence.
    comment_max_length: int = Field(default=10_000, gt=0)
    chat_message_max_length: int = Field(default=500, gt=0)
    # Least time between two messages of one user in one chat room; slow mode raises it.
    chat_min_interval: float = Field(default=1.0, ge=0)
    # Messages of a room kept readable; older ones are pruned as new ones arrive.
    chat_history: int = Field(default=100, gt=0, le=10_000)
    # A view counts after this much watching (or half of a shorter video), at most once per
    # viewer per view_window seconds; a viewer silent for watch_session_idle starts a new visit.
    view_min_seconds: float = Field(default=30.0, gt=0)
    view_window: float = Field(default=1800.0, ge=0)
    watch_session_idle: float = Field(default=600.0, gt=0)
    # A live viewer not renewed within this many seconds (its replica died) stops counting.
    presence_ttl: float = Field(default=30.0, gt=0)
    # Signed-out viewers are client ids the client makes up, so each client address may have
    # at most this many counting toward one video at once, each for anonymous_viewer_window
    # seconds after its last ping, and at most anonymous_presence_per_ip live viewers per stream.
    anonymous_viewers_per_ip: int = Field(default=5, ge=1)
    anonymous_viewer_window: float = Field(default=1800.0, gt=0)
    anonymous_presence_per_ip: int = Field(default=5, ge=1)

    # The origin clients reach (the router): upload and media URLs are built on it.
    public_url: str | None = None

    # Media worker (media_worker/, docs/media.md).
    media_max_duration: float = Field(default=4 * 3600.0, gt=0)
    media_segment_seconds: float = Field(default=4.0, ge=1, le=30)
    media_preset: X264Preset = "veryfast"
    media_max_attempts: int = Field(default=4, ge=1, le=20)
    media_retry_backoff: float = Field(default=2.0, ge=0)
    media_concurrency: int = Field(default=1, ge=1, le=32)
    # Scratch space for a job's download and outputs; defaults to <data_dir>/media-work.
    media_work_dir: Path | None = None

    # Billing. Amounts are integers in minor units (cents for USD); never floats.
    billing_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Currencies wallets and prices may use (comma-separated); must include billing_currency.
    billing_currencies: str = "USD"
    # Length of one billed "minute", in seconds (tests shorten it).
    billing_minute_seconds: float = Field(default=60.0, gt=0)
    # A playback session (and its token) lapses this long after its last heartbeat.
    billing_session_ttl_seconds: float = Field(default=90.0, gt=0)
    # The creator's share of each charge in basis points (7000 = 70%); the platform keeps the
    # rest, including any rounding remainder.
    billing_creator_share_bps: int = Field(default=7000, ge=0, le=10_000)
    billing_deposit_min: int = Field(default=100, gt=0)
    billing_deposit_max: int = Field(default=1_000_000, gt=0)
    billing_max_price_per_minute: int = Field(default=100_000, gt=0)
    # Which PaymentProvider takes deposits; `test` is the built-in one (tok_visa, …).
    billing_payment_provider: Literal["test"] = "test"
    # How long the test provider's `tok_slow` takes to succeed.
    billing_test_provider_delay_seconds: float = Field(default=2.0, ge=0)
    # A deposit stuck in PENDING this long (its process died mid-payment) may be retried.
    billing_pending_deposit_timeout: float = Field(default=30.0, gt=0)
    # Test-only fault point (docs/billing.md); never set in production.
    billing_fault: str | None = None
    # Where services fetch billing's playback-token public keys.
    playback_keys_url: str | None = None

    # Video service. Sizes in bytes, durations in seconds.
    video_max_upload_bytes: int = Field(default=10 * GiB, gt=0)
    video_max_direct_upload_bytes: int = Field(default=256 * MiB, gt=0)
    video_user_quota_bytes: int = Field(default=50 * GiB, ge=0)  # 0: no quota
    video_upload_expiry_seconds: int = Field(default=24 * 3600, gt=0)
    video_upload_sweep_seconds: float = Field(default=300.0, gt=0)
    # Parts (stored PATCHes) one resumable upload may have, and resumable uploads still
    # waiting for bytes one user may hold at once.
    video_upload_max_parts: int = Field(default=10_000, ge=1)
    video_max_open_uploads: int = Field(default=20, ge=1)
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

    def resolved_media_work_dir(self) -> Path:
        return self.media_work_dir or self.data_dir / "media-work"

    def resolved_live_ingest_url(self) -> str:
        return (self.live_ingest_url or f"rtmp://{self.host}:1935/live").rstrip("/")

    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.service_url('auth')}/.well-known/jwks.json"

    def resolved_playback_keys_url(self) -> str:
        return self.playback_keys_url or (
            f"{self.service_url('billing')}/.well-known/playback-keys.json"
        )

    def billing_currency_set(self) -> frozenset[str]:
        return frozenset(
            c.strip().upper() for c in self.billing_currencies.split(",") if c.strip()
        ) | {self.billing_currency}

    def database_url_for(self, service: str) -> str:
        """The SQLAlchemy async URL of one service's own database."""
        explicit: str | None = getattr(self, f"{service}_database_url")
        if explicit:
            return _async_driver(explicit)
        if self.database_url:
            return _async_driver(_with_database_suffix(self.database_url, service))
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def trusted_proxy_set(self) -> TrustedProxies:
        return parse_trusted_proxies(self.trusted_proxies)

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_parse(cls, value: str) -> str:
        # Refused at start-up: a typo here would trust the wrong peers, or nobody, silently.
        parse_trusted_proxies(value)
        return value


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
