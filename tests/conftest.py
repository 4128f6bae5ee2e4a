"""Tiny fixtures generated on the fly: a multi-document corpus, a sentiment table, a pretrained checkpoint."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from warmstart.config import PretrainConfig, load_config

POSITIVE = ["good", "great", "lovely", "brilliant", "moving", "funny", "charming", "superb"]
NEGATIVE = ["bad", "dull", "awful", "boring", "tedious", "clumsy", "weak", "messy"]
FILLER = ["the", "film", "story", "actor", "scene", "plot", "was", "is", "a", "very", "and", "this", "movie",
          "director", "music", "ending", "quite", "really", "of", "cast"]


def requires(module: str, extra: str):
    """Skip where an optional extra is not installed (the GPU machine has neither setfit nor the trackers; CI's
    `make setup` installs them all, so there these tests run). `find_spec`, not an import: setfit imports only
    beside warmstart's stand-in for `evaluate`, which the tests themselves check."""
    import importlib.util

    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} is not installed here (pip install 'warmstart[{extra}]')")


def sentence(rng: random.Random, words: list[str]) -> str:
    return " ".join(rng.choice(FILLER + words) for _ in range(rng.randint(5, 12))) + "."


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    """60 documents of 2-6 segments each, separated by blank lines."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    docs = ["\n".join(sentence(rng, POSITIVE + NEGATIVE) for _ in range(rng.randint(2, 6))) for _ in range(60)]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def sentiment_csv(tmp_path_factory) -> Path:
    rng = random.Random(1)
    rows = []
    for split, n in (("train", 120), ("validation", 40), ("test", 40)):
        for i in range(n):
            label = i % 2
            words = POSITIVE if label else NEGATIVE
            rows.append({"text": sentence(rng, words * 3), "label": label, "split": split})
    path = tmp_path_factory.mktemp("sentiment") / "sentiment.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def tiny_pretrain_config(corpus: Path, out: Path, cache: Path, *overrides: str) -> PretrainConfig:
    return load_config(PretrainConfig, None, [
        f"output_dir={out}", f"corpus.sources=[{corpus}]", f"corpus.cache_dir={cache}",
        "corpus.validation_fraction=0.1", "tokenizer.vocab_size=200", "tokenizer.min_frequency=1",
        "model.num_layers=2", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
        "model.max_seq_len=32", "train.batch_size=8", "train.max_steps=6", "train.log_every=2",
        "train.eval_every=3", "train.precision=fp32", "train.num_threads=1", *overrides])


@pytest.fixture(scope="session")
def pretrained(corpus_file, tmp_path_factory) -> Path:
    """A tiny BERT pretrained for a few steps with MLM + NSP."""
    from warmstart.pretraining.text import run_pretrain

    root = tmp_path_factory.mktemp("pretrained")
    return run_pretrain(tiny_pretrain_config(corpus_file, root / "model", root / "cache"))


def write_idx(path, array, compress: bool = True) -> None:
    """An IDX file (MNIST's format), gzipped by default; the file is closed before returning."""
    import gzip
    import struct

    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.asarray(array).astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:  # closed: Python 3.12 no longer flushes at exit
        f.write(data)


@pytest.fixture(scope="session")
def shapes_idx(tmp_path_factory):
    """3 classes of 16x16 images (horizontal bar, vertical bar, blob) with noise: 90 train, 30 test."""
    import numpy as np

    rng = np.random.default_rng(0)

    def make(n):
        x = rng.integers(0, 60, (n, 16, 16))
        y = np.arange(n) % 3
        for i, c in enumerate(y):
            o = rng.integers(3, 10)
            if c == 0:
                x[i, o:o + 3, 2:14] = 230
            elif c == 1:
                x[i, 2:14, o:o + 3] = 230
            else:
                x[i, o:o + 5, o:o + 5] = 230
        return x, y

    root = tmp_path_factory.mktemp("shapes")
    for split, n in (("train", 90), ("t10k", 30)):
        x, y = make(n)
        write_idx(root / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture
def browser():
    """Headless Chromium (Debian's chromium + chromium-driver, which .ci/run installs) that keeps the console
    log; CI without it fails, elsewhere the test is skipped."""
    import os
    import shutil

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromedriver (apt: chromium chromium-driver; see .ci/run)")
        pytest.skip("chromium / chromedriver not installed (apt install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,2400"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()
