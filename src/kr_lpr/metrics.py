"""Plate recognition metrics: exact match, exact match with the format filter, character accuracy by token kind,
misreadings."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from .plate_codec_tinylpr import DIGITS, HANGUL, REGIONS, LabelMap, decode_batch


def _edit_table(a: list[str], b: list[str]) -> list[list[int]]:
    """Levenshtein table: entry [i][j] is the edit distance between a[:i] and b[:j]."""
    table = [list(range(len(b) + 1))]
    for i, token_a in enumerate(a, 1):
        row = [i]
        for j, token_b in enumerate(b, 1):
            row.append(min(table[-1][j] + 1, row[j - 1] + 1, table[-1][j - 1] + (token_a != token_b)))
        table.append(row)
    return table


def aligned_misreadings(prediction: list[str], reference: list[str]) -> list[tuple[str, str]]:
    """`(reference token, predicted token)` for each edit of a shortest alignment, in plate order;
    "" stands for the side that has no token (a missed or an extra character)."""
    table = _edit_table(reference, prediction)
    i, j, pairs = len(reference), len(prediction), []
    while i or j:
        if i and j and table[i][j] == table[i - 1][j - 1] + (reference[i - 1] != prediction[j - 1]):
            if reference[i - 1] != prediction[j - 1]:
                pairs.append((reference[i - 1], prediction[j - 1]))
            i, j = i - 1, j - 1
        elif i and table[i][j] == table[i - 1][j] + 1:
            pairs.append((reference[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", prediction[j - 1]))
            j -= 1
    return pairs[::-1]


CONFIDENCE_THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
TOP_MISREADINGS = 10
TOKEN_KINDS = {"digit": frozenset(DIGITS), "hangul": frozenset(HANGUL), "region": frozenset(REGIONS)}


def token_kind(token: str) -> str:
    """`digit`, `hangul` or `region` for a plate token of the default label set, `other` for any other."""
    return next((kind for kind, tokens in TOKEN_KINDS.items() if token in tokens), "other")


def plate_metrics(
    predictions: list[str],
    references: list[str],
    filtered_predictions: list[str] | None = None,
    groups: dict[str, list[str]] | None = None,
    label_map: LabelMap | None = None,
    confidences: list[float] | None = None,
) -> dict:
    """Accuracy figures for decoded plates.

    Args:
        predictions: greedy-decoded texts.
        references: ground-truth texts.
        filtered_predictions: texts from beam search with the plate-format filter, if computed.
        groups: e.g. `{"layout": [...], "style": [...]}`, one value per plate, for breakdowns.
        label_map: splits texts into tokens for character accuracy (regions count as one).
        confidences: the greedy readings' plate confidences; adds `by_confidence`, for each threshold in
            `CONFIDENCE_THRESHOLDS` the share of plates read at least that confidently and their accuracy.

    Character accuracy is `1 - edits / reference_length`, summed over plates, with the edits of a shortest
    alignment (`aligned_misreadings`). `by_token` splits it by reference token, `{"n", "accuracy": 1 - edits / n}`
    in label order, and `by_token_kind` by its kind (`token_kind`), with `"plates_misread"`: plates with an edit
    on such a token; an extra predicted token belongs to no reference token and counts in `char_accuracy` only.
    `misreadings` lists the `TOP_MISREADINGS` most frequent edits, `{"label", "read_as", "count"}` (most first; ""
    for a missed or an extra token): where the generator or the training data should look next.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    label_map = label_map or LabelMap()
    correct = np.array([p == r for p, r in zip(predictions, references)], dtype=bool)
    errors = total = 0
    edits, token_counts, token_edits, kind_plates = Counter(), Counter(), Counter(), Counter()
    for prediction, reference in zip(predictions, references):
        reference_tokens = label_map.split(reference)
        plate_edits = aligned_misreadings(_tokens(label_map, prediction), reference_tokens)
        errors += min(len(reference_tokens), len(plate_edits))
        total += len(reference_tokens)
        edits.update(plate_edits)
        token_counts.update(reference_tokens)
        edited_tokens = [label for label, _ in plate_edits if label]
        token_edits.update(edited_tokens)
        kind_plates.update(set(map(token_kind, edited_tokens)))
    kind_counts, kind_edits = Counter(), Counter()
    for token, n in token_counts.items():
        kind = token_kind(token)
        kind_counts[kind] += n
        kind_edits[kind] += token_edits[token]
    metrics = {
        "n": len(references),
        "plate_accuracy": float(correct.mean()) if len(correct) else 0.0,
        "char_accuracy": 1 - errors / total if total else 0.0,
        "by_token": {
            token: {"n": n, "accuracy": 1 - token_edits[token] / n}
            for token in label_map.tokens
            if (n := token_counts[token])
        },
        "by_token_kind": {
            kind: {"n": n, "accuracy": 1 - kind_edits[kind] / n, "plates_misread": kind_plates[kind]}
            for kind in (*TOKEN_KINDS, "other")
            if (n := kind_counts[kind])
        },
        "misreadings": [
            {"label": label, "read_as": read, "count": n} for (label, read), n in edits.most_common(TOP_MISREADINGS)
        ],
    }
    if filtered_predictions is not None:
        metrics["plate_accuracy_format_filter"] = float(
            np.mean([p == r for p, r in zip(filtered_predictions, references)])
        )
    for group_name, values in (groups or {}).items():
        metrics[f"by_{group_name}"] = _breakdown(correct, values)
    if confidences is not None:
        metrics["by_confidence"] = _selective(correct, np.asarray(confidences, dtype=np.float64))
    return metrics


def _selective(correct: np.ndarray, confidences: np.ndarray) -> dict[str, dict]:
    """Accuracy of the plates a reader would accept at each confidence threshold, and how many it keeps."""
    table = {}
    for threshold in CONFIDENCE_THRESHOLDS:
        kept = confidences >= threshold
        accuracy = float(correct[kept].mean()) if kept.any() else 0.0
        table[f"{threshold:g}"] = {"kept": float(kept.mean()), "plate_accuracy": accuracy}
    return table


def _tokens(label_map: LabelMap, text: str) -> list[str]:
    # Predictions come from the label map, so they always split; guard anyway for hand-made input.
    try:
        return label_map.split(text)
    except ValueError:
        return list(text)


def _breakdown(correct: np.ndarray, values: list[str]) -> dict[str, dict]:
    indices: dict[str, list[int]] = defaultdict(list)
    for index, value in enumerate(values):
        indices[value or "unknown"].append(index)
    return {
        value: {"n": len(idx), "plate_accuracy": float(correct[idx].mean())} for value, idx in sorted(indices.items())
    }


def label_ids_to_texts(label_ids: np.ndarray, label_map: LabelMap) -> list[str]:
    """Padded `(batch, max_len)` label ids (-100 padding) back to plate texts."""
    return [label_map.decode([i for i in row if i >= 0]) for row in np.asarray(label_ids)]


def build_compute_metrics(label_map: LabelMap, format_filter: bool = True):
    """A `Trainer` `compute_metrics` callback: logits and padded label ids to plate metrics."""

    def compute_metrics(eval_prediction) -> dict:
        logits, label_ids = eval_prediction.predictions, eval_prediction.label_ids
        references = label_ids_to_texts(label_ids, label_map)
        predictions = [r["text"] for r in decode_batch(logits, label_map, "greedy")]
        filtered = [r["text"] for r in decode_batch(logits, label_map, "beam")] if format_filter else None
        metrics = plate_metrics(predictions, references, filtered, label_map=label_map)
        del metrics["n"], metrics["misreadings"], metrics["by_token"]  # the Trainer logs scalar figures only
        for kind, figures in metrics.pop("by_token_kind").items():
            metrics[f"{kind}_accuracy"] = figures["accuracy"]
        return metrics

    return compute_metrics
