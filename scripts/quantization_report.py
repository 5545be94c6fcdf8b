"""Where the uint8 TFLite model loses precision: each layer's error against its float twin.

    python scripts/quantization_report.py --model release/kr-lpr

Converts the model as `kr-lpr export` does (same calibration plates), then runs TFLite's
`QuantizationDebugger` on fresh synthetic plates: for every quantized tensor, the root-mean-square
and the largest difference between the uint8 graph fed with float inputs layer by layer and the float
graph, in units of that tensor's rounding step. Rounding alone gives about 0.29 steps (uniform error);
a layer far above its neighbours is the one to fix (as the per-step means were, see
`quantization.sequence_scale`). A sigmoid saturated near 1 shows about 1 step: uint8 stores 1 as
255/256.

A small error in steps can still matter when the step is coarse for what follows, so the second
table rounds the PyTorch forward (`kr_lpr.quantization`, ranges from the same calibration plates)
at one tensor at a time and prints how far that alone moves the logits from the forward with the kernels
rounded and no activation rounded (mean absolute shift, floored as the uint8 output is) and the share of time
steps whose top class changes.
Synthetic plates only: the real crops stay for evaluation.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys

import numpy as np
import torch

from kr_lpr.export import (
    NUM_CALIBRATION_PLATES,
    calibration_canvases,
    floored_logits,
    keras_inputs,
    load_pretrained,
    quiet_conversion,
    tflite_converter,
)
from kr_lpr.inference import torch_logits
from kr_lpr.modeling_tinylpr import TinyLPRModel
from kr_lpr.quantization import activation_roundings, prepare_quantization_aware
from kr_lpr.synth import SyntheticPlateStream

DEBUG_SEED = 31337  # not a training, calibration or validation seed
# PAD and RESHAPE move values without rounding them.
ROUNDING = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "LOGISTIC", "MUL"}


def load_inputs(model_dir: str, num_calibration: int, num_debug: int) -> tuple[TinyLPRModel, np.ndarray, np.ndarray]:
    """The model, the export's calibration canvases and fresh synthetic debug canvases, for both tables."""
    model, processor = load_pretrained(model_dir)
    plates = (sample["image"] for sample in SyntheticPlateStream(seed=DEBUG_SEED, strength="train"))
    debug = calibration_canvases(processor, plates, count=num_debug)
    return model, calibration_canvases(processor, count=num_calibration), debug


def layer_errors(model: TinyLPRModel, calibration: np.ndarray, debug: np.ndarray) -> list[dict]:
    """One `layer_row` per tensor that the uint8 graph rounds, in graph order."""
    import tensorflow as tf

    with quiet_conversion():
        converter = tflite_converter(model, calibration)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: keras_inputs(debug)
        )
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    return [layer_row(stats) for stats in csv.DictReader(dump) if stats["op_name"] in ROUNDING]


def layer_row(stats: dict[str, str]) -> dict:
    """One row of the debugger's dump with the errors in rounding steps and the Keras layer's name."""
    step = float(stats["scale"])
    return {
        "op": stats["op_name"],
        "layer": stats["tensor_name"].split(";")[0].split("/")[1].removesuffix("_1"),
        "step": step,
        "rms_error_steps": math.sqrt(float(stats["mean_squared_error"])) / step,
        "max_error_steps": float(stats["max_abs_error"]) / step,
    }


@torch.no_grad()
def rounding_shifts(model: TinyLPRModel, calibration: np.ndarray, debug: np.ndarray) -> list[dict]:
    """For each activation rounding of the simulation alone: how far it moves the logits, largest first.
    Prepares `model` for quantization-aware training in place."""

    def logits(canvases: np.ndarray) -> np.ndarray:
        return floored_logits(torch_logits(model, canvases))

    prepare_quantization_aware(model)
    model.eval()
    logits(calibration)  # a first eval forward sets every range
    roundings = activation_roundings(model)
    for rounding in roundings.values():
        rounding.enabled = False
    # The prepared forward rounds the kernels as the export does; weights off that grid (an average of
    # quantization-aware stages) move the logits before any activation is rounded, so that is the reference.
    reference = logits(debug)
    rows = []
    for name, rounding in roundings.items():
        for other in roundings.values():
            other.enabled = other is rounding
        shifted = logits(debug)
        rows.append({
            "tensor": name,
            "mean_logit_shift": float(np.abs(shifted - reference).mean()),
            "top_class_changes": float((shifted.argmax(-1) != reference.argmax(-1)).mean()),
        })  # fmt: skip
    return sorted(rows, key=lambda row: row["mean_logit_shift"], reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="release/kr-lpr")
    parser.add_argument("--num-calibration", type=int, default=NUM_CALIBRATION_PLATES, help="as `kr-lpr export`")
    parser.add_argument("--num-debug", type=int, default=128, help="synthetic plates compared layer by layer")
    args = parser.parse_args(argv)
    model, calibration, debug = load_inputs(args.model, args.num_calibration, args.num_debug)
    rounded = layer_errors(model, calibration, debug)
    print(f"{'op':<18} {'layer':<22} {'step':>10} {'rms error':>10} {'max error':>10}  (in steps)")
    for row in rounded:
        print(
            f"{row['op']:<18} {row['layer']:<22} {row['step']:>10.4g} "
            f"{row['rms_error_steps']:>10.3f} {row['max_error_steps']:>10.3f}"
        )
    worst = max(rounded, key=lambda row: row["rms_error_steps"])
    median = np.median([row["rms_error_steps"] for row in rounded])
    print(f"\nRMS error over layers: median {median:.3f} steps, largest {worst['rms_error_steps']:.3f}", end=" ")
    print(f"({worst['layer']})")
    print(f"\n{'rounded alone (PyTorch simulation)':<40} {'mean |logit shift|':>18} {'top class changed':>18}")
    for row in rounding_shifts(model, calibration, debug):
        print(f"{row['tensor']:<40} {row['mean_logit_shift']:>18.4f} {row['top_class_changes']:>18.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
