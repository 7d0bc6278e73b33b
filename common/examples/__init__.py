"""MIDI files bundled with Notefall.

``EXAMPLE_MIDI`` is the demo song: J. S. Bach's Prelude in C major, BWV 846, written by
``python -m notefall.common.examples.make_examples``.
"""

from pathlib import Path

EXAMPLE_MIDI = Path(__file__).with_name("prelude_in_c.mid")

__all__ = ["EXAMPLE_MIDI"]
