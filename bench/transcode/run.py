"""Our media worker's ladder transcode vs the ffmpeg CLI, side by side in one run.

    .venv/bin/python -m bench.transcode.run [--rounds N] [--seconds S] [--quick] [--full]

See bench/README.md for what is measured and how. Prints a Markdown report and writes it to
bench/transcode/results.md (or --out). Needs the `ffmpeg` command: it is installed with
apt-get on first use (as root) unless --no-install.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import m3u8

from bench.transcode.clip import FPS, HEIGHT, VIDEO_BITRATE, WIDTH, source_clip
from bench.transcode.ladder import BENCH_LADDER

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results.md"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
VARIANTS = ("ours", "ffmpeg")
# Other tenants' CPU (100% = one core) above which a run is flagged as noisy.
NOISY_OTHER_CPU = 25.0


# --- the two ways ---------------------------------------------------------------------------


def ensure_ffmpeg(install: bool) -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    if not install:
        sys.exit("ffmpeg is not installed (apt-get install -y ffmpeg), and --no-install was given")
    apt = shutil.which("apt-get")
    if apt is None:
        sys.exit("ffmpeg is not installed and there is no apt-get; install ffmpeg first")
    print("installing ffmpeg with apt-get (benchmark setup only)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update", "-qq"], check=True, env=env)
    subprocess.run([apt, "install", "-y", "-qq", "ffmpeg"], check=True, env=env)
    found = shutil.which("ffmpeg")
    if not found:
        sys.exit("ffmpeg is still missing after apt-get install")
    return found


def ffmpeg_command(
    ffmpeg: str, source: Path, out_dir: Path, segment: float, preset: str
) -> list[str]:
    """The same ladder as ours: split → scale per rung, x264 with the same rate control,
    keyframes forced on segment boundaries, AAC per rung, HLS with a master playlist."""
    rungs = list(BENCH_LADDER)
    gop = round(FPS * segment)
    graph = f"[0:v]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs))) + ";"
    graph += ";".join(
        f"[s{i}]scale={r.width}:{r.height}:flags=bicubic,setsar=1,format=yuv420p[v{i}]"
        for i, r in enumerate(rungs)
    )
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    command += ["-filter_complex", graph]
    for i in range(len(rungs)):
        command += ["-map", f"[v{i}]", "-map", "0:a:0"]
    command += ["-c:v", "libx264", "-preset", preset, "-g", str(gop), "-keyint_min", str(gop)]
    command += ["-sc_threshold", "0", "-force_key_frames", f"expr:gte(t,n_forced*{segment:g})"]
    command += ["-x264-params", "repeat-headers=1"]
    command += ["-c:a", "aac", "-ar", "48000", "-ac", "2"]
    for i, rung in enumerate(rungs):
        command += [
            f"-b:v:{i}",
            str(rung.video_bitrate),
            f"-maxrate:v:{i}",
            str(int(rung.video_bitrate * 1.07)),
            f"-bufsize:v:{i}",
            str(int(rung.video_bitrate * 1.5)),
            f"-b:a:{i}",
            str(rung.audio_bitrate),
        ]
    stream_map = " ".join(f"v:{i},a:{i},name:{r.name}" for i, r in enumerate(rungs))
    command += ["-f", "hls", "-hls_time", f"{segment:g}", "-hls_playlist_type", "vod"]
    command += ["-hls_segment_filename", str(out_dir / "%v" / "segment_%05d.ts")]
    command += ["-master_pl_name", "master.m3u8", "-var_stream_map", stream_map]
    command.append(str(out_dir / "%v" / "index.m3u8"))
    return command


def ours_command(source: Path, out_dir: Path, segment: float, preset: str, full: bool) -> list[str]:
    command = [sys.executable, "-m", "bench.transcode.ours", str(source), str(out_dir)]
    command += [f"{segment:g}", preset]
    return command + (["--full"] if full else [])


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Rendition:
    name: str
    segments: int
    seconds: float
    kbps: float
    encoder: str


@dataclass
class Run:
    variant: str
    round: int
    wall: float
    cpu: float
    other_cpu_percent: float
    renditions: list[Rendition] = field(default_factory=list)


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / CLOCK_TICKS


def pyav_x264_version() -> str:
    """The x264 build inside PyAV's wheel (our segments carry it only in extradata)."""
    context = av.CodecContext.create("libx264", "w")
    context.width, context.height, context.pix_fmt = 64, 64, "yuv420p"
    context.time_base = Fraction(1, 25)
    frame = av.VideoFrame(64, 64, "yuv420p")
    frame.pts = 0
    data = b"".join(bytes(p) for p in context.encode(frame) + context.encode(None))
    found = re.search(rb"x264 - core \d+(?: r\d+)?", data)
    return found.group().decode() if found else "?"


def measure(variant: str, round_: int, command: list[str], out_dir: Path, seconds: float) -> Run:
    """Run one transcode to completion; wall time, its CPU time, and everyone else's."""
    out_dir.mkdir(parents=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = _machine_busy_seconds()
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    wall = time.perf_counter() - started
    busy = _machine_busy_seconds() - busy
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{completed.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run = Run(variant, round_, wall, cpu, max(0.0, busy - cpu) / wall * 100)
    run.renditions = check_outputs(out_dir, seconds)
    return run


def check_outputs(out_dir: Path, seconds: float) -> list[Rendition]:
    """Both ways must make the same thing: every rung, segments summing to the clip."""
    found = []
    for rung in BENCH_LADDER:
        playlist = m3u8.load(str(out_dir / rung.name / "index.m3u8"))
        total = sum(s.duration for s in playlist.segments)
        if abs(total - seconds) > 0.5:
            raise RuntimeError(f"{out_dir}/{rung.name}: segments sum to {total:.2f} s")
        size = sum((out_dir / rung.name / s.uri).stat().st_size for s in playlist.segments)
        first = (out_dir / rung.name / playlist.segments[0].uri).read_bytes()
        version = re.search(rb"x264 - core \d+(?: r\d+)?", first)
        with av.open(str(out_dir / rung.name / playlist.segments[0].uri)) as segment:
            frame = next(segment.decode(video=0))
            if (frame.width, frame.height) != (rung.width, rung.height):
                raise RuntimeError(f"{out_dir}/{rung.name}: {frame.width}x{frame.height}")
        found.append(
            Rendition(
                rung.name,
                len(playlist.segments),
                total,
                size * 8 / total / 1000,
                version.group().decode() if version else pyav_x264_version(),
            )
        )
    master = m3u8.load(str(out_dir / "master.m3u8"))
    if len(master.playlists) != len(BENCH_LADDER):
        raise RuntimeError(f"{out_dir}: master lists {len(master.playlists)} variants")
    return found


# --- the report -----------------------------------------------------------------------------


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.split(
            "\n"
        )[0]
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def render(args: argparse.Namespace, runs: list[Run], ffmpeg: str, notes: list[str]) -> str:
    by_variant: dict[str, list[Run]] = {}
    for run in runs:
        by_variant.setdefault(run.variant, []).append(run)
    medians = {v: statistics.median(r.wall for r in rs) for v, rs in by_variant.items()}
    cpu = {v: statistics.median(r.cpu for r in rs) for v, rs in by_variant.items()}
    load1, load5, _ = os.getloadavg()
    git = _version([shutil.which("git") or "git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    full = " --full (probe + poster + storyboard)" if args.full else ""
    ladder = ", ".join(
        f"{r.name} {r.width}x{r.height} {r.video_bitrate // 1000}k+{r.audio_bitrate // 1000}k"
        for r in BENCH_LADDER
    )
    lines = [
        "# Transcode benchmark: our media worker vs the ffmpeg CLI",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), Linux {platform.release()}; "
        f"load average at start {args.load_at_start[0]:.2f} / {args.load_at_start[1]:.2f}, "
        f"at end {load1:.2f} / {load5:.2f}",
        f"- ours: git {git}, Python {platform.python_version()}, PyAV {av.__version__} "
        f"(libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), "
        f"`python -m bench.transcode.ours`{full}",
        f"- ffmpeg: `{ffmpeg}`: {_version([ffmpeg, '-version'])}",
        f"- source: {args.seconds} s {WIDTH}x{HEIGHT} {FPS} fps H.264 at "
        f"{VIDEO_BITRATE // 1000} kb/s + AAC 128 kb/s, generated by bench/transcode/clip.py",
        f"- ladder: {ladder}; x264 preset {args.preset}, {args.segment:g} s segments, "
        "keyframes forced on segment boundaries, maxrate 1.07x, bufsize 1.5x",
        f"- rounds: {args.rounds}, the two ways alternating (round 1 ours first, round 2 ffmpeg "
        "first, ...)",
        "",
        "## Results (medians)",
        "",
        "Wall: start to exit of the process. CPU: its user+system time, all threads. "
        "Realtime: clip seconds per wall second. Other CPU: busy CPU on the machine not used by "
        "the run (other tenants; 100% = one core); with high values the round is noisy.",
        "",
        "| way | wall s | realtime x | CPU s | other CPU % (max) |",
        "|---|--:|--:|--:|--:|",
    ]
    for variant, rs in by_variant.items():
        lines.append(
            f"| {variant} | {medians[variant]:.2f} | {args.seconds / medians[variant]:.2f} | "
            f"{cpu[variant]:.1f} | {max(r.other_cpu_percent for r in rs):.0f} |"
        )
    busiest = max(r.other_cpu_percent for r in runs)
    if busiest > NOISY_OTHER_CPU:
        lines += [
            "",
            f"**Noisy run**: other processes used up to {busiest:.0f}% CPU during it (100% = one "
            "core). Rerun on an idle machine before trusting the ratio.",
        ]
    if args.rounds < 3:
        lines += ["", f"**{args.rounds} round(s) only**: a smoke run, not a measurement."]
    if "ours" in medians and "ffmpeg" in medians:
        ratio = medians["ours"] / medians["ffmpeg"]
        verdict = "meets" if ratio <= 1.0 else "misses"
        lines += [
            "",
            f"**ours / ffmpeg, wall: {ratio:.3f}** ({verdict} the target of <= 1.0); "
            f"CPU: {cpu['ours'] / cpu['ffmpeg']:.3f}.",
        ]
    lines += ["", "## Every round", "", "| round | way | wall s | CPU s | other CPU % |"]
    lines.append("|--:|---|--:|--:|--:|")
    for run in runs:
        lines.append(
            f"| {run.round} | {run.variant} | {run.wall:.2f} | {run.cpu:.1f} | "
            f"{run.other_cpu_percent:.0f} |"
        )
    lines += ["", "## What each made (last round)", ""]
    lines += ["| way | rung | segments | seconds | kb/s (video+audio+TS) | encoder |"]
    lines.append("|---|---|--:|--:|--:|---|")
    for variant, rs in by_variant.items():
        for rendition in rs[-1].renditions:
            lines.append(
                f"| {variant} | {rendition.name} | {rendition.segments} | "
                f"{rendition.seconds:.2f} | {rendition.kbps:,.0f} | {rendition.encoder} |"
            )
    if notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


NOTES = [
    "Both ways run as their own process, one at a time, on the same cached source; only the "
    "benchmark's driver runs beside them.",
    "The FFmpeg builds differ: PyAV's wheel bundles its own FFmpeg and x264, the CLI is the "
    "distribution's. The encoder row above names each x264 build.",
    "On a 2-core machine both ways keep both cores busy, so wall time follows total CPU: the "
    "x264 encodes are nearly all of it, and they are the same work on both sides.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds, ways alternating")
    parser.add_argument("--seconds", type=int, default=30, help="length of the source clip")
    parser.add_argument("--segment", type=float, default=4.0, help="HLS segment seconds")
    parser.add_argument("--preset", default="veryfast", help="x264 preset for both")
    parser.add_argument("--quick", action="store_true", help="1 round of a 6 s clip (a smoke run)")
    parser.add_argument(
        "--full", action="store_true", help="ours also probes and makes the poster and storyboard"
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get install ffmpeg")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 6
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()
    ffmpeg = ensure_ffmpeg(not args.no_install)
    print(f"source: {args.seconds} s at {WIDTH}x{HEIGHT} (cached after the first run)", flush=True)
    source = source_clip(args.seconds)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp:
        for round_ in range(1, args.rounds + 1):
            order = VARIANTS if round_ % 2 else VARIANTS[::-1]
            for variant in order:
                out_dir = Path(tmp) / f"{variant}-{round_}"
                command = (
                    ours_command(source, out_dir, args.segment, args.preset, args.full)
                    if variant == "ours"
                    else ffmpeg_command(ffmpeg, source, out_dir, args.segment, args.preset)
                )
                run = measure(variant, round_, command, out_dir, args.seconds)
                runs.append(run)
                print(
                    f"round {round_} {variant}: {run.wall:.2f} s wall, {run.cpu:.1f} s CPU, "
                    f"other CPU {run.other_cpu_percent:.0f}%",
                    flush=True,
                )
                shutil.rmtree(out_dir)
    text = render(args, runs, ffmpeg, NOTES)
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
