"""Hangul draw weights for the generator, from a model's accuracy per syllable on fresh synthetic plates.

    python scripts/hangul_weights.py release/kr-lpr [--seed 6363] [--n 8000] [--max-weight 4] [--json-out F]

Reads `--n` plates of `--seed` (a seed neither the release stages nor the evaluation sets draw) with the model,
prints each syllable's accuracy and its weight `clip(error / mean error, 1, max_weight)` (the mean over all
syllable tokens), and the `hangul_weights:` block to put under a training config's `synth_strength`: syllables
read worse than average are drawn up to `max_weight` times as often, the others as before.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from kr_lpr.evaluation import evaluate
from kr_lpr.metrics import token_kind
from kr_lpr.synth import write_dataset

DIAGNOSTIC_SEED = 6363


def syllable_weights(by_token: dict[str, dict], max_weight: float) -> dict[str, dict]:
    """`{syllable: {"n", "accuracy", "weight"}}` for the Hangul tokens of `plate_metrics`' `by_token`."""
    syllables = {token: figures for token, figures in by_token.items() if token_kind(token) == "hangul"}
    tokens = sum(figures["n"] for figures in syllables.values())
    mean_error = sum(figures["n"] * (1 - figures["accuracy"]) for figures in syllables.values()) / tokens
    return {
        token: {**figures, "weight": round(min(max_weight, max(1.0, (1 - figures["accuracy"]) / (mean_error or 1))), 2)}
        for token, figures in syllables.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Hub-format model folder")
    parser.add_argument("--seed", type=int, default=DIAGNOSTIC_SEED)
    parser.add_argument("--n", type=int, default=8000, help="plates to read (default 8000)")
    parser.add_argument("--max-weight", type=float, default=4.0)
    parser.add_argument("--json-out", help="also write the figures and weights here")
    args = parser.parse_args(argv)
    if args.max_weight < 1:
        parser.error(f"--max-weight must be at least 1, got {args.max_weight}")
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(tmp, n=args.n, seed=args.seed, split="val")
        report = evaluate(args.model, tmp)
    syllables = syllable_weights(report["by_token"], args.max_weight)
    print(f"{args.model}: {report['n']} plates of seed {args.seed}, plate accuracy {report['plate_accuracy']:.2%}")
    for token, figures in sorted(syllables.items(), key=lambda item: item[1]["accuracy"]):
        print(f"  {token}  n={figures['n']:<5} accuracy {figures['accuracy']:.2%}  weight {figures['weight']:g}")
    weights = {token: figures["weight"] for token, figures in syllables.items() if figures["weight"] > 1}
    print("synth_strength:\n  hangul_weights:")
    print("\n".join(f"    {token}: {weight:g}" for token, weight in weights.items()))
    if args.json_out:
        result = {"model": args.model, "seed": args.seed, "n": args.n, "max_weight": args.max_weight,
                  "syllables": syllables, "hangul_weights": weights}  # fmt: skip
        Path(args.json_out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
