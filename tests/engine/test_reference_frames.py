import numpy as np
import pytest
from PIL import Image

from tests.engine.reference import CASES, HERE, render_case


@pytest.mark.parametrize("case", sorted(CASES))
def test_frame_matches_its_approved_reference(case):
    expected = np.asarray(Image.open(HERE / f"{case}.png").convert("RGB"), dtype=np.int16)
    actual = np.asarray(render_case(case).convert("RGB"), dtype=np.int16)
    assert actual.shape == expected.shape
    diff = np.abs(actual - expected).max(axis=2)
    # Tolerate rounding differences across NumPy/Pillow builds, not a changed picture.
    assert diff.mean() < 1.0
    assert (diff > 24).mean() < 0.002
