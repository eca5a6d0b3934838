"""Key validation and key-derived content types, shared so that every backend behaves alike."""

from __future__ import annotations

import mimetypes
import posixpath

from .base import InvalidKey

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# S3's limit; applied everywhere so that a key valid on one backend is valid on all.
MAX_KEY_BYTES = 1024

# The local backend keeps its temporary files and content-type sidecars next to the objects under
# names that start with this; reserving it on every backend keeps the key spaces identical.
RESERVED_SEGMENT_PREFIX = ".~"


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a valid object key, else raise `InvalidKey`."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"invalid key {key!r}: empty")
    _check_common(key)
    for segment in key.split("/"):
        _check_segment(key, segment)
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` unchanged if it is a valid listing prefix, else raise `InvalidKey`.

    A prefix is a key that may be empty or end in `/` (a folder) or in part of a name: listing
    and deleting match keys by plain string prefix, as S3 does.
    """
    if not isinstance(prefix, str):
        raise InvalidKey(f"invalid prefix {prefix!r}")
    if not prefix:
        return prefix
    _check_common(prefix)
    segments = prefix.split("/")
    if segments[-1] == "":
        segments.pop()  # the trailing slash of a folder
    for segment in segments:
        _check_segment(prefix, segment)
    return prefix


def validate_range(start: int, end: int | None, chunk_size: int) -> None:
    """Check `read`'s arguments; `ValueError` if negative. An `end <= start` is an empty range."""
    if start < 0:
        raise ValueError(f"start must be >= 0, not {start}")
    if end is not None and end < 0:
        raise ValueError(f"end must be >= 0, not {end}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, not {chunk_size}")


def _check_common(key: str) -> None:
    if key.startswith("/"):
        raise InvalidKey(f"invalid key {key!r}: absolute")
    if "\\" in key:
        raise InvalidKey(f"invalid key {key!r}: backslash")
    if "\x00" in key:
        raise InvalidKey(f"invalid key {key!r}: NUL character")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(f"invalid key {key!r}: not valid Unicode") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"invalid key {key[:40]!r}...: longer than {MAX_KEY_BYTES} bytes")


def _check_segment(key: str, segment: str) -> None:
    if segment == "":
        raise InvalidKey(f"invalid key {key!r}: empty segment")
    if segment in (".", ".."):
        raise InvalidKey(f"invalid key {key!r}: {segment!r} segment")
    if segment.startswith(RESERVED_SEGMENT_PREFIX):
        raise InvalidKey(
            f"invalid key {key!r}: segments starting {RESERVED_SEGMENT_PREFIX!r} are reserved"
        )


# A private table built from Python's defaults only, so the answer does not depend on the host's
# /etc/mime.types (which, for one, calls `.ts` a Qt translation file).
_MIME = mimetypes.MimeTypes()
for _ext, _type in {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".vtt": "text/vtt",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".webm": "video/webm",
    ".webp": "image/webp",
}.items():
    _MIME.add_type(_type, _ext)


def guess_content_type(key: str) -> str:
    """The content type implied by the key's extension, `application/octet-stream` if none."""
    ext = posixpath.splitext(key)[1].lower()
    return _MIME.types_map[True].get(ext) or DEFAULT_CONTENT_TYPE
