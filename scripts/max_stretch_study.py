"""Which `max_stretch` of the `fill_width` placement reads the most synthetic plates: one model read with each value.

    python scripts/max_stretch_study.py [--model release/kr-lpr] [--values 1 1.25 1.5 1.75 2] [--seed 2026]
        [--n 2000] [--real ../shared/data/real_kr] [--json-out FILE]

`fill_width` reads a crop at the full input width with its height stretched at most `max_stretch` times more than
its width (1 letterboxes flat crops; tall crops are squeezed to the input whatever the value). This draws one
synthetic set as the evaluation sets are drawn, on a seed of its own (2026: not the Results set's 424242, not the
comparison seeds 4242 and 42424, not a training stage's), reads it with the model's processor set to each value, and
prints each value's plates read and, against the model's own value, the plates only each reads and the sign-test
p-value (`compare_models.py`). It reads the real crops with each value too; they take no part in the choice.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from compare_models import compare, format_comparison

from kr_lpr import TinyLPRImageProcessor
from kr_lpr.evaluation import evaluate

ROOT = Path(__file__).resolve().parent.parent
STUDY_SEED = 2026


def processor_variant(model: Path, folder: Path, max_stretch: float) -> Path:
    """A model folder that reads with `fill_width` and `max_stretch`, linking the files of `model` that the
    processor does not write (the processor first, so nothing is written through a link into `model`)."""
    processor = TinyLPRImageProcessor.from_pretrained(model)
    processor.updated(placement="fill_width", max_stretch=max_stretch).save_pretrained(folder)
    for path in model.iterdir():
        if not (folder / path.name).exists():
            (folder / path.name).symlink_to(path.resolve())
    return folder


def real_counts(model: Path, real: Path) -> dict:
    """Real crops read in all and per layout."""
    report = evaluate(model, real)
    by_layout = {name: round(group["n"] * group["plate_accuracy"]) for name, group in report["by_layout"].items()}
    return {"read": round(report["n"] * report["plate_accuracy"]), "crops": report["n"], "by_layout": by_layout}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "release" / "kr-lpr")
    parser.add_argument("--values", type=float, nargs="+", default=[1.0, 1.25, 1.5, 1.75, 2.0])
    parser.add_argument("--seed", type=int, default=STUDY_SEED)
    parser.add_argument("--n", type=int, default=2000, help="synthetic plates (default 2000)")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real_kr")
    parser.add_argument("--json-out", type=Path, help="also write the counts here")
    args = parser.parse_args(argv)
    own = TinyLPRImageProcessor.from_pretrained(args.model).max_stretch
    values = [own, *sorted(set(args.values) - {own})]
    with tempfile.TemporaryDirectory() as tmp:
        folders = {
            f"max_stretch {value:g}": processor_variant(args.model, Path(tmp) / f"{value:g}", value) for value in values
        }
        result = compare([str(folder) for folder in folders.values()], [args.seed], args.n)
        result["models"] = {name: result["models"][str(folder)] for name, folder in folders.items()}
        result["model"] = os.path.relpath(args.model, ROOT)  # the same wherever the script runs from
        print(format_comparison(result))
        if args.real.is_dir():
            result["real"] = {name: real_counts(folder, args.real) for name, folder in folders.items()}
            for name, counts in result["real"].items():
                print(f"{name}: {counts['read']} of {counts['crops']} real crops read {counts['by_layout']}")
        else:
            print(f"real plates not found at {args.real}: skipping them")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
