"""Draws flat, front-on plate faces: background, hologram/EV band, rim, bolts and embossed glyphs.

Plate templates follow the official sizes (520x110 mm long plate, 335x155 mm short plate,
335x170 mm two-row plate); glyph sizes and spacing within them were estimated from real crops. Hangul
glyphs come from pip-installed fonts (NanumGothic from `koreanize_matplotlib`), condensed horizontally
like the narrow Korean plate typeface and cached per font and weight, or are composed from the plate
typeface's jamo (`PLATE_JAMO_STROKES`: uniform geometric strokes, a square ㅁ, a ㅎ with a short vertical
tick over a bar and a ring). Digits come from those fonts, DejaVu Sans (matplotlib), or `PLATE_DIGIT_STROKES`: the plate
typeface's own digit shapes (flat-topped 3 and 5, open 4, stadium 0 (an ellipse in the top row of old two-row
plates), straight-stemmed 6 and 9, a narrow 7 whose stem bends to vertical; the old italic typeface curls its 5).
Both are drawn as strokes because no pip package ships that typeface.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

try:
    import cv2
except ImportError as error:
    raise ImportError("the synthetic plate generator needs OpenCV: pip install 'kr-lpr[train]'") from error

from .plate_codec_tinylpr import HANGUL, REGIONS
from .synth_text import pick

# Plates are tiny: OpenCV's thread pool only adds overhead, and a pool started before a DataLoader
# forks its workers deadlocks them (the worker hangs in its first OpenCV call).
cv2.setNumThreads(0)

_MASTER_SIZE = 160  # font size of the cached master glyphs; they are resized per plate
# Extra horizontal stroke width in master pixels: condensing a glyph thins its vertical strokes.
_WEIGHTS = (0, 6, 12, 18)
_WEIGHT_P = (0.1, 0.3, 0.35, 0.25)
# Stroke width of the drawn plate typeface, as a fraction of the glyph height.
STROKE_FONTS = {"plate": 0.12, "plate-bold": 0.16, "plate-thin": 0.085}
# A syllable stacks up to five horizontal strokes (호) where a digit has three: thinner strokes keep it open.
_HANGUL_STROKE_SCALE = 0.75
NANUM_FONTS = ("nanum", "nanum-bold", "nanum-extrabold")
HANGUL_FONTS = NANUM_FONTS + ("plate", "plate-bold")
DIGIT_FONTS = NANUM_FONTS + ("dejavu", "dejavu-bold", "plate", "plate-bold")
_HANGUL_FONT_P = (0.1, 0.2, 0.15, 0.35, 0.2)
_DIGIT_FONT_P = (0.04, 0.14, 0.14, 0.03, 0.05, 0.3, 0.3)
# Old printed two-row plates (green, yellow) and many 2006-2019 white ones have thin lettering, digits and Hangul alike.
THIN_FONTS = ("plate-thin", "nanum")

# The top row of old two-row plates prints 0 as an ellipse, where the later typeface has a stadium; real `05나`
# and `03더` had that 0 read as 9 or 6. The font faces draw it as their Latin O.
ROUND_ZERO = "O"
# The italic typeface of old white plates (`ITALIC_LEAN`) curls the 5's bowl round towards its stem, which real
# crops read as 6; the font faces keep their own 5.
CURLED_FIVE = "5@"
# Plate digits as strokes in a unit cell (x right, y down): ("line", x0, y0, x1, y1) or
# ("arc", cx, cy, rx, ry, start_deg, end_deg) with angles clockwise from +x, as in cv2.ellipse2Poly.
PLATE_DIGIT_STROKES: dict[str, tuple[tuple, ...]] = {
    "0": (
        ("arc", 0.5, 0.26, 0.5, 0.26, 180, 360),
        ("line", 1, 0.26, 1, 0.74),
        ("arc", 0.5, 0.74, 0.5, 0.26, 0, 180),
        ("line", 0, 0.74, 0, 0.26),
    ),
    "1": (("line", 0.62, 0, 0.62, 1), ("line", 0.62, 0, 0.18, 0.22)),
    "2": (("arc", 0.5, 0.27, 0.5, 0.27, 195, 380), ("line", 0.97, 0.36, 0, 1), ("line", 0, 1, 1, 1)),
    "3": (("line", 0.04, 0, 0.96, 0), ("line", 0.96, 0, 0.36, 0.4), ("arc", 0.5, 0.68, 0.5, 0.31, 245, 515)),
    "4": (("line", 0.74, 0, 0.74, 1), ("line", 0.74, 0, 0, 0.7), ("line", 0, 0.7, 1, 0.7)),
    "5": (("line", 0.95, 0, 0.1, 0), ("line", 0.1, 0, 0.06, 0.45), ("arc", 0.5, 0.67, 0.5, 0.33, 222, 515)),
    CURLED_FIVE: (("line", 0.92, 0, 0.13, 0), ("line", 0.13, 0, 0.09, 0.45), ("arc", 0.51, 0.67, 0.49, 0.33, 223, 540)),
    "6": (("arc", 0.5, 0.68, 0.5, 0.32, 0, 360), ("line", 0.8, 0, 0.06, 0.56)),
    "7": (("line", 0.2, 0, 1, 0), ("arc", 1.45, 1, 0.9, 1.155, 180, 240)),
    "8": (("arc", 0.5, 0.24, 0.42, 0.24, 0, 360), ("arc", 0.5, 0.7, 0.5, 0.3, 0, 360)),
    "9": (("arc", 0.5, 0.32, 0.5, 0.32, 0, 360), ("line", 0.94, 0.44, 0.2, 1)),
    ROUND_ZERO: (("arc", 0.5, 0.5, 0.5, 0.5, 0, 360),),
}

# The plate typeface's jamo in the same unit-cell strokes; a syllable fits its initial consonant into
# the box its vowel leaves free (`_SYLLABLE_LAYOUT`, `plate_polylines`). ㄱ leans when a vertical
# vowel follows (가, 거); ㅎ stands as tall as a vertical vowel, its ring filling most of the height (하, 허:
# `_BESIDE_VERTICAL_VOWEL`). As on real plates, ㅁ is drawn smaller than ㅇ (a square looks bigger than a ring).
PLATE_JAMO_STROKES: dict[str, tuple[tuple, ...]] = {
    "ㄱ": (("line", 0, 0, 1, 0), ("line", 1, 0, 1, 1)),
    "ㄱ/": (("line", 0, 0, 0.9, 0), ("line", 0.9, 0, 0.25, 1)),
    "ㄴ": (("line", 0, 0, 0, 1), ("line", 0, 1, 1, 1)),
    "ㄷ": (("line", 1, 0, 0, 0), ("line", 0, 0, 0, 1), ("line", 0, 1, 1, 1)),
    "ㄹ": (
        ("line", 0, 0, 1, 0),
        ("line", 1, 0, 1, 0.5),
        ("line", 1, 0.5, 0, 0.5),
        ("line", 0, 0.5, 0, 1),
        ("line", 0, 1, 1, 1),
    ),
    "ㅁ": (
        ("line", 0.1, 0.1, 0.9, 0.1),
        ("line", 0.9, 0.1, 0.9, 0.9),
        ("line", 0.9, 0.9, 0.1, 0.9),
        ("line", 0.1, 0.9, 0.1, 0.1),
    ),
    "ㅂ": (("line", 0, 0, 0, 1), ("line", 1, 0, 1, 1), ("line", 0, 0.45, 1, 0.45), ("line", 0, 1, 1, 1)),
    "ㅅ": (("line", 0.5, 0, 0, 1), ("line", 0.5, 0, 1, 1)),
    "ㅇ": (("arc", 0.5, 0.5, 0.5, 0.5, 0, 360),),
    "ㅈ": (("line", 0, 0, 1, 0), ("line", 0.5, 0, 0, 1), ("line", 0.52, 0.35, 1, 1)),
    "ㅎ": (("line", 0.5, 0, 0.5, 0.14), ("line", 0, 0.27, 1, 0.27), ("arc", 0.5, 0.69, 0.44, 0.31, 0, 360)),
    "ㅎ|": (("line", 0.5, 0, 0.5, 0.12), ("line", 0.05, 0.2, 0.95, 0.2), ("arc", 0.5, 0.625, 0.46, 0.375, 0, 360)),
    "ㅏ": (("line", 0.8, 0, 0.8, 1), ("line", 0.8, 0.5, 1, 0.5)),
    "ㅓ": (("line", 1, 0, 1, 1), ("line", 0.74, 0.5, 1, 0.5)),
    "ㅏ'": (("line", 0.9, 0, 0.9, 1), ("line", 0.9, 0.5, 1, 0.5)),
    "ㅓ'": (("line", 1, 0, 1, 1), ("line", 0.84, 0.5, 1, 0.5)),
    "ㅐ": (("line", 0.7, 0, 0.7, 1), ("line", 0.7, 0.5, 0.84, 0.5), ("line", 1, 0, 1, 1)),
    "ㅗ": (("line", 0.5, 0.66, 0.5, 0.92), ("line", 0, 0.92, 1, 0.92)),
    "ㅜ": (("line", 0, 0.66, 1, 0.66), ("line", 0.5, 0.66, 0.5, 1)),
}
# Real plates print ㅏ and ㅓ with a short tick: a nub beside the stem on most crops, which the model read as ㅓ when
# it had only seen the long tick (`scripts/vowel_tick_study.py`). A syllable's shape with `SHORT_TICK` appended
# draws its vowel so (`ㅏ'`, `ㅓ'`: about half the tick, the stem nearer the consonant).
SHORT_TICK = "'"
_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_VOWELS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜ"
# Vowel -> the consonant's box (x0, y0, x1, y1) in the syllable cell.
_SYLLABLE_LAYOUT = {
    "ㅏ": (0, 0.12, 0.6, 0.88),
    "ㅓ": (0, 0.12, 0.6, 0.88),
    "ㅏ'": (0, 0.12, 0.7, 0.88),
    "ㅓ'": (0, 0.12, 0.64, 0.88),
    "ㅐ": (0, 0.12, 0.54, 0.88),
    "ㅗ": (0.1, 0, 0.9, 0.52),
    "ㅜ": (0.1, 0, 0.9, 0.52),
}
# Initials drawn in their own shape beside a vertical vowel, with the rows (y0, y1) they fill when they are not the
# vowel's: on real 하 and 허 the tick is level with the vowel's top and the ring ends near its foot.
_BESIDE_VERTICAL_VOWEL = {"ㄱ": ("ㄱ/", None), "ㅎ": ("ㅎ|", (0, 0.95))}


def _unit_points(stroke: tuple) -> np.ndarray:
    """A stroke's polyline `(n, 2)` in the unit cell."""
    kind, *values = stroke
    if kind == "line":
        return np.array(values, dtype=np.float64).reshape(2, 2)
    cx, cy, rx, ry, start, end = values
    angles = np.deg2rad(np.linspace(start, end, max(2, int(abs(end - start) / 6))))
    return np.column_stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)])


def jamo(syllable: str) -> tuple[str, str]:
    """An open syllable's initial consonant and vowel."""
    initial, vowel = divmod((ord(syllable) - 0xAC00) // 28, 21)
    return _INITIALS[initial], _VOWELS[vowel]


def plate_polylines(shape: str) -> list[np.ndarray]:
    """A digit's or an open Hangul syllable's polylines in the unit cell; a syllable's consonant is
    its jamo scaled into the box the vowel leaves free, its vowel the short-ticked one after `SHORT_TICK`."""
    if shape in PLATE_DIGIT_STROKES:
        return [_unit_points(stroke) for stroke in PLATE_DIGIT_STROKES[shape]]
    initial, vowel = jamo(shape[0])
    rows = None
    if vowel in "ㅏㅓ":
        initial, rows = _BESIDE_VERTICAL_VOWEL.get(initial, (initial, None))
    vowel += shape[1:]
    x0, y0, x1, y1 = _SYLLABLE_LAYOUT[vowel]
    y0, y1 = rows or (y0, y1)
    consonant = [_unit_points(stroke) * (x1 - x0, y1 - y0) + (x0, y0) for stroke in PLATE_JAMO_STROKES[initial]]
    return [_unit_points(stroke) for stroke in PLATE_JAMO_STROKES[vowel]] + consonant


def _package_folder(name: str) -> Path:
    """Where an installed package lives, found without importing it (koreanize_matplotlib restyles matplotlib)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(
            f"the synthetic plate generator needs the fonts shipped with {name}: pip install 'kr-lpr[train]'"
        )
    return Path(spec.origin).parent


@functools.cache
def font_files() -> dict[str, Path]:
    """Font name -> TTF path; NanumGothic carries Hangul and digits, DejaVu Sans only digits."""
    nanum = _package_folder("koreanize_matplotlib") / "fonts"
    dejavu = _package_folder("matplotlib") / "mpl-data" / "fonts" / "ttf"
    files = {
        "nanum": nanum / "NanumGothic.ttf",
        "nanum-bold": nanum / "NanumGothicBold.ttf",
        "nanum-extrabold": nanum / "NanumGothicExtraBold.ttf",
        "dejavu": dejavu / "DejaVuSans.ttf",
        "dejavu-bold": dejavu / "DejaVuSans-Bold.ttf",
    }
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"font files missing: {missing}; reinstall koreanize-matplotlib and matplotlib")
    return files


@functools.cache
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_files()[name]), size)


@functools.cache
def _text_mask(font: str, size: int, text: str) -> Image.Image:
    """Rendered text coverage (mode L); plates reuse a handful of small labels, so they are cached."""
    face = load_font(font, size)
    left, top, right, bottom = face.getbbox(text)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=face)
    return mask


def draw_text(draw: ImageDraw.ImageDraw, centre, text: str, font: str, size: int, colour) -> None:
    mask = _text_mask(font, size, text)
    draw.bitmap((round(centre[0] - mask.width / 2), round(centre[1] - mask.height / 2)), mask, fill=colour)


def _stroke_glyph(font: str, char: str) -> np.ndarray:
    """A character of the plate typeface drawn from `plate_polylines` at the master size, anti-aliased."""
    digit = char in PLATE_DIGIT_STROKES
    thickness = max(1, round(STROKE_FONTS[font] * _MASTER_SIZE * (1 if digit else _HANGUL_STROKE_SCALE)))
    width = round(_MASTER_SIZE * (0.56 if digit else 0.8))
    coverage = np.zeros((_MASTER_SIZE, width), dtype=np.uint8)
    inset = thickness / 2  # strokes stay inside the cell
    scale = np.array([width - 2 * inset, _MASTER_SIZE - 2 * inset])
    for points in plate_polylines(char):
        pixels = np.round((points * scale + inset) * 16).astype(np.int32)  # 4 fractional bits for cv2
        cv2.polylines(coverage, [pixels], False, 255, thickness, cv2.LINE_AA, shift=4)
    return coverage


@functools.cache
def master_glyph(font: str, char: str, weight: int) -> np.ndarray:
    """Tight-cropped uint8 coverage of one character, emboldened horizontally by `weight` pixels."""
    if font in STROKE_FONTS:
        coverage = _stroke_glyph(font, char)
    else:
        mask = load_font(font, _MASTER_SIZE).getmask(char, mode="L")
        coverage = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])
    rows, cols = np.nonzero(coverage)
    coverage = np.ascontiguousarray(coverage[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    if weight:
        padded = np.pad(coverage, ((0, 0), (weight, weight)))
        coverage = np.max([padded[:, s : s + coverage.shape[1] + weight] for s in range(weight + 1)], axis=0)
    return coverage


def _aspect(font: str, char: str, weight: int) -> float:
    height, width = master_glyph(font, char, weight).shape
    return width / height


@dataclass(frozen=True)
class Typeface:
    """One plate's lettering: fonts, stroke weight and condensation (cell width / glyph height)."""

    digit_font: str
    hangul_font: str
    weight: int
    hangul_weight: int  # real plates often print Hangul lighter than the digits
    digit_aspect: float
    hangul_aspect: float
    short_ticks: bool = False  # the stroke typeface's ㅏ and ㅓ drawn with the real plates' short tick (`SHORT_TICK`)
    lean: float = 0.0  # italic lettering: how far a glyph's top moves right, in glyph heights

    def lettering(self, char: str, token: str) -> tuple[str, int]:
        """The font and emboldening of `char`, a character of the plate token `token`."""
        if char.isdigit():
            return self.digit_font, self.weight
        if self.hangul_font in STROKE_FONTS and token not in HANGUL:
            return "nanum", self.hangul_weight  # the jamo strokes draw the use letters, not region names
        return self.hangul_font, self.hangul_weight

    def cell_width(self, char: str, height: float) -> float:
        return height * (self.digit_aspect if char.isdigit() else self.hangul_aspect)

    def ink_width(self, char: str, height: float) -> float:
        """Narrow digits such as `1` keep their relative width inside the fixed digit cell."""
        if not char.isdigit():
            return self.cell_width(char, height)
        natural = _aspect(self.digit_font, char, self.weight) / _aspect(self.digit_font, "0", self.weight)
        return self.cell_width(char, height) * min(1.0, natural)


@dataclass(frozen=True)
class Row:
    """A row of lettering: centre, digit height and widest span as fractions of the plate size;
    spacing and the gap before the serial as ranges in glyph heights."""

    y: float
    height: float
    x0: float
    x1: float
    spacing: tuple[float, float] = (0.06, 0.14)
    group_gap: tuple[float, float] = (0.1, 0.3)
    hangul_scale: float = 1.0  # Hangul height relative to the digits (smaller on two-row plates)
    region_gap: float = 0.06  # between the two syllables of a region, in glyph heights
    widen: float = 1.0  # glyph width relative to the plate's condensation (`Typeface.digit_aspect`)
    round_zero: bool = False  # 0 drawn as `ROUND_ZERO`


@dataclass(frozen=True)
class Template:
    """A plate type: size in mm, rows, bolt positions (fractions) and the digit condensation range."""

    size_mm: tuple[float, float]
    rows: tuple[Row, ...]
    bolts: tuple[tuple[float, float], ...]
    digit_aspect: tuple[float, float]
    band: str | None = None  # "hologram" or "ev": the printed panel at the left of newer plates
    vertical_region: bool = False  # the region is stacked at the left edge (commercial one-row plate)
    thin_p: float = 0.0  # share of plates with thin lettering (`THIN_FONTS`, no emboldening)
    bolts_beside_text: bool = False  # the bolts move in next to the first and last character
    italic: bool = False  # the lettering may lean (`ITALIC_LEAN`)


# Many real 2006-2019 white one-row plates print their lettering italic, leaning right in an upright border: the
# vertical strokes of 112 of the 258 real one-row crops move right by 0.07 or more of their height from foot to top
# (`scripts/italic_study.py`). That typeface's 5 is `CURLED_FIVE`.
ITALIC_LEAN = (0.06, 0.16)
_LONG = (520, 110)
_LONG_BOLTS = ((0.028, 0.5), (0.972, 0.5))
_TWO_ROW = (335, 170)
_TWO_ROW_BOLTS = ((0.19, 0.21), (0.81, 0.21))
# Real old two-row plates print the top row low and wide: digits wider than tall (1.1-1.4 times on the largest
# 1996-2006 green crops; the 0 an oval), the Hangul as tall and wider; their bottom digits are wide too.
_TOP_ROW = Row(0.2, 0.21, 0.24, 0.76, (0.15, 0.5), (0.05, 0.3), hangul_scale=1.12, widen=1.5, round_zero=True)
# Bolt kinds (`_draw_bolts`): light, plate-coloured, dark, brass, and (the old white plates' most common) a small
# dark slotted screw of half a bolt's radius. Where bolts sit beside the text, this share of the borders runs just
# outside them (`_draw_rim`).
BOLT_KIND_P = (0.25, 0.15, 0.2, 0.05, 0.35)
SCREW_KIND = 4
_SCREW_SCALE = 0.5
RIM_BESIDE_BOLTS_P = 0.6
# Their bolts beside the top row are about 0.3-0.4 of its height in radius.
_TWO_ROW_BOLT_SCALE = 2.2


def _printed_two_row(spacing: tuple[float, float], digit_aspect: tuple[float, float]) -> Template:
    """The old green and the yellow commercial two-row plate: small top row, large bottom row."""
    bottom = Row(0.64, 0.56, 0.05, 0.95, spacing, (0.0, 0.05), 0.62)
    return Template(_TWO_ROW, (_TOP_ROW, bottom), _TWO_ROW_BOLTS, digit_aspect, thin_p=0.5)


_BANDED_ROW = Row(0.5, 0.7, 0.13, 0.955, (0.07, 0.14))
TEMPLATES = {
    ("white", "one-row"): Template(
        _LONG,
        (Row(0.5, 0.7, 0.07, 0.93, (0.08, 0.16), (0.1, 0.85)),),
        _LONG_BOLTS,
        (0.5, 0.62),
        thin_p=0.35,
        bolts_beside_text=True,
        italic=True,
    ),
    ("white-8", "one-row"): Template(
        _LONG, (Row(0.5, 0.7, 0.05, 0.95, (0.08, 0.16)),), _LONG_BOLTS, (0.44, 0.54), bolts_beside_text=True
    ),
    ("white-hologram", "one-row"): Template(_LONG, (_BANDED_ROW,), _LONG_BOLTS, (0.42, 0.5), "hologram"),
    ("corporate", "one-row"): Template(_LONG, (_BANDED_ROW,), _LONG_BOLTS, (0.42, 0.5), "hologram"),
    ("blue-ev", "one-row"): Template(_LONG, (_BANDED_ROW,), _LONG_BOLTS, (0.42, 0.52), "ev"),
    ("white-old-short", "one-row"): Template(
        (335, 155), (Row(0.56, 0.55, 0.05, 0.95, (0.05, 0.1)),), ((0.08, 0.17), (0.92, 0.17)), (0.36, 0.46)
    ),
    # Real commercial one-row plates spread the serial from right beside the region column to the right bolt.
    ("yellow", "one-row"): Template(
        _LONG, (Row(0.5, 0.7, 0.17, 0.955, (0.16, 0.24), (0.2, 0.4)),), _LONG_BOLTS, (0.46, 0.56), vertical_region=True
    ),
    ("green", "two-row"): _printed_two_row((0.1, 0.22), (0.62, 0.88)),
    ("yellow", "two-row"): _printed_two_row((0.08, 0.18), (0.6, 0.8)),
    ("orange", "two-row"): Template(
        _TWO_ROW,
        (Row(0.21, 0.24, 0.3, 0.7, region_gap=1.0), Row(0.64, 0.5, 0.04, 0.96, (0.06, 0.12), (0.05, 0.25), 0.55)),
        _TWO_ROW_BOLTS,
        (0.46, 0.56),
    ),
}

# (background, text) base colours; each plate jitters them.
PALETTES = {
    "white": ((238, 238, 234), (25, 25, 28)),
    "white-8": ((238, 238, 234), (25, 25, 28)),
    "white-hologram": ((240, 241, 240), (25, 25, 28)),
    "white-old-short": ((236, 236, 230), (25, 25, 28)),
    "corporate": ((196, 222, 128), (25, 28, 25)),
    "blue-ev": ((128, 186, 232), (20, 24, 32)),
    "green": ((34, 122, 76), (236, 242, 236)),
    "yellow": ((246, 196, 24), (25, 25, 25)),
    "orange": ((232, 108, 40), (246, 244, 238)),
}


@dataclass
class Glyph:
    """One printed character in plate millimetres; `token` indexes the plate string's tokens and `shape` is
    the character drawn for `char` (`_glyph_shape`)."""

    char: str
    shape: str
    token: int
    x: float
    y: float
    width: float
    height: float


def split_rows(tokens: list[str], style: str, layout: str) -> list[list[int]]:
    """Token indices per row. Two-row plates print region and class number on top (class number and
    Hangul when there is no region); orange plates print only the region on top."""
    indices = list(range(len(tokens)))
    if layout == "one-row":
        return [indices]
    hangul_at = next(i for i, token in enumerate(tokens) if token in HANGUL)
    if style == "orange":
        cut = 1
    elif tokens[0] in REGIONS:
        cut = hangul_at
    else:
        cut = hangul_at + 1
    return [indices[:cut], indices[cut:]]


def sample_typeface(
    rng: np.random.Generator, template: Template, short_ticks_p: float = 0.0, italic_p: float = 0.0
) -> Typeface:
    """A plate's lettering; `short_ticks_p` is the chance that a stroke typeface draws short vowel ticks, `italic_p`
    that an `italic` template's lettering leans (with 0 no more is drawn from `rng` for either)."""
    digit_aspect = rng.uniform(*template.digit_aspect)
    if rng.random() < template.thin_p:
        digit_font = hangul_font = THIN_FONTS[rng.integers(len(THIN_FONTS))]
        weight_step = hangul_weight_step = 0
    else:
        digit_font = DIGIT_FONTS[pick(rng, _DIGIT_FONT_P)]
        hangul_font = HANGUL_FONTS[pick(rng, _HANGUL_FONT_P)]
        weight_step = pick(rng, _WEIGHT_P)
        hangul_weight_step = max(0, weight_step - int(rng.integers(0, 3)))
    hangul_aspect = min(0.85, digit_aspect * rng.uniform(1.2, 1.5))
    short_ticks = hangul_font in STROKE_FONTS and short_ticks_p > 0 and rng.random() < short_ticks_p
    italic = template.italic and italic_p > 0 and rng.random() < italic_p
    return Typeface(
        digit_font=digit_font,
        hangul_font=hangul_font,
        weight=_WEIGHTS[weight_step],
        hangul_weight=_WEIGHTS[hangul_weight_step],
        digit_aspect=digit_aspect,
        hangul_aspect=hangul_aspect,
        short_ticks=short_ticks,
        lean=rng.uniform(*ITALIC_LEAN) if italic else 0.0,
    )


def _glyph_shape(char: str, token: str, row: Row, typeface: Typeface) -> str:
    """What is drawn for `char` of the plate token `token`: `ROUND_ZERO` for the 0s of some rows, `CURLED_FIVE` for
    the 5s of the leaning stroke typeface, and the short-ticked form of a use syllable with ㅏ or ㅓ in a typeface
    with `short_ticks` (region names keep the font face)."""
    if row.round_zero and char == "0":
        return ROUND_ZERO
    if typeface.lean and char == "5" and typeface.digit_font in STROKE_FONTS:
        return CURLED_FIVE
    if typeface.short_ticks and token in HANGUL and jamo(char)[1] in "ㅏㅓ":
        return char + SHORT_TICK
    return char


def _place_row(
    rng: np.random.Generator, tokens: list[str], indices: list[int], row: Row, size_mm, typeface: Typeface
) -> list[Glyph]:
    plate_w, plate_h = size_mm
    height = row.height * plate_h * rng.uniform(0.93, 1.05)
    centre_y = (row.y + rng.uniform(-0.025, 0.025)) * plate_h
    spacing, group_gap = rng.uniform(*row.spacing) * height, rng.uniform(*row.group_gap) * height
    hangul_height = height * row.hangul_scale * rng.uniform(0.86, 1.0)  # real Hangul sits a little smaller
    # (char, token index, glyph height, space before it)
    chars = []
    for index in indices:
        token = tokens[index]
        glyph_height = hangul_height if token in HANGUL else height
        for k, char in enumerate(token):
            if not chars:
                gap = 0.0
            elif k:
                gap = row.region_gap * height
            elif token.isdigit() and not chars[-1][0].isdigit():
                gap = spacing + group_gap
            else:
                gap = spacing
            chars.append((char, index, glyph_height, gap))
    cells = np.array([typeface.cell_width(char, h) * row.widen for char, _, h, _ in chars])
    gaps = np.array([gap for *_, gap in chars])
    span = (row.x1 - row.x0) * plate_w
    shrink = min(1.0, span / (cells.sum() + gaps.sum()))  # too long for the plate: narrow glyphs and gaps
    cells, gaps = cells * shrink, gaps * shrink
    free = span - cells.sum() - gaps.sum()
    x = row.x0 * plate_w + free * np.clip(rng.normal(0.5, 0.08), 0.0, 1.0)
    glyphs = []
    for (char, index, glyph_height, _), cell, gap in zip(chars, cells, gaps, strict=True):
        x += gap
        ink = cell * typeface.ink_width(char, glyph_height) / typeface.cell_width(char, glyph_height)
        shape = _glyph_shape(char, tokens[index], row, typeface)
        glyphs.append(Glyph(char, shape, index, x + (cell - ink) / 2, centre_y - glyph_height / 2, ink, glyph_height))
        x += cell
    return glyphs


def _stack_region(rng: np.random.Generator, region: str, size_mm) -> list[Glyph]:
    """The commercial one-row plate prints its region as two small syllables stacked at the left, each wider
    than tall (about 1.3 times on real crops)."""
    plate_w, plate_h = size_mm
    height = plate_h * rng.uniform(0.3, 0.36)
    width = height * rng.uniform(1.1, 1.5)
    centre_x = plate_w * rng.uniform(0.085, 0.105)
    return [
        Glyph(char, char, 0, centre_x - width / 2, plate_h * centre_y - height / 2, width, height)
        for char, centre_y in zip(region, (0.29, 0.71), strict=True)
    ]


def layout_glyphs(
    rng: np.random.Generator, tokens: list[str], template: Template, style: str, layout: str, typeface: Typeface
) -> list[Glyph]:
    """Every character's box in plate millimetres, token by token in plate-string order."""
    rows = split_rows(tokens, style, layout)
    glyphs = []
    if template.vertical_region:
        glyphs += _stack_region(rng, tokens[0], template.size_mm)
        rows = [rows[0][1:]]
    for indices, row in zip(rows, template.rows, strict=True):
        glyphs += _place_row(rng, tokens, indices, row, template.size_mm, typeface)
    return glyphs


def _jitter(rng: np.random.Generator, colour: tuple[int, ...], amount: float) -> tuple[int, int, int]:
    """Shifts brightness by up to `amount` and each channel a little, so white plates stay near-neutral."""
    shifted = np.asarray(colour) + rng.normal(0, amount) + rng.normal(0, amount / 4, 3)
    return tuple(int(v) for v in np.clip(shifted, 0, 255))


def _mix(a: tuple[int, ...], b: tuple[int, ...], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b, strict=True))


def _draw_taegeuk(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    draw.pieslice(box, 180, 360, fill=(205, 46, 58))
    draw.pieslice(box, 0, 180, fill=(0, 71, 160))


def _draw_band(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str, size: tuple[int, int], bg) -> None:
    """The 2020 plates' left panel: a hologram with the national mark and `KOR`, or the EV mark."""
    width, height = size
    band_w = width * rng.uniform(0.1, 0.115)
    tint = (70, 125, 205) if kind == "ev" else (196, 206, 232)
    draw.rectangle((0, 0, band_w, height), fill=_mix(bg, tint, rng.uniform(0.35, 0.8)))
    _draw_taegeuk(draw, band_w / 2, height * 0.34, height * rng.uniform(0.1, 0.14))
    if kind == "ev":
        r = height * 0.13
        draw.ellipse(
            (band_w / 2 - r, height * 0.7 - r, band_w / 2 + r, height * 0.7 + r),
            outline=(240, 245, 250),
            width=max(1, round(r / 4)),
        )
    else:
        draw_text(draw, (band_w / 2, height * 0.72), "KOR", "dejavu-bold", max(4, round(height * 0.18)), (70, 72, 80))


def _draw_rim(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    style: str,
    size,
    bg,
    ink,
    bolts: tuple[np.ndarray, float] | None,
) -> None:
    """The plate's embossed border. On long one-row plates whose bolts sit beside the text it often runs just
    outside the bolts, as on the old white plates, where a digit, a bolt touching it and the border's dark
    side follow each other within a few millimetres (`scripts/right_edge_study.py`)."""
    width, height = size
    printed = style in ("green", "yellow", "orange")
    if rng.random() > (0.9 if printed else 0.7):
        return
    colour = ink if printed else _mix(bg, (40, 40, 40), rng.uniform(0.3, 0.8))
    inset = height * rng.uniform(0.01, 0.045)
    x0, x1 = inset, width - 1 - inset
    line_width = height * rng.uniform(0.008, 0.022)
    if bolts is not None and rng.random() < RIM_BESIDE_BOLTS_P:
        centres, radius = bolts
        gap = rng.uniform(0.3, 2.0, 2) * radius
        x0, x1 = max(x0, centres[0, 0] - radius - gap[0]), min(x1, centres[1, 0] + radius + gap[1])
        colour, line_width = (int(rng.uniform(20, 90)),) * 3, line_width * 1.3
    draw.rounded_rectangle(
        (x0, inset, x1, height - 1 - inset), radius=height * 0.07, outline=colour, width=max(1, round(line_width))
    )


def bolt_centres(
    rng: np.random.Generator, template: Template, glyphs: list[Glyph], radius: float, top_row_bolts_p: float = 0.0
) -> np.ndarray:
    """Bolt centres in plate millimetres. On long one-row plates the bolts sit right beside the outer
    characters (real crops show them touching the first and last digit, where they read as a 1); on two-row
    plates, with chance `top_row_bolts_p`, beside the top row's (where real crops read the first digit as a 9)."""
    width, height = template.size_mm
    centres = np.array(template.bolts) * (width, height)
    if template.bolts_beside_text:
        _move_beside(rng, centres, glyphs, radius)
    # Tested first so that with `top_row_bolts_p` 0 nothing is drawn: the seventeenth generator's plates.
    elif top_row_bolts_p and len(template.rows) == 2 and rng.random() < top_row_bolts_p:
        between_rows = height * (template.rows[0].y + template.rows[1].y) / 2
        _move_beside(rng, centres, [g for g in glyphs if g.y + g.height / 2 < between_rows], radius)
    return centres


def _move_beside(rng: np.random.Generator, centres: np.ndarray, glyphs: list[Glyph], radius: float) -> None:
    """Moves the left and right bolt in beside the outer glyphs, from a fifth of a radius over them to a radius
    clear of them; a bolt already nearer stays."""
    left, right = min(g.x for g in glyphs), max(g.x + g.width for g in glyphs)
    gap = rng.uniform(-0.2, 1.0, 2) * radius
    centres[0, 0] = max(centres[0, 0], left - radius - gap[0])
    centres[1, 0] = min(centres[1, 0], right + radius + gap[1])


def bolt_radius(rng: np.random.Generator, template: Template) -> float:
    """A bolt's radius in plate millimetres."""
    # Drawn for every plate, so the random stream (and the data the release stages trained on) stays as it was.
    fixed_radius = rng.uniform(4.0, 6.5) * (_TWO_ROW_BOLT_SCALE if len(template.rows) == 2 else 1.0)
    return rng.uniform(4.0, 9.0) if template.bolts_beside_text else fixed_radius


def _draw_bolts(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    template: Template,
    glyphs: list[Glyph],
    scale: float,
    bg,
    top_row_bolts_p: float = 0.0,
) -> tuple[np.ndarray, float] | None:
    """Draws the bolts; returns their centres and radius in plate pixels when they sit beside the text."""
    if rng.random() < 0.08:
        return None
    radius = bolt_radius(rng, template)
    kind = pick(rng, BOLT_KIND_P)
    if kind == SCREW_KIND:
        radius *= _SCREW_SCALE
    fill = [
        (int(rng.uniform(150, 235)),) * 3,
        _mix(bg, (0, 0, 0), 0.15),
        (int(rng.uniform(30, 80)),) * 3,
        (190, 165, 95),
        (int(rng.uniform(20, 90)),) * 3,
    ][kind]
    centres, r = bolt_centres(rng, template, glyphs, radius, top_row_bolts_p) * scale, radius * scale
    for cx, cy in centres:
        if kind == SCREW_KIND:
            _draw_screw(draw, rng, cx, cy, r, fill)
            continue
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=_mix(fill, (0, 0, 0), 0.5))
        spot = r * 0.35
        draw.ellipse(
            (cx - spot - r * 0.2, cy - spot - r * 0.2, cx + spot - r * 0.2, cy + spot - r * 0.2),
            fill=_mix(fill, (255, 255, 255), 0.5),
        )
    return (centres, r) if template.bolts_beside_text else None


def _draw_screw(draw: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, cy: float, r: float, fill) -> None:
    """A small dark screw head with its slot, which at a crop's resolution reads as a dot with a short tail."""
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    angle, length = rng.uniform(-0.5, 0.5), r * rng.uniform(1.0, 2.0)
    dx, dy = length * np.cos(angle), length * np.sin(angle)
    draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=fill, width=max(1, round(r * 0.6)))


def _stamp(coverage: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Adds a glyph's coverage to the plate's text layer at (x, y), clipped to the plate."""
    height, width = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + width, coverage.shape[1]), min(y + height, coverage.shape[0])
    if x0 < x1 and y0 < y1:
        region = coverage[y0:y1, x0:x1]
        np.maximum(region, mask[y0 - y : y1 - y, x0 - x : x1 - x], out=region)


def _shifted(layer: np.ndarray, offset: int) -> np.ndarray:
    """The layer moved `offset` pixels right and down (left and up when negative), zero-filled."""
    moved = np.zeros_like(layer)
    if offset >= 0:
        moved[offset:, offset:] = layer[: layer.shape[0] - offset, : layer.shape[1] - offset]
    else:
        moved[:offset, :offset] = layer[-offset:, -offset:]
    return moved


def _paint(canvas: np.ndarray, coverage: np.ndarray, colour: tuple[int, int, int]) -> None:
    alpha = cv2.merge([coverage] * 3)
    canvas += (np.asarray(colour, dtype=np.float32) - canvas) * alpha


@functools.cache
def _glyph_level(font: str, char: str, weight: int, level: int) -> np.ndarray:
    """The master glyph halved `level` times: a mipmap, so per-plate resizes are small bilinear steps."""
    if level == 0:
        return master_glyph(font, char, weight)
    finer = _glyph_level(font, char, weight, level - 1)
    size = (max(1, finer.shape[1] // 2), max(1, finer.shape[0] // 2))
    return cv2.resize(finer, size, interpolation=cv2.INTER_AREA)


def _glyph_mask(font: str, char: str, weight: int, width: int, height: int) -> np.ndarray:
    master_height = master_glyph(font, char, weight).shape[0]
    level = max(0, min(4, int(np.log2(master_height / max(height, 1)))))
    return cv2.resize(_glyph_level(font, char, weight, level), (width, height), interpolation=cv2.INTER_LINEAR)


def lean_glyph(mask: np.ndarray, lean: float) -> np.ndarray:
    """The glyph coverage sheared so its top moves `lean` of its height right of its foot, widened to hold it."""
    height, width = mask.shape
    shift = lean * (height - 1)
    matrix = np.float32([[1, -lean, shift], [0, 1, 0]])
    return cv2.warpAffine(mask, matrix, (width + int(np.ceil(shift)), height), flags=cv2.INTER_LINEAR)


def draw_plate(
    rng: np.random.Generator,
    tokens: list[str],
    style: str,
    layout: str,
    width_px: float,
    top_row_bolts_p: float = 0.0,
    short_ticks_p: float = 0.0,
    italic_p: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A flat RGBA uint8 plate `width_px` wide and its `(n_tokens, 4)` glyph boxes in its pixels (x1 y1 x2 y2);
    `top_row_bolts_p` is the chance that a two-row plate's bolts sit beside its top row (`bolt_centres`),
    `short_ticks_p` that its stroke typeface draws short vowel ticks and `italic_p` that its lettering leans
    (`sample_typeface`)."""
    template = TEMPLATES[(style, layout)]
    typeface = sample_typeface(rng, template, short_ticks_p, italic_p)
    glyphs = layout_glyphs(rng, tokens, template, style, layout, typeface)
    scale = width_px / template.size_mm[0]
    size = (max(8, round(template.size_mm[0] * scale)), max(4, round(template.size_mm[1] * scale)))
    bg_base, ink_base = PALETTES[style]
    bg, ink = _jitter(rng, bg_base, 12), _jitter(rng, ink_base, 10)
    plate = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(plate)
    if template.band:
        _draw_band(draw, rng, template.band, size, bg)
    bolts = _draw_bolts(draw, rng, template, glyphs, scale, bg, top_row_bolts_p)
    _draw_rim(draw, rng, style, size, bg, ink, bolts)
    boxes = np.full((len(tokens), 4), np.nan, dtype=np.float32)
    text = np.zeros((size[1], size[0]), dtype=np.uint8)
    for glyph in glyphs:
        x, y = round(glyph.x * scale), round(glyph.y * scale)
        w, h = max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))
        font, weight = typeface.lettering(glyph.char, tokens[glyph.token])
        mask = _glyph_mask(font, glyph.shape, weight, w, h)
        if typeface.lean:
            mask = lean_glyph(mask, typeface.lean)
            x, w = x - (mask.shape[1] - w) // 2, mask.shape[1]  # the glyph keeps its centre
        _stamp(text, mask, x, y)
        box = boxes[glyph.token]
        boxes[glyph.token] = (np.fmin(box[0], x), np.fmin(box[1], y), np.fmax(box[2], x + w), np.fmax(box[3], y + h))
    canvas = np.asarray(plate, dtype=np.float32)
    coverage = text.astype(np.float32) / 255
    # Embossed characters: a shadow below-right and a highlight above-left of each glyph.
    relief = int(rng.uniform(0.0, 1.0) * scale + 0.3)
    if relief:
        _paint(canvas, _shifted(coverage, relief), _mix(bg, (0, 0, 0), rng.uniform(0.2, 0.5)))
        _paint(canvas, _shifted(coverage, -relief), _mix(bg, (255, 255, 255), 0.5))
    _paint(canvas, coverage, ink)
    corners = Image.new("L", size, 0)  # real plates have rounded corners
    ImageDraw.Draw(corners).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius=size[1] * 0.07, fill=255)
    return cv2.merge([canvas.astype(np.uint8), np.asarray(corners)]), boxes
