"""Timing helpers shared by the benchmarks: medians of repeated runs, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import torch


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """Achieved FLOP/s of a large float32 matmul: the practical peak of this machine."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    seconds = median_seconds(lambda: a @ b, repeats=repeats, warmup=2)
    return 2 * n**3 / seconds


def machine_line() -> str:
    """One line describing where the numbers were measured."""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")
