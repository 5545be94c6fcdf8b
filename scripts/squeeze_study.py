"""How wide the lettering of real and synthetic crops is for its height, by crop width, and what narrow lettering costs.

    python scripts/squeeze_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Real crops carry no character boxes, so the text's extent is read from the model's character-order masks
(`crop_margins.predicted_extents`), on real and synthetic crops alike. The first table prints, per band of crop
width, the median (10th-90th percentile) width over height of that extent in pixels, for the real one-row crops
of seven characters (`12가3456`) and for the same white one-row plates (`train` preset, seed 11, seven
characters) drawn by:
- sixteenth generator: never squeezed;
- seventeenth generator (the current `train` preset): most plates under `small_plate_px` squeezed sideways.
A second table reads the sixteenth generator's plates under 160 px wide squeezed sideways after drawing (x1.0:
as drawn), and all the real one-row crops as they are and with their height scaled by 0.9 (their lettering made
wider for its height): per band of crop width before scaling, how many crops fall in it and the share read
exactly.
"""

from __future__ import annotations

import numpy as np
from crop_margins import predicted_extents
from PIL import Image
from plate_study import (
    SIXTEENTH_GENERATOR,
    WIDTH_BAND_NAMES,
    WIDTH_BANDS,
    cells_by_band,
    real_one_row_crops,
    study_arguments,
    table_row,
    white_plates,
)

from kr_lpr import LicensePlateRecognizer

SQUEEZES = (1.0, 0.9, 0.8, 0.7)
SMALL_CROP_PX = 160
REAL_HEIGHT_SCALE = 0.9
SERIAL_LENGTH = 7  # `12가3456`: the plate text most real and synthetic one-row crops share


def text_aspect_by_width(model: str, images: list[Image.Image], labels: list[str]) -> list[str]:
    """One `median (10th-90th percentile)` cell of the text's width over height per band of `WIDTH_BANDS`."""
    images = [image for image, label in zip(images, labels) if len(label) == SERIAL_LENGTH]
    extents = predicted_extents(model, images)
    widths = np.array([image.width for image in images])
    heights = np.array([image.height for image in images])
    aspect = extents[:, 4] * widths / (extents[:, 5] * heights)

    def cell(inside: np.ndarray) -> str:
        p10, median, p90 = np.percentile(aspect[inside], [10, 50, 90])
        return f"{median:.2f} ({p10:.2f}-{p90:.2f})"

    return cells_by_band(widths, WIDTH_BANDS, cell, "-")


def accuracy_by_width(
    recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str], widths: np.ndarray
) -> list[str]:
    """One `n exact` cell per band of `WIDTH_BANDS` of `widths` (the crops' widths before any scaling)."""
    readings = [reading["text"] for reading in recognizer(images)]
    right = np.array([reading == label for reading, label in zip(readings, labels)])
    return cells_by_band(widths, WIDTH_BANDS, lambda inside: f"{inside.sum():>5} {right[inside].mean():>7.1%}", "-")


def scaled(images: list[Image.Image], width_scale: float, height_scale: float) -> list[Image.Image]:
    return [
        image.resize(
            (max(8, round(image.width * width_scale)), max(8, round(image.height * height_scale))), Image.BILINEAR
        )
        for image in images
    ]


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    real = real_one_row_crops(args.real)
    sixteenth = white_plates(SIXTEENTH_GENERATOR, args.n)
    print(table_row("text width/height by crop width", WIDTH_BAND_NAMES, 20))
    for name, plates in (("sixteenth", sixteenth), ("seventeenth", white_plates("train", args.n))):
        print(table_row(f"synthetic, {name} generator", text_aspect_by_width(args.model, *plates), 20))
    if real is not None:
        print(table_row("real one-row crops", text_aspect_by_width(args.model, *real), 20))

    recognizer = LicensePlateRecognizer(args.model, backend="torch")
    small = [(image, label) for image, label in zip(*sixteenth) if image.width < SMALL_CROP_PX]
    small_images, small_labels = [image for image, _ in small], [label for _, label in small]
    small_widths = np.array([image.width for image in small_images])
    print("\n" + table_row(f"crops under {SMALL_CROP_PX} px (n, exact)", WIDTH_BAND_NAMES, 14))
    for squeeze in SQUEEZES:
        cells = accuracy_by_width(recognizer, scaled(small_images, squeeze, 1.0), small_labels, small_widths)
        print(table_row(f"synthetic, width x{squeeze}", cells, 14))
    if real is not None:
        real_widths = np.array([image.width for image in real[0]])
        print(table_row("real one-row crops", accuracy_by_width(recognizer, *real, real_widths), 14))
        cells = accuracy_by_width(recognizer, scaled(real[0], 1.0, REAL_HEIGHT_SCALE), real[1], real_widths)
        print(table_row(f"real one-row, height x{REAL_HEIGHT_SCALE}", cells, 14))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
