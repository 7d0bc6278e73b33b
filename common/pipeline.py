"""The render pipeline: MIDI → Song → audio → frames → FFmpeg → finished file.

Drawing and encoding overlap: the main thread draws frame N+1 while a writer thread
pushes frame N into FFmpeg's pipe (``os.write`` releases the GIL), so on a machine
where FFmpeg uses every core the encoder stays the only bottleneck.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .audio import prepare_audio
from .engine import FrameRenderer, PixelFormat
from .engine.planes import Frame
from .errors import InputError
from .midi import read_song
from .progress import CancelToken, ProgressCallback, ProgressTracker, Stage
from .settings import RenderSettings
from .song import Song
from .timeline import Timeline, build_timeline
from .video.encoder import Encoder
from .video.process import EncodeProgress

FRAMES_IN_FLIGHT = 3  # one being drawn, one being written, one spare


@dataclass(slots=True)
class RenderResult:
    output: Path
    frames: int
    width: int
    height: int
    fps: int
    duration: float  # seconds of video
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage


def load_song(source: Path | bytes | Song, name: str | None = None) -> Song:
    if isinstance(source, Song):
        return source
    return read_song(source, name=name)


def check_output(output: Path) -> None:
    """Fail before any work when the output cannot be written where asked."""
    if output.is_dir():
        raise InputError(
            f"{output} is a folder; give a file name inside it.", code="invalid_output"
        )
    if not output.parent.is_dir():
        raise InputError(
            f"The output folder {output.parent} does not exist.", code="invalid_output"
        )


def require_notes(song: Song) -> None:
    if song.note_count == 0:
        raise InputError("This MIDI file has no notes to show.", code="empty_song")


def check_inputs(settings: RenderSettings) -> None:
    """Fail before any work when a file the settings name is missing."""
    labels = {
        "audio": "Audio file",
        "soundfont": "SoundFont",
        "background_image": "Background image",
    }
    for key, path in settings.input_paths().items():
        if not path.is_file():
            raise InputError(f"{labels[key]} not found: {path}", code=f"missing_{key}")


def _pixel_format(settings: RenderSettings) -> PixelFormat:
    return PixelFormat.YUVA420P if settings.transparent else PixelFormat.YUV420P


def render_video(
    source: Path | bytes | Song,
    output: Path,
    settings: RenderSettings,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    frames: tuple[int, int] | None = None,
    name: str | None = None,
) -> RenderResult:
    """Render a whole video, or with ``frames`` a video-only segment of the global frame grid.

    Segments are what the cloud fans out: ``join_segments`` turns them back into
    exactly the frames of a one-pass render, and muxes the audio once.
    """
    cancel = cancel or CancelToken()
    tracker = ProgressTracker(progress)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    output = Path(output)
    check_inputs(settings)
    check_output(output)
    tracker.update(Stage.PARSING, 0.0)
    song = load_song(source, name)
    require_notes(song)
    timeline = build_timeline(song, settings)
    first, last = frames if frames is not None else (0, timeline.frame_count)
    if not 0 <= first < last <= timeline.frame_count:
        raise InputError(
            f"Frames {first}–{last} are outside this render's {timeline.frame_count} frames.",
            code="invalid_frame_range",
        )
    tracker.update(Stage.PARSING, 1.0)
    seconds["parsing"] = time.perf_counter() - t0
    output = Path(output)
    if not output.parent.is_dir():
        raise InputError(
            f"The output folder {output.parent} does not exist.", code="invalid_output"
        )
    with tempfile.TemporaryDirectory(prefix="notefall-") as work:
        audio: Path | None = None
        if frames is None:
            t1 = time.perf_counter()
            tracker.update(Stage.SYNTHESIZING_AUDIO, 0.0)
            audio = prepare_audio(
                song, settings, timeline, Path(work), cancel=cancel,
                on_progress=lambda f: tracker.update(Stage.SYNTHESIZING_AUDIO, f),
            )  # fmt: skip
            tracker.update(Stage.SYNTHESIZING_AUDIO, 1.0)
            seconds["audio"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        renderer = FrameRenderer(
            song, settings, pixel_format=_pixel_format(settings), timeline=timeline
        )
        width, height = settings.size

        def on_encoder(ev: EncodeProgress) -> None:
            if ev.stage == Stage.MUXING:  # FFmpeg reports only the boundaries of muxing
                tracker.update(Stage.MUXING, 1.0 if ev.done else 0.0)

        with Encoder(
            output, settings, width, height, settings.fps, renderer.format.value, audio,
            segment=frames is not None, cancel=cancel, frame_count=last - first, progress=on_encoder,
        ) as encoder:  # fmt: skip
            _stream_frames(renderer, encoder, first, last, cancel, tracker)
            seconds["rendering"] = time.perf_counter() - t2
            t3 = time.perf_counter()
            tracker.update(Stage.MUXING, 0.0)
            encoder.finish()
            tracker.update(Stage.MUXING, 1.0)
            seconds["muxing"] = time.perf_counter() - t3
    seconds["total"] = time.perf_counter() - t0
    return RenderResult(output, last - first, width, height, settings.fps,
                        (last - first) / settings.fps, seconds)  # fmt: skip


def _stream_frames(
    renderer: FrameRenderer,
    encoder: Encoder,
    first: int,
    last: int,
    cancel: CancelToken,
    tracker: ProgressTracker,
) -> None:
    free: queue.Queue[Frame] = queue.Queue()
    for _ in range(FRAMES_IN_FLIGHT):
        free.put(renderer.new_frame())
    ready: queue.Queue[Frame | None] = queue.Queue(maxsize=FRAMES_IN_FLIGHT)
    failure: list[BaseException] = []

    def writer() -> None:
        try:
            while (frame := ready.get()) is not None:
                encoder.write(frame.data())
                free.put(frame)
        except BaseException as exc:  # handed to the main thread, which raises it
            failure.append(exc)
            free.put(renderer.new_frame())  # unblock the producer

    thread = threading.Thread(target=writer, name="notefall-frame-writer", daemon=True)
    thread.start()
    total = last - first
    try:
        for n, index in enumerate(range(first, last)):
            cancel.raise_if_cancelled()
            frame = free.get()
            if failure:
                break
            renderer.render(index, into=frame)
            ready.put(frame)
            tracker.update(Stage.RENDERING, (n + 1) / total)
    finally:
        # Tell the writer to stop, without blocking on a full queue if it has died.
        while thread.is_alive():
            try:
                ready.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        thread.join()
    if failure:
        raise failure[0]


def render_still(
    source: Path | bytes | Song,
    output: Path,
    settings: RenderSettings,
    at: float,
    *,
    name: str | None = None,
) -> Path:
    """One frame as PNG at ``at`` seconds of video time, from the same engine."""
    check_inputs(settings)
    check_output(Path(output))
    song = load_song(source, name)
    require_notes(song)
    image = still_image(song, settings, at)
    return save_png_atomically(image, Path(output))


def still_image(
    song: Song, settings: RenderSettings, at: float, timeline: Timeline | None = None
) -> Image.Image:
    renderer = FrameRenderer(song, settings, timeline=timeline)
    if not 0 <= at <= renderer.timeline.duration:
        raise InputError(
            f"--at {at:g} is outside the video, which lasts {renderer.timeline.duration:.1f} s.",
            code="invalid_time",
        )
    return renderer.still_image(at)


def save_png_atomically(image: Image.Image, output: Path) -> Path:
    check_output(output)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".partial.png", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="PNG", compress_level=3)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output


OnProgress = Callable[[float], None]
