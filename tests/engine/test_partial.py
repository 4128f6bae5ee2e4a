"""A long job's finished pieces, kept between runs (engine/partial.py): rank's candidates, predict's chunks."""

import os

from warmstart.engine.partial import candidate_key, data_paths, finished, partial_path, record


def test_rows_are_read_back_and_a_line_cut_by_a_kill_is_skipped(tmp_path):
    path = partial_path(tmp_path / "rank.csv")
    assert path.name == ".rank.csv.partial.jsonl" and finished(path) == {}
    assert record(path, "a", {"knn": 0.5}) and record(path, "b", {"knn": 0.25})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "c", "row": {"kn')  # the kill came mid-line
    assert finished(path) == {"a": {"knn": 0.5}, "b": {"knn": 0.25}}


def test_a_folder_that_cannot_be_written_keeps_nothing_and_stops_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    assert record(tmp_path / "file" / ".rank.csv.partial.jsonl", "a", {}) is False


def test_the_key_follows_the_settings_and_every_file_of_the_candidate(tmp_path):
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "w.bin").write_bytes(b"12")
    key = candidate_key({"max_length": 32}, folder)
    assert key == candidate_key({"max_length": 32}, folder)
    assert key != candidate_key({"max_length": 64}, folder)
    st = (folder / "sub" / "w.bin").stat()
    os.utime(folder / "sub" / "w.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # retrained in place
    assert key != candidate_key({"max_length": 32}, folder)
    assert candidate_key({}, "org/name") == candidate_key({}, "org/name")  # a hub id stands for itself


def test_data_paths_are_the_config_strings_on_disk(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\n")
    data = {"path": str(tmp_path / "t.csv"), "text_column": "text", "sources": [str(tmp_path), "nowhere"],
            "labels": 100, "split_column": None}
    assert data_paths(data) == [str(tmp_path / "t.csv"), str(tmp_path)]


def test_kept_chunks_are_read_back_not_computed_and_nothing_is_kept_without_a_path(tmp_path):
    import numpy as np
    import pytest

    from warmstart.engine.partial import KeptChunks

    calls, told = [], []

    def compute(start, stop):
        calls.append(start)
        return np.arange(start, stop, dtype=np.float32)[:, None] / 3  # float32: exact through JSON

    path = partial_path(tmp_path / "out.csv")
    first = KeptChunks(path, "k")(7, 3, compute)
    assert calls == [0, 3, 6] and len(finished(path)) == 3
    calls.clear()
    again = KeptChunks(path, "k")(7, 3, compute, told.append)
    assert calls == [] and told == [3, 3, 1]
    assert np.array_equal(np.asarray(again, dtype=np.float32), np.asarray(first))
    KeptChunks(path, "other")  # another input's run: what was kept does not apply, and goes
    assert not path.exists()
    assert KeptChunks(None)(4, 3, compute) and not path.exists()
    with pytest.raises(ValueError, match="a chunk of 3 items gave 2 results"):
        KeptChunks(None)(3, 3, lambda a, b: [0, 1])
