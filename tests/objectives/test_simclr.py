import math

import torch

from warmstart.objectives.simclr import ProjectionHead, nt_xent_loss


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """The SimCLR paper's loss written as loops: l(i, j) = -log exp(s_ij/t) / sum_{k != i} exp(s_ik/t)."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / denom)
    return total / (2 * n)


def test_nt_xent_equals_the_reference_on_random_inputs():
    gen = torch.Generator().manual_seed(0)
    for n, d, t in ((4, 8, 0.5), (7, 3, 0.1), (16, 32, 1.0)):
        z1, z2 = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
        assert abs(float(nt_xent_loss(z1, z2, t)) - reference_nt_xent(z1, z2, t)) < 1e-4


def test_nt_xent_is_low_for_matching_views_and_high_for_random_ones():
    z = torch.randn(32, 16)
    assert float(nt_xent_loss(z, z + 0.01 * torch.randn_like(z), 0.1)) < 0.1
    assert float(nt_xent_loss(z, torch.randn(32, 16), 0.1)) > math.log(31)


def test_nt_xent_gradient_reaches_both_views():
    z1, z2 = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    nt_xent_loss(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_projection_head_shapes():
    head = ProjectionHead(32, 64, 16)
    assert head(torch.randn(5, 32)).shape == (5, 16)


SCRIPT = """
import json, sys, torch, torch.distributed as dist
from warmstart.objectives.simclr import nt_xent_loss
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
z = torch.randn(2, 8, 5, generator=torch.Generator().manual_seed(0))  # 2 views x 8 images, global
rows = slice(4 * rank, 4 * rank + 4)
z1, z2 = z[0, rows].clone().requires_grad_(), z[1, rows].clone().requires_grad_()
loss = nt_xent_loss(z1, z2, 0.3)
loss.backward()
with open(sys.argv[1] + str(rank), "w") as f:  # closed before exit: no interpreter's habit is relied on
    json.dump({"loss": float(loss), "g1": z1.grad.tolist(), "g2": z2.grad.tolist()}, f)
from warmstart.engine.distributed import shutdown
shutdown()
"""


def test_gathered_negatives_across_two_processes_equal_the_global_batch(tmp_path):
    """Two gloo processes with 4 images each: the mean of their losses is the 8-image loss, and each one's
    gradient (summed over processes inside the gather) is the world size times the global gradient."""
    import json
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "run.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                           str(tmp_path / "run.py"), str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    parts = [json.loads((tmp_path / f"out{r}").read_text()) for r in range(2)]
    z = torch.randn(2, 8, 5, generator=torch.Generator().manual_seed(0))
    z1, z2 = z[0].clone().requires_grad_(), z[1].clone().requires_grad_()
    loss = nt_xent_loss(z1, z2, 0.3)
    loss.backward()
    assert abs((parts[0]["loss"] + parts[1]["loss"]) / 2 - loss.item()) < 1e-5
    g1 = torch.tensor(parts[0]["g1"] + parts[1]["g1"]) / 2
    g2 = torch.tensor(parts[0]["g2"] + parts[1]["g2"]) / 2
    assert torch.allclose(g1, z1.grad, atol=1e-6) and torch.allclose(g2, z2.grad, atol=1e-6)
