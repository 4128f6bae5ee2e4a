"""Property tests: whatever a user types or feeds, the config and data parsers either work or raise the
documented one-line WarmstartError, never a stack trace from deep inside a library."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmstart.config import FinetuneConfig, PretrainConfig, load_config
from warmstart.data.sources import load_documents, read_table
from warmstart.errors import WarmstartError

KEYS = ["output_dir", "train.lr", "train.max_steps", "train.precision", "model.num_layers", "corpus.sources",
        "objective.nsp", "tokenizer.vocab_size", "train", "model.hidden_size.x", "nope", "train.lrr", ""]
VALUES = st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=True), st.booleans(),
                   st.sampled_from(["[a, b]", "{x: 1}", "null", "3e-4", "- a", "[", "true", "0x10", "'"]))


def _one_line(e: WarmstartError) -> None:
    assert str(e) and "\n" not in str(e)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=12), VALUES), max_size=4),
       st.sampled_from([PretrainConfig, FinetuneConfig]))
def test_overrides_give_a_config_or_one_line_error(pairs, cls):
    try:
        load_config(cls, None, [f"{k}={v}" for k, v in pairs])
    except WarmstartError as e:
        _one_line(e)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.sampled_from([".txt", ".csv", ".jsonl", ".tsv", ".gz", ".yaml"]))
def test_arbitrary_bytes_give_documents_or_one_line_error(tmp_path, data, suffix):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    for parse in (lambda: load_documents([str(path)]), lambda: read_table(str(path)),
                  lambda: load_config(PretrainConfig, path)):
        try:
            parse()
        except WarmstartError as e:
            _one_line(e)


@pytest.mark.parametrize("text", ["a,b\n1", "text\n\"unterminated", "{]", "\ufeffx", "\x00"])
def test_known_nasty_inputs(tmp_path, text):
    for suffix in (".csv", ".jsonl"):
        path = tmp_path / f"t{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            load_documents([str(path)])
        except WarmstartError as e:
            _one_line(e)
