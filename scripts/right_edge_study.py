"""How the right end of long one-row plates moves a model's last character: synthetic variants and real crops.

    python scripts/right_edge_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Renders the same white one-row plates (`train` preset as the thirteenth generator drew it, seed 11) four ways
that differ only in how their bolts and border are drawn, and prints for each the plate accuracy and the share
of plates whose last character is misread; the real one-row crops give the same two figures. The variants set
`synth_render.BOLT_KIND_P` and `RIM_BESIDE_BOLTS_P`:
- twelfth generator: round bolts of four kinds, the border at the plate's edge (as before the thirteenth);
- screws: every bolt a small dark slotted screw, the border at the plate's edge;
- border beside the bolts: round bolts, every border just outside them;
- screws and border: the right end of the real old white plates (a digit, a screw touching it, the border).
The thirteenth generator draws 35% of its bolts as screws, and 60% of the borders of plates whose bolts sit beside
the text just outside them.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from plate_study import THIRTEENTH_GENERATOR, real_crops, study_arguments, synthetic_plates

from kr_lpr import LicensePlateRecognizer, synth_render

ROUND_BOLTS = (0.35, 0.2, 0.35, 0.1, 0.0)  # the twelfth generator's kinds: no screws
SCREWS = tuple(float(kind == synth_render.SCREW_KIND) for kind in range(len(synth_render.BOLT_KIND_P)))
VARIANTS = {
    "twelfth generator": (ROUND_BOLTS, 0.0),
    "screws": (SCREWS, 0.0),
    "border beside the bolts": (ROUND_BOLTS, 1.0),
    "screws and border": (SCREWS, 1.0),
}


@contextmanager
def bolts_and_border(bolt_kind_p: tuple[float, ...], rim_beside_bolts_p: float):
    saved = synth_render.BOLT_KIND_P, synth_render.RIM_BESIDE_BOLTS_P
    synth_render.BOLT_KIND_P, synth_render.RIM_BESIDE_BOLTS_P = bolt_kind_p, rim_beside_bolts_p
    try:
        yield
    finally:
        synth_render.BOLT_KIND_P, synth_render.RIM_BESIDE_BOLTS_P = saved


def scores(recognizer: LicensePlateRecognizer, images: list, labels: list[str]) -> tuple[float, float]:
    """Plate accuracy and the share of plates whose last character is read wrong (or missing)."""
    readings = [reading["text"] for reading in recognizer(images)]
    plate = np.mean([reading == label for reading, label in zip(readings, labels)])
    last = np.mean([reading[-1:] != label[-1:] for reading, label in zip(readings, labels)])
    return float(plate), float(last)


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    recognizer = LicensePlateRecognizer(args.model, backend="torch")
    print(f"{'plates':<34}{'n':>6}{'plate accuracy':>16}{'last character wrong':>22}")
    for name, knobs in VARIANTS.items():
        with bolts_and_border(*knobs):
            plates = synthetic_plates(THIRTEENTH_GENERATOR, args.n)
        plate, last = scores(recognizer, *plates)
        print(f"{'synthetic, ' + name:<34}{args.n:>6}{plate:>16.2%}{last:>22.2%}")
    real = real_crops(args.real)
    if real is None:
        return 0
    plate, last = scores(recognizer, *real)
    print(f"{'real one-row crops':<34}{len(real[1]):>6}{plate:>16.2%}{last:>22.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
