"""A `warmstart predict` killed mid-file resumes where it stopped (engine/partial.KeptChunks), for any task."""

from __future__ import annotations

from pathlib import Path

import pytest

from warmstart.engine.partial import KeptChunks, partial_path


class Killed(BaseException):
    """A kill mid-run (BaseException: no `except Exception` in the way swallows it)."""


def stopped_then_resumed(checkpoint: Path, src: Path, out: Path, monkeypatch, size: int = 2) -> bytes:
    """Predict `src` into `out` in chunks of `size` items: once whole (the reference), once killed after its first
    chunk, once more resumed. Asserts the resumed file is the reference byte for byte, that only the chunks the
    killed run had not finished were computed, and that the kept chunks go once the file is written. -> the file"""
    from warmstart.prediction import run_predict

    original = KeptChunks.__call__
    computed: list[tuple[int, int]] = []
    kill_after: list[int | None] = [None]

    def small_chunks(self, total, _size, compute, skipped=lambda n: None):
        def counted(start: int, stop: int):
            if kill_after[0] is not None and len(computed) >= kill_after[0]:
                raise Killed
            computed.append((start, stop))
            return compute(start, stop)

        return original(self, total, size, counted, skipped)

    monkeypatch.setattr(KeptChunks, "__call__", small_chunks)
    reference = Path(run_predict(str(checkpoint), str(src), str(out))).read_bytes()
    chunks = len(computed)
    assert chunks >= 2, f"{src} gave {chunks} chunk of {size}: too few to stop between"
    assert not partial_path(out).exists(), "a finished run leaves no kept chunks behind"
    out.unlink()
    computed.clear()
    kill_after[0] = 1
    with pytest.raises(Killed):
        run_predict(str(checkpoint), str(src), str(out))
    assert not out.exists() and partial_path(out).is_file()  # nothing half-written; the first chunk kept
    computed.clear()
    kill_after[0] = None
    resumed = Path(run_predict(str(checkpoint), str(src), str(out))).read_bytes()
    assert len(computed) == chunks - 1 and computed[0][0] == size, computed  # the first chunk read back
    assert resumed == reference
    assert not partial_path(out).exists()
    return resumed
