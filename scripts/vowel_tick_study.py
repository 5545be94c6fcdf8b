"""What the short ㅏ and ㅓ ticks of real plates cost a model: synthetic variants and the real one-row crops.

    python scripts/vowel_tick_study.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--n 1000]

Real plates print the tick of ㅏ as a nub beside the stem. The stage-38 release read 3 of the 40 real one-row use
syllables with ㅏ as ㅓ (하 as 허 twice, 바 as 버) and none of the 72 with ㅓ as ㅏ; three two-row ones too (라 as 러
twice, 다 as 더). Renders the same white one-row plates (`train` preset, seed 11) two ways, and prints for each,
and for the real one-row crops, the plate accuracy and, among plates whose use syllable has ㅏ (ㅓ), how many there
are and the share read with ㅓ (ㅏ) in its place:
- eighteenth generator: the drawn plate typeface's long ticks (`short_ticks_p` 0);
- short ticks: every plate of the drawn typeface with the real plates' short ones (1.0; `synth_render.SHORT_TICK`).
The nineteenth generator (and the `train` preset since) draws them on 80% of its plates of the drawn typeface.
"""

from __future__ import annotations

from PIL import Image
from plate_study import EIGHTEENTH_GENERATOR, exact_cells, print_study_table, read_texts, study_arguments

from kr_lpr import LicensePlateRecognizer
from kr_lpr.plate_codec_tinylpr import HANGUL, LabelMap
from kr_lpr.synth_render import jamo

VARIANTS = {
    "eighteenth generator": EIGHTEENTH_GENERATOR,
    "short ticks": {**EIGHTEENTH_GENERATOR, "short_ticks_p": 1.0},
}
COLUMNS = ["n", "exact", "n ㅏ", "ㅏ as ㅓ", "n ㅓ", "ㅓ as ㅏ"]
_LABEL_MAP = LabelMap()


def use_syllable_vowel(text: str) -> str | None:
    """The vowel of the plate's one use syllable (`가`, `허`, ...), or None where it has none or several."""
    syllables = [token for token in _LABEL_MAP.split(text) if token in HANGUL]
    return jamo(syllables[0])[1] if len(syllables) == 1 else None


def vowel_cells(recognizer: LicensePlateRecognizer, images: list[Image.Image], labels: list[str]) -> list[str]:
    """How many plates, the share read exactly, and per vowel ㅏ/ㅓ its plates and the share read with the other."""
    readings = read_texts(recognizer, images)
    cells = exact_cells(readings, labels)
    vowels = [(use_syllable_vowel(label), use_syllable_vowel(reading)) for reading, label in zip(readings, labels)]
    for vowel, other in ("ㅏㅓ", "ㅓㅏ"):
        read_as = [read for written, read in vowels if written == vowel]
        cells += [str(len(read_as)), f"{read_as.count(other) / max(1, len(read_as)):.1%}"]
    return cells


def main(argv: list[str] | None = None) -> int:
    args = study_arguments(__doc__.splitlines()[0], argv)
    print_study_table(args, "white one-row plates", COLUMNS, vowel_cells, VARIANTS, 10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
