"""The device checks' helpers run once, on a lent GPU, where a broken parser costs the session's device time:
checked here on made-up inductor output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from inductor_mm import products  # noqa: E402

CODE = """
    def call(self, args):
        buf0 = empty_strided_cuda((192, 8192), (8192, 1), torch.bfloat16)
        # Topologically Sorted Source Nodes: [decoder], Original ATen: [aten.addmm]
        extern_kernels.addmm(b, x, w, alpha=1, beta=1, out=buf0)
        buf1 = empty_strided_cuda((64, 8), (8, 1), torch.float32)
        buf2 = reinterpret_tensor(buf1, (8, 64), (64, 1), 0); del buf1  # reuse
        # Topologically Sorted Source Nodes: [permute_9, mm_3], Original ATen: [aten.t, aten.mm]
        extern_kernels.mm(a, c, out=buf2)
        buf3 = buf0; del buf0  # reuse
        extern_kernels.mm(a, c, out=buf3)
    def call(self, args):
        extern_kernels.mm(a, c, out=buf2)
"""


@pytest.mark.parametrize("index, expected", [
    (0, ("addmm", "bfloat16", "192, 8192", "[decoder], Original ATen: [aten.addmm]")),
    (1, ("mm", "float32", "8, 64", "[permute_9, mm_3], Original ATen: [aten.t, aten.mm]")),  # reused under a new name
    (2, ("mm", "bfloat16", "192, 8192", "[permute_9, mm_3], Original ATen: [aten.t, aten.mm]")),
    (3, ("mm", "?", "?", "")),  # a new graph: buf2 unknown there, no source line yet
])
def test_inductor_products_carry_their_output_dtype(index, expected):
    found = products(CODE)
    assert len(found) == 4 and found[index] == expected
