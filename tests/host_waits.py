"""A recorder of the aten ops that make a GPU's host wait: a value read back (`.item()`, `float(t)`), or an op
whose output shape the data decides (`nonzero`, boolean indexing, `masked_select`). On a GPU each one stalls the
queue until the device has drained it. Used on the CPU, where the same ops run (tests/pretraining/
test_device_step.py, tests/tasks/test_finetune_steps.py)."""

from __future__ import annotations

import os
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# torch's own frames, by the package's folder: a substring test ("/torch/") also matched every frame of a
# virtual environment that lives under a folder named torch (/opt/torch/.venv on the GPU machine), transformers'
# included, so the waits transformers asks for were blamed on the caller (issue 23)
TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
WAITS = {"_local_scalar_dense", "nonzero", "nonzero_static", "masked_select", "item", "unique", "_unique2"}
# transformers reads `padding_mask.all()` back once a forward, to drop the mask (and reach the flash kernel) when
# nothing is padded; padded batches (fine-tuning, sentence pairs) keep it. Packed blocks pass no mask.
TRANSFORMERS_MASK_CHECK = "transformers/masking_utils.py"


def origin(filenames: list[str]) -> str:
    """The innermost file of a stack (outermost first) that is neither torch's nor this recorder's."""
    kept = [f for f in filenames if not os.path.abspath(f).startswith(TORCH_DIR) and not f.endswith("host_waits.py")]
    return kept[-1] if kept else "?"


class HostWaits(TorchDispatchMode):
    """Records every op that would make a GPU's host wait (boolean-mask indexing included), and where from:
    `seen` their names, `origins` the file of the innermost frame outside torch that asked for each."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.origins: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        bool_index = name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else []) or [])
        if name in WAITS or bool_index:
            self.seen.append(name)
            self.origins.append(origin([f.filename for f in traceback.extract_stack()]))
        return func(*args, **(kwargs or {}))

    def besides(self, *allowed: str) -> list[str]:
        """The waits whose origin is none of the `allowed` file suffixes, as 'name at file:'."""
        return [f"{n} at {o}" for n, o in zip(self.seen, self.origins, strict=True)
                if not any(o.replace("\\", "/").endswith(a) for a in allowed)]
