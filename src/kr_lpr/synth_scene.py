"""Puts a flat plate into a camera crop: holder frame, background, perspective, then the degradations
real crops show (blur, low resolution, lighting, colour casts, glare, shadows, dirt, IR, noise, JPEG).

Glyph boxes follow every geometric step exactly: their corners go through the same homography and
the axis-aligned box of the result is clipped to the image.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .synth_render import draw_text
from .synth_text import check_hangul_weights, mix_weights, pick

# Strength presets. Ranges are (low, high); `*_p` are probabilities; margins are fractions of the
# plate, blurs fractions of the height of its smallest characters, other sizes are in pixels.
# `train` follows the real crops: mostly tight crops with a little holder, bumper or background above
# and below (`text_crop_p` of them cut around the characters, inside the plate's edges, with margins that are
# fractions of the text's size), a fifth tall (tight at the sides, `tall_aspect` times as tall as wide:
# detectors box small plates so, `scripts/crop_aspect_study.py`) and most plates narrower than `small_plate_px`
# tall (`small_tall_p`: real crops under 160 px wide are about 0.47 times as tall as wide, those of 250 px or
# more 0.28), half the larger ones cut flat around their text and never tall (`flat_p`, `flat_margin_y` of the
# text's height above and below: stretched to the model's input, flat real crops were read far worse than other
# shapes, and the twentieth generator cut few so) and most of the small ones squeezed sideways by `squeeze`
# (`small_squeeze_p`: the lettering of real crops under 120 px wide is a median 0.83 times as wide for its height
# as the sixteenth generator's, which squeezed none, `scripts/squeeze_study.py`), most two-row plates with their
# bolts beside the top row's outer characters
# (`top_row_bolts_p`: many real two-row crops show one touching or close to them, `scripts/two_row_bolt_study.py`),
# most plates of the drawn plate typeface with the real plates' short ㅏ and ㅓ ticks (`short_ticks_p`: the long
# ones taught the model to read a real ㅏ as ㅓ, `scripts/vowel_tick_study.py`), many white one-row plates with
# italic lettering (`italic_p`: real 2006-2019 plates print it so, `scripts/italic_study.py`),
# a third grayscale/IR, some blur and JPEG. Real crops are 100-530 px wide; plates render 80-300 px wide because
# the model sees them at 128x64 anyway. `style_weights` (None in every preset: `synth_text.STYLE_RULES`' mix, which
# the evaluation sets keep) reweights the plate types for training, e.g. `{"green": 0.22}` to draw more two-row plates;
# `hangul_weights` (None: uniform, as the evaluation sets draw) the syllables, e.g. from `scripts/hangul_weights.py`.
# `two_row_small_rules` (True in every preset, as the evaluation sets draw them) applies the small-plate squeeze and
# tall crops, measured on one-row crops, to two-row plates too; real two-row crops are cut tighter
# (`scripts/two_row_study.py`), and a training config may set it False.
PRESETS: dict[str, dict] = {
    "clean": {
        "plate_width_px": (150, 260),
        "margin_x": (0.0, 0.04),
        "margin_y": (0.02, 0.15),
        "loose_p": 0.0,
        "loose_margin": (0.1, 0.5),
        "tall_p": 0.0,
        "small_tall_p": 0.0,
        "small_plate_px": 160,
        "small_squeeze_p": 0.0,
        "squeeze": (0.65, 1.0),
        "top_row_bolts_p": 0.0,
        "short_ticks_p": 0.0,
        "italic_p": 0.0,
        "style_weights": None,
        "hangul_weights": None,
        "two_row_small_rules": True,
        "tall_aspect": (0.4, 0.75),
        "flat_p": 0.0,
        "flat_margin_y": (0.0, 0.3),
        "text_crop_p": 0.0,
        "text_margin_x": (0.05, 0.2),
        "text_margin_y": (0.1, 0.5),
        "frame_p": 0.3,
        "rotation_deg": 2.0,
        "perspective": 0.02,
        "shear": 0.03,
        "brightness": (0.9, 1.05),
        "contrast": (0.85, 1.0),
        "cast": 0.03,
        "gray_p": 0.0,
        "ir_p": 0.0,
        "night_p": 0.0,
        "shadow_p": 0.0,
        "glare_p": 0.0,
        "dirt_p": 0.0,
        "invert_p": 0.0,
        "defocus_p": 0.0,
        "defocus": (0.0, 0.0),
        "motion_p": 0.0,
        "motion": (0.0, 0.0),
        "lowres_p": 0.0,
        "lowres": (1.0, 1.0),
        "noise_p": 0.0,
        "noise": (0.0, 0.0),
        "jpeg_p": 0.0,
        "jpeg_quality": (90, 95),
        "sharpen_p": 0.0,
        "sharpen": (0.0, 0.0),
    },
    "train": {
        "plate_width_px": (80, 300),
        "margin_x": (-0.015, 0.05),
        "margin_y": (0.0, 0.22),
        "loose_p": 0.08,
        "loose_margin": (0.1, 0.8),
        "tall_p": 0.2,
        "small_tall_p": 0.7,
        "small_plate_px": 160,
        "small_squeeze_p": 0.7,
        "squeeze": (0.65, 1.0),
        "top_row_bolts_p": 0.6,
        "short_ticks_p": 0.8,
        "italic_p": 0.4,
        "style_weights": None,
        "hangul_weights": None,
        "two_row_small_rules": True,
        "tall_aspect": (0.4, 0.75),
        "flat_p": 0.5,
        "flat_margin_y": (0.0, 0.3),
        "text_crop_p": 0.75,
        "text_margin_x": (0.02, 0.18),
        "text_margin_y": (0.05, 0.55),
        "frame_p": 0.5,
        "rotation_deg": 8.0,
        "perspective": 0.06,
        "shear": 0.3,
        "brightness": (0.7, 1.2),
        "contrast": (0.6, 1.1),
        "cast": 0.08,
        "gray_p": 0.3,
        "ir_p": 0.08,
        "night_p": 0.05,
        "shadow_p": 0.2,
        "glare_p": 0.15,
        "dirt_p": 0.12,
        "invert_p": 0.02,
        "defocus_p": 0.15,
        "defocus": (0.015, 0.06),
        "motion_p": 0.12,
        "motion": (0.05, 0.3),
        "lowres_p": 0.15,
        "lowres": (0.4, 0.9),
        "noise_p": 0.45,
        "noise": (2.0, 10.0),
        "jpeg_p": 0.6,
        "jpeg_quality": (25, 90),
        "sharpen_p": 0.7,
        "sharpen": (0.5, 2.5),
    },
    "hard": {
        "plate_width_px": (60, 300),
        "margin_x": (-0.02, 0.12),
        "margin_y": (0.0, 0.5),
        "loose_p": 0.3,
        "loose_margin": (0.1, 1.0),
        "tall_p": 0.25,
        "small_tall_p": 0.25,
        "small_plate_px": 160,
        "small_squeeze_p": 0.5,
        "squeeze": (0.65, 1.0),
        "top_row_bolts_p": 0.6,
        "short_ticks_p": 0.8,
        "italic_p": 0.4,
        "style_weights": None,
        "hangul_weights": None,
        "two_row_small_rules": True,
        "tall_aspect": (0.4, 0.75),
        "flat_p": 0.0,
        "flat_margin_y": (0.0, 0.3),
        "text_crop_p": 0.4,
        "text_margin_x": (-0.01, 0.3),
        "text_margin_y": (0.0, 0.7),
        "frame_p": 0.6,
        "rotation_deg": 15.0,
        "perspective": 0.12,
        "shear": 0.2,
        "brightness": (0.45, 1.25),
        "contrast": (0.35, 1.1),
        "cast": 0.14,
        "gray_p": 0.35,
        "ir_p": 0.12,
        "night_p": 0.1,
        "shadow_p": 0.35,
        "glare_p": 0.3,
        "dirt_p": 0.25,
        "invert_p": 0.05,
        "defocus_p": 0.5,
        "defocus": (0.03, 0.1),
        "motion_p": 0.3,
        "motion": (0.08, 0.45),
        "lowres_p": 0.45,
        "lowres": (0.35, 0.85),
        "noise_p": 0.8,
        "noise": (3.0, 16.0),
        "jpeg_p": 0.8,
        "jpeg_quality": (15, 70),
        "sharpen_p": 0.5,
        "sharpen": (0.5, 2.5),
    },
}


def resolve_strength(strength: str | dict) -> dict:
    """A preset name, or a dict overriding some keys of `PRESETS["train"]` (or of `strength["preset"]`); raises
    ValueError naming a bad key, plate style or syllable."""
    if isinstance(strength, str):
        if strength not in PRESETS:
            raise ValueError(f"unknown strength preset {strength!r}; choose one of {sorted(PRESETS)} or pass a dict")
        return PRESETS[strength]
    overrides = dict(strength)
    base = resolve_strength(overrides.pop("preset", "train"))
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(f"unknown strength keys {unknown}; valid keys: {sorted(base)}")
    params = {**base, **overrides}
    mix_weights(params["style_weights"])
    check_hangul_weights(params["hangul_weights"])
    return params


def project_boxes(matrix: np.ndarray, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Axis-aligned boxes of the projected corners of `(n, 4)` boxes, clipped to the image."""
    x1, y1, x2, y2 = np.asarray(boxes, dtype=np.float64).T
    corners = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1).reshape(-1, 1, 2)
    mapped = cv2.perspectiveTransform(corners, matrix).reshape(-1, 4, 2)
    projected = np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1)
    return np.clip(projected, 0, [width, height, width, height]).astype(np.float32)


_HOLDER_BRANDS = ("HYUNDAI", "KIA MOTORS", "GENESIS", "RENAULT", "CHEVROLET", "SSANGYONG", "AUTO PLAZA", "BMW")


def _add_frame(rng: np.random.Generator, plate: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A plastic holder or bumper recess right around the RGBA plate (mostly dark), as most real crops show;
    some holders print a dealer's name below the plate."""
    thickness = max(1, round(plate.shape[0] * rng.uniform(0.02, 0.1)))
    bottom = thickness
    branded = rng.random() < 0.25
    if branded:
        bottom = max(4, round(plate.shape[0] * rng.uniform(0.12, 0.22)))
    shade = rng.uniform(5, 70) if rng.random() < 0.8 else rng.uniform(100, 200)
    padded = cv2.copyMakeBorder(plate, thickness, bottom, thickness, thickness, cv2.BORDER_CONSTANT, value=(0,) * 4)
    alpha = cv2.merge([padded[..., 3]] * 3).astype(np.float32) / 255
    rgb = (shade + (padded[..., :3].astype(np.float32) - shade) * alpha).astype(np.uint8)
    if branded:
        holder = Image.fromarray(rgb)
        ink = int(np.clip(shade + rng.uniform(40, 110) * (1 if rng.random() < 0.5 else -1), 0, 255))
        font = "dejavu-bold" if rng.random() < 0.5 else "dejavu"
        centre = (holder.width * rng.uniform(0.3, 0.7), holder.height - bottom / 2)
        brand = _HOLDER_BRANDS[rng.integers(len(_HOLDER_BRANDS))]
        draw_text(ImageDraw.Draw(holder), centre, brand, font, max(4, round(bottom * 0.6)), (ink,) * 3)
        rgb = np.asarray(holder)
    opaque = np.full(padded.shape[:2], 255, dtype=np.uint8)
    return cv2.merge([rgb, opaque]), boxes + thickness


def _target_quad(rng: np.random.Generator, width: float, height: float, params: dict) -> np.ndarray:
    """Where the plate's corners land: perspective, shear and rotation about its centre."""
    x = np.array([-0.5, 0.5, 0.5, -0.5]) * width
    y = np.array([-0.5, -0.5, 0.5, 0.5]) * height
    yaw, pitch = rng.uniform(-1, 1, 2) * params["perspective"]
    x, y = x * (1 + pitch * y / height * 2), y * (1 + yaw * x / width * 2)
    x = x + rng.uniform(-1, 1) * params["shear"] * y
    angle = np.deg2rad(rng.uniform(-1, 1) * params["rotation_deg"])
    cos, sin = np.cos(angle), np.sin(angle)
    return np.column_stack([x * cos - y * sin, x * sin + y * cos])


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Car body, bumper or dark surroundings: a smooth random field around a base colour (float32 RGB)."""
    kind = pick(rng, (0.65, 0.15, 0.2))
    if kind == 0:  # dark bumper or recess
        base = np.full(3, rng.uniform(5, 70))
    elif kind == 1:  # painted body: a grey with a tint
        base = rng.uniform(20, 220) * (1 + rng.uniform(-0.35, 0.35, 3))
    else:  # grey paint, road or wall
        base = np.full(3, rng.uniform(60, 200)) + rng.normal(0, 8, 3)
    coarse = base + rng.normal(0, rng.uniform(5, 35), (max(2, height // 12), max(2, width // 12), 1))
    return _upsample(coarse, width, height)


def _upsample(field: np.ndarray, width: int, height: int) -> np.ndarray:
    """A coarse (h, w, 3) field smoothly resized to the crop: spatial effects are computed at low resolution."""
    return cv2.resize(np.ascontiguousarray(field, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def compose(
    rng: np.random.Generator, plate: np.ndarray, boxes: np.ndarray, params: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Warps the RGBA plate into a crop with background around it; returns the float32 crop and projected boxes."""
    if rng.random() < params["frame_p"]:
        plate, boxes = _add_frame(rng, plate, boxes)
    plate_h, plate_w = plate.shape[:2]
    quad = _target_quad(rng, plate_w, plate_h, params)
    small = plate_w < params["small_plate_px"]
    # Tested first so that with `small_squeeze_p` 0 nothing is drawn: the sixteenth generator's plates, byte for byte.
    if small and params["small_squeeze_p"] and rng.random() < params["small_squeeze_p"]:
        quad = quad * (rng.uniform(*params["squeeze"]), 1.0)
    span = quad.max(axis=0) - quad.min(axis=0)
    loose, tall, tight = 0, 1, 2
    # Drawn only when `flat_p` > 0: with 0 the twentieth generator's plates, byte for byte.
    flat = not small and params["flat_p"] > 0 and rng.random() < params["flat_p"]
    tall_p = params["small_tall_p"] if small else params["tall_p"]
    fit = tight if flat else pick(rng, (params["loose_p"], tall_p, 1 - params["loose_p"] - tall_p))
    if fit == loose:
        left, right, top, bottom = rng.uniform(*params["loose_margin"], 4) * np.repeat(span, 2)
    else:
        left, right = rng.uniform(*params["margin_x"], 2) * span[0]
        top, bottom = rng.uniform(*params["margin_y"], 2) * span[1]
    if fit == tall:  # the crop takes the detector box's shape; plates already that tall get nothing more
        extra = max(0.0, rng.uniform(*params["tall_aspect"]) * (span[0] + left + right) - (span[1] + top + bottom))
        above = rng.uniform(0.2, 0.8)
        top, bottom = top + extra * above, bottom + extra * (1 - above)
    quad = quad - quad.min(axis=0) + [left, top]
    width = max(8, round(span[0] + left + right))
    height = max(8, round(span[1] + top + bottom))
    corners = np.array([[0, 0], [plate_w, 0], [plate_w, plate_h], [0, plate_h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners, quad.astype(np.float32))
    # Boxes are in pixel-edge coordinates, OpenCV samples pixel centres: warp with the matching matrix.
    centres_to_edges = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    on_centres = np.linalg.inv(centres_to_edges) @ matrix @ centres_to_edges
    warped = cv2.warpPerspective(plate, on_centres, (width, height), flags=cv2.INTER_LINEAR)
    alpha = cv2.merge([warped[..., 3]] * 3).astype(np.float32) / 255
    crop = _background(rng, width, height)
    crop += (warped[..., :3].astype(np.float32) - crop) * alpha
    boxes = project_boxes(matrix, boxes, width, height)
    if flat or (fit != tall and rng.random() < params["text_crop_p"]):
        margin_y = params["flat_margin_y"] if flat else params["text_margin_y"]
        return _crop_around_text(rng, crop, boxes, params["text_margin_x"], margin_y)
    return crop, boxes


def _crop_around_text(
    rng: np.random.Generator,
    crop: np.ndarray,
    boxes: np.ndarray,
    margin_x: tuple[float, float],
    margin_y: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Cuts the crop down to the characters plus margins drawn as fractions of the text's size: detectors
    box real plates around their text, often inside the plate's edges (`scripts/crop_margins.py`)."""
    text = np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)])
    size = text[2:] - text[:2]
    left, right = rng.uniform(*margin_x, 2) * size[0]
    top, bottom = rng.uniform(*margin_y, 2) * size[1]
    height, width = crop.shape[:2]
    x1, y1 = max(0, int(text[0] - left)), max(0, int(text[1] - top))
    x2, y2 = min(width, int(np.ceil(text[2] + right))), min(height, int(np.ceil(text[3] + bottom)))
    shifted = boxes - np.array([x1, y1, x1, y1], dtype=np.float32)
    return crop[y1:y2, x1:x2], np.clip(shifted, 0, [x2 - x1, y2 - y1] * 2).astype(np.float32)


def _coarse_grid(width: int, height: int, cells: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Normalised x, y in [-1, 1] on a coarse grid (about `cells` px per node) covering the crop."""
    xs = np.linspace(-1, 1, max(2, width // cells + 2), dtype=np.float32)
    ys = np.linspace(-1, 1, max(2, height // cells + 2), dtype=np.float32)
    return np.meshgrid(xs, ys)


def _lighting(rng: np.random.Generator, pixels: np.ndarray, params: dict) -> np.ndarray:
    """Exposure, contrast, uneven illumination and a colour cast (white balance, sodium lamps, tinted glass)."""
    contrast = rng.uniform(*params["contrast"])
    pixels = pixels * contrast + float(pixels.mean()) * (1 - contrast)
    warm, green = rng.normal(0, params["cast"]), rng.normal(0, params["cast"] / 2)
    gains = np.array([1 + warm, 1 + green, 1 - warm], dtype=np.float32) * rng.uniform(*params["brightness"])
    # gains at the four corners, tilted along a random direction: light falls off across the crop
    angle, tilt = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.3)
    x, y = np.array([[-1.0, 1.0], [-1.0, 1.0]]), np.array([[-1.0, -1.0], [1.0, 1.0]])
    ramp = 1 + tilt * (np.cos(angle) * x + np.sin(angle) * y)
    return pixels * _upsample(ramp[..., None] * gains, *pixels.shape[1::-1])


def _shadow(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    x, y = _coarse_grid(*pixels.shape[1::-1])
    angle, softness = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.3)
    side = 1 / (1 + np.exp(-(np.cos(angle) * x + np.sin(angle) * y - rng.uniform(-0.6, 0.6)) / softness))
    factor = 1 - rng.uniform(0.3, 0.7) * side
    return pixels * _upsample(np.repeat(factor[..., None], 3, axis=2), *pixels.shape[1::-1])


def _glare(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    x, y = _coarse_grid(*pixels.shape[1::-1])
    cx, cy = rng.uniform(-1, 1, 2)
    sx, sy = rng.uniform(0.1, 0.8), rng.uniform(0.4, 1.6)
    blob = rng.uniform(40, 160) * np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2) / 2)
    return pixels + _upsample(np.repeat(blob[..., None], 3, axis=2), *pixels.shape[1::-1])


def _dirt(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    """Blotches of mud and grime: a thresholded low-frequency noise field darkens and browns the image."""
    height, width = pixels.shape[:2]
    field = rng.random((max(2, height // 10), max(2, width // 10), 1), dtype=np.float32)
    blotches = np.clip((field - rng.uniform(0.55, 0.8)) * 4, 0, 1)
    mud = np.array([0.85, 0.78, 0.66], dtype=np.float32) * rng.uniform(0.75, 1.0)
    return pixels * _upsample(1 - blotches * (1 - mud), width, height)


def _motion_blur(rng: np.random.Generator, pixels: np.ndarray, length: int) -> np.ndarray:
    kernel = np.zeros((length, length), dtype=np.float32)
    kernel[length // 2, :] = 1
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(pixels, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)


def _defocus(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones run on a downscaled copy, which looks the same and costs far less."""
    if sigma <= 1.5:
        return cv2.GaussianBlur(pixels, (0, 0), sigma)
    height, width = pixels.shape[:2]
    small = cv2.resize(
        pixels, (max(2, round(width / sigma)), max(2, round(height / sigma))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 0.8), (width, height), interpolation=cv2.INTER_LINEAR)


def _grayscale(rng: np.random.Generator, pixels: np.ndarray, infrared: bool) -> np.ndarray:
    gray = cv2.cvtColor(np.clip(pixels, 0, 255), cv2.COLOR_RGB2GRAY)
    if infrared:  # retro-reflective plates glow under IR flash while their surroundings stay dark
        gray = 255 * (gray / 255) ** rng.uniform(0.4, 0.8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


_NOISE_BANK_SHAPE = (512, 1024, 3)


@functools.cache
def _noise_bank() -> np.ndarray:
    """Fixed unit Gaussian noise; plates take random windows of it (drawing fresh noise costs 10x more)."""
    return np.random.default_rng(0).standard_normal(_NOISE_BANK_SHAPE, dtype=np.float32)


def _noise(rng: np.random.Generator, pixels: np.ndarray, sigma: float) -> np.ndarray:
    height, width = pixels.shape[:2]
    bank = _noise_bank()
    if height > bank.shape[0] or width > bank.shape[1]:
        return pixels + sigma * rng.standard_normal(pixels.shape, dtype=np.float32)
    y, x = rng.integers(0, bank.shape[0] - height + 1), rng.integers(0, bank.shape[1] - width + 1)
    window = bank[y : y + height, x : x + width]
    if rng.random() < 0.5:  # luminance-only noise
        window = cv2.merge([np.ascontiguousarray(window[..., 0])] * 3)
    return pixels + sigma * window


def _sharpen(pixels: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Unsharp masking at the pixel scale, as camera pipelines do before compression: halos beside strokes."""
    return pixels + amount * (pixels - cv2.GaussianBlur(pixels, (0, 0), sigma))


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def degrade(rng: np.random.Generator, pixels: np.ndarray, text_height: float, params: dict) -> np.ndarray:
    """Photometric and resolution degradations of a float32 RGB crop; returns uint8.
    Blur sizes are fractions of `text_height`, the height in pixels of the plate's smallest characters."""
    pixels = _lighting(rng, pixels, params)
    if rng.random() < params["night_p"]:
        pixels = pixels * rng.uniform(0.3, 0.6)
    if rng.random() < params["shadow_p"]:
        pixels = _shadow(rng, pixels)
    if rng.random() < params["glare_p"]:
        pixels = _glare(rng, pixels)
    if rng.random() < params["dirt_p"]:
        pixels = _dirt(rng, pixels)
    if rng.random() < params["motion_p"]:
        length = round(rng.uniform(*params["motion"]) * text_height)
        if length >= 2:
            pixels = _motion_blur(rng, pixels, length)
    if rng.random() < params["defocus_p"]:
        pixels = _defocus(pixels, max(0.3, rng.uniform(*params["defocus"]) * text_height))
    if rng.random() < params["lowres_p"]:
        height, width = pixels.shape[:2]
        factor = rng.uniform(*params["lowres"])
        small = cv2.resize(
            pixels, (max(4, round(width * factor)), max(4, round(height * factor))), interpolation=cv2.INTER_AREA
        )
        pixels = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < params["gray_p"]:
        pixels = _grayscale(rng, pixels, infrared=rng.random() < params["ir_p"] / params["gray_p"])
    if rng.random() < params["noise_p"]:
        pixels = _noise(rng, pixels, rng.uniform(*params["noise"]))
    if rng.random() < params["invert_p"]:
        pixels = 255 - pixels
    quality = int(rng.integers(*params["jpeg_quality"], endpoint=True)) if rng.random() < params["jpeg_p"] else None
    # Drawn last, though applied before compression, so that with `sharpen_p` 0 the plates stay byte for byte.
    if rng.random() < params["sharpen_p"]:
        pixels = _sharpen(pixels, rng.uniform(*params["sharpen"]), rng.uniform(0.5, 1.2))
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return pixels if quality is None else _jpeg(pixels, quality)
