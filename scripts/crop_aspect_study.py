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
plates as the fifteenth generator cut them (a fifth tall, whatever their size) and as the sixteenth cut them
(seven plates in ten narrower than `small_plate_px` tall), the twentieth and the twenty-first (half the plates at
least `small_plate_px` wide cut flat around their text).

A third table reads the real one-row crops and the twentieth and twenty-first generators' plates with the model's
processor set to each placement, `stretch` (the crop resized to fill the input, so a flat crop's lettering is
stretched tall), `center` (letterboxed, the lettering keeps its shape) and `fill_width` (the full width, the height
stretched at most the processor's `max_stretch` times more), by finer bands of height over width.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from plate_study import (
    FIFTEENTH_GENERATOR,
    FOURTEENTH_GENERATOR,
    SIXTEENTH_GENERATOR,
    THIRTEENTH_GENERATOR,
    TWENTIETH_GENERATOR,
    WIDTH_BAND_NAMES,
    accuracy_cells,
    median_cells_by_width,
    print_study_table,
    read_exactly,
    study_arguments,
    synthetic_plates,
    table_row,
)

from kr_lpr import LicensePlateRecognizer

BANDS = ((0.0, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, np.inf))  # crop height over width
PLACEMENT_BANDS = ((0.0, 0.25), (0.25, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, np.inf))
PLACEMENTS = ("stretch", "center", "fill_width")
WIDTH_ONLY_GENERATORS = {"fifteenth generator": FIFTEENTH_GENERATOR, "sixteenth generator": SIXTEENTH_GENERATOR}
VARIANTS = {
    "thirteenth generator": THIRTEENTH_GENERATOR,
    "tall": {**FOURTEENTH_GENERATOR, "tall_p": 1.0, "small_tall_p": 1.0, "loose_p": 0.0},
    "fourteenth generator": FOURTEENTH_GENERATOR,
}


def band_names(bands) -> list[str]:
    return [f"{low:.2f}-{high:.2f}" if np.isfinite(high) else f">={low:.2f}" for low, high in bands]


def band_accuracy(
    recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str], bands=BANDS
) -> list[str]:
    """One `n accuracy` cell per band of crop height over width."""
    aspect = np.array([image.height / image.width for image in images])
    return accuracy_cells(aspect, bands, read_exactly(recognizer, images, labels))


def placed(model: str, placement: str) -> LicensePlateRecognizer:
    """The PyTorch reader of `model` with its processor's placement replaced."""
    recognizer = LicensePlateRecognizer(model, backend="torch")
    recognizer.processor = recognizer.processor.updated(placement=placement)
    return recognizer


def print_placement_table(model: str, sets: dict[str, tuple[list[Image.Image], list[str]]]) -> None:
    """Each set of `(images, labels)` read with each of `PLACEMENTS`, by band of `PLACEMENT_BANDS`."""
    print("\n" + table_row("synthetic or real, placement", band_names(PLACEMENT_BANDS), 14))
    for placement in PLACEMENTS:
        recognizer = placed(model, placement)
        for name, plates in sets.items():
            print(table_row(f"{name}, {placement}", band_accuracy(recognizer, *plates, PLACEMENT_BANDS), 14))


def aspect_by_width(images: list[Image.Image]) -> list[str]:
    """One `median (10th-90th percentile)` cell of crop height over width per band of `WIDTH_BANDS`."""
    aspect = np.array([image.height / image.width for image in images])
    return median_cells_by_width(aspect, np.array([image.width for image in images]))


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    real = print_study_table(args, "crops (height/width: n, exact)", band_names(BANDS), band_accuracy, VARIANTS, 14)
    print("\n" + table_row("height/width by crop width", WIDTH_BAND_NAMES, 20))
    for name, strength in WIDTH_ONLY_GENERATORS.items():
        print(table_row(f"synthetic, {name}", aspect_by_width(synthetic_plates(strength, args.n)[0]), 20))
    sets = {  # drawn once for this table and the placement table
        "twentieth generator": synthetic_plates(TWENTIETH_GENERATOR, args.n),
        "twenty-first generator": synthetic_plates("train", args.n),
    }
    for name, (images, _) in sets.items():
        print(table_row(f"synthetic, {name}", aspect_by_width(images), 20))
    if real is not None:
        print(table_row("real one-row crops", aspect_by_width(real[0]), 20))
        sets["real one-row crops"] = real
    print_placement_table(args.model, sets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
