"""LicensePlateRecognizer: every backend reads what the PyTorch model reads; inputs, caching, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_export import plate_images, pytorch_logits

import kr_lpr
from kr_lpr import TinyLPRImageProcessor
from kr_lpr.export import export_model
from kr_lpr.inference import BATCH_SIZE, LicensePlateRecognizer, cache_root, model_fingerprint
from kr_lpr.lpr_infer_template import load_runner

READING_KEYS = {"text", "confidence", "valid", "char_confidences"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("cache")
        patch.setenv("KR_LPR_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def model_dir(random_model_dir, cache) -> Path:
    """A bare Hub-format folder: no exports, so the ONNX backend exports into the cache."""
    return random_model_dir


@pytest.fixture(scope="module")
def exported_model_dir(model_dir, tmp_path_factory) -> Path:
    """The same weights with `kr-lpr export` output next to them."""
    folder = tmp_path_factory.mktemp("exported")
    for path in model_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    export_model(folder, folder, ["onnx", "tflite", "tflite-uint8"], plate_images(32, seed=12), num_calibration=32)
    return folder


@pytest.fixture(scope="module")
def images() -> list:
    """More images than one runtime batch, as arrays, PIL images (RGBA too) and files."""
    arrays = plate_images(BATCH_SIZE + 5, seed=13)
    return [Image.fromarray(a).convert("RGBA") if i % 3 == 1 else a for i, a in enumerate(arrays)]


@pytest.fixture(scope="module")
def expected(model_dir, images) -> tuple[np.ndarray, list[dict]]:
    logits = pytorch_logits(model_dir, images)
    return logits, TinyLPRImageProcessor.from_pretrained(model_dir).post_process(logits)


def test_auto_runs_onnx_exported_once_into_the_cache(model_dir, cache, images, expected, monkeypatch):
    recognizer = LicensePlateRecognizer(model_dir)
    assert recognizer.backend == "onnx"
    cached = cache_root() / model_fingerprint(model_dir) / "model.onnx"
    assert cache_root() == cache and cached.is_file()
    readings = recognizer(images)
    assert [r["text"] for r in readings] == [r["text"] for r in expected[1]]
    np.testing.assert_allclose(recognizer.logits(images), expected[0], atol=1e-4)

    import kr_lpr.export

    monkeypatch.setattr(kr_lpr.export, "export_onnx", lambda *args: pytest.fail("exported twice"))
    assert LicensePlateRecognizer(model_dir, num_threads=1)(images[:2]) == readings[:2]


@pytest.mark.parametrize("backend", ["onnx", "tflite", "torch"])
def test_float_backends_read_what_pytorch_reads(backend, exported_model_dir, images, expected):
    recognizer = LicensePlateRecognizer(exported_model_dir, backend=backend, num_threads=1)
    logits = recognizer.logits(images)
    np.testing.assert_allclose(logits, expected[0], atol=1e-4)
    readings = recognizer(images)
    assert [r["text"] for r in readings] == [r["text"] for r in expected[1]]
    np.testing.assert_allclose([r["confidence"] for r in readings], [r["confidence"] for r in expected[1]], atol=1e-4)


def test_uint8_backend_runs_the_uint8_model(exported_model_dir, images, expected):
    recognizer = LicensePlateRecognizer(exported_model_dir, backend="tflite-uint8", num_threads=2)
    logits = recognizer.logits(images)
    processor = TinyLPRImageProcessor.from_pretrained(exported_model_dir)
    canvases = np.stack([processor.letterbox(image)[0] for image in images])
    np.testing.assert_array_equal(logits, load_runner(exported_model_dir / "model_uint8.tflite", 1)(canvases))
    assert recognizer(images) == processor.post_process(logits)
    # a random network quantizes worse than a trained one; this only catches broken (de)quantization
    assert (logits.argmax(-1) == expected[0].argmax(-1)).mean() > 0.5


def test_auto_prefers_the_exported_uint8_model_then_onnxruntime(exported_model_dir, monkeypatch):
    assert LicensePlateRecognizer(exported_model_dir).backend == "tflite-uint8"
    monkeypatch.setattr("kr_lpr.inference.import_tflite", lambda: None)
    assert LicensePlateRecognizer(exported_model_dir).backend == "onnx"
    monkeypatch.setattr("kr_lpr.inference.has_onnxruntime", lambda: False)
    assert LicensePlateRecognizer(exported_model_dir).backend == "torch"


def test_single_images_of_every_kind(model_dir, images, expected, tmp_path):
    recognizer = LicensePlateRecognizer(model_dir, num_threads=1)
    path = tmp_path / "plate.png"
    Image.fromarray(images[0]).save(path)
    for image in (images[0], Image.fromarray(images[0]), path, str(path)):
        readings = recognizer(image)
        assert len(readings) == 1 and set(readings[0]) == READING_KEYS
        assert readings[0]["text"] == expected[1][0]["text"]
    beam = recognizer(images[:4], method="beam")
    assert len(beam) == 4 and all(set(r) == READING_KEYS for r in beam)


def test_package_exposes_the_recognizer():
    assert kr_lpr.LicensePlateRecognizer is LicensePlateRecognizer


@pytest.mark.parametrize(
    ("make_call", "message"),
    [
        (lambda d, tmp: LicensePlateRecognizer(tmp), "is not a model folder"),
        (lambda d, tmp: LicensePlateRecognizer(d, backend="tensorrt"), "backend must be one of"),
        (lambda d, tmp: LicensePlateRecognizer(d, backend="tflite-uint8"), "run `kr-lpr export"),
        (lambda d, tmp: LicensePlateRecognizer(d)([tmp / "missing.jpg"]), "image 0: image file not found"),
        (lambda d, tmp: LicensePlateRecognizer(d)([]), "no images given"),
        (lambda d, tmp: LicensePlateRecognizer(d)(np.zeros((4, 4, 2), np.uint8)), "array image must be"),
    ],
)
def test_bad_input_raises_a_clear_value_error(make_call, message, model_dir, tmp_path):
    with pytest.raises(ValueError, match=message.replace("`", ".").replace("(", r"\(")):
        make_call(model_dir, tmp_path)
