"""The model card (README.md) of a fine-tuned text or token classifier: how to use it, with and without warmstart.

Why a card says more than "load it with transformers": a head fitted on pooled features (`train.pooling` mean, or
a BGE's [CLS] state, which SetFit, `auto` and MiniLM fine-tuning use) is not what
`AutoModelForSequenceClassification.forward` or `pipeline("text-classification")` computes: BERT's head reads its
pooler. Loaded that way the folder predicts something else, silently (seen: an `auto` model on Rotten Tomatoes
called "this is great" negative through the pipeline, positive through `warmstart predict`). The card gives the
dozen lines of plain transformers that pool as the fit did (tests/tasks/test_card.py runs them against
`classification.logits_of`).
"""

from __future__ import annotations

from warmstart.tasks.tag_schemes import LAST, entity_scheme

# The features the head reads, as plain-transformers lines, per `train.pooling`
_POOL_LINES = {
    "mean": ("mask = batch[\"attention_mask\"].unsqueeze(-1).to(hidden.dtype)\n"
             "    features = (hidden * mask).sum(1) / mask.sum(1)  # mean over the text's tokens"),
    "cls_token": "features = hidden[:, 0]  # the [CLS] state itself",
}


def page(tags: str, title: str, intro: str, tested: str, use: str, metrics: dict, front: str = "") -> str:
    """A card's README.md: front matter (`tags` after warmstart's; `front`, more lines of it), the title with the
    run's strategy (a `title` ending in a comma continues inside the brackets), what the model was fine-tuned from
    (`intro`), the protocol, the test figures (`tested`: lines, each ending in a newline) and how to use it."""
    strategy = f"{metrics.get('strategy', 'full')}, warmstart"
    heading = f"{title} {strategy})" if title.endswith(",") else f"{title} ({strategy})"
    return f"""---
library_name: transformers
{front}tags: [warmstart, {tags}]
---
# {heading}

Fine-tuned by `warmstart finetune` from {intro}

## Protocol
{metrics.get('protocol', '')}

## Metrics
{tested}
## Use
{use}

The run's settings: `warmstart_config.yaml`; its figures: `metrics.json`.
"""


def use_snippet(pooling: str, max_length: int, pairs: bool = False, multi_label: bool = False) -> str:
    """Python that reproduces `warmstart predict`'s probabilities with transformers alone (in fp32: `predict` may
    run bf16, within ~1e-3 on MiniLM). `pooling`: mean | cls_token; `pairs`: a sentence-pair classifier;
    `multi_label`: one sigmoid per label (a label is predicted at 0.5 or above)."""
    probs = ("probs = logits.sigmoid()  # (B, L), columns as model.config.id2label\n"
             "labels = [[model.config.id2label[j] for j in range(probs.shape[1]) if p[j] >= 0.5] for p in probs]"
             if multi_label else "probs = logits.softmax(-1)  # (B, C), columns as model.config.id2label")
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
{probs}
```"""


def usage(pooling: str, max_length: int, pairs: bool = False, multi_label: bool = False) -> str:
    """The card's "Use" section for a classifier fitted with `pooling` (cls | mean | cls_token)."""
    what = "each text's labels and their probabilities" if multi_label else "classes and probabilities"
    if pooling == "cls":  # the standard head: what transformers computes is what warmstart predicts
        return (f"`warmstart predict THIS_FOLDER FILE` or `warmstart.Predictor(\"THIS_FOLDER\").predict(texts)` "
                f"({what}), `transformers.pipeline(\"text-classification\", "
                f"model=THIS_FOLDER{', top_k=None' if multi_label else ''})`, or `AutoModelForSequenceClassification`"
                f"{' (a sigmoid per label, predicted at 0.5)' if multi_label else ''}: the same predictions.")
    pooled = "mean-pooled features" if pooling == "mean" else "the [CLS] state as its features"
    return (f"`warmstart predict THIS_FOLDER FILE` or `warmstart.Predictor(\"THIS_FOLDER\").predict(texts)` "
            f"({what}), or, with transformers alone:\n\n"
            f"{use_snippet(pooling, max_length, pairs, multi_label)}\n\n"
            f"The head reads {pooled}; `pipeline(\"text-classification\")` and "
            "`AutoModelForSequenceClassification(...)(**batch).logits` do not pool this way (BERT's head reads its "
            "pooler) and may predict something else.")


def finetune_card(metrics: dict, classes: list[str], init: str, pooling: str, max_length: int,
                  pairs: bool = False) -> str:
    """README.md of a `warmstart finetune` classification folder. `metrics`: the run's metrics.json; `pairs`: it
    classifies sentence pairs (`data.text_pair_column`)."""
    floor = (f" (always answering the training labels' most frequent class: {100 * metrics['majority_accuracy']:.1f}%)"
             if metrics.get("majority_accuracy") is not None else "")
    balanced = (f", balanced accuracy (the mean of the classes' recalls) {100 * metrics['balanced_accuracy']:.1f}%"
                if metrics.get("balanced_accuracy") is not None else "")
    tested = (f"- Test split ({metrics['test_size']} rows, never used to fit or choose): accuracy "
              f"{100 * metrics['accuracy']:.1f}%{floor}, macro-F1 {100 * metrics['macro_f1']:.1f}%{balanced}.\n"
              if metrics.get("test_size") else "- No test rows: nothing was scored.\n")
    return page("text-classification", "Text classifier", f"`{init}` ({len(classes)} classes: "
                f"{', '.join(map(str, classes))}).", tested, usage(pooling, max_length, pairs), metrics)


def multi_label_card(metrics: dict, labels: list[str], init: str, pooling: str, max_length: int,
                     pairs: bool = False, form: str = "sets") -> str:
    """README.md of a `warmstart finetune` multi-label folder, its classic rival beside the model's figures.
    `form`: the labels' form in the data (multi_label.load_splits)."""
    tested = "- No test rows: nothing was scored.\n"
    if metrics.get("test_size"):
        tested = (f"- Test split ({metrics['test_size']} rows, never used to fit or choose): micro-F1 "
                  f"{100 * metrics['micro_f1']:.1f}%, macro-F1 {100 * metrics['macro_f1']:.1f}%, exact match "
                  f"{100 * metrics['exact_match']:.1f}% (a label predicted at probability 0.5 or above).\n")
        if "tfidf_micro_f1" in metrics:
            rival = metrics["tfidf_micro_f1"]
            tested += (f"- TF-IDF + one logistic regression per label, on the same labels: micro-F1 {100 * rival:.1f}%"
                       f"{'' if metrics['micro_f1'] > rival else '; this model has not beaten it'}.\n")
    return page("text-classification, multi-label", "Multi-label text classifier",
                f"`{init}` ({len(labels)} labels, any number a text: {', '.join(labels)}"
                f"{'; trained on 0/1 vectors, so label i is position i, and `warmstart predict` writes vectors' if form == 'vectors' else ''}).",
                tested,
                usage(pooling, max_length, pairs, multi_label=True), metrics)


NAMES = {"entity_f1": "entity F1", "token_accuracy": "token accuracy"}


def token_snippet(max_length: int) -> str:
    """Python that reproduces `warmstart predict`'s tags for sentences within `max_length` pieces, with
    transformers alone: each word is tagged at its first piece, as the head was trained."""
    return f"""```python
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

folder = "THIS_FOLDER"
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForTokenClassification.from_pretrained(folder).eval()
sentences = [["John", "lives", "in", "Paris"], ["Hello", "world"]]  # words, as in a CoNLL file
batch = tokenizer(sentences, is_split_into_words=True, padding=True, truncation=True, max_length={max_length},
                  return_tensors="pt")
with torch.no_grad():
    best = model(**batch).logits.argmax(-1)  # (B, T)
tags = []
for i, words in enumerate(sentences):
    first = {{}}  # each word's first piece carries its tag
    for pos, w in enumerate(batch.word_ids(i)):
        if w is not None and w not in first:
            first[w] = pos
    tags.append([model.config.id2label[int(best[i, first[w]])] if w in first else "O" for w in range(len(words))])
```"""


def token_card(metrics: dict, tags: list[str], init: str, max_length: int, scheme: str | None = None,
               entity_tags: str = "as_written") -> str:
    """README.md of a `warmstart finetune` token-classification folder. `metrics`: the run's metrics.json; `tags`:
    the model's own; `scheme`: the data's entity scheme (None: read from `tags`); `entity_tags`: train.entity_tags."""
    score = (f"entity F1 {100 * metrics['entity_f1']:.1f}% (seqeval, micro), token accuracy "
             f"{100 * metrics['token_accuracy']:.1f}%" if "entity_f1" in metrics else
             f"token accuracy {100 * metrics.get('token_accuracy', 0):.1f}%")
    tested = (f"- Test split ({metrics['test_sentences']} sentences, never used to fit or choose): {score}.\n"
              if metrics.get("test_sentences") else "- No test sentences: nothing was scored.\n")
    key = "entity_f1" if "entity_f1" in metrics else "token_accuracy"
    if f"commonest_tag_{key}" in metrics:
        rival = metrics[f"commonest_tag_{key}"]
        tested += (f"- Each word's commonest tag in the same labels, no model: {NAMES[key]} "
                   f"{100 * rival:.1f}%{': this model has not beaten it' if metrics[key] <= rival else ''}.\n")
    scheme = scheme or entity_scheme(tags)
    ends = (f"; then an entity's last word is {LAST[scheme][0]}-X, a one-word entity {LAST[scheme][1]}-X"
            if scheme in LAST else "")
    repair = (f" `warmstart predict` also repairs the {scheme} tags (an I-X that does not continue an X becomes "
              f"B-X{ends})" if scheme else " `warmstart predict`")
    if scheme == "IOB1":
        repair = (" Its tags are IOB1, as the data's are (an entity begins with I-X, B-X only where an X follows "
                  "another X), which `pipeline(..., aggregation_strategy=\"simple\")` groups as entities too; "
                  "`warmstart predict` also makes them well-formed IOB1 (a B-X that follows no X becomes I-X)")
    elif scheme and entity_tags == "iob1":
        repair = (f" The model's tags are the IOB1 reading of the data's {scheme} tags (every word of an entity "
                  "I-X, B-X only where an X follows another X: one tag a type, which trained better with few "
                  "labels), so the lines above give IOB1, which `pipeline(..., aggregation_strategy=\"simple\")` "
                  f"groups as entities too. `warmstart predict` writes them back in {scheme} (an I-X that does not "
                  f"continue an X begins one, B-X{ends})")
    use = f"""`warmstart predict THIS_FOLDER FILE` (a CoNLL file, JSONL with a tokens column, or one sentence a line; `--output
tags.conll` writes CoNLL), or, with transformers alone:

{token_snippet(max_length)}

Each word is tagged at its first word piece, as it was trained.{repair} and reads a sentence longer than
{max_length} pieces in windows, where these lines tag its tail "O". `pipeline("token-classification",
aggregation_strategy="first")` tags from the first piece too, but tokenises the raw string rather than your words."""
    return page("token-classification", "Token classifier", f"`{init}` ({len(tags)} tags: {', '.join(tags)}).", tested,
                use, metrics, "pipeline_tag: token-classification\n")


def reply_card(metrics: dict, init: str, max_length: int, context_turns: int) -> str:
    """README.md of a `warmstart finetune` response-selection folder (a cross-encoder: one score per (context,
    reply), BERT's own classification forward, so plain transformers scores as warmstart does)."""
    tested = (f"- Test contexts ({metrics['test_contexts']}, never used to fit or choose): recall@1 of "
              f"{metrics.get('candidates')} {100 * metrics['recall_at_1']:.1f}%, MRR {100 * metrics['mrr']:.1f}%.\n"
              if metrics.get("test_contexts") else "- No test contexts: nothing was scored.\n")
    if "tfidf_recall_at_1" in metrics:
        behind = metrics["recall_at_1"] <= metrics["tfidf_recall_at_1"]
        tested += (f"- TF-IDF cosine of context and reply, no model: recall@1 "
                   f"{100 * metrics['tfidf_recall_at_1']:.1f}%, MRR {100 * metrics['tfidf_mrr']:.1f}%{': this model has not beaten it' if behind else ''}.\n")
    use = f"""`warmstart predict THIS_FOLDER FILE` (JSONL `{{"context": ..., "candidates": [...]}}`: a score per candidate and
the best), or, with transformers alone:

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

folder = "THIS_FOLDER"
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
context = ["Hi", "How are you?"]  # turns, oldest first
candidates = ["Fine, thanks.", "The capital is Paris."]
text = f" {{tokenizer.sep_token}} ".join(context)
batch = tokenizer([text] * len(candidates), candidates, padding=True, truncation=True, max_length={max_length},
                  return_tensors="pt")
with torch.no_grad():
    scores = model(**batch).logits[:, 0]  # (len(candidates),): higher, the likelier reply
best = candidates[int(scores.argmax())]
```"""
    return page("cross-encoder, response-selection", "Response selector (cross-encoder,",
                f"`{init}` to score a reply to a context (the last {context_turns} turns).", tested, use, metrics)


def extract_card(metrics: dict, init: str, max_length: int, max_words: int) -> str:
    """README.md of a `warmstart finetune` extractive summariser: a sentence scorer (BERT's own classification
    forward on (sentence, "section position")) and the budgeted selection `summarization.select` makes."""
    tested = (f"- Test documents ({metrics['test_documents']}, never used to fit or choose): ROUGE-1/2/L "
              f"{metrics['rouge1']} / {metrics['rouge2']} / {metrics['rougeL']}; Lead "
              f"{metrics.get('lead_rouge1')} / {metrics.get('lead_rouge2')} / {metrics.get('lead_rougeL')}; oracle "
              f"{metrics.get('oracle_rouge1')} / {metrics.get('oracle_rouge2')} / {metrics.get('oracle_rougeL')}.\n"
              if metrics.get("test_documents") else "- No test documents: nothing was scored.\n")
    if metrics.get("test_documents") and metrics["rouge1"] <= metrics.get("lead_rouge1", -1):
        tested += ("- Lead, the document's first sentences within the same budget, scores as high or higher on "
                   "ROUGE-1: this model has not beaten the rule it would replace.\n")
    use = f"""`warmstart predict THIS_FOLDER FILE` (JSONL documents with `sentences`: the extract, the chosen indices and
every sentence's score), or, with transformers alone:

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

folder = "THIS_FOLDER"
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
sentences = ["The first sentence.", "The second one.", "A third."]  # one document, in order
sections = [""] * len(sentences)  # or each sentence's section, as in training (ACLSum: abstract, introduction...)
seen, where = {{}}, []
for section in sections:  # the second segment: the section and the position in it
    seen[section] = seen.get(section, 0) + 1
    where.append(f"{{section}} {{min(seen[section], 30)}}".strip())
batch = tokenizer(sentences, where, padding=True, truncation=True, max_length={max_length}, return_tensors="pt")
with torch.no_grad():
    scores = model(**batch).logits.softmax(-1)[:, 1]  # P(in the summary), (S,)
chosen, words = [], 0
for i in torch.argsort(-scores, stable=True).tolist():  # the best first, while they fit the budget
    n = len(sentences[i].split())
    if chosen and words + n > {max_words}:
        continue
    chosen, words = chosen + [i], words + n
summary = " ".join(sentences[i] for i in sorted(chosen))
```"""
    return page("extractive-summarization", "Extractive summariser", f"`{init}`: scores each sentence of a document, "
                f"then keeps the best ones\nwithin {max_words} words, in document order.", tested, use, metrics)
