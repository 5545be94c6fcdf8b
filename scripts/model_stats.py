"""Parameters, multiply-accumulates, FLOPs and safetensors size of TinyLPR's inference graph.

    python scripts/model_stats.py                       # default config and the small widths
    python scripts/model_stats.py --model release/kr-lpr --json stats.json

MACs are counted for convolutions, linear layers and the attention's weighted feature sum
(time_steps x channels x positions); element-wise ops and activations are not counted, as in
seed 000's figure. FLOPs = 2 x MACs. The mask head is training-only and not counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from kr_lpr import TinyLPRConfig, TinyLPRModel

TARGET_PARAMETERS = 200_000  # seed 000's deployed model: 198,189
TARGET_MFLOPS = 55.0  # seed 000's deployed model: 55.06 MFLOPs
SMALL_WIDTHS = (0.5, 0.35)


def count_macs(model: TinyLPRModel) -> int:
    macs = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal macs
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        macs += output.numel() * kernel

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_features

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    config = model.config
    with torch.no_grad():
        outputs = model(torch.zeros(1, config.num_channels, config.image_height, config.image_width))
    for hook in hooks:
        hook.remove()
    positions = outputs.order_maps.shape[-2] * outputs.order_maps.shape[-1]
    return macs + config.time_steps * config.feature_channels * positions


def model_stats(model: TinyLPRModel, name: str) -> dict:
    model.eval()
    macs = count_macs(model)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        size = (Path(tmp) / "model.safetensors").stat().st_size
    config = model.config
    return {
        "name": name,
        "input": f"{config.image_height}x{config.image_width}",
        "width_multiplier": config.width_multiplier,
        "parameters": sum(p.numel() for p in model.parameters()),
        "macs": macs,
        "mflops": round(2 * macs / 1e6, 2),
        "safetensors_bytes": size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Hub-format folder; default: the default config and small widths")
    parser.add_argument("--json", dest="json_path", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.model:
        rows = [model_stats(TinyLPRModel.from_pretrained(args.model), args.model)]
    else:
        rows = [model_stats(TinyLPRModel(TinyLPRConfig()), "default 64x128")]
        rows.append(model_stats(TinyLPRModel(TinyLPRConfig(image_height=96, image_width=192)), "default 96x192"))
        for width in SMALL_WIDTHS:
            config = TinyLPRConfig(width_multiplier=width, feature_channels=48)
            rows.append(model_stats(TinyLPRModel(config), f"width {width}, 48 features"))
    print(f"{'model':<26}{'input':>8}{'params':>10}{'MFLOPs':>9}{'MACs':>12}{'safetensors':>13}")
    for row in rows:
        print(
            f"{row['name']:<26}{row['input']:>8}{row['parameters']:>10,}{row['mflops']:>9.2f}"
            f"{row['macs']:>12,}{row['safetensors_bytes']:>12,}B"
        )
    default = rows[0]
    within = default["parameters"] <= TARGET_PARAMETERS and default["mflops"] <= TARGET_MFLOPS
    print(
        f"targets for {default['name']}: <= {TARGET_PARAMETERS:,} parameters and <= {TARGET_MFLOPS} MFLOPs: "
        + ("met" if within else "NOT met")
    )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
