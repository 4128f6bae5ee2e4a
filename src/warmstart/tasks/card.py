"""The model card (README.md) of a fine-tuned text classifier: how to use it, with and without warmstart.

Why a card says more than "load it with transformers": a head fitted on pooled features (`train.pooling` mean, or
a BGE's [CLS] state, which SetFit, `auto` and MiniLM fine-tuning use) is not what
`AutoModelForSequenceClassification.forward` or `pipeline("text-classification")` computes: BERT's head reads its
pooler. Loaded that way the folder predicts something else, silently (seen: an `auto` model on Rotten Tomatoes
called "this is great" negative through the pipeline, positive through `warmstart predict`). The card gives the
dozen lines of plain transformers that pool as the fit did (tests/tasks/test_card.py runs them against
`classification.logits_of`).
"""

from __future__ import annotations

# The features the head reads, as plain-transformers lines, per `train.pooling`
_POOL_LINES = {
    "mean": ("mask = batch[\"attention_mask\"].unsqueeze(-1).to(hidden.dtype)\n"
             "    features = (hidden * mask).sum(1) / mask.sum(1)  # mean over the text's tokens"),
    "cls_token": "features = hidden[:, 0]  # the [CLS] state itself",
}


def use_snippet(pooling: str, max_length: int, pairs: bool = False) -> str:
    """Python that reproduces `warmstart predict`'s probabilities with transformers alone (in fp32: `predict` may
    run bf16, within ~1e-3 on MiniLM). `pooling`: mean | cls_token; `pairs`: a sentence-pair classifier."""
    texts = ('texts = ["first text", "second text"]\npairs = ["its pair", "the second\'s pair"]\n'
             if pairs else 'texts = ["first text", "second text"]\n')
    return f"""```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

folder = "THIS_FOLDER"
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
{texts}batch = tokenizer(texts, {"pairs, " if pairs else ""}padding=True, truncation=True, max_length={max_length}, return_tensors="pt")
with torch.no_grad():
    hidden = model.base_model(**batch).last_hidden_state  # (B, T, H)
    {_POOL_LINES[pooling]}
    head = model.classifier  # BERT's is one linear layer; RoBERTa-style heads read position 0 of (B, 1, H)
    logits = head(features) if isinstance(head, torch.nn.Linear) else head(features[:, None])
probs = logits.softmax(-1)  # (B, C), columns as model.config.id2label
```"""


def usage(pooling: str, max_length: int, pairs: bool = False) -> str:
    """The card's "Use" section for a classifier fitted with `pooling` (cls | mean | cls_token)."""
    if pooling == "cls":  # the standard head: what transformers computes is what warmstart predicts
        return ("`warmstart predict THIS_FOLDER FILE` (classes and probabilities), `transformers.pipeline(\"text-"
                "classification\", model=THIS_FOLDER)`, or `AutoModelForSequenceClassification`: the same predictions.")
    pooled = "mean-pooled features" if pooling == "mean" else "the [CLS] state as its features"
    return (f"`warmstart predict THIS_FOLDER FILE` (classes and probabilities), or, with transformers alone:\n\n"
            f"{use_snippet(pooling, max_length, pairs)}\n\n"
            f"The head reads {pooled}; `pipeline(\"text-classification\")` and "
            "`AutoModelForSequenceClassification(...)(**batch).logits` do not pool this way (BERT's head reads its "
            "pooler) and may predict something else.")


def finetune_card(metrics: dict, classes: list[str], init: str, pooling: str, max_length: int,
                  pairs: bool = False) -> str:
    """README.md of a `warmstart finetune` classification folder. `metrics`: the run's metrics.json; `pairs`: it
    classifies sentence pairs (`data.text_pair_column`)."""
    tested = (f"- Test split ({metrics['test_size']} rows, never used to fit or choose): accuracy "
              f"{100 * metrics['accuracy']:.1f}%, macro-F1 {100 * metrics['macro_f1']:.1f}%.\n"
              if metrics.get("test_size") else "- No test rows: nothing was scored.\n")
    return f"""---
library_name: transformers
tags: [warmstart, text-classification]
---
# Text classifier ({metrics.get('strategy', 'full')}, warmstart)

Fine-tuned by `warmstart finetune` from `{init}` ({len(classes)} classes: {', '.join(map(str, classes))}).

## Protocol
{metrics.get('protocol', '')}

## Metrics
{tested}
## Use
{usage(pooling, max_length, pairs)}

The run's settings: `warmstart_config.yaml`; its figures: `metrics.json`.
"""
