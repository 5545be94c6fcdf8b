"""How a crop's shape moves a model's accuracy: real one-row crops and synthetic white plates by height over width.

    python scripts/crop_aspect_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Detectors box small plates loosely above and below but tightly at the sides, so many real crops are much
taller than the plate they hold. This prints, per band of crop height over width, how many crops fall in it
and the share read exactly, for the real one-row crops and for the same white one-row plates (`train` preset as
the fourteenth generator drew it, seed 11) cut three ways:
- thirteenth generator: tight, loose or cut around the text, never tall (`tall_p` 0);
- tall: every crop tall, tight at the sides and `tall_aspect` (0.4 to 0.75) times as tall as wide;
- fourteenth generator: as it cut them (a fifth of the crops tall).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from plate_study import FOURTEENTH_GENERATOR, THIRTEENTH_GENERATOR, real_one_row_crops, study_arguments, white_plates

from kr_lpr import LicensePlateRecognizer

BANDS = ((0.0, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, np.inf))  # crop height over width
VARIANTS = {
    "thirteenth generator": THIRTEENTH_GENERATOR,
    "tall": {**FOURTEENTH_GENERATOR, "tall_p": 1.0, "loose_p": 0.0},
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


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    recognizer = LicensePlateRecognizer(args.model, backend="torch")
    bands = [f"{low:.1f}-{high:.1f}" if np.isfinite(high) else f">={low:.1f}" for low, high in BANDS]
    print(f"{'crops (height/width: n, exact)':<34}" + "".join(f"{band:>14}" for band in bands))
    for name, strength in VARIANTS.items():
        cells = band_accuracy(recognizer, *white_plates(strength, args.n))
        print(f"{'synthetic, ' + name:<34}" + "".join(f"{cell:>14}" for cell in cells))
    real = real_one_row_crops(args.real)
    if real is None:
        return 0
    cells = band_accuracy(recognizer, *real)
    print(f"{'real one-row crops':<34}" + "".join(f"{cell:>14}" for cell in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
