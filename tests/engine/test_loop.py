import pytest
import torch

from warmstart.engine.loop import Budget, KeepBest, LoopSettings, cpu_copy, lr_factor, train_loop
from warmstart.engine.runtime import place, to_device, use_bf16
from warmstart.errors import WarmstartError


def test_schedule_warms_up_then_ends_at_zero_exactly_at_the_budget():
    assert lr_factor(0.05, 0.1, "linear") == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1, "linear") == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1, "linear") == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1, "linear") == 0.0 and lr_factor(1.0, 0.1, "cosine") == pytest.approx(0.0)
    assert lr_factor(0.5, 0.0, "constant") == 1.0
    with pytest.raises(WarmstartError, match="unknown schedule"):
        lr_factor(0.5, 0.1, "zigzag")


def test_budget_is_the_first_limit_reached():
    b = Budget(max_steps=100, max_tokens=1000, max_minutes=1.0)
    assert b.progress(50, 900, 6.0) == pytest.approx(0.9)
    assert b.progress(10, 10, 60.0) == pytest.approx(1.0)
    with pytest.raises(WarmstartError, match="no training budget"):
        Budget()


@pytest.mark.parametrize("budget, steps_per_epoch, max_steps", [
    (Budget(max_epochs=1.0), 40, 40),
    (Budget(max_epochs=0.5), 7, 4),  # rounded up: half an epoch of 7 batches is 4 steps
    (Budget(max_epochs=3.0, max_steps=50), 40, 50),  # the first limit wins
    (Budget(max_epochs=1e-6), 40, 1),  # never zero steps
    (Budget(max_steps=9), 40, 9),  # no epoch budget: unchanged
])
def test_an_epoch_budget_becomes_steps(budget, steps_per_epoch, max_steps):
    assert budget.per_epoch(steps_per_epoch).max_steps == max_steps


def test_precision_choice():
    assert use_bf16("bf16") is True and use_bf16("fp32") is False
    assert isinstance(use_bf16("auto"), bool)
    with pytest.raises(WarmstartError, match="unknown value"):
        use_bf16("fp8")


def test_loop_runs_to_budget_and_anneals(tmp_path):
    torch.manual_seed(0)
    model = place(torch.nn.Linear(4, 1))
    opt = torch.optim.AdamW([{"params": model.parameters(), "lr": 0.1, "base_lr": 0.1}])
    x, y = to_device(torch.randn(64, 4)), to_device(torch.randn(64, 1))

    def batches():
        i = 0
        while True:
            yield 0, i, {"input_ids": x, "y": y}
            i += 1

    def step(b):
        return {"loss": torch.nn.functional.mse_loss(model(b["input_ids"]), b["y"])}

    before = step({"input_ids": x, "y": y})["loss"].item()
    evals = []
    state = train_loop(model, opt, batches(), step, Budget(max_steps=20),
                       LoopSettings(log_every=5, eval_every=10, bf16=False),
                       eval_fn=lambda s: (evals.append(s.step) or {"m": 1.0}, False), log_path=tmp_path / "log.jsonl")
    assert state.step == 20 and state.index == 20 and evals == [10, 20]
    assert opt.param_groups[0]["lr"] < 0.01  # decayed towards zero at the end of the budget
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 4 + 2
    assert step({"input_ids": x, "y": y})["loss"].item() < before  # it learned something


def test_gradient_accumulation_equals_the_larger_batch():
    """Two half batches accumulated give the same update as the whole batch at once."""
    x, y = torch.randn(16, 4), torch.randn(16, 1)

    def run(grad_accum: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = place(torch.nn.Linear(4, 1))
        opt = torch.optim.SGD([{"params": model.parameters(), "lr": 0.1, "base_lr": 0.1}])
        size = 16 // grad_accum

        def batches():
            i = 0
            while True:
                j = i % grad_accum
                yield 0, i, {"input_ids": x[j * size:(j + 1) * size], "y": y[j * size:(j + 1) * size]}
                i += 1

        def step(b):
            return {"loss": torch.nn.functional.mse_loss(model(b["input_ids"]), b["y"])}

        train_loop(model, opt, batches(), step, Budget(max_steps=3),
                   LoopSettings(warmup_fraction=0.0, schedule="constant", grad_accum=grad_accum, bf16=False,
                                max_grad_norm=0.0))
        return model.weight.detach().cpu()

    assert torch.allclose(run(1), run(2), atol=1e-6)


NAN = float("nan")


@pytest.mark.parametrize("values, floor, best_step, stops_at", [
    ([0.0, 0.0, 0.0, 0.0, 0.2, 0.1, 0.1], 0.0, 5, 7),  # F1 0 for four passes: not started, so no patience used
    ([0.0, 0.0, 0.0, 0.0, 0.2, 0.1, 0.1], None, 1, 3),  # without a floor the same run stops at pass 3
    ([0.58, 0.58, 0.58, 0.70, 0.58, 0.58], 0.58, 4, 6),  # the commonest class's share; once above it, a fall
    # back to it is a fall and counts
    ([0.5, 0.4, 0.3], 0.58, 3, None),  # below the floor throughout: never stops, the last is kept (the budget
    # ends the run, and the refit gets all of it)
    ([0.64, 0.64, 0.60, 0.61, 0.64, 0.55], 0.64, 6, None),  # ACLSum sections, 500 labels: never above the
    # commonest class's share, so the first is not kept (its refit was one epoch long and predicted one class)
])
def test_keep_best_does_not_count_the_starting_plateau(values, floor, best_step, stops_at):
    keeper, stopped = KeepBest("val_f1", "max", 2, ties_count=True, floor=floor), None
    for step, value in enumerate(values, start=1):
        if keeper.update({"val_f1": value}, step, lambda step=step: step):
            stopped = step
            break
    assert (keeper.step, stopped) == (best_step, stops_at)


@pytest.mark.parametrize("mode, patience, values, best_step, stops_at, tolerance, ties", [
    ("min", 3, [3.0, 2.0, 2.5, 2.6, 2.7, 1.0], 2, 5, 0.0, False),  # three passes without a new best: stop at 5
    ("min", 3, [3.0, 2.0, 2.5, 1.5, 2.6, 2.7], 4, None, 0.0, False),  # a new best resets the count
    ("min", 0, [3.0, 2.0, 9.0, 9.0, 9.0, 9.0], 2, None, 0.0, False),  # patience 0: never stops, still keeps the best
    ("max", 2, [0.5, 0.7, 0.6, 0.6, 0.9], 2, 4, 0.0, False),  # an accuracy: higher is better
    ("min", 2, [NAN, 3.0, NAN, NAN], 2, 4, 0.01, False),  # NaN is never a best, and counts as no improvement
    ("min", 1, [2.0, 2.0, 2.1], 1, 3, 0.0, False),  # equal is neither a new best nor a rise
    ("min", 2, [2.0, 2.01, 2.015, 1.99, 2.1, 2.2], 4, 6, 0.01, False),  # within 1% of the best: a plateau, not a rise
    ("max", 1, [0.80, 0.795, 0.70], 1, 3, 0.01, False),
    ("max", 1, [0.80, 0.80, 0.90], 1, 2, 0.0, True),  # fine-tuning's accuracy: a tie is no progress
    ("max", 2, [0.80, 0.80, 0.85, 0.85, 0.85], 3, 5, 0.0, True),
])
def test_keep_best_follows_the_held_out_figure(mode, patience, values, best_step, stops_at, tolerance, ties):
    keeper, stopped = KeepBest("val_loss", mode, patience, tolerance, ties), None
    for step, value in enumerate(values, start=1):
        if keeper.update({"val_loss": value}, step, lambda step=step: {"w": torch.tensor(float(step))}):
            stopped = step
            break
    assert keeper.step == best_step and stopped == stops_at
    assert keeper.weights["w"].item() == best_step  # the copy taken at the best pass
    assert keeper.metrics == {"val_loss": values[best_step - 1]}


def test_keep_best_ignores_passes_without_its_figure():
    keeper = KeepBest("val_loss", "min", 1)
    assert not keeper.update({"val_acc": 0.9}, 1, dict) and keeper.value is None and keeper.bad == 0


def test_keep_best_state_survives_a_resume():
    keeper = KeepBest("val_loss", "min", 3)
    for step, value in [(1, 2.0), (2, 1.0), (3, 1.5)]:
        keeper.update({"val_loss": value}, step, lambda step=step: {"w": step})
    again = KeepBest("val_loss", "min", 3)
    again.load(keeper.state(), {"w": 2})
    assert (again.value, again.step, again.bad, again.weights) == (1.0, 2, 1, {"w": 2})
    other = KeepBest("val_acc", "max", 3)
    other.load(keeper.state(), {"w": 2})  # another figure watched now: start afresh
    assert other.value is None and other.weights is None


def test_cpu_copy_is_a_copy_and_keeps_tied_weights_tied():
    emb = torch.nn.Embedding(5, 3)
    model = torch.nn.ModuleDict({"emb": emb, "out": torch.nn.Linear(3, 5, bias=False)})
    model["out"].weight = emb.weight  # tied, as a decoder to the word embeddings
    copied = cpu_copy({"encoder": model.state_dict(), "generator": None})
    assert copied["generator"] is None
    assert copied["encoder"]["emb.weight"] is copied["encoder"]["out.weight"]  # saved once, like the original
    with torch.no_grad():
        emb.weight.add_(1.0)
    assert not torch.equal(copied["encoder"]["emb.weight"], emb.weight)  # later training does not reach it


@pytest.mark.parametrize("label, shown, hidden", [(None, "finetune (refit)", "auto fold"),
                                                  ("auto fold 2/3", "auto fold 2/3", "finetune (refit)")])
def test_a_bar_label_names_the_training_bar_inside_its_block(label, shown, hidden, capsys):
    """auto's folds are fine-tuning runs whose own bar says "finetune (refit)"; inside `bar_label` it says the fold."""
    import contextlib

    from warmstart.engine.loop import bar_label

    model = place(torch.nn.Linear(2, 1))
    opt = torch.optim.AdamW([{"params": model.parameters(), "lr": 0.1, "base_lr": 0.1}])
    x = to_device(torch.randn(4, 2))

    def step(b):
        return {"loss": model(b["input_ids"]).pow(2).mean()}

    with bar_label(label) if label else contextlib.nullcontext():
        train_loop(model, opt, iter([(0, i, {"input_ids": x}) for i in range(3)]), step, Budget(max_steps=3),
                   LoopSettings(bf16=False, desc="finetune (refit)"))
    err = capsys.readouterr().err
    assert shown in err and hidden not in err
