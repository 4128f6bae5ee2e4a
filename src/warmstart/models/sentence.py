"""The sentence-transformers side: the setfit library (the rival every few-label text comparison carries), and
the sentence encoder that TSDAE / SimCSE adapt (a SentenceTransformer over any HF encoder folder).

setfit 1.2.0 imports `evaluate` when it loads (only its `Trainer.evaluate` uses it, to fetch a metric script
from the hub). This project does not install `evaluate` (a hub fetch at run time), so setfit is installed
without its dependencies (Makefile) and, when `evaluate` is absent, a stand-in module takes its name whose
`load` refuses in one line; warmstart never calls `Trainer.evaluate` (it scores predictions itself).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

from warmstart.errors import WarmstartError

SETFIT_VERSION = "1.2.0"  # the pin in pyproject.toml's `setfit` extra and the Makefile


def _evaluate_stand_in() -> types.ModuleType:
    module = types.ModuleType("evaluate")

    def load(*args: Any, **kwargs: Any) -> None:
        raise WarmstartError("evaluate.load: not available here (it fetches metric scripts from the hub); "
                             "warmstart scores SetFit's predictions itself")

    module.load = load  # type: ignore[attr-defined]
    module.__warmstart_stand_in__ = True  # type: ignore[attr-defined]
    return module


def import_setfit() -> types.ModuleType:
    """The setfit package, importable without `evaluate`. One line when it is not installed."""
    if importlib.util.find_spec("setfit") is None or importlib.util.find_spec("sentence_transformers") is None:
        raise WarmstartError(f"the SetFit baseline needs setfit=={SETFIT_VERSION} and sentence-transformers: "
                             f"pip install sentence-transformers && pip install --no-deps setfit=={SETFIT_VERSION} "
                             "(make setup does both)")
    if "evaluate" not in sys.modules and importlib.util.find_spec("evaluate") is None:
        sys.modules["evaluate"] = _evaluate_stand_in()
    return importlib.import_module("setfit")


def load_setfit_model(folder: str | Path, multi_target_strategy: str | None = None,
                      head_params: dict | None = None) -> Any:
    """`setfit.SetFitModel` over a local sentence-transformers (or plain HF encoder) folder, checked as every
    checkpoint warmstart reads (engine/checkpoint.require_weights: safetensors only, no checkpoint code, no pickled
    head), offline; the head is always a fresh one (`multi_target_strategy` "one-vs-rest": a head per label;
    `head_params`: its LogisticRegression's keywords)."""
    from warmstart.engine.checkpoint import require_weights

    setfit = import_setfit()
    checked = require_weights(folder)
    if (checked / "model_head.pkl").exists():  # setfit would unpickle it (joblib): code that runs on load
        raise WarmstartError(f"{checked}: holds a pickled SetFit head (model_head.pkl), which warmstart does not "
                             "load; give the sentence-transformers body without it")
    return setfit.SetFitModel.from_pretrained(str(checked), local_files_only=True, trust_remote_code=False,
                                              multi_target_strategy=multi_target_strategy, head_params=head_params or {})


# ---------------------------------------------------------------- the pooling a folder was trained with
SENTENCE_POOLINGS = ("cls", "mean")  # the sentence-transformers modes warmstart has (not max, last token, ...)


def folder_pooling(folder: str | Path) -> str | None:
    """The pooling a sentence-transformers folder's embeddings are made with (its modules.json names a Pooling
    module; that module's config.json says which), as warmstart names it: "mean" or "cls". None for a plain HF
    folder (no modules.json, or no Pooling module) or a pooling warmstart does not have (max, last token, several
    at once). Reads both config forms: sentence-transformers 6's `pooling_mode` and the older
    `pooling_mode_*_tokens` booleans. A modules.json or pooling config that is not JSON is one line naming it."""
    import json

    def read(path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WarmstartError(f"{path}: unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                 "fix or remove it, or set the pooling (cls | mean) yourself") from None

    modules_file = Path(folder) / "modules.json"
    if not modules_file.is_file():
        return None
    modules = read(modules_file)
    pooling = [m for m in modules if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling")] \
        if isinstance(modules, list) else []
    config_file = Path(folder) / str(pooling[0].get("path", "")) / "config.json" if pooling else None
    if config_file is None or not config_file.is_file():
        return None
    config = read(config_file)
    if not isinstance(config, dict):
        return None
    mode = config.get("pooling_mode")
    if mode is None:  # the older form: one boolean per mode
        legacy = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                  "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                  "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
        on = [name for key, name in legacy.items() if config.get(key)]
        mode = on[0] if len(on) == 1 else None
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    return mode if mode in SENTENCE_POOLINGS else None


def own_pooling(folder: str | Path, otherwise: str) -> str:
    """The fine-tuning pooling (`train.pooling`'s names) that makes the features `folder` was trained to embed
    with: `mean`, or `cls_token` (the [CLS] state itself) for a [CLS]-pooled sentence-transformers folder; for a
    folder that says none, `otherwise`."""
    return {"mean": "mean", "cls": "cls_token"}.get(folder_pooling(folder) or "", otherwise)


# ---------------------------------------------------------------- adapting a sentence encoder (TSDAE, SimCSE)
def load_sentence_encoder(folder: str | Path, pooling: str = "mean", max_seq_len: int = 128,
                          trust_pickled: bool = False) -> Any:
    """A `SentenceTransformer` of two modules, the folder's encoder (any HF encoder, checked as every checkpoint:
    engine/checkpoint.require_weights, no checkpoint code) and a `pooling` (mean | cls) layer, on the CPU (the
    caller places it). Its `transformers_model` is the encoder that is written back as an HF folder."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the modules (the old path warns); 5.x has only the old one
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    from warmstart.engine.checkpoint import require_weights

    checked = str(require_weights(folder, trust_pickled))
    no_code = {"trust_remote_code": False}
    try:
        body = models.Transformer(checked, max_seq_length=max_seq_len, model_kwargs=dict(no_code),
                                  config_kwargs=dict(no_code), processor_kwargs=dict(no_code))
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarmstartError(f"{checked}: cannot load it as a sentence encoder ({first})") from None
    dim = body.model.config.hidden_size
    return SentenceTransformer(modules=[body, models.Pooling(dim, pooling)], device="cpu")


def tsdae_loss(encoder: Any) -> Any:
    """sentence-transformers' `DenoisingAutoEncoderLoss` over `encoder` (load_sentence_encoder), the decoder
    built from the same folder as its causal-LM class with cross-attention, its weights tied to the encoder's
    (the paper's setting). A family without a causal-LM class (DeBERTa, DistilBERT) is refused in one line."""
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    try:
        return DenoisingAutoEncoderLoss(encoder, tie_encoder_decoder=True)
    except (ValueError, AssertionError, KeyError) as e:
        kind = encoder.transformers_model.config.model_type
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarmstartError(f"objective.name=tsdae: a {kind} encoder cannot be its own decoder ({first}); "
                             "use objective.name=simcse or mlm") from None


def write_sentence_layout(folder: Path, init: str | Path, pooling: str, max_seq_len: int, dim: int) -> None:
    """What `SentenceTransformer(folder)` reads beside the HF files: the encoder at the root, then pooling, then
    a Normalize layer when the init had one (MiniLM does): the adapted folder loads both ways."""
    import json

    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    source = Path(init) / "modules.json"
    if source.is_file() and "Normalize" in source.read_text(encoding="utf-8"):
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim, "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}, indent=2), encoding="utf-8")
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_len,
                                                                  "do_lower_case": False}, indent=2),
                                                      encoding="utf-8")
