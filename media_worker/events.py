"""What the media worker consumes and publishes on the bus (docs/events.md, "media")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from media_worker.probe import ProbeErrorCode
from subgraphs.kernel.storage import InvalidKey, validate_key, validate_prefix

TRANSCODE = "media.transcode"
PROGRESS = "media.progress"
READY = "media.ready"
FAILED = "media.failed"
#: The consumer group every worker replica shares, so each job is done once.
GROUP = "media-worker"

FailureCode = ProbeErrorCode | Literal["SOURCE_MISSING", "TRANSCODE_FAILED"]


class MalformedJob(ValueError):
    """A `media.transcode` payload we cannot act on; `video_id` is set when it was readable."""

    def __init__(self, detail: str, video_id: str | None) -> None:
        super().__init__(detail)
        self.video_id = video_id


@dataclass(frozen=True)
class TranscodeRequest:
    """`media.transcode`: `{videoId, sourceKey, outputPrefix}`."""

    video_id: str
    source_key: str
    output_prefix: str

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> TranscodeRequest:
        video_id = payload.get("videoId")
        if not isinstance(video_id, str) or not video_id:
            raise MalformedJob("videoId is missing", None)
        source_key = payload.get("sourceKey")
        output_prefix = payload.get("outputPrefix")
        if not isinstance(source_key, str) or not isinstance(output_prefix, str):
            raise MalformedJob("sourceKey and outputPrefix must be strings", video_id)
        try:
            validate_key(source_key)
            validate_prefix(output_prefix)
        except InvalidKey as error:
            raise MalformedJob(str(error), video_id) from error
        # The worker clears and rewrites everything under the prefix: it must be a folder.
        if not output_prefix.endswith("/") or output_prefix == "/":
            raise MalformedJob("outputPrefix must be a folder ending in '/'", video_id)
        return cls(video_id=video_id, source_key=source_key, output_prefix=output_prefix)


def progress_event(video_id: str, progress: float) -> dict[str, Any]:
    return {"videoId": video_id, "progress": round(min(max(progress, 0.0), 1.0), 3)}


def failed_event(video_id: str, code: FailureCode, reason: str, attempts: int) -> dict[str, Any]:
    return {"videoId": video_id, "code": code, "reason": reason, "attempts": attempts}


def ready_event(video_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """`media.ready` is the stored `media.json` document, for this video."""
    return {**document, "videoId": video_id}
