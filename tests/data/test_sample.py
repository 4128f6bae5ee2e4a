"""data/sample.py's balanced draw: N spread evenly over the classes (SetFit's 'N per class')."""

import numpy as np
import pytest

from warmstart.data.sample import draw_balanced
from warmstart.errors import WarmstartError


@pytest.mark.parametrize("n, want", [(16, [8, 8]), (7, [4, 3]), (None, [70, 30])])
def test_balanced_draw_spreads_the_labels_evenly(n, want):
    y = np.array([0] * 70 + [1] * 30)
    rows = draw_balanced(y, n, seed=3)
    assert np.bincount(y[rows]).tolist() == want
    assert len(set(rows.tolist())) == len(rows) and (np.diff(rows) > 0).all()
    assert (rows == draw_balanced(y, n, seed=3)).all()


def test_balanced_draw_varies_with_the_seed_and_refuses_too_few():
    y = np.array([0, 1] * 50)
    assert not (draw_balanced(y, 10, 0) == draw_balanced(y, 10, 1)).all()
    with pytest.raises(WarmstartError, match="fewer than the 2 classes"):
        draw_balanced(y, 1, 0)
