import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from notefall.common.engine.index import IntervalIndex

spans = st.lists(
    st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0.001, 30, allow_nan=False)),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(spans, st.floats(-5, 120, allow_nan=False), st.floats(0, 20, allow_nan=False))
def test_overlapping_finds_exactly_the_intervals_a_scan_finds(items, t0, width):
    starts = np.array([a for a, _ in items], dtype=np.float64)
    ends = np.array([a + d for a, d in items], dtype=np.float64)
    index = IntervalIndex(starts, ends)
    t1 = t0 + width
    expected = {i for i in range(len(items)) if starts[i] < t1 and ends[i] > t0}
    found = index.overlapping(t0, t1).tolist()
    assert set(found) == expected
    assert len(found) == len(set(found))
    assert [starts[i] for i in found] == sorted(starts[i] for i in found)
