"""``make bench``: speed and memory of the render engine, written to docs/benchmarks.md.

Every figure that matters is a ratio measured in the same run on the same machine,
because these machines are shared and noisy:

- render ÷ re-encode: the whole ``notefall render`` (parse, synthesize, draw, encode,
  mux) against FFmpeg re-encoding the produced video with the same encoder settings
  (decode + encode, audio copied). 1.0 would mean drawing costs nothing.
- speed × real time: seconds of video per second of wall time.
- peak memory in a fresh process per song length (resource.getrusage), FFmpeg excluded
  and reported separately.
- still and preview frame times, as milliseconds and as a share of the 60 fps budget.

Run ``python -m bench.run --quick`` for a short smoke version.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from notefall.common import __version__
from notefall.common.engine import FrameRenderer, PixelFormat
from notefall.common.midi import read_song
from notefall.common.pipeline import render_video
from notefall.common.settings import RenderSettings
from notefall.common.video.codecs import video_args
from notefall.common.video.ffmpeg import ffmpeg_exe, probe

from .songs import reference_song_bytes

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def reencode_seconds(produced: Path, settings: RenderSettings, out: Path) -> float:
    """FFmpeg alone: decode the produced video and encode it again with our settings."""
    args = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-i",
        str(produced),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
        *video_args(
            settings.video_codec, settings.preset, settings.fps, alpha=False, fmt=settings.format
        ),
        "-c:a",
        "copy",
        str(out),
    ]
    t = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - t


def bench_render(
    song_path: Path, settings: RenderSettings, work: Path, label: str
) -> dict[str, object]:
    out = work / f"{label}.mp4"
    t = time.perf_counter()
    result = render_video(song_path, out, settings)
    wall = time.perf_counter() - t
    base = reencode_seconds(out, settings, work / f"{label}.reencoded.mp4")
    info = probe(out)
    return {
        "label": label,
        "frames": result.frames,
        "video_seconds": round(result.duration, 2),
        "render_s": round(wall, 2),
        "reencode_s": round(base, 2),
        "ratio": round(wall / base, 3),
        "x_realtime": round(result.duration / wall, 2),
        "fps": round(result.frames / wall, 1),
        "stages": {k: round(v, 2) for k, v in result.seconds.items()},
        "codec": f"{info.video_codec} {info.pix_fmt} {info.width}x{info.height}",
    }


def frame_costs(song_path: Path, resolution: str, frames: int = 240) -> dict[str, float]:
    """Milliseconds of frame production alone (no encoder), warm, in the encoder's format."""
    song = read_song(song_path)
    r = FrameRenderer(song, RenderSettings(resolution=resolution), pixel_format=PixelFormat.YUV420P)
    start = r.frame_count // 3
    for i in range(start - 30, start):  # warm caches as a running render would have them
        r.render(i)
    t = time.perf_counter()
    for i in range(start, start + frames):
        r.render(i)
    return {
        "resolution": resolution,
        "ms_per_frame": round((time.perf_counter() - t) / frames * 1000, 2),
    }


def still_costs(song_path: Path) -> dict[str, float]:
    """1080p stills (RGB, what thumbnails and the preview use): consecutive and random seeks."""
    song = read_song(song_path)
    r = FrameRenderer(song, RenderSettings(resolution="1080p"), pixel_format=PixelFormat.RGB)
    r720 = FrameRenderer(song, RenderSettings(resolution="720p"), pixel_format=PixelFormat.RGB)
    dur = r.timeline.duration
    for renderer in (r, r720):
        renderer.render_at(dur / 2)
    seq, seq720, seek = [], [], []
    for i in range(120):
        t = time.perf_counter()
        r.render_at(dur / 2 + i / 60)
        seq.append(time.perf_counter() - t)
        t = time.perf_counter()
        r720.render_at(dur / 2 + i / 60)
        seq720.append(time.perf_counter() - t)
    for k in range(12):
        t = time.perf_counter()
        r.render_at((k * 7.31) % dur)
        seek.append(time.perf_counter() - t)
    t = time.perf_counter()
    r.still_image(dur / 3)
    png = time.perf_counter() - t

    def p95(xs: list[float]) -> float:
        return round(sorted(xs)[int(len(xs) * 0.95) - 1] * 1000, 2)

    return {
        "still_1080p_median_ms": round(statistics.median(seq) * 1000, 2),
        "still_1080p_p95_ms": p95(seq),
        "preview_720p_median_ms": round(statistics.median(seq720) * 1000, 2),
        "preview_720p_p95_ms": p95(seq720),
        "seek_1080p_median_ms": round(statistics.median(seek) * 1000, 2),
        "seek_1080p_max_ms": round(max(seek) * 1000, 2),
        "still_image_1080p_ms": round(png * 1000, 2),
    }


def memory_run(minutes: float, resolution: str, work: Path) -> dict[str, float]:
    """Peak RSS of a fresh process drawing a song of ``minutes`` at ``resolution``."""
    song = work / f"mem_{minutes}.mid"
    song.write_bytes(reference_song_bytes(minutes))
    code = (
        "import resource, sys\n"
        "from notefall.common.midi import read_song\n"
        "from notefall.common.engine import FrameRenderer, PixelFormat\n"
        "from notefall.common.settings import RenderSettings\n"
        "from notefall.common.audio import prepare_audio\n"
        "import pathlib, tempfile\n"
        f"song = read_song(pathlib.Path({str(song)!r}))\n"
        f"s = RenderSettings(resolution={resolution!r})\n"
        "r = FrameRenderer(song, s, pixel_format=PixelFormat.YUV420P)\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    prepare_audio(song, s, r.timeline, pathlib.Path(d))\n"
        "n = r.frame_count\n"
        "for i in range(0, n, 7):  # every 7th frame: every strip chunk of the song is drawn\n"
        "    r.render(i)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {
        "minutes": minutes,
        "resolution": resolution,
        "peak_rss_mb": round(int(out.stdout.split()[-1]) / 1024, 1),
    }


def write_report(results: dict[str, object]) -> None:
    r = results
    main = r["main"]  # type: ignore[index]
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` (bench/run.py) on {r['date']}.",
        "",
        f"- Machine: {r['machine']}",
        f"- Notefall {r['version']}, FFmpeg from imageio-ffmpeg ({r['ffmpeg']})",
        "- Input: the benchmark's reference song (bench/songs.py): a deterministic, dense two-hand piano",
        "  piece with tempo changes and pedal, about 1,000 notes per minute.",
        "- Shared, noisy machine: judge the ratios, which are measured back to back in one run.",
        "",
        "## The main target: 3-minute song, 1080p30 H.264 (standard preset), with sound",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| whole render | {main['render_s']} s ({main['fps']} frames/s) | < 120 s |",  # type: ignore[index]
        f"| FFmpeg re-encoding the produced video, same settings | {main['reencode_s']} s | baseline |",  # type: ignore[index]
        f"| **render ÷ re-encode** | **{main['ratio']}** | ≤ 1.25 |",  # type: ignore[index]
        f"| **speed** | **{main['x_realtime']}× real time** | ≥ 2× |",  # type: ignore[index]
        f"| stages (s) | {json.dumps(main['stages'])} | |",  # type: ignore[index]
        "",
        "## Other resolutions and frame rates (1-minute excerpt of the same song)",
        "",
        "| case | frames | render s | re-encode s | ratio | × real time |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["others"]:  # type: ignore[union-attr]
        lines.append(
            f"| {row['label']} | {row['frames']} | {row['render_s']} | {row['reencode_s']} | "
            f"{row['ratio']} | {row['x_realtime']}× |"
        )
    lines += [
        "",
        "## Frame production alone (no encoder), warm, encoder pixel format",
        "",
        "| resolution | ms per frame |",
        "|---|---|",
        *[f"| {c['resolution']} | {c['ms_per_frame']} |" for c in r["frames"]],  # type: ignore[union-attr]
        "",
        "## Stills and preview (RGB frames, as thumbnails and the desktop preview use)",
        "",
        "| measure | ms | target |",
        "|---|---|---|",
    ]
    st = r["stills"]
    targets = {
        "still_1080p_median_ms": "≤ 20",
        "still_1080p_p95_ms": "≤ 20",
        "preview_720p_p95_ms": "≤ 16.7 (60 fps)",
    }
    lines += [f"| {k} | {v} | {targets.get(k, '')} |" for k, v in st.items()]  # type: ignore[union-attr]
    lines += [
        "",
        "`seek` renders a frame far from the previous one, which draws up to two new strip chunks.",
        "",
        "## Peak memory (fresh process: parse, synthesize audio, draw every 7th frame of the song)",
        "",
        "| song length | resolution | peak RSS |",
        "|---|---|---|",
        *[
            f"| {m['minutes']} min | {m['resolution']} | {m['peak_rss_mb']} MB |"
            for m in r["memory"]
        ],  # type: ignore[union-attr]
        "",
        "Memory does not depend on the song's length beyond the Song arrays (tens of bytes per note):",
        "the note strip is drawn in screen-high chunks kept in a 3-entry LRU, and audio is",
        "synthesized in blocks straight to disk. FFmpeg's own memory (x264 lookahead) is not included.",
        "",
    ]
    # The server section (bench/server.py) is measured separately; keep it.
    marker = "<!-- server benchmarks (bench/server.py) -->"
    old = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    server = marker + old.split(marker, 1)[1] if marker in old else ""
    REPORT.write_text("\n".join(lines) + ("\n" + server if server else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short songs, for a smoke run")
    args = parser.parse_args()
    minutes = 0.5 if args.quick else 3.0
    with tempfile.TemporaryDirectory(prefix="notefall-bench-") as tmp:
        work = Path(tmp)
        song = work / "reference.mid"
        song.write_bytes(reference_song_bytes(minutes))
        excerpt = work / "excerpt.mid"
        excerpt.write_bytes(reference_song_bytes(0.25 if args.quick else 1.0))
        ffmpeg_version = subprocess.run(
            [ffmpeg_exe(), "-version"], capture_output=True, text=True
        ).stdout.split()[2]
        results: dict[str, object] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "version": __version__,
            "ffmpeg": ffmpeg_version,
        }
        print("main render…", flush=True)
        results["main"] = bench_render(
            song, RenderSettings(resolution="1080p", fps=30), work, "1080p30"
        )
        print(results["main"], flush=True)
        others = []
        for res, fps in (("720p", 30), ("1080p", 60), ("2160p", 30)):
            print(f"{res}{fps}…", flush=True)
            row = bench_render(
                excerpt, RenderSettings(resolution=res, fps=fps), work, f"{res}{fps}"
            )
            print(row, flush=True)
            others.append(row)
        results["others"] = others
        results["frames"] = [frame_costs(song, res) for res in ("720p", "1080p", "2160p")]
        print(results["frames"], flush=True)
        results["stills"] = still_costs(song)
        print(results["stills"], flush=True)
        lengths = (0.5, 1.0) if args.quick else (1.0, 5.0, 10.0)
        results["memory"] = [memory_run(m, "2160p", work) for m in lengths]
        print(results["memory"], flush=True)
    write_report(results)
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
