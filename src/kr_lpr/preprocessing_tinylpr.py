"""Image loading and letterboxing shared by the image processor, the dataset and the bundle.

Depends on numpy and Pillow only, so the deployment bundle inlines this file unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

PLACEMENTS = ("center", "top_left", "stretch", "fill_width")
# The release's placement since stage 56 (README "Flat crops"; `scripts/crop_aspect_study.py` reads the crops with
# it, "stretch" and "center").
DEFAULT_PLACEMENT = "fill_width"
# "fill_width" stretches a crop's height at most this much more than its width by default: a flat one-row crop
# stretched to the full height turns its lettering into tall slivers (`scripts/crop_aspect_study.py`,
# `scripts/max_stretch_study.py`).
MAX_STRETCH = 1.5
# Pillow's decompression-bomb guard stops at ~179 MP; plates never need more than this.
MAX_IMAGE_PIXELS = 50_000_000


@dataclass(frozen=True)
class Letterbox:
    """Where a resized image sits inside the padded canvas: `canvas = source * scale + offset`."""

    scale_x: float
    scale_y: float
    offset_x: int
    offset_y: int
    resized_width: int
    resized_height: int

    def map_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Maps `(n, 4)` source-pixel boxes `x1 y1 x2 y2` into canvas pixels."""
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], dtype=np.float32)
        offset = np.array([self.offset_x, self.offset_y, self.offset_x, self.offset_y], dtype=np.float32)
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale + offset


def load_image(image: str | os.PathLike | Image.Image | np.ndarray) -> Image.Image:
    """Opens a path, PIL image or array as a PIL image; raises ValueError naming the problem."""
    if isinstance(image, (str, os.PathLike)):
        return _open_file(os.fspath(image))
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"image has zero size {image.size}")
        return image
    if isinstance(image, np.ndarray):
        return _array_to_image(image)
    raise ValueError(f"unsupported image type {type(image).__name__}; pass a path, PIL image or numpy array")


def _open_file(path: str) -> Image.Image:
    if not os.path.isfile(path):
        raise ValueError(f"image file not found: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"image file is empty: {path}")
    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"image too large ({opened.width}x{opened.height}): {path}")
            opened.load()
            return opened.copy()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error


def _array_to_image(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"array image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image array has zero size {array.shape}")
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ValueError(f"array image must be uint8 or uint16, got {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(array))


def to_grayscale(image: Image.Image) -> Image.Image:
    """Converts any Pillow mode to 8-bit luminance; alpha is composited on white first."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        scaled = np.asarray(image, dtype=np.uint32) >> 8
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L")


def letterbox_geometry(
    width: int, height: int, target_width: int, target_height: int, placement: str, max_stretch: float = MAX_STRETCH
) -> Letterbox:
    """Scale keeping aspect ratio so the image fits the target, then place it; "stretch" fills the target;
    "fill_width" fills its width and its height up to `max_stretch` times the width's scale, centred."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if placement == "stretch":
        return Letterbox(target_width / width, target_height / height, 0, 0, target_width, target_height)
    if placement == "fill_width":
        scale_x = target_width / width
        resized_height = max(1, min(target_height, round(height * scale_x * max_stretch)))
        offset_y = (target_height - resized_height) // 2
        return Letterbox(scale_x, resized_height / height, 0, offset_y, target_width, resized_height)
    scale = min(target_width / width, target_height / height)
    resized_width = max(1, min(target_width, round(width * scale)))
    resized_height = max(1, min(target_height, round(height * scale)))
    if placement == "center":
        offset_x, offset_y = (target_width - resized_width) // 2, (target_height - resized_height) // 2
    else:
        offset_x, offset_y = 0, 0
    return Letterbox(resized_width / width, resized_height / height, offset_x, offset_y, resized_width, resized_height)


def to_pixel_values(canvases: np.ndarray) -> np.ndarray:
    """`(N, H, W)` uint8 canvases to the model's `(N, 1, H, W)` float32 input in [0, 1]."""
    return canvases[:, None].astype(np.float32) / 255.0


def letterbox(
    image: Image.Image,
    target_width: int,
    target_height: int,
    placement: str = DEFAULT_PLACEMENT,
    pad_value: int = 0,
    max_stretch: float = MAX_STRETCH,
) -> tuple[np.ndarray, Letterbox]:
    """Grayscale, resize to fit (`letterbox_geometry`) and pad: returns a `(H, W)` uint8 canvas and its geometry."""
    gray = to_grayscale(image)
    geometry = letterbox_geometry(gray.width, gray.height, target_width, target_height, placement, max_stretch)
    resized = gray.resize((geometry.resized_width, geometry.resized_height), Image.Resampling.BILINEAR)
    canvas = np.full((target_height, target_width), pad_value, dtype=np.uint8)
    canvas[
        geometry.offset_y : geometry.offset_y + geometry.resized_height,
        geometry.offset_x : geometry.offset_x + geometry.resized_width,
    ] = np.asarray(resized)
    return canvas, geometry
