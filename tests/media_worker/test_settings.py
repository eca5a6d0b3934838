"""The media worker's settings: documented defaults, read from REELGRAPH_MEDIA_*, validated."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from subgraphs.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("REELGRAPH_"):
            monkeypatch.delenv(name)
    yield


def test_defaults(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.media_max_duration == 4 * 3600
    assert settings.media_segment_seconds == 4
    assert settings.media_preset == "veryfast"
    assert settings.media_max_attempts == 4
    assert settings.media_retry_backoff == 2
    assert settings.media_concurrency == 1
    assert settings.resolved_media_work_dir() == tmp_path / "media-work"


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELGRAPH_MEDIA_PRESET", "slow")
    monkeypatch.setenv("REELGRAPH_MEDIA_CONCURRENCY", "3")
    monkeypatch.setenv("REELGRAPH_MEDIA_WORK_DIR", str(tmp_path / "scratch"))
    settings = Settings()
    assert (settings.media_preset, settings.media_concurrency) == ("slow", 3)
    assert settings.resolved_media_work_dir() == tmp_path / "scratch"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REELGRAPH_MEDIA_PRESET", "lightning"),
        ("REELGRAPH_MEDIA_SEGMENT_SECONDS", "0"),
        ("REELGRAPH_MEDIA_MAX_ATTEMPTS", "0"),
        ("REELGRAPH_MEDIA_CONCURRENCY", "0"),
        ("REELGRAPH_MEDIA_MAX_DURATION", "-1"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_every_media_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for field in Settings.model_fields:
        if field.startswith("media_"):
            assert f"REELGRAPH_{field.upper()}" in documented, field
