"""How each (format, codec, preset) becomes FFmpeg output options.

One table (``preset_table``) drives both the argument builder and the docs, so
the documented settings are the ones used.

Choices, and why:

* Colour: every output is tagged BT.709 primaries/transfer/matrix, limited (tv)
  range — on the frames (``setparams``, which encoders copy into the bitstream VUI)
  and on the stream (``-color_*``, which containers copy into ``colr``/Colour).
  RGB input is converted with the BT.709 matrix explicitly; swscale's default is
  BT.601, which shifts hues.
* Keyframes every 2 s: fast seeking in players and editors, segment joins
  need a keyframe only at segment starts (a new file always begins with one).
* Falling-notes video is flat colour on a dark background, so moderate CRFs
  already look clean; the speed presets are chosen so the encoder keeps up with
  the renderer at ``standard``.
* VP9 uses ``-b:v 0 -crf`` (constant quality), ``row-mt`` for threads at any
  resolution; libvpx's alpha encoding needs the alt-ref frames off.
* ProRes is intra-only with a fixed data rate per profile; presets do not change it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import CONTAINER_CODECS, Codec, Format, QualityPreset, RenderSettings

# Container → FFmpeg muxer name (always passed with -f: the temp file's suffix is not
# trusted to pick the muxer).
MUXERS: dict[Format, str] = {Format.MP4: "mp4", Format.WEBM: "webm", Format.MOV: "mov"}

# One MP4/MOV track timescale for every frame rate Notefall offers (24, 25, 30, 50,
# 60 all divide it), so frame timestamps are exact integers in one-pass files, in
# segments and in joined files alike.
MOV_TIMESCALE = 90_000

KEYFRAME_SECONDS = 2

AUDIO_KBPS: dict[QualityPreset, int] = {
    QualityPreset.DRAFT: 128,
    QualityPreset.STANDARD: 192,
    QualityPreset.HIGH: 256,
    QualityPreset.MASTER: 320,
}

COLOR_TAGS = "range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
COLOR_ARGS = [
    "-color_primaries",
    "bt709",
    "-color_trc",
    "bt709",
    "-colorspace",
    "bt709",
    "-color_range",
    "tv",
]


@dataclass(frozen=True, slots=True)
class PresetRow:
    """One line of the docs' preset table; also the source of the FFmpeg options."""

    codec: Codec
    preset: QualityPreset
    encoder: str  # FFmpeg encoder name
    speed: str  # encoder speed setting, as documented
    quality: str  # rate control, as documented
    options: tuple[str, ...]  # the FFmpeg options implementing speed + quality


def _x264(speed: str, crf: int) -> PresetRow:
    return PresetRow(
        Codec.H264,
        QualityPreset.DRAFT,
        "libx264",
        speed,
        f"crf {crf}",
        ("-preset", speed, "-crf", str(crf)),
    )


def _x265(speed: str, crf: int) -> PresetRow:
    return PresetRow(
        Codec.HEVC,
        QualityPreset.DRAFT,
        "libx265",
        speed,
        f"crf {crf}",
        ("-preset", speed, "-crf", str(crf)),
    )


def _vp9(deadline: str, cpu: int, crf: int) -> PresetRow:
    return PresetRow(
        Codec.VP9,
        QualityPreset.DRAFT,
        "libvpx-vp9",
        f"deadline {deadline}, cpu-used {cpu}",
        f"crf {crf}",
        ("-deadline", deadline, "-cpu-used", str(cpu), "-crf", str(crf), "-b:v", "0"),
    )


def _av1(preset: int, crf: int) -> PresetRow:
    return PresetRow(
        Codec.AV1,
        QualityPreset.DRAFT,
        "libsvtav1",
        f"preset {preset}",
        f"crf {crf}",
        ("-preset", str(preset), "-crf", str(crf)),
    )


def _prores(profile: int, name: str) -> PresetRow:
    codec = Codec.PRORES if profile == 3 else Codec.PRORES_4444
    return PresetRow(
        codec,
        QualityPreset.DRAFT,
        "prores_ks",
        f"profile {profile} ({name})",
        "fixed by profile",
        ("-profile:v", str(profile), "-vendor", "apl0"),
    )


_P = QualityPreset
_TABLE: dict[Codec, dict[QualityPreset, PresetRow]] = {
    Codec.H264: {
        _P.DRAFT: _x264("ultrafast", 26),
        # superfast at crf 23 measured sharper (SSIM 0.9983 vs 0.9977 against a
        # near-lossless render) and 28 % faster than veryfast at crf 20 on Notefall's
        # own pictures, for about 1.6× the bitrate (docs/cli.md, "Quality presets").
        _P.STANDARD: _x264("superfast", 23),
        _P.HIGH: _x264("medium", 18),
        _P.MASTER: _x264("slow", 16),
    },
    # x265's CRF scale sits ~4 above x264's for similar quality.
    Codec.HEVC: {
        _P.DRAFT: _x265("ultrafast", 28),
        _P.STANDARD: _x265("veryfast", 24),
        _P.HIGH: _x265("medium", 21),
        _P.MASTER: _x265("slow", 19),
    },
    # realtime deadline for the fast presets: 'good' at any cpu-used is several
    # times slower and would make VP9 the bottleneck.
    Codec.VP9: {
        _P.DRAFT: _vp9("realtime", 8, 38),
        _P.STANDARD: _vp9("realtime", 6, 32),
        _P.HIGH: _vp9("good", 3, 30),
        _P.MASTER: _vp9("good", 1, 26),
    },
    Codec.AV1: {
        _P.DRAFT: _av1(12, 40),
        _P.STANDARD: _av1(10, 34),
        _P.HIGH: _av1(8, 30),
        _P.MASTER: _av1(5, 26),
    },
    Codec.PRORES: {p: _prores(3, "422 HQ") for p in QualityPreset},
    Codec.PRORES_4444: {p: _prores(4, "4444") for p in QualityPreset},
}


def preset_row(codec: Codec, preset: QualityPreset) -> PresetRow:
    row = _TABLE[codec][preset]
    return PresetRow(row.codec, preset, row.encoder, row.speed, row.quality, row.options)


def preset_table() -> list[PresetRow]:
    """Every (codec, preset) row, in codec then preset order — for docs and tests."""
    return [preset_row(c, p) for c in Codec for p in QualityPreset]


def preset_table_markdown() -> str:
    """The preset table as Markdown, including audio bitrates."""
    lines = ["| codec | preset | encoder | speed | quality |", "|---|---|---|---|---|"]
    for r in preset_table():
        lines.append(
            f"| {r.codec.value} | {r.preset.value} | {r.encoder} | {r.speed} | {r.quality} |"
        )
    lines += ["", "| preset | audio (AAC in MP4/MOV, Opus in WebM) |", "|---|---|"]
    lines += [f"| {p.value} | {k} kbit/s |" for p, k in AUDIO_KBPS.items()]
    return "\n".join(lines)


# Pixel formats -----------------------------------------------------------------------------

# Bytes per frame as a multiple of width*height, times 2 (chroma subsampling halves).
_BYTES_X2: dict[str, int] = {
    "gray": 2,
    "yuv420p": 3,
    "nv12": 3,
    "yuva420p": 5,
    "yuv422p": 4,
    "yuv444p": 6,
    "yuva444p": 8,
    "rgb24": 6,
    "bgr24": 6,
    "rgba": 8,
    "bgra": 8,
    "argb": 8,
    "abgr": 8,
    "yuv420p10le": 6,
    "yuv422p10le": 8,
    "yuv444p10le": 12,
    "yuva444p10le": 16,
    "rgb48le": 12,
    "rgba64le": 16,
}
_RGB_INPUTS = {"rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "rgb48le", "rgba64le"}


def frame_bytes(pix_fmt: str, width: int, height: int) -> int:
    """Size of one raw frame; ``ValueError`` for formats the encoder does not take."""
    if pix_fmt not in _BYTES_X2:
        raise ValueError(
            f"unsupported input pixel format {pix_fmt!r}; use one of {sorted(_BYTES_X2)}"
        )
    return width * height * _BYTES_X2[pix_fmt] // 2


def output_pix_fmt(codec: Codec, alpha: bool) -> str:
    """The pixel format stored in the file."""
    if codec == Codec.PRORES_4444:
        return "yuva444p10le" if alpha else "yuv444p10le"
    if codec == Codec.PRORES:
        return "yuv422p10le"
    if alpha:
        if codec != Codec.VP9:
            raise ValueError(f"{codec.value} cannot carry alpha")
        return "yuva420p"
    return "yuv420p"


def native_input_pix_fmt(settings: RenderSettings) -> str:
    """The format the engine should hand the encoder: no conversion in FFmpeg."""
    return "yuva420p" if settings.has_alpha else "yuv420p"


def video_filter(input_pix_fmt: str, out_pix_fmt: str) -> str:
    """Conversion (only if needed) and BT.709 tagging of every frame."""
    chain = []
    if input_pix_fmt in _RGB_INPUTS:
        # RGB is full range by definition; the output is limited-range BT.709.
        chain.append("scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd")
    else:
        # Describe the incoming YUV so a format change (e.g. 4:2:0 → ProRes 4:2:2)
        # does not reinterpret it as BT.601 or full range.
        chain.append(f"setparams={COLOR_TAGS}")
    if input_pix_fmt != out_pix_fmt:
        chain.append(f"format={out_pix_fmt}")
    chain.append(f"setparams={COLOR_TAGS}")
    return ",".join(chain)


# Argument builders -------------------------------------------------------------------------


def video_args(
    codec: Codec, preset: QualityPreset, fps: int, *, alpha: bool, fmt: Format
) -> list[str]:
    """Encoder options for the video stream (no filter, no muxer options)."""
    row = preset_row(codec, preset)
    args = ["-c:v", row.encoder, *row.options, "-pix_fmt", output_pix_fmt(codec, alpha)]
    gop = str(KEYFRAME_SECONDS * fps)
    if codec == Codec.H264:
        args += ["-g", gop]
    elif codec == Codec.HEVC:
        args += ["-g", gop, "-x265-params", "log-level=error"]
        if fmt in (Format.MP4, Format.MOV):
            args += ["-tag:v", "hvc1"]  # Apple players refuse the default hev1
    elif codec == Codec.VP9:
        args += ["-g", gop, "-row-mt", "1", "-tile-columns", "2", "-frame-parallel", "0"]
        if alpha:
            args += ["-auto-alt-ref", "0"]  # libvpx cannot encode alpha with alt-ref frames
    elif codec == Codec.AV1:
        args += ["-g", gop]
    return args + COLOR_ARGS


def audio_args(fmt: Format, preset: QualityPreset, bitrate_kbps: int | None = None) -> list[str]:
    kbps = bitrate_kbps or AUDIO_KBPS[preset]
    if fmt == Format.WEBM:
        return ["-c:a", "libopus", "-b:a", f"{kbps}k", "-ar", "48000"]  # Opus runs at 48 kHz
    return ["-c:a", "aac", "-b:a", f"{kbps}k"]


def muxer_args(fmt: Format, *, segment: bool = False) -> list[str]:
    """``-f`` and container options. Segments skip faststart: they are re-muxed anyway."""
    args = ["-f", MUXERS[fmt]]
    if fmt in (Format.MP4, Format.MOV):
        args += ["-video_track_timescale", str(MOV_TIMESCALE)]
        if not segment:
            args += ["-movflags", "+faststart"]
    return args


def check_combination(fmt: Format, codec: Codec, alpha: bool) -> None:
    """``ValueError`` if the container cannot hold the codec, or the codec alpha."""
    if codec not in CONTAINER_CODECS[fmt]:
        raise ValueError(f"{fmt.value} cannot hold {codec.value}")
    output_pix_fmt(codec, alpha)
