"""Measures how many synthetic plates per second the generator makes: in this process, and through a
torch DataLoader with worker processes (as training uses it). Glyph caches are warmed first.

Wall-clock rates depend on what else runs on the machine (the load average is printed); the
single-process CPU-time rate is what one otherwise idle core would give.

    python scripts/synth_throughput.py [--n 2000] [--workers 2] [--strength train]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from kr_lpr.synth import PRESETS, SyntheticPlateStream

WARMUP = 1500  # plates drawn before timing, so every font/weight/character glyph is cached


def single_process(n: int, strength: str) -> tuple[float, float]:
    """(wall-clock, CPU-time) plates per second."""
    stream = iter(SyntheticPlateStream(seed=1, strength=strength))
    for _ in range(WARMUP):
        next(stream)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        next(stream)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def data_loader(n: int, strength: str, workers: int, batch_size: int = 64) -> float:
    loader = torch.utils.data.DataLoader(
        SyntheticPlateStream(seed=2, strength=strength), batch_size=batch_size, num_workers=workers, collate_fn=list
    )
    batches = iter(loader)
    for _ in range(WARMUP // batch_size):
        next(batches)
    start = time.perf_counter()
    for _ in range(n // batch_size):
        next(batches)
    return (n // batch_size) * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="plates timed per measurement")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--strength", default="train", choices=sorted(PRESETS))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    wall, cpu = single_process(args.n, args.strength)
    print(f"single process: {wall:.0f} plates/s wall-clock, {cpu:.0f} plates/s per CPU-second ({args.strength})")
    rate = data_loader(args.n, args.strength, args.workers)
    print(f"DataLoader, {args.workers} workers: {rate:.0f} plates/s ({args.strength})")


if __name__ == "__main__":
    main()
