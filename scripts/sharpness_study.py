"""How much fine detail the model sees in real and synthetic crops, and how much of each it reads, by crop width.

    python scripts/sharpness_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Fine detail is measured on the crop letterboxed to the model's input with its aspect ratio kept (placement
"center", the processor's of the stages it was written for), padding left out. It is the mean absolute difference
between that picture and a copy of it at half the resolution, over the picture's standard deviation: the share of
its contrast held in detail finer than two input pixels. Blur lowers it; sharpening halos, noise and compression
ringing raise it. This prints, per band of crop width in pixels, how many crops fall in it, the share read exactly
and the median fine detail, for the real one-row crops and for the same white one-row plates (`train` preset,
seed 11) drawn by:
- fourteenth generator: never sharpened (`sharpen_p` 0);
- fifteenth generator: seven crops in ten sharpened at the pixel scale;
- sixteenth generator: plates under 160 px cut tall as detectors box them;
- seventeenth generator: most of those also squeezed sideways (its white plates are the eighteenth's).
Then, for each set, its most frequent misreadings among the crops under 160 px wide, where the real crops lose
most: which characters the model confuses there, and in which direction.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from plate_study import (
    FIFTEENTH_GENERATOR,
    FOURTEENTH_GENERATOR,
    SEVENTEENTH_GENERATOR,
    SIXTEENTH_GENERATOR,
    SMALL_CROP_PX,
    WIDTH_BAND_NAMES,
    WIDTH_BANDS,
    cells_by_band,
    real_crops,
    study_arguments,
    synthetic_plates,
    table_row,
)

from kr_lpr import LicensePlateRecognizer
from kr_lpr.metrics import plate_metrics
from kr_lpr.preprocessing_tinylpr import letterbox

VARIANTS = {
    "fourteenth generator": FOURTEENTH_GENERATOR,
    "fifteenth generator": FIFTEENTH_GENERATOR,
    "sixteenth generator": SIXTEENTH_GENERATOR,
    "seventeenth generator": SEVENTEENTH_GENERATOR,
}


def fine_detail(image: Image.Image, width: int, height: int) -> float:
    """The share of the letterboxed picture's contrast held in detail finer than two pixels."""
    canvas, box = letterbox(image, width, height, "center")
    picture = canvas[box.offset_y :, box.offset_x :][: box.resized_height, : box.resized_width].astype(np.float32)
    half = (max(1, picture.shape[1] // 2), max(1, picture.shape[0] // 2))
    coarse = cv2.resize(cv2.resize(picture, half, interpolation=cv2.INTER_AREA), picture.shape[::-1])
    return float(np.abs(picture - coarse).mean() / max(picture.std(), 1.0))


def band_cells(
    recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str], readings: list[str]
) -> list[str]:
    """One `n exact detail` cell per band of `WIDTH_BANDS`."""
    right = np.array([reading == label for reading, label in zip(readings, labels)])
    height, width = recognizer.processor.image_height, recognizer.processor.image_width
    detail = np.array([fine_detail(image, width, height) for image in images])
    widths = np.array([image.width for image in images])
    return cells_by_band(
        widths,
        WIDTH_BANDS,
        lambda inside: f"{inside.sum():>5} {right[inside].mean():>6.1%} {np.median(detail[inside]):.3f}",
        f"{0:>5} {'-':>6} {'-':>5}",
    )


def small_crop_misreadings(images: list[Image.Image], labels: list[str], readings: list[str]) -> str:
    """The most frequent misreadings among the crops narrower than `SMALL_CROP_PX`, as `5→6 (4)`."""
    small = [(reading, label) for image, label, reading in zip(images, labels, readings) if image.width < SMALL_CROP_PX]
    misreadings = plate_metrics(*zip(*small))["misreadings"] if small else []
    return ", ".join(f"{m['label'] or '∅'}→{m['read_as'] or '∅'} ({m['count']})" for m in misreadings)


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    recognizer = LicensePlateRecognizer(args.model, backend="torch")
    sets = {f"synthetic, {name}": synthetic_plates(strength, args.n) for name, strength in VARIANTS.items()}
    real = real_crops(args.real)
    if real is not None:
        sets["real one-row crops"] = real
    readings = {name: [reading["text"] for reading in recognizer(images)] for name, (images, _) in sets.items()}
    print(table_row("crops (width: n, exact, detail)", WIDTH_BAND_NAMES, 20))
    for name, (images, labels) in sets.items():
        print(table_row(name, band_cells(recognizer, images, labels, readings[name]), 20))
    print(f"\nmost frequent misreadings of the crops under {SMALL_CROP_PX} px wide")
    for name, (images, labels) in sets.items():
        print(f"{name}: {small_crop_misreadings(images, labels, readings[name])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
