"""Locating FFmpeg, running it, and probing media files with it.

The bundled imageio-ffmpeg build has no ffprobe, so everything here is read from
``ffmpeg -i`` (the stream summary on stderr) and from the ``framemd5`` muxer (exact
per-frame timestamps and checksums). The probing helpers are public so tests
elsewhere in the project can check rendered files with the same code.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import EncoderError, InputError

ENV_FFMPEG = "NOTEFALL_FFMPEG"


def ffmpeg_exe() -> str:
    """Path of the FFmpeg binary: ``$NOTEFALL_FFMPEG`` if set, else imageio-ffmpeg's."""
    override = os.environ.get(ENV_FFMPEG, "").strip()
    # Cached per override value so a test (or the desktop app's settings) can
    # switch binaries while the normal path costs one dict lookup.
    return _resolve_ffmpeg(override)


@functools.lru_cache(maxsize=8)
def _resolve_ffmpeg(override: str) -> str:
    if override:
        found = shutil.which(override) or (override if os.access(override, os.X_OK) else None)
        if not found:
            raise EncoderError(
                f"{ENV_FFMPEG}={override!r} is not an executable FFmpeg; fix or unset it",
                code="ffmpeg_missing",
            )
        _check_runs(found)
        return found
    try:
        import imageio_ffmpeg

        exe = str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as exc:  # imageio-ffmpeg raises RuntimeError, or is missing
        raise EncoderError(
            f"FFmpeg not found ({exc}); reinstall imageio-ffmpeg or set {ENV_FFMPEG}",
            code="ffmpeg_missing",
        ) from None
    _check_runs(exe)
    return exe


def _check_runs(exe: str) -> None:
    try:
        proc = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EncoderError(f"FFmpeg at {exe} cannot run: {exc}", code="ffmpeg_missing") from None
    if proc.returncode != 0:
        raise EncoderError(f"FFmpeg at {exe} does not work", code="ffmpeg_missing")


def run_ffmpeg(
    args: Sequence[str], *, timeout: float | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a short FFmpeg command to completion; raise ``EncoderError`` on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").splitlines()
        raise EncoderError(f"FFmpeg failed: {meaningful_error(lines)}")
    return proc


# Lines FFmpeg prints after the real cause (or around it); never the message itself.
_GENERIC = re.compile(
    r"^(Conversion failed|Error splitting the argument list|Error opening output file"
    r"|Exiting normally|Terminating thread with return code|Task finished with error code"
    r"|Error sending frames to consumers|Could not open encoder before EOF"
    r"|Nothing was written into output file|Error while opening encoder - maybe"
    r"|Error while (filtering|decoding|processing)|Error writing trailer|video:\S+ audio:)"
)
_ERRORISH = re.compile(
    r"error|invalid|unrecogni[sz]ed|cannot|could not|not found|no such|fail", re.IGNORECASE
)
_PREFIX = re.compile(r"^(\[[^\]]+ @ 0x[0-9a-f]+\]\s*)+")


def meaningful_error(lines: Sequence[str]) -> str:
    """What went wrong, from FFmpeg's stderr: the first error line of the final
    burst (the cause) plus the last specific line (often the reason), without the
    generic follow-ups FFmpeg adds ("Conversion failed!", thread exit codes...).
    """
    cleaned = [_PREFIX.sub("", raw.strip()) for raw in lines]
    # Only the final burst: an early warning must not pose as the cause.
    specific = [line for line in cleaned if line and not _GENERIC.match(line)][-12:]
    if not specific:
        tail = [line for line in cleaned if line]
        return tail[-1] if tail else "no error message"
    errors = [line for line in specific if _ERRORISH.search(line)]
    first = errors[0] if errors else specific[-1]
    last = specific[-1]
    return first if first == last else f"{first} — {last}"


# Probing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What ``ffmpeg -i`` says about a file (first video and first audio stream)."""

    container: str  # demuxer names, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm"
    duration: float | None  # container duration, seconds (centisecond precision)
    video_codec: str | None = None  # "h264", "hevc", "vp9", "av1", "prores"
    video_profile: str | None = None  # "High", "Main", "HQ", "4444", ...
    codec_tag: str | None = None  # fourcc in MP4/MOV, e.g. "avc1", "hvc1", "apch"
    pix_fmt: str | None = None  # decoder's output format; "yuva420p" for VP9 alpha
    width: int = 0
    height: int = 0
    fps: float | None = None
    color_range: str | None = None  # "tv" (limited) or "pc" (full)
    color_space: str | None = None  # matrix, e.g. "bt709"
    color_primaries: str | None = None
    color_transfer: str | None = None
    has_alpha: bool = False
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    video_metadata: dict[str, str] = field(default_factory=dict)

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


_INPUT = re.compile(r"^Input #0, (?P<fmt>.+?), from ")
_DURATION = re.compile(r"^\s*Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)|N/A)")
_STREAM = re.compile(
    r"^(?P<indent>\s*)Stream #0:\d+(?:\[0x[0-9a-fA-F]+\])?(?:\([^)]*\))?: "
    r"(?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<rest>.*)$"
)
_META = re.compile(r"^\s*(?P<key>[^:]+?)\s*: (?P<value>.*)$")
_TAG = re.compile(r"\((?P<tag>[^()/]{4}) / 0x[0-9A-Fa-f]+\)")
_PIXFMT = re.compile(r"^(?P<fmt>[a-z][a-z0-9_]*)(?:\((?P<params>.*)\))?$")
_SIZE = re.compile(r"^(?P<w>\d+)x(?P<h>\d+)")
_FPS = re.compile(r"^(?P<v>[\d.]+)(?P<k>k?) fps$")
_ALPHA_PIXFMT = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr|ayuv|vuya)")
_RANGES = {"tv", "pc"}
_NOT_COLOR = {
    "progressive",
    "top first",
    "bottom first",
    "top coded first (swapped)",
    "bottom coded first (swapped)",
    "left",
    "center",
    "topleft",
    "top",
    "bottomleft",
    "bottom",
}
_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6}


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside (...) or [...]."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def _parse_video(rest: str, out: dict[str, object]) -> None:
    parts = _split_top(rest)
    head = parts[0]
    out["video_codec"] = head.split()[0]
    tag = _TAG.search(head)
    out["codec_tag"] = tag.group("tag").strip() if tag else None
    # "(High)" / "(libvpx-vp9) (Profile 0)": the profile is the last bracket that is
    # not the fourcc; a decoder name in brackets is not a profile.
    brackets = [b for b in re.findall(r"\(([^()]*)\)", head) if " / 0x" not in b]
    out["video_profile"] = brackets[-1] if brackets and not brackets[-1].startswith("lib") else None
    for part in parts[1:]:
        if out.get("pix_fmt") is None and (m := _PIXFMT.match(part)) and not _SIZE.match(part):
            out["pix_fmt"] = m.group("fmt")
            for token in (t.strip() for t in (m.group("params") or "").split(",")):
                if token in _RANGES:
                    out["color_range"] = token
                elif "/" in token:
                    space, prim, trc = [*token.split("/"), "", ""][:3]
                    out["color_space"], out["color_primaries"], out["color_transfer"] = (
                        space,
                        prim,
                        trc,
                    )
                elif token and token not in _NOT_COLOR:
                    # FFmpeg prints one name when matrix, primaries and transfer agree.
                    out["color_space"] = out["color_primaries"] = out["color_transfer"] = token
        elif m := _SIZE.match(part):
            out["width"], out["height"] = int(m.group("w")), int(m.group("h"))
        elif m := _FPS.match(part):
            out["fps"] = float(m.group("v")) * (1000 if m.group("k") else 1)


def _parse_audio(rest: str, out: dict[str, object]) -> None:
    parts = _split_top(rest)
    out["audio_codec"] = parts[0].split()[0]
    for part in parts[1:]:
        if m := re.match(r"^(\d+) Hz$", part):
            out["audio_rate"] = int(m.group(1))
        elif part in _LAYOUTS:
            out["audio_channels"] = _LAYOUTS[part]
        elif m := re.match(r"^(\d+) channels", part):
            out["audio_channels"] = int(m.group(1))
        elif m := re.match(r"^(\d+\.\d+)(\(.*\))?$", part):  # "7.1", "5.1(side)"
            a, b = m.group(1).split(".")
            out["audio_channels"] = int(a) + int(b)


def parse_probe(stderr: str) -> MediaInfo:
    """Parse the stream summary ``ffmpeg -i FILE`` prints (exposed for tests)."""
    fields: dict[str, object] = {}
    container: str | None = None
    duration: float | None = None
    video_meta: dict[str, str] = {}
    in_video_meta = False
    meta_indent = 0
    for line in stderr.splitlines():
        if container is None:
            if m := _INPUT.match(line):
                container = m.group("fmt")
            continue
        if line.startswith(("Input #", "Output #", "Stream mapping")):
            break  # a second input or the output summary: not ours
        if duration is None and (m := _DURATION.match(line)):
            if m.group("h") is not None:
                duration = int(m.group("h")) * 3600 + int(m.group("m")) * 60 + float(m.group("s"))
            continue
        if m := _STREAM.match(line):
            in_video_meta = False
            kind, rest = m.group("kind"), m.group("rest")
            if kind == "Video" and "video_codec" not in fields and "(attached pic)" not in rest:
                _parse_video(rest, fields)
                in_video_meta, meta_indent = True, len(m.group("indent"))
            elif kind == "Audio" and "audio_codec" not in fields:
                _parse_audio(rest, fields)
            continue
        if in_video_meta:
            indent = len(line) - len(line.lstrip())
            if indent <= meta_indent:
                in_video_meta = False
            elif (m := _META.match(line)) and m.group("key") != "Metadata":
                video_meta[m.group("key").lower()] = m.group("value").strip()
    if container is None:
        raise InputError(f"FFmpeg cannot read this file: {meaningful_error(stderr.splitlines())}")
    pix_fmt = fields.get("pix_fmt")
    # VP9/VP8 alpha lives in a side stream that FFmpeg's native decoder ignores; the
    # Matroska "alpha_mode" flag is the reliable signal.
    has_alpha = bool(
        (isinstance(pix_fmt, str) and _ALPHA_PIXFMT.match(pix_fmt))
        or video_meta.get("alpha_mode") == "1"
    )
    return MediaInfo(
        container=container,
        duration=duration,
        has_alpha=has_alpha,
        video_metadata=video_meta,
        **fields,  # type: ignore[arg-type]
    )


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Container, codecs, size, frame rate, colour tags and alpha of a media file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist")
    # No output file: FFmpeg prints the input summary and exits 1 — expected.
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *_alpha_decoder(p), "-i", str(p)],
        capture_output=True,
        timeout=60,
    )
    return parse_probe(proc.stderr.decode("utf-8", "replace"))


def _alpha_decoder(path: Path) -> list[str]:
    """Decoder options that keep VP8/VP9 alpha (FFmpeg's native decoders drop it).

    Peeks at the WebM/Matroska header instead of running FFmpeg, so probing costs
    one FFmpeg run, not two.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(64 * 1024)
    except OSError:
        return []
    # EBML magic, then an AlphaMode element (ID 0x53C0, size 1, value 1) and the codec id.
    if not head.startswith(b"\x1a\x45\xdf\xa3") or b"\x53\xc0\x81\x01" not in head:
        return []
    if b"V_VP9" in head:
        return ["-c:v", "libvpx-vp9"]
    return ["-c:v", "libvpx"] if b"V_VP8" in head else []


# Frames ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One decoded frame (or audio block) as the framemd5 muxer lists it."""

    pts: int  # in ``time_base`` units
    duration: int
    time_base: Fraction
    size: int
    md5: str

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)

    @property
    def end(self) -> float:
        return float((self.pts + self.duration) * self.time_base)


def framemd5(
    path: str | os.PathLike[str], *, stream: str = "v", pix_fmt: str | None = None
) -> list[FrameRecord]:
    """Every decoded frame of the first ``stream`` ("v" or "a"), in presentation order.

    Timestamps are the demuxer's own (``-enc_time_base demux``) and nothing is
    dropped or duplicated (``-fps_mode passthrough``), so they are exactly what a
    player presents, after edit lists.
    """
    p = Path(path)
    args = [*_alpha_decoder(p), "-i", str(p), "-map", f"0:{stream}:0"]
    if stream == "v":
        args += ["-fps_mode", "passthrough", "-enc_time_base:v", "demux"]
        if pix_fmt:
            args += ["-pix_fmt", pix_fmt]
    else:
        args += ["-enc_time_base:a", "demux"]
    proc = run_ffmpeg([*args, "-f", "framemd5", "-"], timeout=600)
    tb = Fraction(1, 1)
    records = []
    for line in proc.stdout.decode().splitlines():
        if line.startswith("#tb 0:"):
            tb = Fraction(line.split(":", 1)[1].strip())
        elif line and not line.startswith("#"):
            _idx, _dts, pts, dur, size, md5 = (x.strip() for x in line.split(","))
            records.append(FrameRecord(int(pts), int(dur), tb, int(size), md5))
    records.sort(key=lambda r: r.pts)
    return records


def frame_timestamps(path: str | os.PathLike[str]) -> list[float]:
    """Presentation time (seconds) of every video frame."""
    return [r.time for r in framemd5(path)]


def frame_hashes(path: str | os.PathLike[str], pix_fmt: str | None = None) -> list[str]:
    """MD5 of every decoded video frame (in the decoder's format unless ``pix_fmt``)."""
    return [r.md5 for r in framemd5(path, pix_fmt=pix_fmt)]


def stream_duration(path: str | os.PathLike[str], stream: str = "v") -> float:
    """Exact decoded duration of the first video ("v") or audio ("a") stream, seconds."""
    records = framemd5(path, stream=stream)
    if not records:
        return 0.0
    return max(r.end for r in records) - min(r.time for r in records)


_CHANNELS = {"rgb24": 3, "bgr24": 3, "rgba": 4, "bgra": 4, "argb": 4, "abgr": 4, "gray": 1}


def read_frames(
    path: str | os.PathLike[str],
    indices: Sequence[int] | None = None,
    *,
    times: Sequence[float] | None = None,
    pix_fmt: str = "rgb24",
) -> list[np.ndarray]:
    """Decode chosen frames to ``(height, width, channels)`` uint8 arrays.

    Give frame ``indices`` (0-based, presentation order) or ``times`` in seconds
    (the frame on screen at that time). Results follow the order asked for.
    """
    if (indices is None) == (times is None):
        raise ValueError("give either indices or times")
    if pix_fmt not in _CHANNELS:
        raise ValueError(f"read_frames supports {', '.join(_CHANNELS)}, not {pix_fmt}")
    p = Path(path)
    info = probe(p)
    if times is not None:
        stamps = frame_timestamps(p)
        wanted = []
        for t in times:
            # The frame on screen at t is the last one that started at or before it.
            i = int(np.searchsorted(np.asarray(stamps), t + 1e-6, side="right")) - 1
            wanted.append(max(0, i))
    else:
        wanted = [int(i) for i in indices or ()]
    if not wanted:
        return []
    unique = sorted(set(wanted))
    # select= converts only the chosen frames to RGB; the rest are decoded and dropped.
    # FFmpeg's expression parser refuses more than about 100 terms, so consecutive
    # frames become one between() term each.
    runs: list[tuple[int, int]] = []
    for i in unique:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    if len(runs) > 90:
        first = read_frames(p, unique[: len(unique) // 2], pix_fmt=pix_fmt)
        second = read_frames(p, unique[len(unique) // 2 :], pix_fmt=pix_fmt)
        by_index = dict(zip(unique, first + second, strict=True))
        return [by_index[i] for i in wanted]
    expr = "+".join(f"eq(n,{a})" if a == b else f"between(n,{a},{b})" for a, b in runs)
    proc = run_ffmpeg(
        [
            *_alpha_decoder(p),
            "-i",
            str(p),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-vf",
            f"select='{expr}'",
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-",
        ],
        timeout=600,
    )
    frame_size = info.width * info.height * _CHANNELS[pix_fmt]
    data = np.frombuffer(proc.stdout, dtype=np.uint8)
    got = len(data) // frame_size if frame_size else 0
    if got != len(unique):
        raise InputError(f"{p} has no frame {unique[got]} (it has fewer frames)")
    frames = data.reshape(got, info.height, info.width, _CHANNELS[pix_fmt])
    by_index = {idx: frames[k] for k, idx in enumerate(unique)}
    return [by_index[i] for i in wanted]
