"""The `media.transcode` job: an upload becomes an HLS ladder with a poster and a storyboard,
stored under the job's `outputPrefix`, answered with `media.ready` or `media.failed`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_worker import events
from media_worker.events import FailureCode, MalformedJob, TranscodeRequest
from media_worker.outputs import clear_outputs, read_finished, store_outputs
from media_worker.probe import ProbeError
from media_worker.progress import ProgressReporter
from media_worker.threads import run_cancellable
from media_worker.transcode import SourceDecodeError
from media_worker.vod import Vod, VodOptions, make_vod
from media_worker.workdir import job_dir
from subgraphs.kernel.bus import Bus, Message
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import ObjectNotFound, Storage

log = logging.getLogger(__name__)

#: Share of the progress bar the transcode takes; storing the outputs takes the rest.
TRANSCODE_SHARE = 0.9

# What a person is told when a step keeps failing for reasons that are not theirs.
_PHASE_REASONS = {
    "download": "The upload could not be read from storage.",
    "transcode": "Transcoding failed.",
    "store": "The renditions could not be written to storage.",
}


class PermanentFailure(Exception):
    """A failure retrying cannot fix: the job fails at once with this code and reason."""

    def __init__(self, code: FailureCode, reason: str) -> None:
        super().__init__(reason)
        self.code: FailureCode = code
        self.reason = reason


@dataclass
class _Attempt:
    number: int
    phase: str = "download"
    #: Storage was read and held no finished output for the job.
    unfinished: bool = False


class TranscodeJob:
    """Handles `media.transcode` messages; safe to run for the same video more than once."""

    topic = events.TRANSCODE

    def __init__(self, bus: Bus, storage: Storage, settings: Settings) -> None:
        self.bus = bus
        self.storage = storage
        self.max_attempts = settings.media_max_attempts
        self.backoff = settings.media_retry_backoff
        self.work_root: Path = settings.resolved_media_work_dir()
        self.options = VodOptions(
            max_duration=settings.media_max_duration,
            segment_seconds=settings.media_segment_seconds,
            preset=settings.media_preset,
        )

    async def __call__(self, message: Message) -> None:
        try:
            request = TranscodeRequest.parse(message.payload)
        except MalformedJob as error:
            log.error(
                "dropping a malformed %s job: %s",
                self.topic,
                error,
                extra={"message_id": message.id, "video_id": error.video_id},
            )
            if error.video_id is not None:
                await self._fail(
                    error.video_id, "TRANSCODE_FAILED", "The processing job was malformed.", 1
                )
            return
        context = {"video_id": request.video_id, "message_id": message.id}

        # Each earlier delivery of this message ended without an answer (its worker was
        # killed or stopped mid-job), and counts as one attempt.
        interrupted = message.attempt - 1
        if interrupted >= self.max_attempts:
            finished = await read_finished(self.storage, request.output_prefix)
            if finished is not None:
                await self.bus.publish(events.READY, events.ready_event(request.video_id, finished))
                return
            await self._give_up(
                request,
                f"The worker was stopped or crashed {interrupted} "
                f"time{'' if interrupted == 1 else 's'} while processing this video.",
                interrupted,
                clear=True,
            )
            return
        if interrupted:
            log.info("resuming after %d interrupted attempts", interrupted, extra=context)

        async def publish_progress(progress: float) -> None:
            await self.bus.publish(
                events.PROGRESS, events.progress_event(request.video_id, progress)
            )

        async with ProgressReporter(publish_progress) as progress:
            document = await self._attempts(request, interrupted, progress, context)
        if document is not None:
            await self.bus.publish(events.READY, events.ready_event(request.video_id, document))

    async def _attempts(
        self,
        request: TranscodeRequest,
        interrupted: int,
        progress: ProgressReporter,
        context: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Run attempts until one succeeds (its document) or the job has failed (None)."""
        # Outputs are only cleared on failure once this delivery has seen that the job had not
        # finished: storage failing on and off must never cost a finished video its media.
        unfinished = False
        for number in range(interrupted + 1, self.max_attempts + 1):
            attempt = _Attempt(number)
            try:
                return await self._attempt(request, attempt, progress, context)
            except PermanentFailure as failure:
                log.info(
                    "failed: %s (%s)",
                    failure.reason,
                    failure.code,
                    extra={**context, "code": failure.code},
                )
                await self._clear_quietly(request)
                await self._fail(request.video_id, failure.code, failure.reason, number)
                return None
            except Exception:
                unfinished = unfinished or attempt.unfinished
                log.exception(
                    "attempt %d of %d failed while %s",
                    number,
                    self.max_attempts,
                    _describe_phase(attempt.phase),
                    extra={**context, "attempt": number, "phase": attempt.phase},
                )
                if number >= self.max_attempts:
                    reason = _PHASE_REASONS[attempt.phase]
                    await self._give_up(request, reason, number, clear=unfinished)
                    return None
                await asyncio.sleep(self.backoff * 2 ** (number - interrupted - 1))
        return None

    async def _attempt(
        self,
        request: TranscodeRequest,
        attempt: _Attempt,
        progress: ProgressReporter,
        context: dict[str, Any],
    ) -> dict[str, Any]:
        finished = await read_finished(self.storage, request.output_prefix)
        if finished is not None:
            # A redelivery of a job that finished (its ack was lost): only announce it again.
            log.info("already transcoded; announcing it again", extra=context)
            return finished
        attempt.unfinished = True
        async with job_dir(self.work_root) as work:
            progress.report(0.0)
            source = work / "source"
            out_dir = work / "out"
            try:
                await self.storage.download(request.source_key, str(source))
            except ObjectNotFound:
                raise PermanentFailure(
                    "SOURCE_MISSING", "The uploaded file is missing; upload it again."
                ) from None

            attempt.phase = "transcode"
            started = time.monotonic()
            vod = await self._transcode(str(source), str(out_dir), progress)
            elapsed = time.monotonic() - started
            log.info(
                "transcoded %.1f s of media in %.1f s (%.2fx realtime)",
                vod.info.duration,
                elapsed,
                vod.info.duration / elapsed if elapsed > 0 else 0.0,
                extra={**context, "renditions": [r.name for r in vod.renditions]},
            )

            attempt.phase = "store"
            document = vod.document(request.video_id)
            await clear_outputs(self.storage, request.output_prefix)
            await store_outputs(
                self.storage,
                str(out_dir),
                request.output_prefix,
                document,
                on_progress=lambda f: progress.report(TRANSCODE_SHARE + (1 - TRANSCODE_SHARE) * f),
            )
            log.info("stored; ready", extra=context)
            return document

    async def _transcode(self, source: str, out_dir: str, progress: ProgressReporter) -> Vod:
        try:
            return await run_cancellable(
                lambda cancel: make_vod(
                    source,
                    out_dir,
                    self.options,
                    on_progress=lambda f: progress.report(TRANSCODE_SHARE * f),
                    cancel=cancel,
                )
            )
        except ProbeError as error:
            raise PermanentFailure(error.code, error.reason) from error
        except SourceDecodeError as error:
            raise PermanentFailure(
                "CORRUPT_MEDIA",
                "The file is damaged part-way through and cannot be transcoded. "
                "Re-export or re-upload it.",
            ) from error

    async def _give_up(
        self, request: TranscodeRequest, reason: str, attempts: int, *, clear: bool
    ) -> None:
        if clear:
            await self._clear_quietly(request)
        plural = "attempt" if attempts == 1 else "attempts"
        reason = f"{reason} Gave up after {attempts} {plural}."
        log.error("giving up: %s", reason, extra={"video_id": request.video_id})
        await self._fail(request.video_id, "TRANSCODE_FAILED", reason, attempts)

    async def _fail(self, video_id: str, code: FailureCode, reason: str, attempts: int) -> None:
        await self.bus.publish(events.FAILED, events.failed_event(video_id, code, reason, attempts))

    async def _clear_quietly(self, request: TranscodeRequest) -> None:
        # Best effort: partial outputs of a crashed run should not outlive a failed job.
        with contextlib.suppress(Exception):
            await clear_outputs(self.storage, request.output_prefix)


def _describe_phase(phase: str) -> str:
    return {"download": "downloading", "transcode": "transcoding", "store": "storing"}[phase]
