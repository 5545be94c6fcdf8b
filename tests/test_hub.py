"""The Hub repo folder (scripts/build_hub_repo.py), its model card, and pushing it (scripts/push_to_hub.py)
end to end against a local fake Hub (tests/fake_hub.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import REPO_ROOT, isolated_env, load_script, run_python
from fake_hub import FakeHub
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from kr_lpr import TinyLPRImageProcessor, TinyLPRModel

build = load_script("scripts/build_hub_repo.py")

REPO_ID, SPACE_ID = "kr-lpr-team/kr-lpr", "alice/kr-lpr-demo"
TOKEN = "hf_alice_token"
REMOTE_CODE = ("configuration_tinylpr.py", "modeling_tinylpr.py", "image_processing_tinylpr.py",
               "plate_codec_tinylpr.py", "preprocessing_tinylpr.py")  # fmt: skip
HUB_FILES = {"README.md", "config.json", "model.safetensors", "preprocessor_config.json", "labels.names",
             "model.onnx", "model_float32.tflite", "model_uint8.tflite", "export_report.json",
             "kr-lpr-bundle.zip", *REMOTE_CODE}  # fmt: skip
EXAMPLES = sorted(str(path) for path in (REPO_ROOT / "space" / "examples").glob("*.png"))

# Stand-ins for `kr-lpr evaluate --json` and `scripts/benchmark.py --json-out`.
EVAL_REAL = {
    "model": "release/kr-lpr", "data": "../shared/data/real_kr", "backend": "torch", "n": 281,
    "plate_accuracy": 0.8932, "plate_accuracy_format_filter": 0.9075, "char_accuracy": 0.9812,
    "by_layout": {"one-row": {"n": 250, "plate_accuracy": 0.912}, "two-row": {"n": 31, "plate_accuracy": 0.7419}},
    "by_style": {"white": {"n": 230, "plate_accuracy": 0.9174}, "green-two-row": {"n": 51, "plate_accuracy": 0.7843}},
    "by_token_kind": {"digit": {"n": 1720, "accuracy": 0.9965, "plates_misread": 6},
                      "hangul": {"n": 281, "accuracy": 0.9466, "plates_misread": 15}},
    "throughput_plates_per_s": 845.2,
    "errors": [{"file": "../shared/data/real_kr/crop_0042.jpg", "label": "98무7513", "prediction": "98무7518"}],
}  # fmt: skip
EVAL_SYNTH = {
    **EVAL_REAL, "data": "data/synth_test", "n": 2000, "plate_accuracy": 0.9661,
    "plate_accuracy_format_filter": 0.9712, "char_accuracy": 0.9951, "errors": [],
}  # fmt: skip
BENCHMARK = {
    "machine": {"cpu": "test-cpu", "cores": 2},
    "rows": [
        {"name": "tflite-uint8", "latency_ms_1_thread": 0.4312, "latency_ms_2_threads": 0.3561,
         "throughput_batch64_plates_per_s": 3811.0, "size_bytes": 272384},
        {"name": "recognizer-e2e", "latency_ms_1_thread": 0.8123, "latency_ms_2_threads": 0.7011,
         "throughput_batch64_plates_per_s": None, "size_bytes": None},
    ],
}  # fmt: skip

# Runs in a fresh interpreter without kr_lpr, against the fake Hub: download, hash, load by repo id, predict.
LOAD_BY_REPO_ID = """
import hashlib, json, sys
from pathlib import Path
import numpy as np, torch
from huggingface_hub import snapshot_download
from transformers import AutoImageProcessor, AutoModel
repo_id, out, images = sys.argv[1], sys.argv[2], sys.argv[3:]
folder = Path(snapshot_download(repo_id))
hashes = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob("*")) if p.is_file()}
model = AutoModel.from_pretrained(repo_id, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained(repo_id, trust_remote_code=True)
with torch.no_grad():
    logits = model(**processor(images=images, return_tensors="pt")).logits.numpy()
np.save(out, logits)
print(json.dumps({"hashes": hashes, "model": type(model).__module__}))
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_hashes(folder: Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()}


def torch_logits(model_dir: Path, images: list) -> np.ndarray:
    model = TinyLPRModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(**TinyLPRImageProcessor.from_pretrained(model_dir)(images=images, return_tensors="pt")).logits


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    paths = {}
    for name, report in (("eval_real", EVAL_REAL), ("eval_synth", EVAL_SYNTH), ("benchmark", BENCHMARK)):
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    return paths


def start_build(model_dir: Path, out: Path, reports: dict[str, Path], tmp_path: Path) -> subprocess.Popen:
    # A fresh process each, as a person runs it: a second export in one process names TFLite tensors differently.
    options = [f"--{name.replace('_', '-')}={path}" for name, path in reports.items()]
    command = [sys.executable, str(REPO_ROOT / "scripts" / "build_hub_repo.py"), "--model", str(model_dir),
               "--out", str(out), *options, "--repo-id", REPO_ID, "--space-id", SPACE_ID]  # fmt: skip
    env = isolated_env(tmp_path, HF_HUB_OFFLINE="1")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


@pytest.fixture(scope="module")
def hub_builds(random_model_dir, reports, tmp_path_factory) -> tuple[Path, Path]:
    """Two builds of the same inputs, run side by side; the second replaces an older build's folder."""
    tmp_path = tmp_path_factory.mktemp("build")
    older = tmp_path / "again"
    older.mkdir()
    (older / "config.json").write_text(json.dumps({"model_type": "tinylpr"}))
    (older / "kr-lpr-bundle.zip").write_text("an older build")
    (older / "stale-file.txt").write_text("gone after the rebuild")
    builds = [start_build(random_model_dir, out, reports, tmp_path) for out in (tmp_path / "hub", older)]
    for process in builds:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    return tmp_path / "hub", older


@pytest.fixture(scope="module")
def hub_repo(hub_builds) -> Path:
    return hub_builds[0]


# -- the built folder -----------------------------------------------------------------------------


def test_build_writes_exactly_the_hub_files(hub_repo):
    expected = HUB_FILES | ({build.EDGETPU_FILE} if shutil.which("edgetpu_compiler") else set())
    assert {path.name for path in hub_repo.iterdir()} == expected


def test_transformers_files_carry_the_weights_and_current_remote_code(hub_repo, random_model_dir):
    config = json.loads((hub_repo / "config.json").read_text())
    assert config["model_type"] == "tinylpr"
    assert config["auto_map"] == {"AutoConfig": "configuration_tinylpr.TinyLPRConfig",
                                  "AutoModel": "modeling_tinylpr.TinyLPRModel"}  # fmt: skip
    processor_config = json.loads((hub_repo / "preprocessor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoImageProcessor": "image_processing_tinylpr.TinyLPRImageProcessor"}
    built, source = load_file(hub_repo / "model.safetensors"), load_file(random_model_dir / "model.safetensors")
    assert built.keys() == source.keys() and all(torch.equal(built[k], source[k]) for k in source)
    for name in REMOTE_CODE:  # the installed package's code, not a stale copy from the model folder
        assert (hub_repo / name).read_bytes() == (REPO_ROOT / "src" / "kr_lpr" / name).read_bytes(), name
    assert (hub_repo / "labels.names").read_text(encoding="utf-8").split() == TinyLPRImageProcessor().labels


def test_onnx_export_runs_the_shipped_weights(hub_repo):
    session = onnxruntime.InferenceSession(str(hub_repo / "model.onnx"), providers=["CPUExecutionProvider"])
    pixel_values = TinyLPRImageProcessor()(images=EXAMPLES, return_tensors="np")["pixel_values"]
    logits = session.run(None, {session.get_inputs()[0].name: pixel_values})[0]
    np.testing.assert_allclose(logits, torch_logits(hub_repo, EXAMPLES).numpy(), atol=1e-4)


def test_tflite_exports_and_report_describe_the_shipped_files(hub_repo):
    report = json.loads((hub_repo / "export_report.json").read_text())
    # Random weights leave many time steps near a tie, which uint8 rounding flips (the release model: 0.996);
    # a broken export agrees on few steps.
    for name, agreement in (("model.onnx", 0.99), ("model_float32.tflite", 0.99), ("model_uint8.tflite", 0.85)):
        entry = next(entry for entry in report["formats"].values() if entry["file"] == name)
        assert entry["size_bytes"] == (hub_repo / name).stat().st_size
        assert entry["argmax_agreement"] > agreement, entry
    uint8 = next(entry for entry in report["formats"].values() if entry["file"] == "model_uint8.tflite")
    assert uint8["input"]["dtype"] == "uint8" and uint8["output"]["dtype"] == "uint8"


def test_bundle_ships_the_same_models(hub_repo):
    with zipfile.ZipFile(hub_repo / "kr-lpr-bundle.zip") as bundle:
        members = {Path(name).name: name for name in bundle.namelist()}
        assert {"lpr_infer.py", "labels.names", "model_uint8.tflite", "model_float32.tflite"} <= members.keys()
        for name in ("model_uint8.tflite", "model_float32.tflite", "model.onnx", "labels.names"):
            if name in members:
                assert bundle.read(members[name]) == (hub_repo / name).read_bytes(), name


def test_model_card_metadata_and_tables_come_from_the_reports(hub_repo):
    card = ModelCard.load(hub_repo / "README.md")
    assert card.data.license == "apache-2.0" and card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "image-to-text" and card.data.language == ["ko"]
    results = {(r.dataset_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("kr-lpr-real-plate-crops", "Plate accuracy (exact match)")] == EVAL_REAL["plate_accuracy"]
    assert results[("kr-lpr-real-plate-crops", "Character accuracy")] == EVAL_REAL["char_accuracy"]
    assert results[("kr-lpr-synthetic", "Plate accuracy (exact match)")] == EVAL_SYNTH["plate_accuracy"]
    text = card.text
    assert "| two-row | 31 | 74.19 % |" in text and "| green-two-row | 51 | 78.43 % |" in text
    assert "| hangul | 281 | 94.66 % | 15 |" in text
    assert "| tflite-uint8 | 266 KiB | 0.431 ms | 0.356 ms | 3,811 plates/s |" in text
    assert "| recognizer-e2e |  | 0.812 ms | 0.701 ms | n/a plates/s |" in text
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True)' in text
    assert f"https://huggingface.co/spaces/{SPACE_ID}" in text
    size = (hub_repo / "model_uint8.tflite").stat().st_size
    assert f"| `model_uint8.tflite` | {build.human_size(size)} |" in text
    # Real plate numbers are personal data: the error list of the real evaluation stays out of the card.
    assert "98무7513" not in text and "crop_0042" not in text


def test_model_card_without_reports_says_so(random_model_dir):
    card = build.render_model_card(random_model_dir)
    assert "model-index" not in str(card) and card.data.eval_results is None
    assert "No evaluation report was supplied" in card.text and "No benchmark report was supplied" in card.text


def test_build_is_byte_identical_when_repeated(hub_builds):
    first, second = hub_builds
    assert folder_hashes(second) == folder_hashes(first)


def test_built_folder_loads_offline_without_kr_lpr(hub_repo, tmp_path):
    code = """
import json, sys
import numpy as np, torch
from transformers import AutoImageProcessor, AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
with torch.no_grad():
    outputs = model(**processor(images=sys.argv[3:], return_tensors="pt"))
np.save(sys.argv[2], outputs.logits.numpy())
print(json.dumps({"model": type(model).__module__, "plates": processor.post_process(outputs)}))
"""
    env = isolated_env(tmp_path, HF_HUB_OFFLINE="1")
    result = run_python(code, str(hub_repo), str(tmp_path / "logits.npy"), *EXAMPLES, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["model"].startswith("transformers_modules")
    expected = torch_logits(hub_repo, EXAMPLES)
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected.numpy(), atol=1e-5)
    assert loaded["plates"] == TinyLPRImageProcessor().post_process(expected)


@pytest.mark.parametrize(
    ("problem", "message"),
    [("missing", "real-plate evaluation file not found"), ("not-json", "is not valid JSON"), ("no-keys", "lacks n,")],
)
def test_build_refuses_bad_reports(problem, message, random_model_dir, tmp_path, capsys):
    report = tmp_path / "eval_real.json"
    if problem != "missing":
        report.write_text("{not json" if problem == "not-json" else json.dumps({"model": "x"}))
    argv = ["--model", str(random_model_dir), "--out", str(tmp_path / "hub"), "--eval-real", str(report)]
    assert build.main(argv) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "hub").exists()


def test_build_refuses_to_replace_an_unrelated_folder(random_model_dir, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    assert build.main(["--model", str(random_model_dir), "--out", str(tmp_path / "out")]) == 1
    assert "is not empty and is not a previous build" in capsys.readouterr().err
    assert (tmp_path / "out" / "notes.txt").read_text() == "keep me"
    for out in (random_model_dir, random_model_dir.parent):
        assert build.main(["--model", str(random_model_dir), "--out", str(out)]) == 1
        assert "would replace the model folder" in capsys.readouterr().err
    assert (random_model_dir / "model.safetensors").is_file()


# -- pushing to a (fake) Hub ----------------------------------------------------------------------


def run_push(hub: FakeHub, tmp_path: Path, model_dir: Path, *args: str, token: str | None = TOKEN):
    env = isolated_env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", **({"HF_TOKEN": token} if token else {}))
    command = [sys.executable, str(REPO_ROOT / "scripts" / "push_to_hub.py"), "--model-dir", str(model_dir),
               "--space-dir", str(REPO_ROOT / "space"), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def alice_hub() -> FakeHub:
    return FakeHub(tokens={TOKEN: "alice"}, orgs={"alice": {"kr-lpr-team": "write", "readers": "read"}})


def test_push_then_download_and_load_by_repo_id(hub_repo, tmp_path):
    with alice_hub() as hub:
        # The model repo exists from an earlier release; the Space is new.
        hub.add_repo(REPO_ID, files={"old_weights.bin": b"an earlier release"})
        result = run_push(hub, tmp_path, hub_repo, "--repo-id", REPO_ID, "--space-id", SPACE_ID, "--private")
        assert result.returncode == 0, result.stderr
        assert "verified" in result.stdout

        model_repo, space_repo = hub.repo(REPO_ID), hub.repo(SPACE_ID, "space")
        assert space_repo.private and space_repo.sdk == "gradio" and not model_repo.private  # --private: new repos
        assert len(model_repo.trees) == 2  # the earlier release, then exactly one push commit
        pushed = model_repo.trees[model_repo.refs["main"]]
        assert {path: hashlib.sha256(content).hexdigest() for path, content in pushed.items()
                if path != ".gitattributes"} == folder_hashes(hub_repo)  # fmt: skip
        assert {"model.safetensors", "model.onnx", "kr-lpr-bundle.zip"} <= model_repo.lfs_paths
        assert space_repo.variables == {"KR_LPR_MODEL": REPO_ID, "KR_LPR_REVISION": "main"}
        space_files = space_repo.trees[space_repo.refs["main"]]
        assert space_files["app.py"] == (REPO_ROOT / "space" / "app.py").read_bytes()
        assert {f"examples/{Path(path).name}" for path in EXAMPLES} <= space_files.keys()
        assert ModelCard(space_files["README.md"].decode()).data.models == [REPO_ID]

        env = isolated_env(tmp_path, HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1")
        loaded = run_python(LOAD_BY_REPO_ID, REPO_ID, str(tmp_path / "logits.npy"), *EXAMPLES, env=env, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    downloaded = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert downloaded["model"].startswith("transformers_modules")
    assert {k: v for k, v in downloaded["hashes"].items() if k != ".gitattributes"} == folder_hashes(hub_repo)
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), torch_logits(hub_repo, EXAMPLES).numpy(), atol=1e-5)


def test_push_without_token_stops_before_any_request(hub_repo, tmp_path):
    with alice_hub() as hub:
        result = run_push(hub, tmp_path, hub_repo, "--repo-id", REPO_ID, token=None)
    assert result.returncode == 1
    assert "no Hugging Face token: set HF_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert not [request for request in hub.requests if request[1] != "/api/agent-harnesses"]


def test_push_with_a_rejected_token(hub_repo, tmp_path):
    with alice_hub() as hub:
        result = run_push(hub, tmp_path, hub_repo, "--repo-id", REPO_ID, token="hf_revoked")
    assert result.returncode == 1 and "rejected the token" in result.stderr and "Traceback" not in result.stderr


def test_push_refuses_a_repo_that_belongs_to_someone_else(hub_repo, tmp_path):
    with alice_hub() as hub:
        bobs = hub.add_repo("bob/kr-lpr", files={"README.md": b"bob's model"})
        clash = run_push(hub, tmp_path, hub_repo, "--repo-id", "bob/kr-lpr")
        foreign = run_push(hub, tmp_path, hub_repo, "--repo-id", "bob/new-model")
        read_only = run_push(hub, tmp_path, hub_repo, "--repo-id", "readers/kr-lpr")
    assert clash.returncode == 1 and "name clash: the model repo bob/kr-lpr already exists" in clash.stderr
    assert len(bobs.trees) == 1  # untouched
    assert foreign.returncode == 1 and "cannot create the model repo bob/new-model" in foreign.stderr
    assert read_only.returncode == 1 and "cannot create the model repo readers/kr-lpr" in read_only.stderr
    assert hub.repo("bob/new-model") is None and hub.repo("readers/kr-lpr") is None
    assert "'alice' can write to alice, kr-lpr-team" in clash.stderr
    assert all("Traceback" not in result.stderr for result in (clash, foreign, read_only))


def test_network_failure_during_the_model_commit_reports_nothing_committed(hub_repo, tmp_path):
    with alice_hub() as hub:
        hub.drop_connection("POST", r"^/api/models/.+/commit/")
        result = run_push(hub, tmp_path, hub_repo, "--repo-id", REPO_ID, "--space-id", SPACE_ID)
        model_repo = hub.repo(REPO_ID)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"pushing the model repo {REPO_ID} failed" in result.stderr and "Nothing was committed" in result.stderr
    assert len(model_repo.trees) == 1 and hub.repo(SPACE_ID, "space") is None
    assert "verified" not in result.stdout


def test_network_failure_during_the_space_commit_is_not_a_success(hub_repo, tmp_path):
    with alice_hub() as hub:
        hub.drop_connection("POST", r"^/api/spaces/.+/commit/")
        result = run_push(hub, tmp_path, hub_repo, "--repo-id", REPO_ID, "--space-id", SPACE_ID)
        model_repo, space_repo = hub.repo(REPO_ID), hub.repo(SPACE_ID, "space")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"the model {REPO_ID}@{model_repo.refs['main'][:12]} was pushed and verified" in result.stderr
    assert f"but the Space {SPACE_ID} was not" in result.stderr and "Nothing was committed" in result.stderr
    assert len(space_repo.trees) == 1 and not space_repo.variables


def test_dry_run_lists_the_files_and_sends_nothing(hub_repo, tmp_path):
    with alice_hub() as hub:
        result = run_push(hub, tmp_path, hub_repo, "--repo-id", REPO_ID, "--space-id", SPACE_ID, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"model repo {REPO_ID} (public) <- {hub_repo}" in result.stdout
    assert "  model_uint8.tflite  " in result.stdout and "  examples/00_white.png  " in result.stdout
    assert not [request for request in hub.requests if request[1] != "/api/agent-harnesses"]
