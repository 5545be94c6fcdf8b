"""Reads South Korean license plates with the kr-lpr deployment bundle (`lpr_infer.py`).

    python lpr_infer.py plate1.jpg plate2.png [--model model_uint8.tflite] [--json] [--beam]

Exit status: 0; 1 when an image could not be read (the others are still read); 2 when the model
could not be loaded.

Needs numpy, Pillow and one of ai-edge-litert, tflite-runtime, tensorflow or onnxruntime; an
`*_edgetpu.tflite` model also needs the Edge TPU runtime (libedgetpu, as used by pycoral).

`kr-lpr bundle` generates `lpr_infer.py` from the package's `plate_codec_tinylpr.py` and
`preprocessing_tinylpr.py` followed by this template (`kr_lpr/lpr_infer_template.py`) without the
package imports between the `bundle:` markers: one implementation of preprocessing and decoding.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import importlib.util
import json
import os
import platform
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# bundle: begin package imports
from .plate_codec_tinylpr import LabelMap, decode_batch
from .preprocessing_tinylpr import letterbox, load_image, to_pixel_values

# bundle: end package imports

TFLITE_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
EDGETPU_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
MODEL_PREFERENCE = ("model_uint8_edgetpu.tflite", "model_uint8.tflite", "model_float32.tflite", "model.onnx")
BATCH_SIZE = 16


def import_tflite():
    """The first installed TFLite runtime as `(Interpreter, load_delegate)`, or None."""
    for name in TFLITE_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        load_delegate = getattr(module, "load_delegate", None) or module.experimental.load_delegate
        return module.Interpreter, load_delegate
    return None


def has_onnxruntime() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def edgetpu_library() -> str | None:
    """The Edge TPU runtime library's name when it loads, else None."""
    # Probed with ctypes: a failing `load_delegate` prints a traceback from its destructor.
    name = EDGETPU_LIBRARIES.get(platform.system(), EDGETPU_LIBRARIES["Linux"])
    try:
        ctypes.CDLL(name)
    except OSError:
        return None
    return name


class TFLiteRunner:
    """Runs a batch-1 TFLite model over a batch: one single-threaded interpreter per thread.

    XNNPACK's intra-op threads barely help a model this small; whole plates in parallel do.
    """

    def __init__(self, path: Path, num_threads: int | None = None):
        runtime = import_tflite()
        if runtime is None:
            raise ValueError(f"cannot run {path.name}: install ai-edge-litert, tflite-runtime or tensorflow")
        interpreter_class, load_delegate = runtime
        delegates = []
        if path.name.endswith("_edgetpu.tflite"):
            library = edgetpu_library()
            if library is None:
                raise ValueError(f"{path.name} needs the Edge TPU runtime (libedgetpu); use model_uint8.tflite")
            delegates = [load_delegate(library)]
        workers = 1 if delegates else max(1, num_threads or os.cpu_count() or 1)
        try:
            self.interpreters = [
                interpreter_class(model_path=str(path), num_threads=1, experimental_delegates=delegates)
                for _ in range(workers)
            ]
            for interpreter in self.interpreters:
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"cannot load TFLite model {path}: {error}") from error
        self.input = self.interpreters[0].get_input_details()[0]
        self.output = self.interpreters[0].get_output_details()[0]
        self.input_size = tuple(int(v) for v in self.input["shape"][1:3])
        self.input_scale, self.input_zero_point = self.input["quantization"]
        self.output_scale, self.output_zero_point = self.output["quantization"]
        # pixels / 255 quantized at 1/255 with zero point 0: the uint8 canvas bytes themselves
        self.takes_canvas = (
            self.input["dtype"] == np.uint8 and self.input_zero_point == 0 and abs(self.input_scale * 255 - 1) < 1e-6
        )
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None

    def __call__(self, canvases: np.ndarray) -> np.ndarray:
        """`(B, H, W)` uint8 canvases to `(B, T, K)` float32 logits."""
        inputs = self._quantize(canvases[:, None, :, :, None])
        if len(inputs) == 1 or self.pool is None:
            return self._dequantize(self._invoke(self.interpreters[0], inputs))
        chunks = np.array_split(np.arange(len(inputs)), min(len(self.interpreters), len(inputs)))
        jobs = [(interpreter, inputs[chunk]) for interpreter, chunk in zip(self.interpreters, chunks)]
        return self._dequantize(np.concatenate(list(self.pool.map(self._invoke, *zip(*jobs)))))

    def _invoke(self, interpreter, inputs: np.ndarray) -> np.ndarray:
        outputs = []
        for x in inputs:
            interpreter.set_tensor(self.input["index"], x)
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(self.output["index"]))
        return np.concatenate(outputs)

    def _quantize(self, canvases: np.ndarray) -> np.ndarray:
        if self.takes_canvas and canvases.dtype == np.uint8:
            return canvases
        pixels = canvases.astype(np.float32) / 255.0
        if not self.input_scale:
            return pixels
        limits = np.iinfo(self.input["dtype"])
        quantized = np.round(pixels / self.input_scale) + self.input_zero_point
        return np.clip(quantized, limits.min, limits.max).astype(self.input["dtype"])

    def _dequantize(self, logits: np.ndarray) -> np.ndarray:
        if not self.output_scale:
            return logits
        return (logits.astype(np.float32) - self.output_zero_point) * self.output_scale


class OnnxRunner:
    """Runs an ONNX model (dynamic batch) with ONNX Runtime on the CPU."""

    def __init__(self, path: Path, num_threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            raise ValueError(f"cannot load ONNX model {path}: {error}") from error
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_size = tuple(model_input.shape[2:4])

    def __call__(self, canvases: np.ndarray) -> np.ndarray:
        """`(B, H, W)` uint8 canvases to `(B, T, K)` float32 logits."""
        return self.session.run(None, {self.input_name: to_pixel_values(canvases)})[0]


def load_runner(path: str | os.PathLike, num_threads: int | None = None) -> TFLiteRunner | OnnxRunner:
    """A runner for a `.tflite` or `.onnx` model file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    if path.suffix == ".tflite":
        return TFLiteRunner(path, num_threads)
    if path.suffix == ".onnx":
        if not has_onnxruntime():
            raise ValueError(f"cannot run {path.name}: install onnxruntime")
        return OnnxRunner(path, num_threads)
    raise ValueError(f"unsupported model file {path.name}: expected a .tflite or .onnx file")


def default_model(bundle_dir: Path) -> Path:
    """The fastest model of the bundle that the installed runtimes can run."""
    runnable = set()
    if import_tflite() is not None:
        runnable |= {"model_uint8.tflite", "model_float32.tflite"}
        if edgetpu_library() is not None:
            runnable.add("model_uint8_edgetpu.tflite")
    if has_onnxruntime():
        runnable.add("model.onnx")
    for name in MODEL_PREFERENCE:
        if name in runnable and (bundle_dir / name).is_file():
            return bundle_dir / name
    raise ValueError("no runnable model: install ai-edge-litert, tflite-runtime or onnxruntime next to the models")


class PlateRecognizer:
    """Reads plates with a bundle's model: letterbox, model, CTC decoding.

    Args:
        bundle_dir: the unpacked bundle (config.json, labels.names and the models).
        model: a model file; a bare name is looked up in `bundle_dir`. Default: see `default_model`.
        num_threads: plates run in parallel on this many threads (default: all CPUs).
    """

    def __init__(
        self, bundle_dir: str | os.PathLike, model: str | os.PathLike | None = None, num_threads: int | None = None
    ):
        bundle_dir = Path(bundle_dir)
        config_file = bundle_dir / "config.json"
        try:
            self.config = json.loads(config_file.read_text(encoding="utf-8"))
            self.label_map = LabelMap.load(bundle_dir / self.config["labels_file"])
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"not a kr-lpr bundle ({config_file}): {error}") from error
        if model is None:
            model_path = default_model(bundle_dir)
        else:
            model_path = Path(model)
            if not model_path.exists() and (bundle_dir / model_path).exists():
                model_path = bundle_dir / model_path
        self.model_path = model_path
        self.runner = load_runner(model_path, num_threads)
        expected = (self.config["input_height"], self.config["input_width"])
        if self.runner.input_size != expected:
            raise ValueError(f"{model_path.name} takes {self.runner.input_size} images, the bundle {expected}")

    def letterbox(self, image) -> np.ndarray:
        config = self.config
        canvas, _ = letterbox(
            load_image(image),
            config["input_width"],
            config["input_height"],
            config["placement"],
            config["pad_value"],
            config["max_stretch"],
        )
        return canvas

    def __call__(self, images: list, method: str = "greedy", beam_width: int = 10) -> list[dict]:
        """Readings `{"text", "confidence", "valid", "char_confidences"}` for a list of images."""
        readings = []
        for start in range(0, len(images), BATCH_SIZE):
            canvases = np.stack([self.letterbox(image) for image in images[start : start + BATCH_SIZE]])
            readings += decode_batch(self.runner(canvases), self.label_map, method, beam_width)
        return readings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpr_infer.py", description="Read Korean license plates from plate crops.")
    parser.add_argument("images", nargs="+", help="plate crop image files")
    parser.add_argument("--model", help="model file (default: Edge TPU, else uint8 TFLite, else float32, else ONNX)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of tab-separated lines")
    parser.add_argument("--beam", action="store_true", help="CTC beam search with the plate-format filter")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recognizer = PlateRecognizer(Path(__file__).resolve().parent, args.model, args.threads)
    except ValueError as error:
        print(f"lpr_infer.py: error: {error}", file=sys.stderr)
        return 2
    files, images = [], []
    for file in args.images:
        try:
            images.append(load_image(file))
            files.append(file)
        except ValueError as error:
            print(f"lpr_infer.py: error: {error}", file=sys.stderr)
    readings = recognizer(images, "beam" if args.beam else "greedy") if images else []
    results = [{"file": file, **reading} for file, reading in zip(files, readings)]
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for result in results:
            print(f"{result['file']}\t{result['text']}\t{result['confidence']:.4f}\t{result['valid']}")
    return 0 if len(files) == len(args.images) else 1


if __name__ == "__main__":
    sys.exit(main())
