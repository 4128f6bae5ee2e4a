import math

import pandas as pd
import pytest

from warmstart.cli import main
from warmstart.errors import WarmstartError


@pytest.fixture(scope="module")
def random_twin(pretrained, tmp_path_factory):
    """The pretrained fixture's architecture and tokenizer with random weights: a worse candidate."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = tmp_path_factory.mktemp("twin")
    AutoModel.from_config(AutoConfig.from_pretrained(pretrained)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(folder)
    return folder


def test_rank_scores_every_candidate_and_orders_by_logme(pretrained, random_twin, sentiment_csv, tmp_path, capsys):
    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"data:\n  path: {sentiment_csv}\n  labels: 60\ntrain:\n  max_length: 32\n  precision: fp32\n")
    out = tmp_path / "rank.csv"
    assert main(["rank", "--task", str(recipe), "--candidates", str(pretrained), str(random_twin),
                 "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["rank"]) == [1, 2] and set(table["candidate"]) == {str(pretrained), str(random_twin)}
    assert list(table["logme"]) == sorted(table["logme"], reverse=True)
    for col in ("logme", "hscore", "knn_accuracy", "probe_accuracy", "seconds"):
        assert all(math.isfinite(v) for v in table[col])
    assert all(0 <= v <= 1 for v in table["knn_accuracy"]) and all(0 <= v <= 1 for v in table["probe_accuracy"])
    assert "ranked by logme" in capsys.readouterr().out
    again = pd.read_csv(out) if main(["rank", "--task", str(recipe), "--candidates", str(pretrained),
                                       "--output", str(out)]) == 0 else None
    assert again["logme"][0] == table.set_index("candidate")["logme"][str(pretrained)]  # deterministic


def test_rank_refuses_tasks_it_cannot_score_and_missing_candidates(pretrained, sentiment_csv, tmp_path):
    from warmstart.rank import run_rank

    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"task: summarization\ndata:\n  path: {sentiment_csv}\n")
    with pytest.raises(WarmstartError, match="task 'summarization' is not supported yet"):
        run_rank(str(recipe), [str(pretrained)])
    recipe.write_text(f"data:\n  path: {sentiment_csv}\n")
    with pytest.raises(WarmstartError, match="not found"):
        run_rank(str(recipe), [str(tmp_path / "nowhere")])
