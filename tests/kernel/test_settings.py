"""Settings: where each service's database lives, and how REELGRAPH_* variables are read."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from subgraphs.kernel.db import Database, ensure_database
from subgraphs.kernel.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read the process environment: start every test from none of ours."""
    for name in list(os.environ):
        if name.startswith("REELGRAPH_"):
            monkeypatch.delenv(name)
    yield


async def test_default_database_is_an_aiosqlite_file_per_service_under_data_dir(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    url = settings.database_url_for("auth")

    parsed = make_url(url)
    assert parsed.drivername == "sqlite+aiosqlite"
    assert Path(parsed.database or "") == tmp_path / "auth.db"
    assert settings.database_url_for("video") != url

    # The URL is usable as is: connecting creates the file where the URL says.
    db = Database(url)
    try:
        async with db.transaction() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await db.dispose()
    assert (tmp_path / "auth.db").is_file()


def test_relative_data_dir_from_the_environment_becomes_an_absolute_sqlite_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REELGRAPH_DATA_DIR", "state")

    parsed = make_url(Settings().database_url_for("video"))

    assert parsed.drivername == "sqlite+aiosqlite"
    assert Path(parsed.database or "").is_absolute()
    assert Path(parsed.database or "") == tmp_path / "state" / "video.db"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_server_wide_url_gets_asyncpg_driver_and_a_database_per_service(scheme: str) -> None:
    settings = Settings(database_url=f"{scheme}://rg@db.internal:5433/reel")

    auth = make_url(settings.database_url_for("auth"))
    video = make_url(settings.database_url_for("video"))

    assert auth.drivername == "postgresql+asyncpg"
    assert (auth.host, auth.port, auth.username) == ("db.internal", 5433, "rg")
    assert auth.database == "reel_auth"
    assert video.database == "reel_video"


def test_server_wide_url_without_a_database_name_uses_reelgraph_as_the_base() -> None:
    url = Settings(database_url="postgresql://rg@db.internal").database_url_for("billing")

    assert make_url(url).database == "reelgraph_billing"


def test_server_wide_url_keeps_a_password_with_percent_and_at_signs() -> None:
    # 'p%ss@w0rd:x' percent-encoded, as it must be in a URL.
    settings = Settings(database_url="postgresql://rg:p%25ss%40w0rd%3Ax@db.internal/reel")

    url = settings.database_url_for("auth")

    assert make_url(url).password == "p%ss@w0rd:x"
    assert "p%25ss%40w0rd" in url  # encoded once, not hidden as '***' nor double-encoded
    assert make_url(url).host == "db.internal"


def test_query_parameters_of_the_server_wide_url_are_kept() -> None:
    url = Settings(database_url="postgresql://rg@db/reel?application_name=rg").database_url_for(
        "auth"
    )

    assert make_url(url).query == {"application_name": "rg"}
    assert make_url(url).database == "reel_auth"


def test_per_service_url_wins_over_the_server_wide_one_and_is_not_suffixed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REELGRAPH_DATABASE_URL", "postgresql://rg@shared/reel")
    monkeypatch.setenv("REELGRAPH_AUTH_DATABASE_URL", "postgres://auth:s3cret@authdb:6543/identity")
    settings = Settings()

    auth = make_url(settings.database_url_for("auth"))
    video = make_url(settings.database_url_for("video"))

    assert auth.drivername == "postgresql+asyncpg"
    assert (auth.host, auth.port, auth.database, auth.password) == (
        "authdb",
        6543,
        "identity",
        "s3cret",
    )
    assert (video.host, video.database) == ("shared", "reel_video")


def test_per_service_sqlite_url_gets_the_aiosqlite_driver(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, video_database_url=f"sqlite:///{tmp_path}/elsewhere.db")

    parsed = make_url(settings.database_url_for("video"))

    assert parsed.drivername == "sqlite+aiosqlite"
    assert parsed.database == f"{tmp_path}/elsewhere.db"


async def test_server_wide_url_from_the_environment_reaches_a_real_postgres_database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"rgtest_set_{uuid.uuid4().hex[:8]}"
    server = make_url(postgres_url)
    monkeypatch.setenv(
        "REELGRAPH_DATABASE_URL", server.set(database=base).render_as_string(hide_password=False)
    )
    url = Settings().database_url_for("engagement")
    try:
        await ensure_database(url)
        db = Database(url)
        try:
            async with db.transaction() as session:
                name = (await session.execute(text("SELECT current_database()"))).scalar()
        finally:
            await db.dispose()
        assert name == f"{base}_engagement"
    finally:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{base}_engagement" WITH (FORCE)')
        finally:
            await conn.close()


def test_reelgraph_prefixed_environment_variables_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REELGRAPH_BUS", "redis")
    monkeypatch.setenv("REELGRAPH_AUTH_PORT", "5999")
    monkeypatch.setenv("REELGRAPH_ACCESS_TOKEN_TTL", "120")
    monkeypatch.setenv("REELGRAPH_TRUSTED_PROXIES", " 10.0.0.1 , ,10.0.0.2")
    # Unprefixed names are someone else's.
    monkeypatch.setenv("BUS", "local")
    monkeypatch.setenv("ACCESS_TOKEN_TTL", "1")

    settings = Settings()

    assert settings.data_dir == tmp_path
    assert settings.bus == "redis"
    assert settings.port("auth") == 5999
    assert settings.service_url("auth") == "http://127.0.0.1:5999"
    assert settings.resolved_jwks_url() == "http://127.0.0.1:5999/.well-known/jwks.json"
    assert settings.access_token_ttl == 120
    proxies = settings.trusted_proxy_set()
    assert "10.0.0.1" in proxies and "10.0.0.2" in proxies and "127.0.0.1" not in proxies


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REELGRAPH_BUS", "kafka"),
        ("REELGRAPH_STORAGE", "ftp"),
        ("REELGRAPH_ACCESS_TOKEN_TTL", "-5"),
        ("REELGRAPH_ACCESS_TOKEN_TTL", "0"),
        ("REELGRAPH_REFRESH_TOKEN_TTL", "soon"),
        ("REELGRAPH_BCRYPT_ROUNDS", "3"),
        ("REELGRAPH_BCRYPT_ROUNDS", "17"),
        ("REELGRAPH_BUS_VISIBILITY_TIMEOUT", "0"),
        ("REELGRAPH_AUTH_PORT", "not-a-port"),
    ],
)
def test_invalid_environment_values_are_rejected(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError) as raised:
        Settings()

    field = variable.removeprefix("REELGRAPH_").lower()
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]
