"""How a crop's shape moves a model's accuracy: real one-row crops and synthetic white plates by height over width.

    python scripts/crop_aspect_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Detectors box small plates loosely above and below but tightly at the sides, so many real crops are much
taller than the plate they hold. This prints, per band of crop height over width, how many crops fall in it
and the share read exactly, for the real one-row crops and for the same white one-row plates (`train` preset as
the fourteenth generator drew it, seed 11) cut three ways:
- thirteenth generator: tight, loose or cut around the text, never tall (`tall_p` 0);
- tall: every crop tall, tight at the sides and `tall_aspect` (0.4 to 0.75) times as tall as wide;
- fourteenth generator: as it cut them (a fifth of the crops tall).

Detectors box small plates so more often than large ones. A second table, which needs no model, prints per band
of crop width the median crop height over width (10th and 90th percentiles) of the real one-row crops and of the
plates as the fifteenth generator cut them (a fifth tall, whatever their size) and as the `train` preset cuts
them now (seven plates in ten narrower than `small_plate_px` tall).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from plate_study import (
    FIFTEENTH_GENERATOR,
    FOURTEENTH_GENERATOR,
    THIRTEENTH_GENERATOR,
    WIDTH_BAND_NAMES,
    WIDTH_BANDS,
    real_one_row_crops,
    study_arguments,
    white_plates,
)

from kr_lpr import LicensePlateRecognizer

BANDS = ((0.0, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, np.inf))  # crop height over width
VARIANTS = {
    "thirteenth generator": THIRTEENTH_GENERATOR,
    "tall": {**FOURTEENTH_GENERATOR, "tall_p": 1.0, "small_tall_p": 1.0, "loose_p": 0.0},
    "fourteenth generator": FOURTEENTH_GENERATOR,
}


def band_accuracy(recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str]) -> list[str]:
    """One `n accuracy` cell per band of `BANDS`."""
    readings = [reading["text"] for reading in recognizer(images)]
    right = np.array([reading == label for reading, label in zip(readings, labels)])
    aspect = np.array([image.height / image.width for image in images])
    cells = []
    for low, high in BANDS:
        inside = (aspect >= low) & (aspect < high)
        cells.append(f"{inside.sum():>5} {right[inside].mean():>7.1%}" if inside.any() else f"{0:>5} {'-':>7}")
    return cells


def aspect_by_width(images: list[Image.Image]) -> list[str]:
    """One `median (10th-90th percentile)` cell of crop height over width per band of `WIDTH_BANDS`."""
    widths = np.array([image.width for image in images])
    aspect = np.array([image.height / image.width for image in images])
    cells = []
    for low, high in WIDTH_BANDS:
        inside = (widths >= low) & (widths < high)
        if inside.any():
            p10, median, p90 = np.percentile(aspect[inside], [10, 50, 90])
            cells.append(f"{median:.2f} ({p10:.2f}-{p90:.2f})")
        else:
            cells.append("-")
    return cells


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    recognizer = LicensePlateRecognizer(args.model, backend="torch")
    bands = [f"{low:.1f}-{high:.1f}" if np.isfinite(high) else f">={low:.1f}" for low, high in BANDS]
    print(f"{'crops (height/width: n, exact)':<34}" + "".join(f"{band:>14}" for band in bands))
    for name, strength in VARIANTS.items():
        cells = band_accuracy(recognizer, *white_plates(strength, args.n))
        print(f"{'synthetic, ' + name:<34}" + "".join(f"{cell:>14}" for cell in cells))
    real = real_one_row_crops(args.real)
    if real is not None:
        cells = band_accuracy(recognizer, *real)
        print(f"{'real one-row crops':<34}" + "".join(f"{cell:>14}" for cell in cells))
    print(f"\n{'height/width by crop width':<34}" + "".join(f"{band:>20}" for band in WIDTH_BAND_NAMES))
    rows = {"synthetic, fifteenth generator": FIFTEENTH_GENERATOR, "synthetic, train preset": {}}
    for name, strength in rows.items():
        cells = aspect_by_width(white_plates(strength, args.n)[0])
        print(f"{name:<34}" + "".join(f"{cell:>20}" for cell in cells))
    if real is not None:
        print(f"{'real one-row crops':<34}" + "".join(f"{cell:>20}" for cell in aspect_by_width(real[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
