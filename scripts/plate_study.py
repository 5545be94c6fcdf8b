"""What the plate studies (`right_edge_study.py`, `crop_aspect_study.py`, `sharpness_study.py`, `squeeze_study.py`,
`two_row_bolt_study.py`, `vowel_tick_study.py`, `italic_study.py`) share: their arguments, the synthetic plates
they read, the real crops and the bands of crop width."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from kr_lpr import LicensePlateRecognizer
from kr_lpr.data import CSV_FILE
from kr_lpr.evaluation import select_records
from kr_lpr.preprocessing_tinylpr import load_image
from kr_lpr.synth import plate_rng, render_plate

ROOT = Path(__file__).resolve().parent.parent
SEED = 11
# The `train` preset as the twentieth to thirteenth generators drew it: the studies' published figures were
# measured on these plates, which later generators changed.
TWENTIETH_GENERATOR = {"flat_p": 0.0}
NINETEENTH_GENERATOR = {**TWENTIETH_GENERATOR, "italic_p": 0.0}
EIGHTEENTH_GENERATOR = {**NINETEENTH_GENERATOR, "short_ticks_p": 0.0}
SEVENTEENTH_GENERATOR = {**EIGHTEENTH_GENERATOR, "top_row_bolts_p": 0.0}
SIXTEENTH_GENERATOR = {**SEVENTEENTH_GENERATOR, "small_squeeze_p": 0.0}
FIFTEENTH_GENERATOR = {**SIXTEENTH_GENERATOR, "small_tall_p": 0.2}
FOURTEENTH_GENERATOR = {**FIFTEENTH_GENERATOR, "defocus_p": 0.3, "lowres_p": 0.25, "sharpen_p": 0.0}
THIRTEENTH_GENERATOR = {**FOURTEENTH_GENERATOR, "tall_p": 0.0, "small_tall_p": 0.0}
SMALL_CROP_PX = 160  # crops narrower than this are where the real plates are read worst
WIDTH_BANDS = ((0, 120), (120, SMALL_CROP_PX), (SMALL_CROP_PX, 250), (250, np.inf))  # crop width in pixels
WIDTH_BAND_NAMES = [f"{low}-{high} px" if np.isfinite(high) else f">={low} px" for low, high in WIDTH_BANDS]


def study_arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=str(ROOT / "release" / "kr-lpr"))
    parser.add_argument("--real", default=str(ROOT.parent / "shared" / "data" / "real_kr"))
    parser.add_argument("--n", type=int, default=1000, help="synthetic plates per variant")
    return parser.parse_args(argv)


def synthetic_plates(strength: str | dict, n: int, style: str = "white") -> tuple[list[Image.Image], list[str]]:
    """The first `n` plates of `style` of seed `SEED` drawn with `strength`, and their texts."""
    samples = [render_plate(plate_rng(SEED, i), strength, style=style) for i in range(n)]
    return [sample["image"] for sample in samples], [sample["text"] for sample in samples]


def real_crops(folder: str, layout: str = "one-row") -> tuple[list[Image.Image], list[str]] | None:
    """The real crops of `layout` and their labels, or None (with a message) where the folder is absent."""
    if not (Path(folder) / CSV_FILE).is_file():
        print(f"real plates not found at {folder}: skipping them")
        return None
    records = [record for record in select_records(folder, None, skip_bad=False) if record.layout == layout]
    return [load_image(record.path) for record in records], [record.text for record in records]


def cells_by_band(values: np.ndarray, bands, cell: Callable[[np.ndarray], str], empty: str) -> list[str]:
    """One table cell per `(low, high)` band: `cell(inside)` for the mask of the values in it, `empty` if none are."""
    cells = []
    for low, high in bands:
        inside = (values >= low) & (values < high)
        cells.append(cell(inside) if inside.any() else empty)
    return cells


@functools.cache
def study_recognizer(model: str) -> LicensePlateRecognizer:
    """The PyTorch reader of `model`, loaded once per study."""
    return LicensePlateRecognizer(model, backend="torch")


def read_texts(recognizer: LicensePlateRecognizer, images: list[Image.Image]) -> list[str]:
    return [reading["text"] for reading in recognizer(images)]


def read_exactly(recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str]) -> np.ndarray:
    """Whether each crop is read exactly."""
    return np.array([reading == label for reading, label in zip(read_texts(recognizer, images), labels)])


def exact_cells(readings: list[str], labels: list[str]) -> list[str]:
    """A study row's first two cells: how many plates, and the share read exactly."""
    return [str(len(labels)), f"{np.mean([reading == label for reading, label in zip(readings, labels)]):.1%}"]


def accuracy_cells(values: np.ndarray, bands, right: np.ndarray) -> list[str]:
    """One `n exact` cell per band of `values`: how many crops fall in it and the share read exactly."""
    return cells_by_band(
        values, bands, lambda inside: f"{inside.sum():>5} {right[inside].mean():>7.1%}", f"{0:>5} {'-':>7}"
    )


def median_cells_by_width(values: np.ndarray, widths: np.ndarray) -> list[str]:
    """One `median (10th-90th percentile)` cell of `values` per band of `WIDTH_BANDS` of the crop `widths`."""

    def cell(inside: np.ndarray) -> str:
        p10, median, p90 = np.percentile(values[inside], [10, 50, 90])
        return f"{median:.2f} ({p10:.2f}-{p90:.2f})"

    return cells_by_band(widths, WIDTH_BANDS, cell, "-")


def table_row(name: str, cells: list[str], width: int) -> str:
    return f"{name:<34}" + "".join(f"{cell:>{width}}" for cell in cells)


def print_study_table(
    args: argparse.Namespace,
    header: str,
    columns: list[str],
    cells: Callable[[LicensePlateRecognizer, list[Image.Image], list[str]], list[str]],
    variants: dict[str, dict],
    width: int,
    style: str = "white",
    layout: str = "one-row",
) -> tuple[list[Image.Image], list[str]] | None:
    """A study's table: the `columns` of `cells` for each synthetic variant of `style` and for the real crops of
    `layout`, read by `args.model`; returns those real crops (None where absent)."""
    recognizer = study_recognizer(args.model)
    print(table_row(header, columns, width))
    for name, strength in variants.items():
        plates = synthetic_plates(strength, args.n, style=style)
        print(table_row(f"synthetic, {name}", cells(recognizer, *plates), width))
    real = real_crops(args.real, layout=layout)
    if real is not None:
        print(table_row(f"real {layout} crops", cells(recognizer, *real), width))
    return real
