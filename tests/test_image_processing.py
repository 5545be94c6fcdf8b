import json

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image

from kr_lpr import TinyLPRImageProcessor
from kr_lpr.preprocessing_tinylpr import MAX_STRETCH, letterbox_geometry


@pytest.fixture
def processor() -> TinyLPRImageProcessor:
    return TinyLPRImageProcessor()


def plate_array(channels: int | None, dtype=np.uint8) -> np.ndarray:
    shape = (40, 160) if channels is None else (40, 160, channels)
    array = np.zeros(shape, dtype=dtype)
    array[10:30, 20:140] = np.iinfo(dtype).max
    return array


@pytest.mark.parametrize("channels", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_array_inputs(processor, channels, dtype):
    pixels = processor(images=plate_array(channels, dtype), return_tensors="np")["pixel_values"]
    assert pixels.shape == (1, 1, 64, 128) and pixels.dtype == np.float32
    assert pixels.max() == pytest.approx(1.0) and pixels.min() == 0.0


def test_pil_path_and_list_inputs_agree(processor, tmp_path):
    image = Image.fromarray(plate_array(3))
    image.save(tmp_path / "plate.png")
    rgba = image.convert("RGBA")
    batch = processor(
        images=[image, str(tmp_path / "plate.png"), rgba, Image.fromarray(plate_array(None, np.uint16))],
        return_tensors="pt",
    )
    pixels = batch["pixel_values"]
    assert pixels.shape == (4, 1, 64, 128)
    for other in pixels[1:]:
        assert (other - pixels[0]).abs().max() < 2 / 255


def test_rgba_transparent_composites_on_white(processor):
    array = np.zeros((20, 40, 4), np.uint8)  # fully transparent black
    pixels = processor(images=array, return_tensors="np")["pixel_values"]
    assert pixels[0, 0, 32, 64] == pytest.approx(1.0)


@pytest.mark.parametrize("placement, expected_offset", [("center", (0, 16)), ("top_left", (0, 0))])
def test_letterbox_placement(placement, expected_offset):
    geometry = letterbox_geometry(200, 50, 128, 64, placement)
    assert (geometry.resized_width, geometry.resized_height) == (128, 32)
    assert (geometry.offset_x, geometry.offset_y) == expected_offset
    boxes = geometry.map_boxes(np.array([[0, 0, 200, 50]]))
    np.testing.assert_allclose(boxes[0], [0, expected_offset[1], 128, expected_offset[1] + 32])


def test_stretch_placement_fills_the_canvas_and_maps_boxes_per_axis():
    geometry = letterbox_geometry(200, 50, 128, 64, "stretch")
    assert (geometry.resized_width, geometry.resized_height, geometry.offset_x, geometry.offset_y) == (128, 64, 0, 0)
    np.testing.assert_allclose(geometry.map_boxes(np.array([[100, 25, 200, 50]]))[0], [64, 32, 128, 64])
    canvas, _ = TinyLPRImageProcessor(placement="stretch").letterbox(np.full((50, 200), 200, np.uint8))
    assert (canvas == 200).all()  # no padding left


def test_fill_width_stretches_flat_crops_at_most_max_stretch_and_squeezes_tall_ones():
    """A flat crop fills the width and is stretched in height at most `MAX_STRETCH` times more, centred between
    padding rows; a crop already as tall as the input's aspect or taller fills the canvas as "stretch" does."""
    flat = letterbox_geometry(400, 88, 128, 64, "fill_width")  # 0.22 tall for its width: 28 rows letterboxed
    assert (flat.resized_width, flat.offset_x) == (128, 0)
    assert flat.resized_height == round(88 * 128 / 400 * MAX_STRETCH) == 42 and flat.offset_y == (64 - 42) // 2
    np.testing.assert_allclose(flat.map_boxes(np.array([[0, 0, 400, 88]]))[0], [0, 11, 128, 53])
    for width, height in ((200, 100), (150, 120)):
        assert letterbox_geometry(width, height, 128, 64, "fill_width") == letterbox_geometry(
            width, height, 128, 64, "stretch"
        )
    canvas, _ = TinyLPRImageProcessor(placement="fill_width").letterbox(np.full((88, 400), 200, np.uint8))
    assert (canvas[11:53] == 200).all() and (canvas[:11] == 0).all() and (canvas[53:] == 0).all()


def test_a_new_processor_fits_crops_as_the_release_does():
    """Training from scratch, or `TinyLPRImageProcessor()` beside other weights, reads crops as the release does."""
    release = json.loads((REPO_ROOT / "release" / "kr-lpr" / "preprocessor_config.json").read_text(encoding="utf-8"))
    new = TinyLPRImageProcessor().to_dict()
    shared = new.keys() & release.keys()
    assert shared >= {"placement", "max_stretch", "image_height", "image_width", "pad_value", "labels"}
    assert {name: new[name] for name in shared} == {name: release[name] for name in shared}


def test_max_stretch_sets_how_much_fill_width_stretches_flat_crops(tmp_path):
    """1 letterboxes a flat crop; a larger `max_stretch` stretches it further, up to the full height; the value
    travels in `preprocessor_config.json`."""
    flat = np.full((88, 400), 200, np.uint8)
    letterboxed = TinyLPRImageProcessor(placement="fill_width", max_stretch=1.0).letterbox(flat)[1]
    assert letterboxed == letterbox_geometry(400, 88, 128, 64, "center")
    assert letterbox_geometry(400, 88, 128, 64, "fill_width", max_stretch=2.0).resized_height == round(88 * 0.32 * 2)
    assert letterbox_geometry(400, 88, 128, 64, "fill_width", max_stretch=5.0).resized_height == 64
    TinyLPRImageProcessor(placement="fill_width", max_stretch=1.25).save_pretrained(tmp_path)
    assert TinyLPRImageProcessor.from_pretrained(tmp_path).max_stretch == 1.25
    with pytest.raises(ValueError, match="max_stretch"):
        TinyLPRImageProcessor(max_stretch=0.5)


@pytest.mark.parametrize(
    "bad, message",
    [(np.zeros((0, 10), np.uint8), "zero size"), (np.zeros((10, 10), np.float32), "uint8 or uint16"),
     (np.zeros((10, 10, 2), np.uint8), "shape"), (12, "unsupported image type")],
)  # fmt: skip
def test_bad_arrays(processor, bad, message):
    with pytest.raises(ValueError, match=message):
        processor(images=bad)


def test_bad_files_named(processor, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path, message in [(corrupt, "cannot read image"), (empty, "empty"), (tmp_path / "missing.jpg", "not found")]:
        with pytest.raises(ValueError, match=message) as error:
            processor(images=[path])
        assert path.name in str(error.value)


def test_empty_list_rejected(processor):
    with pytest.raises(ValueError, match="no images"):
        processor(images=[])


def test_bad_placement():
    with pytest.raises(ValueError, match="placement"):
        TinyLPRImageProcessor(placement="middle")
