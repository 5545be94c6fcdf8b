"""Averages the weights of Hub-format model folders fine-tuned from the same weights (a uniform model soup).

    python scripts/average_weights.py release/kr-lpr release/candidates/stage47 --out runs/soup

Stages that fine-tune one set of weights with different seeds or training mixes end near each other, and
the mean of their weights often reads better than each of them (Wortsman et al., 2022, "Model soups").
The folders must hold the same architecture and token set. Batch-norm running statistics are averaged
like the weights; the quantization ranges are not stored in the weights (`kr-lpr export` calibrates
them), so the mean exports as any trained folder does. The output is a Hub-format folder with the first
folder's config, processor and labels: score it with `scripts/evaluate.py --model OUT`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from kr_lpr.export import load_pretrained
from kr_lpr.modeling_tinylpr import TinyLPRModel

# Keys that say where and with what a folder was written, not what it holds.
PROVENANCE_KEYS = ("_name_or_path", "transformers_version")


def architecture(model: TinyLPRModel) -> dict:
    config = model.config.to_dict()
    return {key: value for key, value in config.items() if key not in PROVENANCE_KEYS}


def average_models(models: list[TinyLPRModel]) -> TinyLPRModel:
    """The first model with every floating-point tensor of its state replaced by the mean over `models`."""
    first = models[0]
    for other in models[1:]:
        if architecture(other) != architecture(first):
            raise ValueError(
                "the folders hold different architectures or token sets: only one model's fine-tunes average"
            )
    states = [model.state_dict() for model in models]
    mean = {
        key: torch.stack([state[key] for state in states]).mean(0) if value.is_floating_point() else value
        for key, value in states[0].items()
    }
    first.load_state_dict(mean)
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="Hub-format model folders (at least two)")
    parser.add_argument("--out", required=True, help="the folder to write the averaged model to")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("give at least two model folders to average")
    loaded = [load_pretrained(folder) for folder in args.models]
    model = average_models([model for model, _ in loaded])
    out = Path(args.out)
    model.save_pretrained(out)
    loaded[0][1].save_pretrained(out)
    print(f"averaged {len(args.models)} models into {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
