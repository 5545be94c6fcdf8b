"""Ablation of TinyLPR's training choices: short runs of equal budget and seed, scored on real plates.

    python scripts/ablation.py --steps 1500 --batch-size 64 [--real ../shared/data/real_kr]
                               [--out release/ablation.json] [--num-workers N]

Rows: CTC only; + character masks; + focal CTC; + center loss (the default recipe); the default at
96x192; the default at the ~10 MFLOP width. Every run streams the same synthetic plates (seed 0)
for the same number of steps, then `kr-lpr evaluate` scores it on the real crops and on 500 fresh
synthetic plates. Runs that already finished (their `final/` exists) are not repeated.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from kr_lpr.evaluation import evaluate
from kr_lpr.synth import write_dataset
from kr_lpr.training import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
PLAIN_CTC = {"focal_alpha": 1.0, "focal_gamma": 0.0, "mask_loss_weight": 0.0, "center_loss_weight": 0.0}
VARIANTS = {
    "CTC only": PLAIN_CTC,
    "+ masks": {**PLAIN_CTC, "mask_loss_weight": 1.0},
    "+ focal CTC": {"mask_loss_weight": 1.0, "center_loss_weight": 0.0},
    "+ center loss (default)": {},
    "default at 96x192": {"image_height": 96, "image_width": 192},
    "default at width 0.35 (~10 MFLOPs)": {"width_multiplier": 0.35, "feature_channels": 48},
}


def run_variant(name: str, overrides: dict, steps: int, batch_size: int, num_workers: int, runs_dir: Path) -> Path:
    output_dir = runs_dir / name.split(" (")[0].replace(" ", "_").replace("+", "plus")
    if (output_dir / "final" / "model.safetensors").is_file():
        return output_dir / "final"
    config = TrainConfig.from_file(ROOT / "configs" / "release.yaml").updated(
        {
            "output_dir": str(output_dir),
            "max_steps": steps,
            "batch_size": batch_size,
            "num_workers": num_workers,
            "num_threads": 2,
            # Release stage 1's first steps: its warm-up, then its rate held (stage 1 decays it over 8000
            # steps, so its first few thousand run near the peak; decaying over a short budget stalls in the
            # CTC blank plateau).
            "lr_scheduler": "constant_with_warmup",
            "center_loss_start_step": steps // 2,
            "eval_steps": steps,
            "save_steps": steps // 4,
            "synth_val_size": 128,
            **overrides,
        }
    )
    return train(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--runs", default=str(ROOT / "runs" / "ablation"))
    parser.add_argument("--real", default=str(ROOT.parent / "shared" / "data" / "real_kr"))
    parser.add_argument("--out", default=str(ROOT / "release" / "ablation.json"))
    parser.add_argument(
        "--num-workers", type=int, default=1, help="DataLoader workers rendering plates (15 on a 16-core GPU machine)"
    )
    args = parser.parse_args(argv)
    if not (Path(args.real) / "labels.csv").is_file():
        print(f"real plates not found at {args.real}: the ablation is scored on them, so it cannot run")
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(tmp, n=500, seed=515151, split="val")
        for name, overrides in VARIANTS.items():
            final = run_variant(name, overrides, args.steps, args.batch_size, args.num_workers, Path(args.runs))
            real = evaluate(final, args.real)
            synthetic = evaluate(final, tmp)
            rows.append(
                {"variant": name, "steps": args.steps, "batch_size": args.batch_size,
                 "real_plate_accuracy": real["plate_accuracy"], "real_char_accuracy": real["char_accuracy"],
                 "synthetic_plate_accuracy": synthetic["plate_accuracy"],
                 "synthetic_char_accuracy": synthetic["char_accuracy"]}
            )  # fmt: skip
            print(json.dumps(rows[-1], ensure_ascii=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("\n| variant | real plates | real characters | synthetic plates | synthetic characters |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['real_plate_accuracy']:.1%} | {row['real_char_accuracy']:.1%} "
            f"| {row['synthetic_plate_accuracy']:.1%} | {row['synthetic_char_accuracy']:.1%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
