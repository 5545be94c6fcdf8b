"""`kr-lpr export MODEL_DIR`: ONNX, TFLite float32 and full-integer uint8 (Edge TPU-ready) models.

Only the inference graph is exported (pixels to CTC logits; no mask head, no softmax). Every file is
run on the same preprocessed plates and compared with PyTorch; `export_report.json` records per
format its size, the max abs logit difference, how many decoded plates match, the op table and, for
uint8, the Edge TPU op check and, where `edgetpu_compiler` is installed, the compiler's op mapping.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .image_processing_tinylpr import TinyLPRImageProcessor
from .inference import torch_logits
from .lpr_infer_template import load_runner
from .modeling_tinylpr import TinyLPRModel

FORMATS = ("onnx", "tflite", "tflite-uint8", "edgetpu")
FILE_NAMES = {
    "onnx": "model.onnx",
    "tflite": "model_float32.tflite",
    "tflite-uint8": "model_uint8.tflite",
    "edgetpu": "model_uint8_edgetpu.tflite",
}
REPORT_FILE = "export_report.json"
CALIBRATION_SEED = 7_000_000  # synthetic plates drawn for calibration only
NUM_CALIBRATION_PLATES = 1024
NUM_CHECK_PLATES = 32
UINT8_LOGIT_FLOOR = 4.0  # see convert_tflite
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# TFLite builtins that the Edge TPU runs and their listed limitations: the "Supported operations"
# table of coral.ai, "TensorFlow models on the Edge TPU" (https://coral.ai/docs/edgetpu/models-intro/),
# up to runtime version 14. Ops with an empty note have no listed limitation that applies here.
EDGETPU_SUPPORTED_OPS = {
    "ADD": "",
    "AVERAGE_POOL_2D": "no fused activation function",
    "CONCATENATION": "no fused activation function; a constant input must be all zeros (2 inputs)",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "only the default weights format; output tensor is one-dimensional",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "LSTM": "",
    "MAXIMUM": "",
    "MAX_POOL_2D": "no fused activation function",
    "MEAN": "no reduction in the batch dimension; reduction along x and/or y only",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "no packing in the batch dimension",
    "PAD": "no padding in the batch dimension; padding along x and/or y only",
    "PRELU": "",
    "QUANTIZE": "",
    "REDUCE_MAX": "no reduction in the batch dimension",
    "REDUCE_MIN": "no reduction in the batch dimension",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "",
    "RESIZE_BILINEAR": "input/output is 3-D; may stay on the CPU to keep precision",
    "RESIZE_NEAREST_NEIGHBOR": "input/output is 3-D; may stay on the CPU to keep precision",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": "1-D input of at most 16,000 elements",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "no splitting in the batch dimension",
    "SQUARED_DIFFERENCE": "",
    "SQUEEZE": "only when no relayout is needed (leading 1s)",
    "STRIDED_SLICE": "all strides 1 (a plain slice); no ellipsis or new-axis masks",
    "SUB": "",
    "SUM": "no reduction in the batch dimension",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}
# The spatial (y, x) axes of a 4-D NHWC tensor: the only axes MEAN and PAD may touch on the Edge TPU.
SPATIAL_AXES = {1, 2}


class LogitsOnly(nn.Module):
    """The inference graph: pixel values `(B, 1, H, W)` to CTC logits `(B, T, K)`."""

    def __init__(self, model: TinyLPRModel):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values, return_dict=True).logits


def load_pretrained(model_dir: str | os.PathLike) -> tuple[TinyLPRModel, TinyLPRImageProcessor]:
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} is not a model folder (no config.json)")
    return TinyLPRModel.from_pretrained(model_dir).eval(), TinyLPRImageProcessor.from_pretrained(model_dir)


def export_onnx(model: TinyLPRModel, path: str | os.PathLike) -> Path:
    """ONNX (opset 20 via torch.export) with a dynamic batch dimension: `pixel_values` -> `logits`."""
    config = model.config
    example = torch.zeros(2, config.num_channels, config.image_height, config.image_width)
    # The exporter logs skipped torchvision ops and pytree deprecations that say nothing about this model.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LogitsOnly(model).eval(),
            (example,),
            str(path),
            dynamo=True,
            input_names=["pixel_values"],
            output_names=["logits"],
            dynamic_shapes={"pixel_values": {0: torch.export.Dim("batch")}},
            external_data=False,
            verbose=False,
        )
    return Path(path)


def calibration_canvases(
    processor: TinyLPRImageProcessor, images: Iterable | None = None, count: int = NUM_CALIBRATION_PLATES
) -> np.ndarray:
    """`(N, H, W)` uint8 model inputs for calibration: `images`, else synthetic training-style plates."""
    if images is None:
        from .synth import SyntheticPlateStream

        images = (sample["image"] for sample in SyntheticPlateStream(seed=CALIBRATION_SEED, strength="train"))
    canvases = [
        processor.letterbox(image)[0]
        for image in tqdm(itertools.islice(images, count), total=count, desc="calibration plates", unit="plate")
    ]
    if not canvases:
        raise ValueError("no calibration images")
    return np.stack(canvases)


def floored_logits(logits: np.ndarray) -> np.ndarray:
    """What the uint8 model outputs for float `logits`: `max(logits, -UINT8_LOGIT_FLOOR) + UINT8_LOGIT_FLOOR`."""
    return np.maximum(logits, -UINT8_LOGIT_FLOOR) + UINT8_LOGIT_FLOOR


def keras_inputs(canvases: np.ndarray) -> Iterator[list[np.ndarray]]:
    """`(N, H, W)` uint8 canvases as the Keras graph's inputs, one `[(1, H, W, 1)]` float list each."""
    for canvas in canvases:
        yield [canvas[None, :, :, None].astype(np.float32) / 255.0]


def tflite_converter(model: TinyLPRModel, canvases: np.ndarray | None = None):
    """The TFLite converter of `model`: float32, or with calibration `canvases` full-integer int8 with
    uint8 input and output.

    The uint8 input is the raw grey canvas: its scale is 1/255 and zero point 0, which a ramp image
    among the calibration inputs pins down (plates need not contain pure black and white).
    The uint8 output is `floored_logits`: decoding ignores a per-step constant, and the top class of
    a step is unchanged wherever its logit is above -4, so readings keep their meaning while the
    output's range, and so its quantization step, shrinks (a ReLU fused into the classifier: no op added).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from .keras_tinylpr import build_keras_model

    keras_model = build_keras_model(model, None if canvases is None else UINT8_LOGIT_FLOOR)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if canvases is not None:
        ramp = np.broadcast_to(np.linspace(0, 255, canvases.shape[2]), canvases.shape[1:]).round().astype(np.uint8)
        calibration = np.concatenate([ramp[None], canvases])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: keras_inputs(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter


@contextlib.contextmanager
def quiet_conversion() -> Iterator[None]:
    """Keras prints its SavedModel signature and the converter warns about input statistics: noise here."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def convert_tflite(model: TinyLPRModel, canvases: np.ndarray | None = None) -> bytes:
    """The TFLite flatbuffer of `tflite_converter(model, canvases)`."""
    with quiet_conversion():
        return tflite_converter(model, canvases).convert()


def tflite_graph(content: bytes):
    """An un-delegated interpreter, so the op table shows the model's own builtins."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )


def op_table(interpreter) -> dict[str, int]:
    return dict(sorted(Counter(op["op_name"] for op in interpreter._get_ops_details()).items()))


def onnx_op_table(path: Path) -> dict[str, int]:
    import onnx

    return dict(sorted(Counter(node.op_type for node in onnx.load(str(path)).graph.node).items()))


def edgetpu_check(content: bytes) -> dict:
    """Checks a uint8 model against the Edge TPU requirements that can be read from the file.

    Every op on the supported list, MEAN and PAD on the spatial axes only, 8-bit tensors (32-bit
    biases), static shapes and at most 3 dimensions larger than 1.
    """
    interpreter = tflite_graph(content)
    problems = []
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name not in EDGETPU_SUPPORTED_OPS:
            problems.append(f"{name} is not an Edge TPU operation")
        if name in ("MEAN", "PAD"):
            axes = interpreter.get_tensor(op["inputs"][1])
            touched = set(np.atleast_1d(axes).tolist()) if name == "MEAN" else set(np.flatnonzero(axes.any(axis=1)))
            if not touched <= SPATIAL_AXES:
                problems.append(f"{name} touches axes {sorted(touched)}; the Edge TPU allows only y and x")
    for tensor in interpreter.get_tensor_details():
        dtype = np.dtype(tensor["dtype"])
        if dtype not in (np.uint8, np.int8, np.int32):
            problems.append(f"tensor {tensor['name']} is {dtype}, not 8-bit quantized")
        if (tensor["shape_signature"] < 0).any():
            problems.append(f"tensor {tensor['name']} has a dynamic shape {tensor['shape_signature'].tolist()}")
        if (tensor["shape"] > 1).sum() > 3:
            problems.append(f"tensor {tensor['name']} {tensor['shape'].tolist()} has more than 3 dimensions > 1")
    used = op_table(interpreter)
    return {
        "compatible": not problems,
        "problems": problems,
        "ops": [
            {"op": name, "count": count, "limitations": EDGETPU_SUPPORTED_OPS.get(name)} for name, count in used.items()
        ],
    }


def compile_edgetpu(uint8_path: Path, out_dir: Path) -> dict:
    """Runs `edgetpu_compiler` when installed; returns its op mapping log, or why it did not run."""
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        return {"compiled": False, "note": f"edgetpu_compiler is not installed; {uint8_path.name} is compiler-ready"}
    result = subprocess.run(
        [compiler, "--show_operations", "--out_dir", str(out_dir), str(uint8_path)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ValueError(f"edgetpu_compiler failed on {uint8_path}:\n{result.stdout}{result.stderr}")
    return {"compiled": True, "file": FILE_NAMES["edgetpu"], "log": result.stdout}


def compare(path: Path, canvases: np.ndarray, reference: np.ndarray, processor: TinyLPRImageProcessor) -> dict:
    """Runs an exported file on the check plates (through the bundle's runners) against PyTorch's logits."""
    logits = load_runner(path, num_threads=1)(canvases)
    texts = [reading["text"] for reading in processor.post_process(logits)]
    expected = [reading["text"] for reading in processor.post_process(reference)]
    return {
        "file": path.name,
        "size_bytes": path.stat().st_size,
        "max_abs_logit_diff": float(np.abs(logits - reference).max()),
        "argmax_agreement": float((logits.argmax(-1) == reference.argmax(-1)).mean()),
        "plates_match": sum(a == b for a, b in zip(texts, expected)),
        "plates_checked": len(texts),
    }


def export_model(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    calibration_images: Iterable | None = None,
    num_calibration: int = NUM_CALIBRATION_PLATES,
) -> dict[str, Path]:
    """Exports `model_dir` to `out_dir` and writes `export_report.json`.

    Args:
        formats: any of "onnx", "tflite" (float32), "tflite-uint8", "edgetpu" (the uint8 model, compiled
            when `edgetpu_compiler` is installed).
        calibration_images: images (paths, PIL images or arrays) for uint8 calibration; default:
            `num_calibration` synthetic plates.

    Returns:
        format -> written file (no "edgetpu" entry without the compiler), plus "report".
    """
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown export formats {unknown}; choose from {', '.join(FORMATS)}")
    if "edgetpu" in formats and "tflite-uint8" not in formats:
        formats.append("tflite-uint8")  # the Edge TPU model is compiled from it
    model, processor = load_pretrained(model_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    quantize = "tflite-uint8" in formats
    canvases = calibration_canvases(processor, calibration_images, num_calibration if quantize else NUM_CHECK_PLATES)
    check = canvases[:NUM_CHECK_PLATES]
    reference = torch_logits(model, check)

    written: dict[str, Path] = {}
    report: dict = {"formats": {}, "calibration_plates": len(canvases) if quantize else 0, "versions": versions()}
    if "onnx" in formats:
        written["onnx"] = export_onnx(model, out_dir / FILE_NAMES["onnx"])
        report["formats"]["onnx"] = {
            **compare(written["onnx"], check, reference, processor),
            "ops": onnx_op_table(written["onnx"]),
        }
    tflite_targets = (("tflite", None, reference), ("tflite-uint8", canvases, floored_logits(reference)))
    for name, calibration, expected in tflite_targets:  # format, calibration canvases, logits to reproduce
        if name in formats:
            content = convert_tflite(model, calibration)
            written[name] = out_dir / FILE_NAMES[name]
            written[name].write_bytes(content)
            report["formats"][name] = {**compare(written[name], check, expected, processor), **tflite_summary(content)}
    if quantize:
        report["edgetpu"] = edgetpu_check(written["tflite-uint8"].read_bytes())
    if "edgetpu" in formats:
        report["edgetpu"].update(compile_edgetpu(written["tflite-uint8"], out_dir))
        if report["edgetpu"]["compiled"]:
            written["edgetpu"] = out_dir / FILE_NAMES["edgetpu"]
    written["report"] = out_dir / REPORT_FILE
    written["report"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return written


def tflite_summary(content: bytes) -> dict:
    """Op table and input/output types and quantization of a TFLite model."""
    graph = tflite_graph(content)

    def describe(details: dict) -> dict:
        scale, zero_point = details["quantization"]
        return {"dtype": np.dtype(details["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}

    return {
        "ops": op_table(graph),
        "input": describe(graph.get_input_details()[0]),
        "output": describe(graph.get_output_details()[0]),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "onnx", "onnxscript", "onnxruntime", "tensorflow-cpu", "tensorflow", "ai-edge-litert"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def format_report(report: dict) -> str:
    lines = [f"{'format':<14}{'file':<30}{'size':>10}{'max |dlogit|':>14}{'plates':>9}  ops"]
    for name, entry in report["formats"].items():
        ops = ", ".join(f"{op} x{count}" for op, count in entry["ops"].items())
        plates = f"{entry['plates_match']}/{entry['plates_checked']}"
        size, diff = f"{entry['size_bytes']:,}", f"{entry['max_abs_logit_diff']:.2e}"
        lines.append(f"{name:<14}{entry['file']:<30}{size:>10}{diff:>14}{plates:>9}  {ops}")
    if "edgetpu" in report:
        edgetpu = report["edgetpu"]
        verdict = "all ops supported" if edgetpu["compatible"] else "PROBLEMS: " + "; ".join(edgetpu["problems"])
        lines += ["", f"Edge TPU check of {FILE_NAMES['tflite-uint8']}: {verdict}"]
        lines += [f"  {op['op']:<20}x{op['count']:<4} {op['limitations'] or ''}" for op in edgetpu["ops"]]
        if "compiled" in edgetpu:
            lines.append(edgetpu["log"] if edgetpu["compiled"] else edgetpu["note"])
    return "\n".join(lines)


def image_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"calibration folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kr-lpr export", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="Hub-format model folder")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, from {', '.join(FORMATS)}")
    parser.add_argument("--out", help="output folder (default: MODEL_DIR, where LicensePlateRecognizer looks)")
    parser.add_argument("--calibration-dir", help="plate images for uint8 calibration (default: synthetic plates)")
    parser.add_argument(
        "--num-calibration",
        type=int,
        default=NUM_CALIBRATION_PLATES,
        help=f"calibration plates (default {NUM_CALIBRATION_PLATES})",
    )
    args = parser.parse_args(argv)
    try:
        images = image_files(args.calibration_dir) if args.calibration_dir else None
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        written = export_model(args.model_dir, args.out or args.model_dir, formats, images, args.num_calibration)
    except ValueError as error:
        print(f"kr-lpr export: error: {error}", file=sys.stderr)
        return 2
    print(format_report(json.loads(written["report"].read_text(encoding="utf-8"))))
    print("\nwritten: " + ", ".join(str(path) for path in written.values()))
    return 0
