"""Latency and throughput of every way to run the model, on this machine's CPU.

    python scripts/benchmark.py [--model release/kr-lpr] [--json-out release/benchmark.json]
    python scripts/benchmark.py --random          # a random-init model: timings do not depend on weights

Rows: PyTorch eager, ONNX Runtime, TFLite float32 and uint8 (model only: uint8 canvases in, logits
out), and `LicensePlateRecognizer` end to end (RGB crops in, readings out: letterbox + model + CTC
decoding). Columns: latency per plate at batch 1 with 1 and 2 threads (median of repeated runs after
a warm-up), plates per second for a batch of 64 on 2 threads, and the model file size. The TFLite
models have batch 1 and run as the bundle runs them: one single-threaded interpreter per thread,
plates in parallel (so one plate uses one thread).
Exports missing from the model folder are made in a temporary copy first. The targets are checked
at the end; the exit status is 0 whatever they say (timings on a shared machine vary).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from kr_lpr import TinyLPRConfig, TinyLPRImageProcessor, TinyLPRModel
from kr_lpr.export import FILE_NAMES, export_model
from kr_lpr.inference import LicensePlateRecognizer, torch_logits
from kr_lpr.lpr_infer_template import load_runner

ROOT = Path(__file__).resolve().parent.parent
BATCH = 64
REPEATS = 5
REPEAT_SECONDS = 0.2
LATENCY, THROUGHPUT = "latency_ms_1_thread", "throughput_batch64_plates_per_s"
DEFAULT_RECOGNIZER = "recognizer (default backend)"
TARGETS = (  # (what, row, column, limit, "max" or "min")
    ("default model (uint8 TFLite) latency, 1 thread [ms]", "tflite-uint8", LATENCY, 0.5, "max"),
    ("LicensePlateRecognizer end to end, 1 thread [ms]", DEFAULT_RECOGNIZER, LATENCY, 1.0, "max"),
    ("uint8 TFLite batch throughput, 2 cores [plates/s]", "tflite-uint8", THROUGHPUT, 3000, "min"),
)


def seconds_per_call(call: Callable, *args) -> float:
    """Median over `REPEATS` timed runs, after a warm-up, each long enough to average out the clock."""
    began = time.perf_counter()
    call(*args)
    calls = max(1, int(REPEAT_SECONDS / max(time.perf_counter() - began, 1e-6)))
    for _ in range(max(1, calls // 4)):
        call(*args)
    timings = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        for _ in range(calls):
            call(*args)
        timings.append((time.perf_counter() - began) / calls)
    return statistics.median(timings)


def model_row(name: str, size: int, make_runner: Callable[[int], Callable], canvases: np.ndarray) -> dict:
    """A model-only row; `make_runner(threads)` returns a function of a `(B, H, W)` uint8 batch."""
    row = {"name": name, "size_bytes": size}
    for threads, key in ((1, "latency_ms_1_thread"), (2, "latency_ms_2_threads")):
        runner = make_runner(threads)
        row[key] = round(seconds_per_call(runner, canvases[:1]) * 1000, 4)
    runner = make_runner(2)
    row["throughput_batch64_plates_per_s"] = round(BATCH / seconds_per_call(runner, canvases), 1)
    return row


def torch_runner(model: TinyLPRModel) -> Callable[[int], Callable]:
    def make(threads: int):
        torch.set_num_threads(threads)
        return lambda canvases: torch_logits(model, canvases)

    return make


def recognizer_row(model_dir: Path, backend: str, crops: list[np.ndarray]) -> dict:
    """End to end: RGB crops in, readings out, one crop per call for latency, 64 per call for throughput."""
    recognizer = LicensePlateRecognizer(model_dir, backend=backend, num_threads=1)
    name = f"recognizer-e2e ({recognizer.backend})"
    row = {"name": name, "backend": backend, "size_bytes": (model_dir / FILE_NAMES[recognizer.backend]).stat().st_size}
    row["latency_ms_1_thread"] = round(seconds_per_call(recognizer, crops[0]) * 1000, 4)
    recognizer = LicensePlateRecognizer(model_dir, backend=backend, num_threads=2)
    row["latency_ms_2_threads"] = round(seconds_per_call(recognizer, crops[0]) * 1000, 4)
    row["throughput_batch64_plates_per_s"] = round(BATCH / seconds_per_call(recognizer, crops), 1)
    return row


def plate_crops(count: int) -> list[np.ndarray]:
    """RGB crops the size a plate detector hands over (about 50x150 pixels)."""
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (int(rng.integers(40, 60)), int(rng.integers(120, 180)), 3), np.uint8)
        for _ in range(count)
    ]


def prepare_model_dir(model: str | None, work: Path) -> Path:
    """A copy of the model folder (or a random model) with every export next to the weights."""
    model_dir = work / "model"
    if model is None:
        TinyLPRModel(TinyLPRConfig()).save_pretrained(model_dir)
        TinyLPRImageProcessor().save_pretrained(model_dir)
    else:
        if not (Path(model) / "config.json").is_file():
            raise SystemExit(f"benchmark: {model} is not a model folder; train one or pass --random")
        shutil.copytree(model, model_dir)
    missing = [name for name in ("onnx", "tflite", "tflite-uint8") if not (model_dir / FILE_NAMES[name]).is_file()]
    if missing:
        print(f"exporting {', '.join(missing)} ...")
        export_model(model_dir, model_dir, missing)
    return model_dir


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    packages = ("torch", "onnxruntime", "ai-edge-litert")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    } | {package: version(package) for package in packages}


def check_targets(rows: list[dict]) -> list[dict]:
    by_name = {row["name"]: row for row in rows}
    by_name[DEFAULT_RECOGNIZER] = next(row for row in rows if row.get("backend") == "auto")
    checked = []
    for target, row_name, column, limit, kind in TARGETS:
        row = by_name[row_name]
        passed = row[column] <= limit if kind == "max" else row[column] >= limit
        checked.append({"target": target, "row": row["name"], "value": row[column], "limit": limit, "pass": passed})
    return checked


def format_table(rows: list[dict], targets: list[dict]) -> str:
    lines = [
        f"{'':<40}{'1 thread':>12}{'2 threads':>12}{'batch 64':>14}{'size':>12}",
        f"{'':<40}{'ms/plate':>12}{'ms/plate':>12}{'plates/s':>14}{'bytes':>12}",
    ]
    for row in rows:
        lines.append(
            f"{row['name']:<40}{row['latency_ms_1_thread']:>12.3f}{row['latency_ms_2_threads']:>12.3f}"
            f"{row['throughput_batch64_plates_per_s']:>14,.0f}{row['size_bytes']:>12,}"
        )
    lines.append("")
    for target in targets:
        verdict = "PASS" if target["pass"] else "FAIL"
        lines.append(f"{verdict}  {target['target']}: {target['value']:,} (limit {target['limit']:,})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", default=str(ROOT / "release" / "kr-lpr"), help="Hub-format model folder")
    source.add_argument("--random", action="store_true", help="benchmark a random-init model")
    parser.add_argument("--json-out", help="write the results here (e.g. release/benchmark.json)")
    args = parser.parse_args(argv)

    if os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.2f}: other work shares the CPU, timings will be slow")
    with tempfile.TemporaryDirectory() as work:
        model_dir = prepare_model_dir(None if args.random else args.model, Path(work))
        processor = TinyLPRImageProcessor.from_pretrained(model_dir)
        crops = plate_crops(BATCH)
        canvases = np.stack([processor.letterbox(crop)[0] for crop in crops])
        weights = sum(path.stat().st_size for path in model_dir.glob("*.safetensors"))
        model = TinyLPRModel.from_pretrained(model_dir).eval()
        rows = [model_row("pytorch-eager", weights, torch_runner(model), canvases)]
        for name in ("onnx", "tflite", "tflite-uint8"):
            path = model_dir / FILE_NAMES[name]
            row_name = {"onnx": "onnxruntime", "tflite": "tflite-float32"}.get(name, name)
            rows.append(model_row(row_name, path.stat().st_size, lambda t, p=path: load_runner(p, t), canvases))
        rows += [recognizer_row(model_dir, backend, crops) for backend in ("auto", "onnx")]
    targets = check_targets(rows)
    print(format_table(rows, targets))
    if args.json_out:
        result = {"machine": machine(), "rows": rows, "targets": targets}
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
