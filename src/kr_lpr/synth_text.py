"""Plate strings for the synthetic generator, sampled from the Korean registration-number rules.

Rules (MOLIT notice on registration plates; Hangul by vehicle use):
- class number: 2 digits (plates before 2019) or 3 digits (from September 2019);
- Hangul: private 가..주 (32 syllables), commercial taxi/bus 바사아자, rental 하허호, delivery 배;
- region (서울, 경기, ...) only on the old green plates (before 2004), commercial yellow plates and
  orange construction-machinery plates;
- 4-digit serial, zero-padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plate_codec_tinylpr import HANGUL, REGIONS

PRIVATE_HANGUL = tuple("가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주")
COMMERCIAL_HANGUL = tuple("바사아자")
RENTAL_HANGUL = tuple("하허호")
DELIVERY_HANGUL = ("배",)
assert set(PRIVATE_HANGUL + COMMERCIAL_HANGUL + RENTAL_HANGUL + DELIVERY_HANGUL) == set(HANGUL)


@dataclass(frozen=True)
class StyleRule:
    """What may be printed on one plate type, and how often the type is drawn."""

    weight: float
    hangul: tuple[str, ...]
    three_digit_p: float  # share of plates with a 3-digit class number
    region_p: float  # share of plates that print a region
    two_row_p: float  # share of plates in the two-row layout


# Sampling proportions: real crops are ~90% white one-row plates, so white types get 67% of the mix
# while every other type stays common enough to teach its layout and every token.
STYLE_RULES = {
    # 520x110 mm one-row `12가3456` (2006-2019)
    "white": StyleRule(0.45, PRIVATE_HANGUL + RENTAL_HANGUL, 0.0, 0.0, 0.0),
    # 520x110 mm one-row `123가4567` (2019-2020, no hologram)
    "white-8": StyleRule(0.10, PRIVATE_HANGUL + RENTAL_HANGUL, 1.0, 0.0, 0.0),
    # 520x110 mm one-row `123가4567` with the 2020 reflective hologram band at the left
    "white-hologram": StyleRule(0.08, PRIVATE_HANGUL + RENTAL_HANGUL, 1.0, 0.0, 0.0),
    # 335x155 mm short one-row plate for cars without the long plate recess
    "white-old-short": StyleRule(0.08, PRIVATE_HANGUL + RENTAL_HANGUL, 0.3, 0.0, 0.0),
    # 520x110 mm light-blue electric/hydrogen vehicle plate with the EV mark at the left
    "blue-ev": StyleRule(0.06, PRIVATE_HANGUL + RENTAL_HANGUL, 0.7, 0.0, 0.0),
    # 520x110 mm light-green plate of corporate cars (2024)
    "corporate": StyleRule(0.04, PRIVATE_HANGUL + RENTAL_HANGUL, 1.0, 0.0, 0.0),
    # 335x170 mm green two-row: `서울12` over `가3456` (to 2003) or `12가` over `3456` (2004-2006)
    "green": StyleRule(0.09, PRIVATE_HANGUL, 0.0, 0.25, 1.0),
    # commercial: two-row `경기71` over `아3701`, or one-row with the region printed vertically at the left
    "yellow": StyleRule(0.11, COMMERCIAL_HANGUL + DELIVERY_HANGUL, 0.0, 1.0, 0.5),
    # construction machinery: region over `04노7823`
    "orange": StyleRule(0.05, PRIVATE_HANGUL + COMMERCIAL_HANGUL, 0.0, 1.0, 1.0),
}
STYLES = tuple(STYLE_RULES)
_STYLE_WEIGHTS = tuple(rule.weight for rule in STYLE_RULES.values())


def pick(rng: np.random.Generator, weights: tuple[float, ...]) -> int:
    """An index drawn with the given relative weights (numpy's `choice(p=...)` costs 30x more per call)."""
    threshold = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        threshold -= weight
        if threshold < 0:
            return index
    return len(weights) - 1


def mix_weights(style_weights: dict[str, float] | None = None) -> tuple[float, ...]:
    """The drawing weight of each of `STYLES`: `STYLE_RULES`' own, with those named in `style_weights` replaced."""
    if not style_weights:
        return _STYLE_WEIGHTS
    unknown = sorted(set(style_weights) - set(STYLES))
    if unknown:
        raise ValueError(f"unknown plate styles {unknown} in style_weights; choose from {STYLES}")
    weights = tuple(float(style_weights.get(name, rule.weight)) for name, rule in STYLE_RULES.items())
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"style_weights must be non-negative with a positive sum, got {style_weights}")
    return weights


def check_hangul_weights(hangul_weights: dict[str, float] | None) -> None:
    """Raises ValueError unless every key is a plate syllable and every weight is positive."""
    if not hangul_weights:
        return
    unknown = sorted(set(hangul_weights) - set(HANGUL))
    if unknown:
        raise ValueError(f"unknown syllables {unknown} in hangul_weights; choose from {''.join(HANGUL)}")
    if min(map(float, hangul_weights.values())) <= 0:
        raise ValueError(f"hangul_weights must be positive (leave a syllable out for weight 1), got {hangul_weights}")


def sample_plate_text(
    rng: np.random.Generator,
    style: str | None = None,
    style_weights: dict[str, float] | None = None,
    hangul_weights: dict[str, float] | None = None,
) -> tuple[str, str, str]:
    """Draws `(text, style, layout)`; the style is drawn from the mix (`mix_weights(style_weights)`) when not given.

    The syllable is drawn uniformly from those the style prints, or with `hangul_weights` (syllables not named
    weigh 1) to show the model more of the syllables it confuses.
    """
    if style is None:
        style = STYLES[pick(rng, mix_weights(style_weights))]
    if style not in STYLE_RULES:
        raise ValueError(f"unknown plate style {style!r}; choose one of {STYLES}")
    rule = STYLE_RULES[style]
    if rng.random() < rule.three_digit_p:
        class_number = f"{rng.integers(100, 1000)}"
    else:
        class_number = f"{rng.integers(0, 100):02d}"
    region = REGIONS[rng.integers(len(REGIONS))] if rng.random() < rule.region_p else ""
    if hangul_weights:
        hangul = rule.hangul[pick(rng, tuple(float(hangul_weights.get(h, 1.0)) for h in rule.hangul))]
    else:
        hangul = rule.hangul[rng.integers(len(rule.hangul))]
    serial = f"{rng.integers(0, 10000):04d}"
    layout = "two-row" if rng.random() < rule.two_row_p else "one-row"
    return f"{region}{class_number}{hangul}{serial}", style, layout
