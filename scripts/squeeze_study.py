"""How wide the lettering of real and synthetic crops is for its height, by crop width, and what narrow lettering costs.

    python scripts/squeeze_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Real crops carry no character boxes, so the text's extent is read from the model's character-order masks
(`crop_margins.predicted_extents`), on real and synthetic crops alike. The first table prints, per band of crop
width, the median (10th-90th percentile) width over height of that extent in pixels, for the real one-row crops
of seven characters (`12가3456`) and for the same white one-row plates (`train` preset, seed 11, seven
characters) drawn by:
- sixteenth generator: never squeezed;
- seventeenth generator (its white plates are the eighteenth's): most plates under `small_plate_px` squeezed sideways.
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
    SEVENTEENTH_GENERATOR,
    SIXTEENTH_GENERATOR,
    SMALL_CROP_PX,
    WIDTH_BAND_NAMES,
    WIDTH_BANDS,
    accuracy_cells,
    median_cells_by_width,
    read_exactly,
    real_crops,
    study_arguments,
    synthetic_plates,
    table_row,
)

from kr_lpr import LicensePlateRecognizer

SQUEEZES = (1.0, 0.9, 0.8, 0.7)
REAL_HEIGHT_SCALE = 0.9
SERIAL_LENGTH = 7  # `12가3456`: the plate text most real and synthetic one-row crops share


def text_aspect_by_width(model: str, images: list[Image.Image], labels: list[str]) -> list[str]:
    """One `median (10th-90th percentile)` cell of the text's width over height per band of `WIDTH_BANDS`."""
    images = [image for image, label in zip(images, labels) if len(label) == SERIAL_LENGTH]
    extents = predicted_extents(model, images)
    widths = np.array([image.width for image in images])
    heights = np.array([image.height for image in images])
    return median_cells_by_width(extents[:, 4] * widths / (extents[:, 5] * heights), widths)


def scaled_accuracy(
    recognizer: LicensePlateRecognizer, crops: list[tuple[Image.Image, str]], width_scale: float, height_scale: float
) -> list[str]:
    """One `n exact` cell per band of the crops' widths as given, each crop read after scaling it."""
    images = [
        image.resize((round(image.width * width_scale), round(image.height * height_scale)), Image.BILINEAR)
        for image, _ in crops
    ]
    widths = np.array([image.width for image, _ in crops])
    return accuracy_cells(widths, WIDTH_BANDS, read_exactly(recognizer, images, [label for _, label in crops]))


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    real = real_crops(args.real)
    sixteenth = synthetic_plates(SIXTEENTH_GENERATOR, args.n)
    print(table_row("text width/height by crop width", WIDTH_BAND_NAMES, 20))
    for name, plates in (("sixteenth", sixteenth), ("seventeenth", synthetic_plates(SEVENTEENTH_GENERATOR, args.n))):
        print(table_row(f"synthetic, {name} generator", text_aspect_by_width(args.model, *plates), 20))
    if real is not None:
        print(table_row("real one-row crops", text_aspect_by_width(args.model, *real), 20))

    small = [(image, label) for image, label in zip(*sixteenth) if image.width < SMALL_CROP_PX]
    rows = {f"synthetic, width x{squeeze}": (small, squeeze, 1.0) for squeeze in SQUEEZES}
    if real is not None:
        crops = list(zip(*real))
        rows["real one-row crops"] = (crops, 1.0, 1.0)
        rows[f"real one-row, height x{REAL_HEIGHT_SCALE}"] = (crops, 1.0, REAL_HEIGHT_SCALE)
    recognizer = LicensePlateRecognizer(args.model, backend="torch")
    print("\n" + table_row(f"crops under {SMALL_CROP_PX} px (n, exact)", WIDTH_BAND_NAMES, 14))
    for name, (crops, width_scale, height_scale) in rows.items():
        print(table_row(name, scaled_accuracy(recognizer, crops, width_scale, height_scale), 14))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
