"""`LicensePlateRecognizer`: plate readings from images on the fastest installed runtime.

Eager PyTorch spends ~18 ms per call in Python op overhead; ONNX Runtime or LiteRT run the same
graph in well under a millisecond per plate. Preprocessing and decoding are the model's
`TinyLPRImageProcessor`, so every backend reads exactly what `processor.post_process` would.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .image_processing_tinylpr import TinyLPRImageProcessor
from .lpr_infer_template import has_onnxruntime, import_tflite, load_runner
from .modeling_tinylpr import TinyLPRModel
from .preprocessing_tinylpr import to_pixel_values

BACKENDS = ("auto", "onnx", "tflite-uint8", "tflite", "torch")
MODEL_FILES = {"onnx": "model.onnx", "tflite": "model_float32.tflite", "tflite-uint8": "model_uint8.tflite"}
# ONNX Runtime's cost per plate is lowest at 8-16 plates per call (larger batches leave the cache).
BATCH_SIZE = 16


def cache_root() -> Path:
    """Where ONNX exports of model folders without one are kept: $KR_LPR_CACHE or ~/.cache/kr_lpr."""
    if os.environ.get("KR_LPR_CACHE"):
        return Path(os.environ["KR_LPR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kr_lpr"


def model_fingerprint(model_dir: Path) -> str:
    """Hash of the config and weights (and the exporter versions), naming the cached export."""
    digest = hashlib.sha256(f"{__version__} torch {torch.__version__}".encode())
    for path in sorted([model_dir / "config.json", *model_dir.glob("*.safetensors"), *model_dir.glob("*.bin")]):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def cached_onnx(model_dir: Path) -> Path:
    """`model.onnx` of the folder, exported once into the cache when the folder has none."""
    path = cache_root() / model_fingerprint(model_dir) / MODEL_FILES["onnx"]
    if not path.is_file():
        from .export import export_onnx

        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        export_onnx(TinyLPRModel.from_pretrained(model_dir).eval(), partial)
        os.replace(partial, path)  # atomic: a concurrent reader never sees half a file
    return path


def resolve_backend(model_dir: Path, backend: str) -> str:
    """The exported uint8 model on LiteRT (the fastest; the deployment bundle's choice too), else ONNX
    Runtime, else the exported float32 model on LiteRT, else PyTorch."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    has_litert = import_tflite() is not None
    if has_litert and (model_dir / MODEL_FILES["tflite-uint8"]).is_file():
        return "tflite-uint8"
    if has_onnxruntime():
        return "onnx"
    if has_litert and (model_dir / MODEL_FILES["tflite"]).is_file():
        return "tflite"
    return "torch"


def torch_logits(model: TinyLPRModel, canvases: np.ndarray) -> np.ndarray:
    """A PyTorch model's CTC logits for uint8 canvases `(N, H, W)`, without autograd."""
    with torch.inference_mode():
        return model(torch.from_numpy(to_pixel_values(canvases))).logits.numpy()


class TorchRunner:
    """The PyTorch model behind the runners' interface: uint8 canvases in, logits out."""

    def __init__(self, model_dir: Path, num_threads: int | None = None):
        if num_threads:
            torch.set_num_threads(num_threads)  # process-wide: PyTorch has no per-model setting
        self.model = TinyLPRModel.from_pretrained(model_dir).eval()
        config = self.model.config
        self.input_size = (config.image_height, config.image_width)

    def __call__(self, canvases: np.ndarray) -> np.ndarray:
        return torch_logits(self.model, canvases)


class LicensePlateRecognizer:
    """Reads plates from plate crops with the best available runtime.

    Args:
        model_dir: a Hub-format model folder (`save_pretrained` output), optionally holding the
            exports `model.onnx`, `model_float32.tflite`, `model_uint8.tflite` (`kr-lpr export`).
        backend: "auto" (LiteRT with the exported uint8 model, else ONNX Runtime, else LiteRT with the
            exported float32 model, else PyTorch), "onnx", "tflite-uint8", "tflite" (float32) or "torch".
            "onnx" reads exactly what the PyTorch model reads; the uint8 model rounds its activations and
            can differ on a few plates. Without `model.onnx` in the folder the ONNX backend exports one once
            into `cache_root()`.
        num_threads: CPU threads (default: ONNX Runtime's choice; for TFLite all CPUs, one plate per thread).
        batch_size: plates per runtime call.

    Example:
        >>> recognizer = LicensePlateRecognizer("release/kr-lpr")
        >>> recognizer(["plate.jpg"])
        [{'text': '12가3456', 'confidence': 0.99, 'valid': True, 'char_confidences': [...]}]
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        backend: str = "auto",
        num_threads: int | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise ValueError(f"{model_dir} is not a model folder (no config.json)")
        self.processor = TinyLPRImageProcessor.from_pretrained(model_dir)
        self.backend = resolve_backend(model_dir, backend)
        self.batch_size = batch_size
        if self.backend == "torch":
            self.runner = TorchRunner(model_dir, num_threads)
        else:
            path = model_dir / MODEL_FILES[self.backend]
            if self.backend == "onnx" and not path.is_file():
                path = cached_onnx(model_dir)
            if not path.is_file():
                raise ValueError(f"{path} not found: run `kr-lpr export {model_dir} --formats {self.backend}` first")
            self.runner = load_runner(path, num_threads)
        expected = (self.processor.image_height, self.processor.image_width)
        if tuple(self.runner.input_size) != expected:
            raise ValueError(
                f"the {self.backend} model takes {self.runner.input_size} images, the processor {expected}"
            )

    def logits(self, images) -> np.ndarray:
        """CTC logits `(N, time_steps, num_classes)` for images (paths, PIL images or arrays, or a list of them)."""
        canvases = self.processor.canvases(images)
        batches = range(0, len(canvases), self.batch_size)
        return np.concatenate([self.runner(canvases[i : i + self.batch_size]) for i in batches])

    def __call__(self, images, method: str = "greedy", beam_width: int = 10) -> list[dict]:
        """Readings `{"text", "confidence", "valid", "char_confidences"}`, one per image (a list even for one)."""
        return self.processor.post_process(self.logits(images), method=method, beam_width=beam_width)
