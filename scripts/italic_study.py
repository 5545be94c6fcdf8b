"""What italic lettering costs a model: synthetic variants, and the real one-row crops by how far their lettering leans.

    python scripts/italic_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Many real 2006-2019 white one-row plates print their lettering italic in an upright border, and the stage-40
release read four real 5s as 6 (`64구8686` for `64구8586`): three on old white one-row plates, two of those with
italic lettering, whose 5 curls its bowl round towards the stem. Renders the same white one-row plates (`train`
preset, seed 11) two ways, and prints for each, and for the real one-row crops, the plate accuracy and, among the
5s of readings as long as their label, how many there are and the share read as 6:
- nineteenth generator: upright lettering (`italic_p` 0);
- italic: every plate's lettering leaning (1.0; `synth_render.ITALIC_LEAN`), the drawn typeface's 5 curled
  (`synth_render.CURLED_FIVE`).
The twentieth generator (and the `train` preset since) draws it on 40% of its white one-row plates.
Then the real one-row crops by their lettering's lean (`lettering_lean`), with the share read exactly.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from plate_study import (
    NINETEENTH_GENERATOR,
    accuracy_cells,
    exact_cells,
    print_study_table,
    read_exactly,
    read_texts,
    study_arguments,
    study_recognizer,
    table_row,
)

from kr_lpr import LicensePlateRecognizer

VARIANTS = {
    "nineteenth generator": NINETEENTH_GENERATOR,
    "italic": {**NINETEENTH_GENERATOR, "italic_p": 1.0},
}
COLUMNS = ["n", "exact", "n 5", "5 as 6"]
LEAN_BANDS = ((-np.inf, 0.03), (0.03, 0.07), (0.07, np.inf))
LEAN_BAND_NAMES = ["lean < 0.03", "lean 0.03-0.07", "lean >= 0.07"]
_SHEARS = np.linspace(-0.4, 0.4, 81)


def lettering_lean(image: Image.Image) -> float:
    """How far the lettering's vertical strokes move right from foot to top, in heights: the shear that, taken
    back out, stacks the darkest third of the crop's middle band into the sharpest column profile (a camera's
    shear of the whole plate counts too)."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    gray = cv2.resize(gray, (gray.shape[1] * 4, gray.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
    height, width = gray.shape
    band = gray[height // 4 : 3 * height // 4, width // 10 : 17 * width // 20]
    ink = (band < np.percentile(band, 30)).astype(np.float32)
    rows = ink.shape[0]

    def profile_sharpness(shear: float) -> float:
        upright = cv2.warpAffine(ink, np.float32([[1, shear, -shear * rows / 2], [0, 1, 0]]), (ink.shape[1], rows))
        return float((upright.sum(0) ** 2).sum())

    return float(max(_SHEARS, key=profile_sharpness))


def five_cells(recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str]) -> list[str]:
    """How many plates, the share read exactly, and the 5s of readings as long as their label with the share read 6."""
    readings = read_texts(recognizer, images)
    fives = [
        read
        for reading, label in zip(readings, labels)
        if len(reading) == len(label)
        for written, read in zip(label, reading)
        if written == "5"
    ]
    return exact_cells(readings, labels) + [str(len(fives)), f"{fives.count('6') / max(1, len(fives)):.1%}"]


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    real = print_study_table(args, "white one-row plates", COLUMNS, five_cells, VARIANTS, 10)
    if real is not None:
        leans = np.array([lettering_lean(image) for image in real[0]])
        right = read_exactly(study_recognizer(args.model), *real)
        print()
        print(table_row("real one-row crops by lean", [f"{name:>13}" for name in LEAN_BAND_NAMES], 16))
        print(table_row("n, exact", accuracy_cells(leans, LEAN_BANDS, right), 16))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
