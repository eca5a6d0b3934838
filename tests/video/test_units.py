"""The video service's pure pieces: byte ranges, media tokens and their key, search words,
tus header parsing and the Long scalar."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from subgraphs.kernel.settings import Settings
from subgraphs.kernel.types import SCALARS, Long
from subgraphs.video.media import (
    MediaSigner,
    TokenRejected,
    Unsatisfiable,
    load_signing_key,
    parse_range,
)
from subgraphs.video.search import fold, words
from subgraphs.video.tus import TusError, parse_checksum, parse_metadata

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 1)),
        ("bytes=0-99", (0, 100)),
        ("bytes=10-", (10, 1000)),
        ("bytes=-1", (999, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("bytes= 5 - 9 ", (5, 10)),
        ("BYTES=0-1", (0, 2)),
        ("bytes=0-1,3-4", None),
        ("bytes=5-1", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("bytes", None),
        ("lines=1-2", None),
        # Headers arrive as Latin-1: 0xB2 is "²", which str.isdigit() takes and int() refuses.
        ("bytes=\xb2-", None),
        ("bytes=-\xb2", None),
        ("bytes=0-\xb2", None),
        ("bytes=\u0663-", None),
        ("bytes=1_0-20", None),
        ("bytes=\xa05-9", None),
        # More digits than int() parses by default: still a position, past any object.
        ("bytes=0-" + "9" * 5000, (0, 1000)),
        ("bytes=-" + "9" * 5000, (0, 1000)),
        ("bytes=" + "0" * 5000 + "5-9", (5, 10)),
    ],
)
def test_range_headers(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=" + "9" * 5000 + "-", 10)],
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_tokens_open_only_their_video_until_they_expire() -> None:
    signer = MediaSigner(KEY, ttl=60)
    now = 1_700_000_000.0
    token = signer.sign("video-a", now=now)
    expires = int(token.split(".")[0])
    # Rounded up to a whole five minutes past the TTL, so URLs stay stable for a while.
    assert expires % 300 == 0 and now + 60 <= expires < now + 60 + 300

    grant = signer.verify("video-a", token, now=now)
    assert (grant.kind, grant.expires_at) == ("signed", expires)
    assert signer.verify("video-a", "public").kind == "public"
    for bad_video, bad_token, moment in [
        ("video-b", token, now),
        ("video-a", token, expires),
        ("video-a", token.replace(token.split(".")[0], str(expires + 300)), now),
        ("video-a", token[:-2] + "AA", now),
        ("video-a", "", now),
        ("video-a", "12.34.56.78.90", now),
        ("video-a", "x.y", now),
        # Digits int() refuses or reads differently: refused, never an error.
        ("video-a", "\xb2.x", now),
        ("video-a", "\u0663\u0663.x", now),
        ("video-a", "9" * 13 + ".x", now),
    ]:
        with pytest.raises(TokenRejected):
            signer.verify(bad_video, bad_token, now=moment)
    with pytest.raises(TokenRejected):
        MediaSigner(b"o" * 32, ttl=60).verify("video-a", token, now=now)


def test_claims_are_signed_with_the_token() -> None:
    signer = MediaSigner(KEY, ttl=60)
    token = signer.sign("v", claims=["session-1"])
    assert signer.verify("v", token).claims == ("session-1",)
    with pytest.raises(TokenRejected):
        signer.verify("v", token.replace("session-1", "session-2"))
    with pytest.raises(ValueError, match="claim"):
        signer.sign("v", claims=["bad.claim"])
    with pytest.raises(ValueError, match="32 bytes"):
        MediaSigner(b"short", ttl=60)


def test_replicas_racing_to_create_the_key_file_all_get_the_same_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_signing_key(settings))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 32
    path = tmp_path / "video" / "media-signing.key"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["media-signing.key"]
    configured = Settings(data_dir=tmp_path, media_signing_key="x" * 40)
    assert load_signing_key(configured) == b"x" * 40


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "video" / "media-signing.key"
    path.parent.mkdir()
    path.write_text("not base64!")
    with pytest.raises(ValueError, match="base64"):
        load_signing_key(Settings(data_dir=tmp_path))
    path.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="shorter"):
        load_signing_key(Settings(data_dir=tmp_path))


def test_words_are_folded_alike_for_index_and_query() -> None:
    assert fold("Crème Brûlée") == "creme brulee"
    assert fold("ŁÓDŹ Straße Ærø") == "lodz strasse aero"
    assert words('The "best"*star* AND-or_not: 3.5') == [
        "the", "best", "star", "and", "or", "not", "3", "5",
    ]  # fmt: skip
    assert words("\ufb01sh \uff21\uff22\uff23") == ["fish", "abc"]  # ligature, fullwidth
    assert words("'; DROP TABLE --") == ["drop", "table"]
    assert words("x" * 100) == ["x" * 64]
    assert words("¿?!") == []


def test_tus_metadata_and_checksum_headers() -> None:
    encoded = base64.b64encode("Kraków ✈".encode()).decode()
    assert parse_metadata(f"title {encoded},empty,filename YS5tcDQ=") == {
        "title": "Kraków ✈",
        "empty": "",
        "filename": "a.mp4",
    }
    assert parse_metadata(None) == {} and parse_metadata("") == {}
    for bad in (
        "title notbase64!",
        "a YQ==,a YQ==",
        "x " + base64.b64encode(b"\xff").decode(),
        "k" * 5000,
    ):
        with pytest.raises(TusError) as refused:
            parse_metadata(bad)
        assert refused.value.status == 400
    assert parse_checksum("sha1 " + base64.b64encode(b"d" * 20).decode()) is not None
    assert parse_checksum(None) is None
    for bad in ("crc32 AAAA", "sha1 !!!", "sha1"):
        with pytest.raises(TusError):
            parse_checksum(bad)


def test_long_carries_64_bit_sizes_and_refuses_anything_else() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def echo(self, value: Long) -> Long:
            return value

    schema = strawberry.Schema(query=Query, config=StrawberryConfig(scalar_map=SCALARS))
    big = 5 * 2**31
    assert schema.execute_sync(f"{{ echo(value: {big}) }}").data == {"echo": big}
    assert schema.execute_sync(f'{{ echo(value: "{big}") }}').data == {"echo": big}
    result = schema.execute_sync("query($v: Long!) { echo(value: $v) }", {"v": str(2**63 - 1)})
    # Beyond 2^53 a JSON number loses precision in JavaScript clients: it goes as a string.
    assert result.data == {"echo": str(2**63 - 1)}
    for bad in (2**63, "12x", True, 1.5, "", None):
        outcome = schema.execute_sync("query($v: Long!) { echo(value: $v) }", {"v": bad})
        assert outcome.errors, bad
