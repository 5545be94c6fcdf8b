"""Multi-task training with a `Trainer` subclass and the `kr-lpr train` command.

From scratch on streamed synthetic plates (the default), or fine-tuning a Hub-format folder on a
user's `<plate>_<idx>` folder. Checkpoints are regular `Trainer` checkpoints, so a killed run
resumes with `kr-lpr train ...` again (same output dir), and `torchrun -m kr_lpr.cli train` (CPU or GPU)
or `accelerate launch --multi_gpu -m kr_lpr.cli train` scale it to several processes without code changes.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from .configuration_tinylpr import TinyLPRConfig
from .data import collate_plates, encode_plate_example, scan_plate_folder
from .image_processing_tinylpr import TinyLPRImageProcessor
from .metrics import build_compute_metrics
from .modeling_tinylpr import TinyLPRModel
from .preprocessing_tinylpr import load_image
from .quantization import finish_quantization_aware, prepare_quantization_aware
from .synth import SyntheticPlateStream

LOSS_TERMS = ("ctc_loss", "mask_loss", "center_loss")
# Fields of TinyLPRConfig that a training config may set for a model trained from scratch.
MODEL_FIELDS = (
    "image_height", "image_width", "width_multiplier", "feature_channels", "time_steps", "classifier_dropout",
    "focal_alpha", "focal_gamma", "mask_loss_weight", "center_loss_weight",
)  # fmt: skip
# Fields of TinyLPRImageProcessor that a training config may set, from scratch or on `init_from`'s processor.
PROCESSOR_FIELDS = ("placement", "max_stretch")


class LPRTrainer(Trainer):
    """`Trainer` with TinyLPR's multi-task loss: focal CTC + Dice/BCE masks + center loss.

    The center loss starts at `center_loss_start_step` (seed 002 uses 20k); each loss term is
    averaged over the logging interval and logged separately. A training step's loss is the mean over
    all its plates (the mask term: over its plates with boxes), however gradient accumulation and
    processes split them, so micro-batches with more or fewer boxed plates weigh what they hold.
    """

    loss_is_scaled_for_ga = True  # compute_loss returns each micro-batch's share of the step's mean

    def __init__(self, *args, center_loss_start_step: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.center_loss_start_step = center_loss_start_step
        self._loss_sums = dict.fromkeys(LOSS_TERMS, 0.0)
        self._loss_counts = dict.fromkeys(LOSS_TERMS, 0)
        self._step_counts: torch.Tensor | None = None

    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        counts = torch.stack([plate_counts(batch) for batch in batch_samples]).sum(0)
        if self.args.world_size > 1:
            counts = self.accelerator.gather(counts.to(device)).reshape(-1, 2).sum(0).cpu()
        # DDP averages the processes' gradients, so each process's share counts its number of processes over.
        # A step without boxed plates has zero mask losses: clamping its count only avoids 0 / 0.
        self._step_counts = counts.clamp(min=1) / self.args.world_size
        return batch_samples, num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        use_center = model.training and self.state.global_step >= self.center_loss_start_step
        use_center = use_center and self.model.config.center_loss_weight > 0
        outputs = model(**inputs, use_center_loss=use_center)
        loss = outputs.loss
        if model.training:
            loss = self._step_share(inputs, outputs)
            for term in LOSS_TERMS:
                value = getattr(outputs, term)
                if value is not None:  # summed as a tensor: a float here would wait for the GPU every step
                    self._loss_sums[term] += value.detach()
                    self._loss_counts[term] += 1
        return (loss, outputs) if return_outputs else loss

    def _step_share(self, inputs: dict, outputs) -> torch.Tensor:
        """This micro-batch's part of the step's loss: each term weighted by its share of the step's plates."""
        if self._step_counts is None:  # called outside the training loop: the batch is the whole step
            return outputs.loss
        plates, boxed = plate_counts(inputs) / self._step_counts
        loss = outputs.loss * plates
        if outputs.mask_loss is not None:  # outputs.loss weighs the mask term per plate; it counts per boxed plate
            loss = loss + self.model.config.mask_loss_weight * outputs.mask_loss * (boxed - plates)
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            outputs = model(**inputs)
        loss = outputs.loss.detach() if outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        return loss, outputs.logits.detach(), inputs.get("labels")

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            for term in LOSS_TERMS:
                if self._loss_counts[term]:
                    logs[term] = round(float(self._loss_sums[term]) / self._loss_counts[term], 4)
            self._loss_sums = dict.fromkeys(LOSS_TERMS, 0.0)
            self._loss_counts = dict.fromkeys(LOSS_TERMS, 0)
        super().log(logs, start_time)


def plate_counts(batch: dict) -> torch.Tensor:
    """`[plates, plates with boxes]` of a collated batch."""
    plates = len(batch["labels"])
    if "has_masks" in batch:
        boxed = int(batch["has_masks"].sum())
    else:  # the model counts every plate of a batch with char_masks as boxed
        boxed = plates if "char_masks" in batch else 0
    return torch.tensor([plates, boxed], dtype=torch.float32)


@dataclass
class TrainConfig:
    """Everything `kr-lpr train` needs; a YAML/JSON file sets any of these, flags override."""

    output_dir: str = "runs/kr-lpr"
    data_dir: str | None = None  # a <plate>_<idx> folder; None trains on streamed synthetic plates
    init_from: str | None = None  # a Hub-format folder to fine-tune
    skip_bad: bool = False
    synth_strength: str | dict = "train"  # a preset name, or preset keys to override (synth_scene.resolve_strength)
    synth_val_size: int = 512
    max_steps: int = 2000
    batch_size: int = 64
    learning_rate: float | None = None  # None: 2e-3 from scratch, 3e-4 when fine-tuning (init_from)
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    lr_scheduler: str = "cosine"  # any transformers scheduler name, e.g. constant_with_warmup
    center_loss_start_step: int = 1000
    logging_steps: int = 50
    eval_steps: int = 500
    save_steps: int = 500
    save_total_limit: int = 2
    num_workers: int = 1
    num_threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    quantization_aware: bool = False  # simulate the uint8 export's rounding (see kr_lpr.quantization)
    placement: str | None = None  # the processor's placement; None keeps init_from's or a new processor's
    max_stretch: float | None = None  # the processor's cap on the "fill_width" stretch; None as placement
    seed: int = 0
    # model, from scratch only: None keeps TinyLPRConfig's default
    image_height: int | None = None
    image_width: int | None = None
    width_multiplier: float | None = None
    feature_channels: int | None = None
    time_steps: int | None = None
    classifier_dropout: float | None = None
    focal_alpha: float | None = None
    focal_gamma: float | None = None
    mask_loss_weight: float | None = None
    center_loss_weight: float | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
        return cls().updated(values, source=str(path))

    def updated(self, values: dict, source: str = "overrides") -> TrainConfig:
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{source}: unknown training options {unknown}; known: {sorted(known)}")
        merged = asdict(self)
        for key, value in values.items():
            merged[key] = _coerce(value, known[key].type) if isinstance(value, str) else value
        return TrainConfig(**merged)


def _coerce(value: str, type_name: str):
    if value.lower() in ("none", "null") and "None" in type_name:
        return None
    if type_name.startswith("bool"):
        return value.lower() in ("1", "true", "yes")
    if type_name.startswith("int"):
        return int(value)
    if type_name.startswith("float"):
        return float(value)
    return value


class EncodedPlates(Dataset):
    """Plate records (from a folder) encoded to model inputs on access."""

    def __init__(self, records: list, processor: TinyLPRImageProcessor, config: TinyLPRConfig):
        self.records, self.processor, self.config = records, processor, config

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        return encode_plate_example(load_image(record.path), record.text, record.boxes, self.processor, self.config)


class EncodeSynthetic:
    """Picklable transform for the synthetic stream (DataLoader workers pickle it)."""

    def __init__(self, processor: TinyLPRImageProcessor, config: TinyLPRConfig):
        self.processor, self.config = processor, config

    def __call__(self, plate: dict) -> dict:
        return encode_plate_example(plate["image"], plate["text"], plate["boxes"], self.processor, self.config)


def build_model(config: TrainConfig) -> tuple[TinyLPRModel, TinyLPRImageProcessor]:
    """The model and processor of `init_from`, or new ones; the processor takes the config's `PROCESSOR_FIELDS`
    that are set."""
    if config.init_from:
        model = TinyLPRModel.from_pretrained(config.init_from)
        processor = TinyLPRImageProcessor.from_pretrained(config.init_from)
    else:
        model_config = TinyLPRConfig(
            **{name: getattr(config, name) for name in MODEL_FIELDS if getattr(config, name) is not None}
        )
        model = TinyLPRModel(model_config)
        processor = TinyLPRImageProcessor(
            model_config.image_height, model_config.image_width, labels=model_config.labels
        )
    overrides = {name: getattr(config, name) for name in PROCESSOR_FIELDS if getattr(config, name) is not None}
    return model, processor.updated(**overrides)


def build_datasets(config: TrainConfig, processor, model_config: TinyLPRConfig, start_step: int):
    """Training and evaluation datasets: a folder's train/val splits, or synthetic plates."""
    if config.data_dir:
        splits, problems = scan_plate_folder(
            config.data_dir, label_map=processor.label_map, skip_bad=config.skip_bad,
            max_tokens=model_config.max_plate_tokens,
        )  # fmt: skip
        if problems:
            print(f"skipped {len(problems)} bad files in {config.data_dir} (--skip-bad); first: {problems[0]}")
        if "train" not in splits:
            raise ValueError(f"{config.data_dir} has no train split (found {sorted(splits)})")
        train = EncodedPlates(splits["train"], processor, model_config)
        val_records = splits.get("val") or splits.get("validation")
        return train, EncodedPlates(val_records, processor, model_config) if val_records else None
    encode = EncodeSynthetic(processor, model_config)
    # A resumed run continues with fresh plates instead of replaying the stream it already saw.
    train = SyntheticPlateStream(
        seed=config.seed * 1_000_003 + start_step, strength=config.synth_strength, transform=encode
    )
    val_stream = SyntheticPlateStream(seed=10_000 + config.seed, strength=config.synth_strength, transform=encode)
    val = list(_take(val_stream, config.synth_val_size))
    return train, val


def _take(iterable, n: int):
    for index, item in enumerate(iterable):
        if index >= n:
            return
        yield item


def training_arguments(config: TrainConfig, has_eval: bool) -> TrainingArguments:
    return TrainingArguments(
        output_dir=config.output_dir,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate if config.learning_rate is not None else 3e-4 if config.init_from else 2e-3,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type=config.lr_scheduler,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        dataloader_num_workers=config.num_workers,
        dataloader_persistent_workers=config.num_workers > 0,
        dataloader_pin_memory=False,
        remove_unused_columns=False,
        label_names=["labels"],
        # The synthetic stream is infinite and resumed runs re-seed it, so skipping seen batches is pointless.
        ignore_data_skip=True,
        seed=config.seed,
        report_to="none",
        disable_tqdm=False,
        # accelerate joins CPU processes started by torchrun into one gloo job only when told
        # the run is CPU-only; without it each process trains a model of its own.
        use_cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1,
    )


def train(config: TrainConfig, resume: bool = True) -> Path:
    """Runs training and writes the final Hub-format folder to `output_dir/final`."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "train_config.json").write_text(json.dumps(asdict(config), indent=2), encoding="utf-8")
    checkpoint = get_last_checkpoint(str(output_dir)) if resume else None
    start_step = _checkpoint_step(checkpoint)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    model, processor = build_model(config)
    # channels_last makes the depthwise convolutions markedly faster on CPU.
    model = model.to(memory_format=torch.channels_last)
    handles = prepare_quantization_aware(model) if config.quantization_aware else None
    train_set, eval_set = build_datasets(config, processor, model.config, start_step)
    trainer = LPRTrainer(
        model=model,
        args=training_arguments(config, eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collate_plates,
        processing_class=processor,  # checkpoints then hold the processor too: each is a loadable folder
        compute_metrics=build_compute_metrics(processor.label_map),
        center_loss_start_step=config.center_loss_start_step,
    )
    args = trainer.args
    if trainer.is_world_process_zero():
        plates = args.world_size * args.per_device_train_batch_size * args.gradient_accumulation_steps
        print(f"training on {args.world_size} process(es), {plates} plates per step, device {args.device}")
        if checkpoint:
            print(f"resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=checkpoint)
    final = output_dir / "final"
    if handles is not None:
        finish_quantization_aware(trainer.model, handles)
    trainer.model.to(memory_format=torch.contiguous_format)
    trainer.save_model(str(final))
    metrics = trainer.evaluate() if eval_set is not None else None  # every process takes part
    if trainer.is_world_process_zero():
        processor.save_pretrained(final)
        if metrics is not None:
            (final / "eval_results.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        print(f"final model: {final}")
    return final


def _checkpoint_step(checkpoint: str | None) -> int:
    if not checkpoint:
        return 0
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state.get("global_step", 0))


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        overrides[key.strip().replace("-", "_")] = value.strip()
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kr-lpr train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML or JSON file with TrainConfig fields (e.g. configs/release.yaml)")
    parser.add_argument("--output-dir", help="checkpoints and the final Hub-format folder (output_dir/final)")
    parser.add_argument("--data-dir", help="train on a <plate>_<idx> folder (train/ and val/ splits)")
    parser.add_argument("--init-from", help="fine-tune from this Hub-format folder")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--skip-bad", action="store_true", default=None, help="leave out bad files, counting them")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any option")
    parser.add_argument("--no-resume", action="store_true", help="start fresh even if checkpoints exist")
    args = parser.parse_args(argv)
    try:
        config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
        flags = {
            "output_dir": args.output_dir,
            "data_dir": args.data_dir,
            "init_from": args.init_from,
            "max_steps": args.max_steps,
            "skip_bad": args.skip_bad,
        }
        config = config.updated({k: v for k, v in flags.items() if v is not None}, source="flags")
        config = config.updated(parse_overrides(args.set), source="--set")
        train(config, resume=not args.no_resume)
    except ValueError as error:
        parser.exit(2, f"kr-lpr train: error: {error}\n")
    return 0
