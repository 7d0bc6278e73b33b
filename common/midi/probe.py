"""``describe``/``format_probe``: a JSON-ready summary of a Song for ``notefall probe``."""

from __future__ import annotations

from typing import Any

from ..song import Song, note_name

# Long tempo maps (some files change tempo every beat) are summarised, not dumped.
MAX_LISTED_CHANGES = 100


def describe(song: Song) -> dict[str, Any]:
    """Summarise ``song`` with plain JSON types only (str, int, float, list, dict, None)."""
    key_range: dict[str, Any] | None = None
    pitch_range = song.pitch_range
    if pitch_range is not None:
        low, high = pitch_range
        key_range = {
            "low": low,
            "high": high,
            "low_name": note_name(low, ascii_only=True),
            "high_name": note_name(high, ascii_only=True),
        }
    tempo = [{"time": round(t.time, 6), "bpm": round(t.bpm, 3)} for t in song.tempo_changes]
    signatures = [
        {"time": round(s.time, 6), "numerator": s.numerator, "denominator": s.denominator}
        for s in song.time_signatures
    ]
    return {
        "title": song.title,
        "midi_type": song.midi_type,
        "duration": round(float(song.duration), 3),
        "note_count": song.note_count,
        "drum_note_count": song.note_count - int(song.pitched_notes().shape[0]),
        "key_range": key_range,
        "pedal_count": int(song.pedals.shape[0]),
        "tracks": [
            {
                "index": t.index,
                "name": t.name,
                "instrument": t.instrument,
                "program": t.program,
                "channels": [c + 1 for c in t.channels],  # 1-based, as musicians count
                "note_count": t.note_count,
                "is_drums": t.is_drums,
            }
            for t in song.tracks
        ],
        "tempo_change_count": len(tempo),
        "tempo_changes": tempo[:MAX_LISTED_CHANGES],
        "time_signature_count": len(signatures),
        "time_signatures": signatures[:MAX_LISTED_CHANGES],
        "warnings": list(song.warnings),
    }


def _clock(seconds: float) -> str:
    total = round(seconds, 1)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:04.1f}"
    return f"{minutes}:{secs:04.1f}"


def format_probe(summary: dict[str, Any]) -> str:
    """Readable multi-line text of a ``describe`` summary."""
    lines = [
        f"Title:     {summary['title']}",
        f"Type:      MIDI type {summary['midi_type']}",
        f"Duration:  {_clock(summary['duration'])} ({summary['duration']:.3f} s)",
        f"Notes:     {summary['note_count']:,}"
        + (f" ({summary['drum_note_count']:,} drum hits)" if summary["drum_note_count"] else ""),
    ]
    key_range = summary["key_range"]
    if key_range:
        lines.append(
            f"Key range: {key_range['low_name']}–{key_range['high_name']} "
            f"(MIDI {key_range['low']}–{key_range['high']})"
        )
    else:
        lines.append("Key range: none (no pitched notes)")
    lines.append(f"Pedal:     {summary['pedal_count']:,} sustain-pedal presses")

    tempos = summary["tempo_changes"]
    if tempos:
        first = f"{tempos[0]['bpm']:g} bpm"
        more = summary["tempo_change_count"] - 1
        lines.append(f"Tempo:     {first}" + (f" (+{more:,} changes)" if more > 0 else ""))
    signatures = summary["time_signatures"]
    if signatures:
        sig = signatures[0]
        more = summary["time_signature_count"] - 1
        lines.append(
            f"Meter:     {sig['numerator']}/{sig['denominator']}"
            + (f" (+{more:,} changes)" if more > 0 else "")
        )

    lines.append(f"Tracks:    {len(summary['tracks'])}")
    for track in summary["tracks"]:
        channels = ",".join(str(c) for c in track["channels"]) or "-"
        label = track["name"] or "(unnamed)"
        instrument = track["instrument"] or "-"
        drums = " [drums]" if track["is_drums"] else ""
        lines.append(
            f"  {track['index']:>3}  {label[:32]:<32}  {instrument[:28]:<28}  "
            f"ch {channels:<8}  {track['note_count']:>7,} notes{drums}"
        )
    if summary["warnings"]:
        lines.append("Warnings:")
        lines.extend(f"  - {w}" for w in summary["warnings"])
    return "\n".join(lines)
