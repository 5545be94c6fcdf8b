"""Save a Hub-format folder and load it the way Hub users do: remote code, offline, no kr_lpr."""

import json
import os

import numpy as np
import torch
from conftest import isolated_env, run_python

from kr_lpr import TinyLPRConfig, TinyLPRImageProcessor, TinyLPRModel

# Runs in a fresh interpreter where kr_lpr imports are refused, so only the remote-code copies can load.
LOAD_WITHOUT_PACKAGE = """
import json, sys
import numpy as np, torch
from transformers import AutoConfig, AutoImageProcessor, AutoModel
folder, images = sys.argv[1], np.load(sys.argv[2])
config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
inputs = processor(images=list(images), return_tensors="pt")
with torch.no_grad():
    outputs = model(**inputs)
np.save(sys.argv[3], outputs.logits.numpy())
print(json.dumps({"config": type(config).__module__, "model": type(model).__module__,
                  "plates": processor.post_process(outputs)}))
"""


def test_save_writes_hub_files(tmp_path):
    TinyLPRModel(TinyLPRConfig()).save_pretrained(tmp_path)
    TinyLPRImageProcessor().save_pretrained(tmp_path)
    names = set(os.listdir(tmp_path))
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "labels.names"} <= names
    assert {"configuration_tinylpr.py", "modeling_tinylpr.py", "image_processing_tinylpr.py",
            "plate_codec_tinylpr.py", "preprocessing_tinylpr.py"} <= names  # fmt: skip
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_tinylpr.TinyLPRConfig",
                                  "AutoModel": "modeling_tinylpr.TinyLPRModel"}  # fmt: skip
    processor_config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert processor_config["auto_map"]["AutoImageProcessor"] == "image_processing_tinylpr.TinyLPRImageProcessor"


def test_remote_code_loads_offline_without_package(tmp_path):
    torch.manual_seed(0)
    model = TinyLPRModel(TinyLPRConfig()).eval()
    processor = TinyLPRImageProcessor()
    folder = tmp_path / "kr-lpr"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    images = np.random.default_rng(0).integers(0, 256, size=(3, 40, 150, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    env = isolated_env(tmp_path, HF_HUB_OFFLINE="1")
    result = run_python(LOAD_WITHOUT_PACKAGE, str(folder), str(tmp_path / "images.npy"), str(tmp_path / "o.npy"),
                        env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["model"].startswith("transformers_modules") and loaded["config"].startswith("transformers_modules")
    with torch.no_grad():
        expected = model(**processor(images=list(images), return_tensors="pt")).logits.numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), expected)
    assert loaded["plates"] == processor.post_process(expected)


def test_auto_classes_registered_for_package_users(tmp_path):
    from transformers import AutoImageProcessor, AutoModel

    TinyLPRModel(TinyLPRConfig(width_multiplier=0.5)).save_pretrained(tmp_path)
    TinyLPRImageProcessor(placement="top_left").save_pretrained(tmp_path)
    assert isinstance(AutoModel.from_pretrained(tmp_path), TinyLPRModel)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(processor, TinyLPRImageProcessor) and processor.placement == "top_left"
