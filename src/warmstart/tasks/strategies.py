"""Transfer strategies: which weights fine-tuning may change, how fast, and what pulls them back.

Each strategy has its own config section (as PEFT has one config class per method), saved with the run in
`warmstart_config.yaml`; `train.strategy` picks the one that applies. Strategies work on the layer stack of
any encoder that `transformers` builds here (BERT/ELECTRA/MiniLM, ViT: `encoder.layer`; ResNet:
`encoder.stages`), bottom-up: the embeddings, then each block, then what sits on top (pooler, final norm);
the task head is apart.

  full              every weight trains
  linear_probe      the encoder is frozen; the head is fitted in closed form (tasks/classification.py)
  lp_ft             that probe, then `full` from it (Kumar et al., 2022)
  freeze            the embeddings and the bottom `freeze.layers` blocks stay fixed
  gradual_unfreeze  the head first, then one more block from the top every `gradual_unfreeze.every_epochs`
                    (ULMFiT, Howard & Ruder, 2018)
  llrd              layer-wise learning-rate decay: block i from the top learns at lr * decay**i
  l2sp              a penalty alpha/2 * ||w - w_pretrained||^2 on the encoder (Li et al., 2018)
  lora              low-rank adapters through PEFT, the head trainable; merged into a standard checkpoint at
                    the end, the adapter saved beside it in `adapter/`
  setfit            text: contrastive pairs of the N labels train every encoder weight on mean-pooled
                    embeddings, then the head is fitted in closed form (Tunstall et al., 2022; classification)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from warmstart.config import SGD_STRATEGIES, STRATEGIES, LoraConfig, StrategySections  # noqa: F401 (re-exported)
from warmstart.errors import WarmstartError

    # value for BERT and ViT); ResNet: its convolutions


def layer_stack(model: torch.nn.Module, head: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    """The encoder's parameters bottom-up: [embeddings, block 0, ..., block n-1, the rest (pooler, norm)]."""
    base = model.base_model
    encoder = getattr(base, "encoder", None)
    blocks = getattr(encoder, "layer", None) or getattr(encoder, "stages", None)
    embeddings = getattr(base, "embeddings", None) or getattr(base, "embedder", None)
    if blocks is None or embeddings is None:
        raise WarmstartError(f"{type(model).__name__}: no embeddings + encoder blocks found; use strategy full or lora")
    stack = [list(embeddings.parameters()), *[list(b.parameters()) for b in blocks]]
    seen = {id(p) for group in stack for p in group} | {id(p) for p in head.parameters()}
    stack.append([p for p in model.parameters() if id(p) not in seen])
    return stack


@dataclass
class Plan:
    """What `fit` needs from a strategy: per-parameter learning rates, a penalty added to the loss, and a hook
    called before every optimizer step with the fraction of epochs done."""

    param_lrs: dict[int, float] = field(default_factory=dict)
    frozen: list[torch.nn.Parameter] = field(default_factory=list)  # fixed for the whole run
    penalty: Callable[[], torch.Tensor] | None = None
    before_step: Callable[[float], None] | None = None
    description: str = ""


def set_trainable(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def plan(strategy: str, model: torch.nn.Module, head: torch.nn.Module, sections: StrategySections, lr: float,
         head_lr: float) -> Plan:
    """The strategy's plan. It changes nothing yet: build the optimizer over every weight with `param_lrs`,
    then freeze `frozen` and call `before_step(0)` (gradual unfreezing turns blocks on later)."""
    head_ids = {id(p): head_lr for p in head.parameters() if p.requires_grad}
    if strategy in ("full", "lp_ft", "lora", "setfit"):  # lora: PEFT sets requires_grad itself (see wrap_lora)
        return Plan(head_ids)
    stack = layer_stack(model, head)
    if strategy == "freeze":
        k = sections.freeze.layers
        if not 0 <= k <= len(stack) - 2:
            raise WarmstartError(f"train.freeze.layers={k}: the encoder has {len(stack) - 2} blocks")
        return Plan(head_ids, frozen=[p for group in stack[:1 + k] for p in group],
                    description=f"embeddings + {k} blocks frozen")
    if strategy == "gradual_unfreeze":
        top_down = stack[::-1]  # rest, block n-1, ..., block 0, embeddings
        every = sections.gradual_unfreeze.every_epochs

        def before_step(epochs_done: float) -> None:
            stage = int(epochs_done // every) if every > 0 else len(top_down)
            for i, group in enumerate(top_down):  # stage 0: the head and the top extras; then a block per stage
                set_trainable(group, i <= stage)

        return Plan(head_ids, before_step=before_step, description=f"one block more every {every} epochs")
    if strategy == "llrd":
        decay = sections.llrd.decay
        n = len(stack)
        lrs = {id(p): lr * decay ** (n - 1 - i) for i, group in enumerate(stack) for p in group}
        return Plan({**lrs, **head_ids}, description=f"decay {decay}")
    if strategy == "l2sp":
        alpha = sections.l2sp.alpha
        body = [p for group in stack for p in group]
        start = [p.detach().clone() for p in body]

        def penalty() -> torch.Tensor:
            return 0.5 * alpha * sum(((p.float() - s.float()) ** 2).sum() for p, s in zip(body, start, strict=True))

        return Plan(head_ids, penalty=penalty, description=f"alpha {alpha}")
    raise WarmstartError(f"train.strategy: unknown strategy '{strategy}'; use {', '.join(STRATEGIES)}")


PROBE_FIRST = ("linear_probe", "lp_ft")  # strategies that fit the head in closed form on frozen features first
PROBE_LAST = ("setfit",)  # strategies that train the body without the head, then fit the head in closed form


def probe_then_finetune(strategy: str, head: torch.nn.Module, probe: Callable[[], dict],
                        finetune: Callable[[float], dict], steps: int | None = None) -> dict:
    """Run `strategy` given a task's two halves. `probe() -> fit_logistic's result` on the encoder's features as
    they are (C chosen on validation, or by cross-validation when there is none); `finetune(start_score) ->
    fit's result` (tasks/finetune.py), where the weights it starts from stay the best candidate until
    fine-tuning beats `start_score` on validation. `steps=0`: the refit of a run whose selection kept the probe.

    linear_probe: the closed-form head alone; lp_ft: that head, then fine-tuning from it (Kumar et al., 2022,
    "Fine-Tuning can Distort Pretrained Features"), so a fresh head's random gradients never reach the encoder;
    setfit: `finetune` trains the body on contrastive pairs first, then the head is fitted on its features
    (Tunstall et al., 2022); every other strategy: fine-tuning alone. -> the metrics of what was kept"""
    if strategy not in PROBE_FIRST + PROBE_LAST:
        return finetune(float("-inf"))
    trained = finetune(float("-inf")) if strategy in PROBE_LAST else {}
    fit = probe()
    set_linear_head(head, fit["weight"], fit["bias"])
    # the score that chose the probe's C (balanced accuracy under train.class_balance), the one fine-tuning must beat
    chosen = fit.get("val_score", fit["val_accuracy"])
    score = None if chosen is None else round(float(chosen), 4)
    probed = {"probe_val_accuracy": score, "probe_C": fit["C"],
              "trainable_parameters": sum(p.numel() for p in head.parameters())}
    if strategy in PROBE_LAST:
        return {**trained, "probe_val_accuracy": score, "probe_C": fit["C"], "val_accuracy": score}
    if strategy == "linear_probe" or steps == 0:
        return {**probed, "val_accuracy": score}
    tuned = finetune(float("-inf") if score is None else score)
    if tuned.get("best_step") == 0:  # fine-tuning never beat the probe: the kept model trained its head alone
        tuned = {**tuned, "trainable_parameters": probed["trainable_parameters"]}
    return {**probed, **tuned}


def set_linear_head(head: torch.nn.Module, weight, bias) -> None:
    """Write a fitted (classes x features) weight and bias into a task's linear head."""
    if not isinstance(head, torch.nn.Linear):
        raise WarmstartError(f"train.strategy=linear_probe needs a linear head; {type(head).__name__} is not; "
                             "use strategy=full")
    if tuple(head.weight.shape) != tuple(weight.shape):
        raise WarmstartError(f"the probe saw {weight.shape[0]} of {head.weight.shape[0]} classes; give more labels")
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))


def hold_frozen_norm_statistics(model: torch.nn.Module) -> None:
    """Batch-norm layers whose weights are frozen run in eval mode: their running statistics stay the
    pretrained ones (bit-identical) and they normalise as they did in pretraining."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def head_name(model: torch.nn.Module, head: torch.nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is head)


def wrap_lora(model: torch.nn.Module, head: torch.nn.Module, cfg: LoraConfig):
    """Inject LoRA adapters in place (PEFT); the task head is trained and saved whole. -> the PeftModel"""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    targets = cfg.target_modules or (["convolution"] if model.config.model_type == "resnet" else None)
    # the head's top-level module (`classifier`), trained whole and saved with the adapter
    config = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                            modules_to_save=[head_name(model, head).split(".")[0]])
    try:
        return get_peft_model(model, config)
    except ValueError as e:
        raise WarmstartError(f"train.lora: {str(e).splitlines()[0]}; set train.lora.target_modules") from None


def unwrap_lora(peft_model) -> tuple[torch.nn.Module, dict[str, torch.Tensor], object]:
    """Merge the adapters into the weights. -> (the plain model, the adapter's weights, its PEFT config)"""
    from peft import get_peft_model_state_dict

    adapter = {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}
    config = peft_model.peft_config["default"]
    return peft_model.merge_and_unload(), adapter, config


def save_adapter(folder, adapter: dict[str, torch.Tensor], config) -> None:
    """The PEFT adapter folder (`adapter_config.json`, `adapter_model.safetensors`), loadable with
    `PeftModel.from_pretrained(base_model, folder)`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in adapter.items()}, str(folder / "adapter_model.safetensors"))


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
