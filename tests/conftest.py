"""Shared fixtures: a random-weight Hub-format model folder, script loading, runs without the kr_lpr package."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from kr_lpr import TinyLPRConfig, TinyLPRImageProcessor, TinyLPRModel

REPO_ROOT = Path(__file__).resolve().parent.parent

# Prepended to `python -c` scripts: importing kr_lpr fails, as on a machine that has only transformers,
# so whatever loads must come from the remote-code files of a model folder or repo.
REFUSE_KR_LPR = """
import importlib.abc, sys
class RefuseKrLpr(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "kr_lpr" or name.startswith("kr_lpr."):
            raise ImportError("kr_lpr is not installed here")
sys.meta_path.insert(0, RefuseKrLpr())
"""


def load_script(relative_path: str) -> ModuleType:
    """Imports a file that is not in a package (scripts/, space/) as a module."""
    path = REPO_ROOT / relative_path
    if str(path.parent) not in sys.path:  # as `python scripts/x.py` runs it: its siblings importable
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(code: str, *args: str, env: dict[str, str], cwd: Path, refuse_kr_lpr: bool = True):
    """Runs `code` in a fresh interpreter (kr_lpr refused by default); returns the CompletedProcess."""
    source = REFUSE_KR_LPR + code if refuse_kr_lpr else code
    return subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def isolated_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The current environment with a private, empty HF home and no Hugging Face token."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    return {**env, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1", **overrides}


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory) -> Path:
    """A Hub-format folder (weights, processor, remote code) of a seeded random-weight TinyLPR.

    Freshly initialised, the network's activations shrink to ~1e-7 and its logits are rounding noise.
    BatchNorm statistics taken from one batch of noise and a wider classifier give logits of order 1,
    so readings (and the attention maps) are decided by the weights.
    """
    torch.manual_seed(0)
    model = TinyLPRModel(TinyLPRConfig())
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 1.0  # running statistics := this batch's
    with torch.no_grad():
        model.train()(pixel_values=torch.rand(32, 1, 64, 128))
        nn.init.normal_(model.classifier.weight, std=1.0)
        # Per-step channels of unequal weight, as in trained models (see quantization.sequence_scale).
        model.sequence_norm.weight.copy_(torch.logspace(-2, 0.5, model.config.feature_channels))
    folder = tmp_path_factory.mktemp("random-model") / "kr-lpr"
    model.eval().save_pretrained(folder)
    TinyLPRImageProcessor().save_pretrained(folder)
    return folder
