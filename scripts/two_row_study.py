"""Where a model misreads two-row plates: the small lettering before the serial, or the serial.

    python scripts/two_row_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Two-row plates are the weakest layout on both sets (the stage-45 release reads 66% of the synthetic ones and 10 of
the 23 real ones, against 87% and 243 of 258 one-row). A two-row plate prints its serial in large digits on the
bottom row and the rest (class number, use syllable, region) in smaller lettering, mostly on the top
row. Renders the same green two-row plates (seed 11) with the `clean` and the `train` preset, and prints for each,
and for the real two-row crops, the plate accuracy, the shares whose lettering before the serial and whose
serial are read right, and the crops' median height over width. Drawing more two-row plates in training
(`style_weights`, release stages 47 and 48) did not raise the synthetic two-row accuracy, so this shows which part
of the plate the model cannot resolve, and how the synthetic crops' shape differs from the real ones'.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from plate_study import exact_cells, print_study_table, read_texts, study_arguments

from kr_lpr import LicensePlateRecognizer

SERIAL_DIGITS = 4
# "no small rules": small plates without the squeeze and tall crops that were measured on one-row crops.
VARIANTS = {
    "clean preset": "clean",
    "train preset": "train",
    "train, no small rules": {"two_row_small_rules": False},  # over the train preset
}
COLUMNS = ["n", "exact", "before the serial", "serial", "crop h/w"]


def row_cells(recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str]) -> list[str]:
    """How many plates, the share read exactly, the shares whose text before the serial and whose serial (the
    last four characters of the reading against the label's) are read right, and the crops' median height over
    width (the more of it, the smaller the plate in the model's 2:1 input)."""
    readings = read_texts(recognizer, images)
    pairs = list(zip(readings, labels))
    before = np.mean([reading[:-SERIAL_DIGITS] == label[:-SERIAL_DIGITS] for reading, label in pairs])
    serial = np.mean([reading[-SERIAL_DIGITS:] == label[-SERIAL_DIGITS:] for reading, label in pairs])
    aspect = np.median([image.height / image.width for image in images])
    return exact_cells(readings, labels) + [f"{before:.1%}", f"{serial:.1%}", f"{aspect:.2f}"]


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    print_study_table(args, "two-row plates", COLUMNS, row_cells, VARIANTS, 20, style="green", layout="two-row")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
