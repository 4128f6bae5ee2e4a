"""Which matrix products a compiled step runs in fp32: read from inductor's generated code.

    TORCH_LOGS=output_code python3 benchmarks/gpu_profile.py --compile 2> code.log
    python3 benchmarks/inductor_mm.py code.log

A bf16 step should multiply in bf16 everywhere; an fp32 product runs on the GPU without tensor cores (an H200
does ~1/15 of the bf16 rate there). The profile of 2026-12-04 (H200, BERT-base, compiled) had a cuBLAS fp32
kernel (sm80_xmma_gemm_f32f32..._ffma) at 2.5 ms of 29.8 ms a step, and the same step compiled on the CPU has no
fp32 product: this finds the one on the GPU and the source lines it came from (inductor's comment above it).
Prints one line per product: its output buffer's dtype and shape, and the source nodes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ALLOC = re.compile(r"(buf\d+) = empty_strided_\w+\(\(([^)]*)\), \([^)]*\), torch\.(\w+)\)")
# a buffer reused under another name keeps its dtype: `buf9 = reinterpret_tensor(buf3, (4, 8), ...)`, `buf9 = buf3`
REUSE = re.compile(r"(buf\d+) = (?:reinterpret_tensor\((\w+), \(([^)]*)\)|(\w+);)")
PRODUCT = re.compile(r"extern_kernels\.(mm|addmm|bmm|baddbmm)\(.*out=(buf\d+)\)")
SOURCE = re.compile(r"# Topologically Sorted Source Nodes: (.*)")


def products(code: str) -> list[tuple[str, str, str, str]]:
    """(op, dtype, shape, source nodes) of every extern matrix product in inductor's output code."""
    allocs: dict[str, tuple[str, str]] = {}
    source, out = "", []
    for line in code.splitlines():
        if "def call(" in line:  # each compiled graph (forward, backward) numbers its buffers afresh
            allocs, source = {}, ""
        if m := ALLOC.search(line):
            allocs[m.group(1)] = (m.group(3), m.group(2))
        elif m := REUSE.search(line):
            old = m.group(2) or m.group(4)
            dtype, shape = allocs.get(old, ("?", "?"))
            allocs[m.group(1)] = (dtype, m.group(3) or shape)
        elif m := SOURCE.search(line):
            source = m.group(1)
        elif m := PRODUCT.search(line):
            dtype, shape = allocs.get(m.group(2), ("?", "?"))
            out.append((m.group(1), dtype, shape, source))
    return out


def main() -> None:
    found = products(Path(sys.argv[1]).read_text(errors="replace"))
    fp32 = [p for p in found if p[1] == "float32"]
    unknown = sum(p[1] == "?" for p in found)
    print(f"{len(found)} matrix products in the compiled code, {len(fp32)} with an fp32 output"
          + (f", {unknown} into a buffer of unknown dtype (a graph input)" if unknown else ""))
    for op, dtype, shape, source in fp32:
        print(f"{op} {dtype} ({shape}): {source}")


if __name__ == "__main__":
    main()
