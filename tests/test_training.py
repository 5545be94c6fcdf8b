"""Trainer, train/evaluate commands and metrics on small real runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from transformers import EvalPrediction

from kr_lpr import LabelMap, TinyLPRConfig, TinyLPRImageProcessor, TinyLPRModel
from kr_lpr.data import collate_plates, encode_plate_example
from kr_lpr.evaluation import main as evaluate_main
from kr_lpr.keras_tinylpr import fold_conv_norm, fold_linear_after_norm
from kr_lpr.metrics import aligned_misreadings, build_compute_metrics, plate_metrics
from kr_lpr.modeling_tinylpr import TinyLPRConvNormAct
from kr_lpr.synth import plate_rng, render_plate, write_dataset
from kr_lpr.training import LPRTrainer, TrainConfig, train, training_arguments
from kr_lpr.training import main as train_main

TINY = {"width_multiplier": 0.35, "feature_channels": 32, "batch_size": 8, "synth_val_size": 16, "num_workers": 0,
        "logging_steps": 5, "warmup_steps": 2, "center_loss_start_step": 10, "learning_rate": 3e-3}  # fmt: skip


def logged_losses(output_dir: Path) -> list[dict]:
    checkpoint = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [entry for entry in state["log_history"] if "loss" in entry]


def test_short_synthetic_run_learns_and_resumes(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=30, save_steps=15, eval_steps=15, **TINY)
    final = train(config)
    losses = logged_losses(tmp_path / "run")
    assert losses[-1]["loss"] < losses[0]["loss"]
    assert {"ctc_loss", "mask_loss", "center_loss"} <= set(losses[-1])
    assert (final / "model.safetensors").is_file() and (final / "labels.names").is_file()
    assert "eval_plate_accuracy" in json.loads((final / "eval_results.json").read_text())
    # A longer run in the same directory resumes from checkpoint-30 instead of starting over.
    resumed = train(TrainConfig(**{**config.__dict__, "max_steps": 40}))
    state = json.loads((tmp_path / "run" / "checkpoint-40" / "trainer_state.json").read_text())
    assert state["global_step"] == 40 and resumed.is_dir()
    first_logged_step = min(e["step"] for e in logged_losses(tmp_path / "run") if e["step"] > 30)
    assert first_logged_step == 35


def test_fine_tune_from_folder(tmp_path):
    base = train(TrainConfig(output_dir=str(tmp_path / "base"), max_steps=2, save_steps=2, eval_steps=2, **TINY))
    write_dataset(tmp_path / "plates", n=24, seed=1, split="train")
    write_dataset(tmp_path / "plates", n=8, seed=2, split="val")
    code = train_main(["--init-from", str(base), "--data-dir", str(tmp_path / "plates"), "--output-dir",
                       str(tmp_path / "tuned"), "--max-steps", "4", "--set", "batch_size=8", "--set", "num_workers=0",
                       "--set", "save_steps=4", "--set", "eval_steps=4", "--set", "placement=stretch",
                       "--set", "max_stretch=1.25"])  # fmt: skip
    assert code == 0
    tuned = TinyLPRModel.from_pretrained(tmp_path / "tuned" / "final")
    assert tuned.config.width_multiplier == 0.35
    base_processor = TinyLPRImageProcessor.from_pretrained(base)
    assert (base_processor.placement, base_processor.max_stretch) == ("fill_width", 1.5)  # a new processor's
    tuned_processor = TinyLPRImageProcessor.from_pretrained(tmp_path / "tuned" / "final")
    assert (tuned_processor.placement, tuned_processor.max_stretch) == ("stretch", 1.25)


def test_quantization_aware_run_ends_with_kernels_on_the_int8_grid(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=4, save_steps=2, eval_steps=4, **TINY)
    final = train(config.updated({"quantization_aware": True}))
    assert np.isfinite([entry["loss"] for entry in logged_losses(tmp_path / "run")]).all()
    for folder in (tmp_path / "run" / "checkpoint-2", final):  # plain state dicts: loadable Hub folders
        model, info = TinyLPRModel.from_pretrained(folder, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
    kernels = []
    for module in model.modules():
        if isinstance(module, TinyLPRConvNormAct):
            norm = module[1]
            # BatchNorm statistics stay frozen at their start (a new model's 0 and 1), as the export folds them.
            assert torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))
            assert torch.equal(norm.running_var, torch.ones_like(norm.running_var))
            kernels.append(fold_conv_norm(module[0], norm)[0].reshape(len(norm.running_mean), -1))
    kernels.append(fold_linear_after_norm(model.classifier, model.sequence_norm)[0])
    for kernel in kernels:  # as the export folds them
        steps = kernel / (np.abs(kernel).max(1, keepdims=True) / 127)
        np.testing.assert_allclose(steps, steps.round(), atol=1e-3)


def test_accumulated_micro_batches_give_the_gradient_of_one_batch(tmp_path):
    # Eight plates, boxes on five: one micro-batch holds one boxed plate, the other four. Each plate's
    # mask loss must weigh the same however the step's plates are split.
    config = TinyLPRConfig(width_multiplier=0.35, feature_channels=32, classifier_dropout=0.0)
    processor = TinyLPRImageProcessor(config.image_height, config.image_width)
    plates = [render_plate(plate_rng(3, index), "train") for index in range(8)]
    features = [
        encode_plate_example(p["image"], p["text"], p["boxes"] if i in (0, 4, 5, 6, 7) else None, processor, config)
        for i, p in enumerate(plates)
    ]
    model = TinyLPRModel(config).train()
    for module in model.modules():  # batch statistics would differ between a micro-batch and the whole batch
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.eval()
    args = training_arguments(TrainConfig(output_dir=str(tmp_path), num_workers=0), has_eval=False)
    trainer = LPRTrainer(model=model, args=args, data_collator=collate_plates, center_loss_start_step=0)

    def step_gradients(batches: list[dict]) -> list[torch.Tensor]:
        model.zero_grad()
        trainer.get_batch_samples(iter(batches), len(batches), torch.device("cpu"))
        for batch in batches:
            trainer.compute_loss(model, batch).backward()
        return [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]

    whole = step_gradients([collate_plates(features)])
    split = step_gradients([collate_plates(features[:4]), collate_plates(features[4:])])
    assert len(whole) == len(split)
    for a, b in zip(whole, split):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_fine_tuning_defaults_to_a_gentler_learning_rate():
    assert training_arguments(TrainConfig(), has_eval=False).learning_rate == 2e-3
    assert training_arguments(TrainConfig(init_from="release/kr-lpr"), has_eval=False).learning_rate == 3e-4
    assert training_arguments(TrainConfig(init_from="x", learning_rate=1e-5), has_eval=False).learning_rate == 1e-5


def test_schedule_is_cosine_unless_set():
    assert training_arguments(TrainConfig(), has_eval=False).lr_scheduler_type == "cosine"
    held = TrainConfig().updated({"lr_scheduler": "constant_with_warmup"}, source="--set")
    assert training_arguments(held, has_eval=False).lr_scheduler_type == "constant_with_warmup"


def test_torchrun_trains_one_model_across_processes(tmp_path):
    # On CPU too: two processes join one gloo job and split each step's plates between them.
    options = [f"{key}={value}" for key, value in {**TINY, "eval_steps": 4, "save_steps": 4}.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "kr_lpr.cli", "train",
               "--output-dir", str(tmp_path / "run"), "--max-steps", "4", *(f"--set={o}" for o in options)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("training on 2 process(es), 16 plates per step") == 1
    assert result.stdout.count("final model:") == 1
    assert "eval_plate_accuracy" in json.loads((tmp_path / "run" / "final" / "eval_results.json").read_text())


def test_unknown_option_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--output-dir", str(tmp_path), "--set", "learning_rat=1"])
    assert exit_info.value.code == 2
    assert "learning_rat" in capsys.readouterr().err


def test_plate_metrics_hand_built():
    metrics = plate_metrics(
        ["12가3456", "12가3457", "서울12가3456", ""],
        ["12가3456", "12가3456", "서울12가3456", "34나5678"],
        filtered_predictions=["12가3456", "12가3456", "서울12가3456", ""],
        groups={"layout": ["one-row", "one-row", "two-row", "one-row"]},
        confidences=[0.95, 0.6, 0.8, 0.1],
    )
    assert metrics["plate_accuracy"] == 0.5
    assert metrics["plate_accuracy_format_filter"] == 0.75
    assert metrics["char_accuracy"] == pytest.approx(1 - (1 + 7) / (7 + 7 + 8 + 7))
    assert metrics["by_layout"] == {
        "one-row": {"n": 3, "plate_accuracy": 1 / 3},
        "two-row": {"n": 1, "plate_accuracy": 1.0},
    }
    assert metrics["by_confidence"]["0.5"] == {"kept": 0.75, "plate_accuracy": 2 / 3}
    assert metrics["by_confidence"]["0.9"] == {"kept": 0.25, "plate_accuracy": 1.0}


def test_token_accuracy_charges_each_edit_to_the_reference_token():
    metrics = plate_metrics(
        ["12허3457", "34나567", "서울56다7890", "경기12가3456"],
        ["12하3456", "34나5678", "56다7890", "부산12가3456"],
    )
    assert list(metrics["by_token"])[:3] == ["0", "1", "2"]  # label order
    assert metrics["by_token"]["하"] == {"n": 1, "accuracy": 0.0}
    assert metrics["by_token"]["6"] == {"n": 4, "accuracy": 0.75}
    assert metrics["by_token"]["8"] == {"n": 2, "accuracy": 0.5}
    assert metrics["by_token"]["가"] == {"n": 1, "accuracy": 1.0} and "서울" not in metrics["by_token"]
    assert metrics["by_token_kind"] == {
        "digit": {"n": 24, "accuracy": 1 - 2 / 24, "plates_misread": 2},
        "hangul": {"n": 4, "accuracy": 0.75, "plates_misread": 1},
        "region": {"n": 1, "accuracy": 0.0, "plates_misread": 1},
    }


def test_hangul_weights_draw_syllables_read_worse_than_average_more_often():
    """`scripts/hangul_weights.py`: weight = error / mean error over syllable tokens, between 1 and the cap."""
    syllable_weights = load_script("scripts/hangul_weights.py").syllable_weights
    by_token = {"1": {"n": 50, "accuracy": 0.5}, "가": {"n": 100, "accuracy": 0.8}, "거": {"n": 100, "accuracy": 0.95},
                "마": {"n": 100, "accuracy": 0.25}, "서울": {"n": 10, "accuracy": 0.0}}  # fmt: skip
    weights = {token: figures["weight"] for token, figures in syllable_weights(by_token, max_weight=2).items()}
    assert weights == {"가": 1.0, "거": 1.0, "마": 2.0}  # mean error 1/3: 가 0.6, 거 0.15, 마 2.25 capped
    assert syllable_weights(by_token, max_weight=10)["마"]["weight"] == 2.25
    perfect = {"가": {"n": 5, "accuracy": 1.0}}
    assert syllable_weights(perfect, max_weight=4)["가"] == {"n": 5, "accuracy": 1.0, "weight": 1.0}


def test_misreadings_align_substitutions_misses_and_extras():
    assert aligned_misreadings(list("12가3451"), list("12가3457")) == [("7", "1")]
    assert aligned_misreadings(list("12가345"), list("12가3456")) == [("6", "")]
    assert aligned_misreadings(["부산", *"12가3456"], list("12가3456")) == [("", "부산")]
    counts = plate_metrics(
        ["12가3451", "34나5671", "서울12가3456", "56허7890", "12가3456"],
        ["12가3457", "34나5677", "12가3456", "56하7890", "12가3456"],
    )["misreadings"]
    assert counts == [
        {"label": "7", "read_as": "1", "count": 2},
        {"label": "", "read_as": "서울", "count": 1},
        {"label": "하", "read_as": "허", "count": 1},
    ]


def test_compute_metrics_from_logits():
    label_map = LabelMap()
    ids = label_map.encode("12가3456")
    logits = np.full((1, 16, label_map.num_classes), -10.0)
    logits[0, :, 0] = 10.0
    for step, token_id in enumerate(ids):
        logits[0, 2 * step, token_id] = 20.0
    labels = np.array([ids + [-100]])
    metrics = build_compute_metrics(label_map)(EvalPrediction(predictions=logits, label_ids=labels))
    assert metrics["plate_accuracy"] == 1.0 and metrics["char_accuracy"] == 1.0
    assert metrics["digit_accuracy"] == 1.0 and metrics["hangul_accuracy"] == 1.0
    assert all(isinstance(value, float) for value in metrics.values())  # what the Trainer's loggers take


def test_evaluate_command_writes_documented_json(tmp_path):
    model_dir = train(TrainConfig(output_dir=str(tmp_path / "m"), max_steps=1, save_steps=1, eval_steps=1, **TINY))
    write_dataset(tmp_path / "plates", n=6, seed=3, split="val")
    out = tmp_path / "report.json"
    code = evaluate_main([str(model_dir), str(tmp_path / "plates"), "--json", str(out), "--errors-html",
                          str(tmp_path / "errors.html")])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert {"model", "data", "backend", "n", "plate_accuracy", "plate_accuracy_format_filter", "char_accuracy",
            "by_layout", "by_style", "by_token", "by_token_kind", "by_confidence", "misreadings",
            "throughput_plates_per_s", "errors"} <= set(report)  # fmt: skip
    assert report["n"] == 6 and len(report["errors"]) == round(6 * (1 - report["plate_accuracy"]))
    assert bool(report["misreadings"]) == bool(report["errors"])
    assert (tmp_path / "errors.html").read_text().count("<img") == len(report["errors"])


def test_evaluate_names_a_missing_model_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([str(tmp_path / "no-model"), str(tmp_path)])
    assert exit_info.value.code == 2 and "no-model" in capsys.readouterr().err


def test_average_weights_writes_the_mean_of_the_folders(random_model_dir, tmp_path):
    """`scripts/average_weights.py`: every float tensor is the mean, the integer buffers and the processor are
    the first folder's, and the result loads as a model folder."""
    average_weights = load_script("scripts/average_weights.py")
    shifted = TinyLPRModel.from_pretrained(random_model_dir)
    with torch.no_grad():
        for tensor in shifted.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(2.0)
    shifted.save_pretrained(tmp_path / "shifted")
    TinyLPRImageProcessor(image_height=32).save_pretrained(tmp_path / "shifted")
    folders = [str(random_model_dir), str(tmp_path / "shifted")]
    assert average_weights.main([*folders, "--out", str(tmp_path / "mean")]) == 0
    first = TinyLPRModel.from_pretrained(random_model_dir).state_dict()
    mean = TinyLPRModel.from_pretrained(tmp_path / "mean").state_dict()
    for key, tensor in first.items():
        expected = tensor + 1.0 if tensor.is_floating_point() else tensor
        torch.testing.assert_close(mean[key], expected)
    processor = TinyLPRImageProcessor.from_pretrained(tmp_path / "mean")
    assert processor.to_dict() == TinyLPRImageProcessor.from_pretrained(random_model_dir).to_dict()


def test_average_weights_refuses_different_architectures(random_model_dir, tmp_path):
    average_weights = load_script("scripts/average_weights.py")
    narrow = TinyLPRModel(TinyLPRConfig(width_multiplier=0.35))
    with pytest.raises(ValueError, match="different architectures"):
        average_weights.average_models([TinyLPRModel.from_pretrained(random_model_dir), narrow])


def test_compare_models_counts_the_plates_only_one_model_reads():
    """`scripts/compare_models.py`: the paired counts, the exact two-sided sign test on them, and the release rule."""
    compare_models = load_script("scripts/compare_models.py")
    counts = compare_models.paired_counts(reference={"a.jpg", "b.jpg"}, candidate={"b.jpg", "c.jpg", "d.jpg"})
    assert counts["only_candidate_reads"] == 1 and counts["only_reference_reads"] == 2
    assert counts["sign_test_p"] == 1.0  # 1 against 2: 2 * (1 + 3) / 8, capped at 1
    assert compare_models.sign_test_p(10, 0) == pytest.approx(2 / 1024)
    assert compare_models.sign_test_p(0, 0) == 1.0
    assert compare_models.replaces_release(5000, 5030, sign_test_p=0.04)
    assert not compare_models.replaces_release(5000, 5004, sign_test_p=0.8)  # more, but within chance
    assert not compare_models.replaces_release(5030, 5000, sign_test_p=0.04)


def test_max_stretch_study_reads_one_set_with_each_value_through_processor_variants(random_model_dir, tmp_path):
    """`scripts/max_stretch_study.py`: the model's own value first, then the others, on the synthetic set and the
    real crops; each variant writes its own processor files and links only the rest of the model."""
    study = load_script("scripts/max_stretch_study.py")
    variant = study.processor_variant(random_model_dir, tmp_path / "variant", 1.25)
    processor = TinyLPRImageProcessor.from_pretrained(variant)
    assert (processor.placement, processor.max_stretch) == ("fill_width", 1.25)
    assert not (variant / "preprocessor_config.json").is_symlink() and not (variant / "labels.names").is_symlink()
    assert (variant / "model.safetensors").resolve() == (random_model_dir / "model.safetensors").resolve()
    write_dataset(tmp_path / "real", n=6, seed=3, split="test")
    out = tmp_path / "study.json"
    argv = ["--model", str(random_model_dir), "--values", "2", "1", "--n", "8", "--seed", "1",
            "--real", str(tmp_path / "real"), "--json-out", str(out)]  # fmt: skip
    assert study.main(argv) == 0
    result = json.loads(out.read_text())
    assert list(result["models"]) == ["max_stretch 1.5", "max_stretch 1", "max_stretch 2"]
    assert all(row["plates"] == 8 for row in result["models"].values())
    assert list(result["real"]) == list(result["models"]) and {c["crops"] for c in result["real"].values()} == {6}


def test_compare_models_reads_the_same_sets_with_every_model(random_model_dir, tmp_path, capsys):
    """Two copies of one model read the same plates of every set: no plate only one of them reads."""
    compare_models = load_script("scripts/compare_models.py")
    copy = shutil.copytree(random_model_dir, tmp_path / "copy")
    out = tmp_path / "compare.json"
    argv = [str(random_model_dir), str(copy), "--seeds", "1", "2", "--n", "8", "--json-out", str(out)]
    assert compare_models.main(argv) == 0
    reference, candidate = json.loads(out.read_text())["models"].values()
    assert reference["read"] == candidate["read"] and set(reference["read"]) == {"1", "2"}
    assert reference["plates"] == candidate["plates"] == 16
    assert candidate["against_first"] == {
        "only_candidate_reads": 0,
        "only_reference_reads": 0,
        "sign_test_p": 1.0,
        "replaces_first": False,
    }
    assert "0 plates only it reads" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        compare_models.main([str(random_model_dir), str(random_model_dir)])
