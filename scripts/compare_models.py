"""Whether a candidate reads more synthetic plates than the release beyond chance: paired counts on fresh sets.

    python scripts/compare_models.py release/kr-lpr runs/release-stage48/final [--seeds 424242 4242 42424]

Reads the same synthetic sets with every model (seed 424242 is the Results set of `scripts/evaluate.py`;
the others are drawn the same way, and no training stage uses any of them) and prints each model's plates
read per set and over all of them. Against the first model it counts the plates only one of the two reads
and gives the two-sided sign-test p-value on them: the chance of a split at least that uneven if both
models were equally good. Stages that fine-tune the same weights differ on a few dozen plates of 2000, so
one set's difference of a few plates is mostly chance. The release rule (`replaces_release`): a candidate
replaces the release (the first model) when it reads more of the plates and p < 0.05. Synthetic plates only:
the real crops stay out of every choice between weights.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from evaluate import SYNTH_VAL_SEED

from kr_lpr.evaluation import evaluate
from kr_lpr.synth import write_dataset

EXTRA_SEEDS = (4242, 42424)
RELEASE_P = 0.05  # the release rule's sign-test threshold (`replaces_release`)


def misread_plates(report: dict) -> set[str]:
    """The file names (`<plate>_<idx>.jpg`, the same in every copy of a set) of the plates a report misread."""
    return {Path(error["file"]).name for error in report["errors"]}


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven when each side is a fair coin."""
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_counts(reference: set[str], candidate: set[str]) -> dict:
    """Plates only the candidate reads (the reference misread them) and plates only the reference reads."""
    wins, losses = len(reference - candidate), len(candidate - reference)
    return {"only_candidate_reads": wins, "only_reference_reads": losses, "sign_test_p": sign_test_p(wins, losses)}


def replaces_release(read_release: int, read_candidate: int, sign_test_p: float) -> bool:
    """The release rule: more plates read, by a margin the sign test finds unlikely to be chance."""
    return read_candidate > read_release and sign_test_p < RELEASE_P


def compare(models: list[str], seeds: list[int], n: int, backend: str = "torch") -> dict:
    """Each model's plates read on every set and on all of them, and each later model's paired counts against
    the first. Every set is rendered once and read by every model."""
    misread = {model: set() for model in models}
    read_per_set = {model: {} for model in models}
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            write_dataset(tmp, n=n, seed=seed, split="val")
            for model in models:
                errors = {f"{seed}/{name}" for name in misread_plates(evaluate(model, tmp, backend=backend))}
                read_per_set[model][str(seed)] = n - len(errors)
                misread[model] |= errors
    total = n * len(seeds)
    rows = {
        model: {"read": read_per_set[model], "read_total": total - len(misread[model]), "plates": total}
        for model in models
    }
    for model in models[1:]:
        pair = paired_counts(misread[models[0]], misread[model])
        replaces = replaces_release(rows[models[0]]["read_total"], rows[model]["read_total"], pair["sign_test_p"])
        rows[model]["against_first"] = {**pair, "replaces_first": replaces}
    return {"seeds": seeds, "plates_per_set": n, "backend": backend, "models": rows}


def format_comparison(result: dict) -> str:
    seeds = [str(seed) for seed in result["seeds"]]
    lines = [f"{'model':<40}" + "".join(f"{'seed ' + seed:>12}" for seed in seeds) + f"{'all':>14}"]
    for model, row in result["models"].items():
        cells = "".join(f"{row['read'][seed]:>12}" for seed in seeds)
        lines.append(f"{model:<40}{cells}{row['read_total'] / row['plates']:>14.2%}")
    first = next(iter(result["models"]))
    for model, row in list(result["models"].items())[1:]:
        pair = row["against_first"]
        lines.append(
            f"{model} against {first}: {pair['only_candidate_reads']} plates only it reads, "
            f"{pair['only_reference_reads']} only {first} reads (sign test p = {pair['sign_test_p']:.3f}): "
            + ("replaces it" if pair["replaces_first"] else f"does not replace it (more plates and p < {RELEASE_P})")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="Hub-format model folders; the first is the reference")
    parser.add_argument("--seeds", type=int, nargs="+", default=[SYNTH_VAL_SEED, *EXTRA_SEEDS])
    parser.add_argument("--n", type=int, default=2000, help="plates per set (default 2000)")
    parser.add_argument("--backend", default="torch", help="torch, or a LicensePlateRecognizer backend (tflite-uint8)")
    parser.add_argument("--json-out", help="also write the counts here")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("give the reference and at least one candidate")
    if len(set(args.models)) < len(args.models):
        parser.error("give each model folder once")
    result = compare(args.models, args.seeds, args.n, args.backend)
    print(format_comparison(result))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
