"""Korean plate text: the token set, `labels.names` I/O, plate-format validity and CTC decoding.

Depends on numpy only, so the deployment bundle inlines this file unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIGITS = tuple("0123456789")
# The 40 Hangul syllables printed on Korean plates (private, commercial, rental, military-free set).
HANGUL = tuple("가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주하허호바사아자배")
# The 17 metropolitan and provincial names printed on commercial and old regional plates.
REGIONS = (
    "서울",
    "부산",
    "대구",
    "인천",
    "광주",
    "대전",
    "울산",
    "세종",
    "경기",
    "강원",
    "충북",
    "충남",
    "전북",
    "전남",
    "경북",
    "경남",
    "제주",
)
DEFAULT_TOKENS = DIGITS + HANGUL + REGIONS

_PLATE_PATTERN = re.compile(
    "^(?:{regions})?[0-9]{{2,3}}[{hangul}][0-9]{{4}}$".format(regions="|".join(REGIONS), hangul="".join(HANGUL))
)


def is_valid_plate(text: str) -> bool:
    """True when `text` has the Korean plate format `[region]DD(D)HDDDD`."""
    return bool(_PLATE_PATTERN.match(text))


class LabelMap:
    """Maps plate strings to token ids and back; id 0 is the CTC blank, tokens start at 1.

    Multi-character tokens (the region names) are matched greedily, longest first, so
    `서울12가3456` encodes to 8 ids.
    """

    blank_id = 0

    def __init__(self, tokens: tuple[str, ...] | list[str] = DEFAULT_TOKENS) -> None:
        tokens = tuple(tokens)
        if not tokens:
            raise ValueError("LabelMap needs at least one token")
        duplicated = sorted({t for t in tokens if tokens.count(t) > 1})
        if duplicated:
            raise ValueError(f"duplicate tokens in label set: {duplicated}")
        if any(not t or t.isspace() for t in tokens):
            raise ValueError("tokens must be non-empty and not whitespace")
        self.tokens = tokens
        self._id_of = {t: i + 1 for i, t in enumerate(tokens)}
        self._by_length = sorted(tokens, key=len, reverse=True)

    @property
    def num_classes(self) -> int:
        """Number of CTC classes, the blank included."""
        return len(self.tokens) + 1

    def split(self, text: str) -> list[str]:
        """Splits a plate string into tokens; raises ValueError naming an unknown character."""
        pieces, i = [], 0
        while i < len(text):
            token = next((t for t in self._by_length if text.startswith(t, i)), None)
            if token is None:
                raise ValueError(f"unknown character {text[i]!r} at position {i} in plate {text!r}")
            pieces.append(token)
            i += len(token)
        return pieces

    def encode(self, text: str) -> list[int]:
        return [self._id_of[t] for t in self.split(text)]

    def decode(self, ids: list[int] | np.ndarray) -> str:
        """Joins token ids into text; blanks are skipped (no CTC collapsing here)."""
        return "".join(self.tokens[i - 1] for i in map(int, ids) if i != self.blank_id)

    def save(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.tokens) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LabelMap:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls([line.strip() for line in lines if line.strip()])


@dataclass
class PlateReading:
    text: str
    confidence: float
    valid: bool
    char_confidences: list[float]

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "confidence": self.confidence,
            "valid": self.valid,
            "char_confidences": self.char_confidences,
        }


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def ctc_greedy_decode(probs: np.ndarray, label_map: LabelMap) -> PlateReading:
    """Best-path decoding of one `(time_steps, num_classes)` probability matrix.

    A character's confidence is its highest probability over the run of steps it spans;
    the plate confidence is the product of character confidences.
    """
    best = probs.argmax(axis=-1)
    ids, confidences = [], []
    previous = label_map.blank_id
    for step, class_id in enumerate(best):
        class_id = int(class_id)
        if class_id != label_map.blank_id:
            if class_id != previous:
                ids.append(class_id)
                confidences.append(float(probs[step, class_id]))
            else:
                confidences[-1] = max(confidences[-1], float(probs[step, class_id]))
        previous = class_id
    text = label_map.decode(ids)
    return PlateReading(text, float(np.prod(confidences)) if ids else 0.0, is_valid_plate(text), confidences)


def _log_add(a: float, b: float) -> float:
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    return max(a, b) + float(np.log1p(np.exp(-abs(a - b))))


def _add_beam(
    beams: dict[tuple[int, ...], list[float]], prefix: tuple[int, ...], blank: float, non_blank: float
) -> None:
    entry = beams.setdefault(prefix, [-np.inf, -np.inf])
    entry[0] = _log_add(entry[0], blank)
    entry[1] = _log_add(entry[1], non_blank)


def ctc_prefix_beams(probs: np.ndarray, blank_id: int, beam_width: int) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search; returns `(ids, log_prob)` pairs, best first."""
    log_probs = np.log(np.clip(probs, 1e-12, 1.0))
    # prefix -> (log P ending in blank, log P ending in non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}
    for step in log_probs:
        candidates = np.argsort(-step, kind="stable")[:beam_width]  # ties: lowest id first, as argmax (greedy) picks
        next_beams: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_blank, p_non_blank) in beams.items():
            p_total = _log_add(p_blank, p_non_blank)
            for class_id in map(int, candidates):
                p = float(step[class_id])
                if class_id == blank_id:
                    _add_beam(next_beams, prefix, p_total + p, -np.inf)
                    continue
                extended = prefix + (class_id,)
                if prefix and prefix[-1] == class_id:
                    _add_beam(next_beams, extended, -np.inf, p_blank + p)  # a repeat needs a blank between
                    _add_beam(next_beams, prefix, -np.inf, p_non_blank + p)  # otherwise it collapses
                else:
                    _add_beam(next_beams, extended, -np.inf, p_total + p)
        ranked = sorted(next_beams.items(), key=lambda kv: _log_add(*kv[1]), reverse=True)
        beams = {prefix: (b, nb) for prefix, (b, nb) in ranked[:beam_width]}
    return [(prefix, _log_add(*scores)) for prefix, scores in beams.items()]


def ctc_beam_decode(probs: np.ndarray, label_map: LabelMap, beam_width: int = 10) -> PlateReading:
    """Beam search with the plate-format filter (LPRNet): the best beam with a valid format wins.

    Falls back to the best beam when none of the top `beam_width` beams is a valid plate.
    Character confidences come from the greedy alignment when it agrees with the chosen text,
    else from each character's best probability at any step.
    """
    beams = ctc_prefix_beams(probs, label_map.blank_id, beam_width)
    texts = [(label_map.decode(ids), ids, log_p) for ids, log_p in beams]
    text, ids, log_p = next((t for t in texts if is_valid_plate(t[0])), texts[0])
    greedy = ctc_greedy_decode(probs, label_map)
    if greedy.text == text:
        confidences = greedy.char_confidences
    else:
        confidences = [float(probs[:, i].max()) for i in ids]
    return PlateReading(text, float(np.exp(log_p)), is_valid_plate(text), confidences)


def decode_batch(logits: np.ndarray, label_map: LabelMap, method: str = "greedy", beam_width: int = 10) -> list[dict]:
    """Decodes `(batch, time_steps, num_classes)` logits to plate readings as dicts."""
    if method not in ("greedy", "beam"):
        raise ValueError(f"decoding method must be 'greedy' or 'beam', got {method!r}")
    probs = softmax(np.asarray(logits, dtype=np.float64))
    if method == "greedy":
        return [ctc_greedy_decode(p, label_map).to_dict() for p in probs]
    return [ctc_beam_decode(p, label_map, beam_width).to_dict() for p in probs]
