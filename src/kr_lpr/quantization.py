"""Quantization-aware fine-tuning: the rounding of the full-integer TFLite graph, simulated in PyTorch.

`prepare_quantization_aware(model)` makes the model's forward round what `kr-lpr export` rounds in
the uint8 graph (`keras_tinylpr.build_keras_model`, calibrated by `export.tflite_converter`):

- each convolution's kernel, with its BatchNorm folded in, and the classifier's kernel, with `sequence_norm`
  and `sequence_scale` folded in, to int8 per output channel (max-abs scale);
- the input to 1/255 steps; sigmoids to 1/256; and to 256 steps over their running ranges the
  outputs of the convolutions (after ReLU6), residual additions, gate products, order-map products
  and per-step means (both in the units of `sequence_scale`), and the logits (floored at
  `-UINT8_LOGIT_FLOOR`). Running ranges are the extremes over the latest calibration-sized window of
  plates, as TFLite's calibration takes them.

Gradients pass through the rounding unchanged (straight-through), so the network learns weights
that read plates as well after rounding. BatchNorm statistics are frozen, as folded in the export.
The modules change class but keep their parameters, so checkpoints stay loadable Hub folders.
`finish_quantization_aware(model)` restores plain modules with each folded kernel on its int8 grid.
Not simulated: the int32 biases, whose step (input step times kernel step) is far below any output's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .export import NUM_CALIBRATION_PLATES, UINT8_LOGIT_FLOOR
from .modeling_tinylpr import TinyLPRAttention, TinyLPRConvNormAct, TinyLPRModel

SIGMOID_STEP = 1 / 256  # TFLite's fixed output scale for LOGISTIC


def norm_scale(norm: nn.modules.batchnorm._BatchNorm, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """What an eval-mode BatchNorm multiplies each channel by, `gamma / sigma` (float64 for the export's folds);
    differentiable in gamma."""
    return norm.weight.to(dtype) / torch.sqrt(norm.running_var.to(dtype) + norm.eps)


def sequence_scale(norm: nn.BatchNorm1d) -> torch.Tensor:
    """How much `sequence_norm` magnifies each channel of the per-step means, `|gamma| / sigma`, over its maximum.

    The graph multiplies the features by it before the weighted mean, and the classifier takes it
    back out: exact in float. In the uint8 graph the per-step means share one rounding step, and
    in raw units a channel that the classifier reads over a spread of 0.01 would get the same step
    as one read over 1; scaled, each channel is rounded in the units the classifier reads it in.

    The uint8 graph stores this vector as a uint8 constant over [0, 1], so it is rounded here to that
    grid, steps of 1/255, and at least one step: stored exactly, where a channel under half a step
    would be multiplied by 0 in the uint8 graph and by its scale in float.
    """
    scale = norm_scale(norm, torch.float32).detach().abs()  # the graph multiplies in float32
    return (scale / scale.max() * 255).round().clamp(min=1) / 255


def classifier_input_factor(norm: nn.BatchNorm1d) -> torch.Tensor:
    """What the export multiplies the classifier's kernel by per input channel (float64): `sequence_norm` folded
    in, over `sequence_scale`, by which the per-step means arrive multiplied."""
    return norm_scale(norm) / sequence_scale(norm)


def round_weight(weight: torch.Tensor) -> torch.Tensor:
    """`weight` rounded to int8 per output channel (dim 0) with TFLite's symmetric max-abs scale."""
    scale = weight.detach().abs().flatten(1).amax(1).clamp(min=1e-12) / 127
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale.float(), zero, 0, -127, 127)


class ActivationRounding:
    """Rounds a tensor to 256 steps over the range the export's calibration gives it, or over a fixed range.

    TFLite calibrates each tensor to its extremes over all `NUM_CALIBRATION_PLATES` plates, so the range
    here is the extremes over the latest batches that hold as many plates. A running average of each
    batch's extremes would be narrower than the export's range: a finer rounding than the uint8 model's.
    """

    def __init__(self, low: float | None = None, high: float | None = None):
        self.fixed_low, self.fixed_high = low, high
        # (plates, min, max) per batch, oldest first. The extremes stay tensors on the model's device: reading
        # them as Python floats would make every rounded layer wait for the GPU.
        self.recent: deque[tuple[int, torch.Tensor, torch.Tensor]] = deque()
        self.window: tuple[torch.Tensor, torch.Tensor] | None = None  # extremes over `recent`, float64
        self.enabled = True  # off: values pass unrounded (`scripts/quantization_report.py` rounds one at a time)

    def observe(self, values: torch.Tensor) -> None:
        low, high = torch.aminmax(values.detach())  # one pass over the batch's values
        self.recent.append((len(values), low, high))
        while sum(plates for plates, _, _ in self.recent) - self.recent[0][0] >= NUM_CALIBRATION_PLATES:
            self.recent.popleft()
        _, lows, highs = zip(*self.recent, strict=True)
        self.window = torch.stack(lows).min().double(), torch.stack(highs).max().double()

    def _range(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rounding range in float64, stretched to hold 0 as TFLite's is."""
        low = self.window[0] if self.fixed_low is None else values.new_tensor(self.fixed_low, dtype=torch.float64)
        high = self.window[1] if self.fixed_high is None else values.new_tensor(self.fixed_high, dtype=torch.float64)
        return low.clamp(max=0.0), high.clamp(min=0.0)

    def __call__(self, values: torch.Tensor, update: bool) -> torch.Tensor:
        if not self.enabled:
            return values
        fixed = self.fixed_low is not None and self.fixed_high is not None  # nothing to observe
        if not fixed and (update or self.window is None):
            self.observe(values)
        low, high = self._range(values)
        scale = (high - low).clamp(min=1e-8) / 255
        zero_point = (-low / scale).round().clamp(0, 255).int()
        return torch.fake_quantize_per_tensor_affine(values, scale.float(), zero_point, 0, 255)


def fold_norm(
    conv: nn.Conv2d, norm: nn.BatchNorm2d | None = None, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A convolution followed by an eval-mode BatchNorm as one kernel and bias, and the per-channel factor
    folded into the kernel; differentiable in the parameters (the running statistics are constants)."""
    kernel = conv.weight.to(dtype)
    bias = conv.bias.to(dtype) if conv.bias is not None else kernel.new_zeros(kernel.shape[0])
    if norm is None:
        return kernel, bias, kernel.new_ones(kernel.shape[0])
    scale = norm_scale(norm, dtype)
    bias = (bias - norm.running_mean.to(dtype)) * scale + norm.bias.to(dtype)
    return kernel * scale[:, None, None, None], bias, scale


class QuantizedConvNormAct(TinyLPRConvNormAct):
    """Convolution + BatchNorm (+ ReLU6) as the export's one folded convolution, rounded."""

    output_rounding: ActivationRounding

    def folded(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`fold_norm` of this module's convolution and BatchNorm, in the parameters' dtype."""
        return fold_norm(self[0], self[1], self[0].weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self[0]
        kernel, bias, _ = self.folded()
        out = F.conv2d(x, round_weight(kernel), bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        if len(self) == 3:
            out = F.relu6(out)
        return self.output_rounding(out, self.training)


class QuantizedConv2d(nn.Conv2d):
    """A convolution without BatchNorm (the attention gates and order maps) with its kernel rounded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, round_weight(self.weight), self.bias)


class QuantizedClassifier(nn.Linear):
    """The classifier with its kernel rounded where the export rounds it, times `classifier_input_factor`."""

    input_factor: Callable[[], torch.Tensor]

    def rounded_weight(self) -> torch.Tensor:
        factor = self.input_factor().detach().to(self.weight.dtype)
        return round_weight(self.weight * factor) / factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.rounded_weight(), self.bias)


class FrozenBatchNorm1d(nn.BatchNorm1d):
    """Normalises with the running statistics in training too, as the export folds them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class QuantizedAttention(TinyLPRAttention):
    """The attention as the uint8 graph computes it: every product and gate rounded, and the
    per-step means taken over features multiplied by `sequence_scale` (see `keras_tinylpr`)."""

    roundings: dict[str, ActivationRounding]
    feature_scale: Callable[[], torch.Tensor]

    def _rounded(self, name: str, values: torch.Tensor) -> torch.Tensor:
        return self.roundings[name](values, self.training)

    def _sigmoid(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        return self._rounded(f"{name}_sigmoid", torch.sigmoid(self._rounded(name, logits)))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.project(features)
        pool, squeeze, relu, excite, _ = self.channel_gate
        gate = relu(squeeze(self._rounded("pool", pool(features))))
        gate = self._sigmoid("excite", excite(self._rounded("squeeze", gate)))
        features = self._rounded("channel_gated", features * gate)
        gate = self._sigmoid("spatial", self.spatial_gate[0](features))
        features = self._rounded("spatial_gated", features * gate)
        map_logits = self.order_maps(features)
        weights = self._sigmoid("order_maps", map_logits)
        scale = self.feature_scale().to(features.dtype)[:, None, None]
        scaled = self._rounded("scaled", features * scale)
        weighted = self._rounded("weighted", weights[:, :, None] * scaled[:, None])  # (B, T, C, H, W)
        sequence = self._rounded("sequence", weighted.mean((-2, -1))) / scale[:, 0, 0]
        return sequence, map_logits


def _round_output(module: nn.Module, rounding: ActivationRounding) -> torch.utils.hooks.RemovableHandle:
    module.output_rounding = rounding
    return module.register_forward_hook(lambda mod, args, out: mod.output_rounding(out, mod.training))


def prepare_quantization_aware(model: TinyLPRModel) -> list[torch.utils.hooks.RemovableHandle]:
    """Makes `model` simulate the uint8 graph in place; returns the hooks `finish_quantization_aware` removes.

    Modules change class but keep their parameters, so the state dict is the same.
    """
    for module in model.modules():
        if type(module) is TinyLPRConvNormAct:
            module.__class__ = QuantizedConvNormAct
            module.output_rounding = ActivationRounding()
    attention = model.attention
    attention.__class__ = QuantizedAttention
    names = ("pool", "squeeze", "excite", "channel_gated", "spatial", "spatial_gated", "order_maps", "scaled",
             "weighted", "sequence")  # fmt: skip
    attention.roundings = {name: ActivationRounding() for name in names}
    sigmoids = ("excite", "spatial", "order_maps")
    attention.roundings |= {f"{name}_sigmoid": ActivationRounding(0.0, 1.0 - SIGMOID_STEP) for name in sigmoids}
    attention.feature_scale = lambda: sequence_scale(model.sequence_norm)
    for conv in (attention.channel_gate[1], attention.channel_gate[3], attention.spatial_gate[0], attention.order_maps):
        conv.__class__ = QuantizedConv2d
    model.sequence_norm.__class__ = FrozenBatchNorm1d
    model.classifier.__class__ = QuantizedClassifier
    model.classifier.input_factor = lambda: classifier_input_factor(model.sequence_norm)
    model.backbone.input_rounding = ActivationRounding(0.0, 1.0)
    handles = [model.backbone.register_forward_pre_hook(lambda mod, args: (mod.input_rounding(args[0], False),))]
    residuals = [block for block in model.backbone.layers if getattr(block, "use_residual", False)]
    handles += [_round_output(block, ActivationRounding()) for block in residuals]
    handles.append(_round_output(model.classifier, ActivationRounding(low=-UINT8_LOGIT_FLOOR)))
    return handles


def activation_roundings(model: TinyLPRModel) -> dict[str, ActivationRounding]:
    """Every activation rounding of a prepared model, named by the module whose output it rounds
    (`attention.<tensor>` inside the attention, `backbone.input` for the input)."""
    roundings = {"backbone.input": model.backbone.input_rounding}
    roundings |= {
        name: module.output_rounding for name, module in model.named_modules() if hasattr(module, "output_rounding")
    }
    return roundings | {f"attention.{name}": rounding for name, rounding in model.attention.roundings.items()}


@torch.no_grad()
def finish_quantization_aware(model: TinyLPRModel, handles: list[torch.utils.hooks.RemovableHandle]) -> None:
    """Removes the simulation; each convolution keeps its rounded kernel, which the export then rounds exactly."""
    for handle in handles:
        handle.remove()
    del model.backbone.input_rounding
    for module in model.modules():
        module.__dict__.pop("output_rounding", None)
        if isinstance(module, QuantizedConvNormAct):
            kernel, _, scale = module.folded()
            module[0].weight.copy_(round_weight(kernel) / scale[:, None, None, None])
            module.__class__ = TinyLPRConvNormAct
        elif isinstance(module, QuantizedConv2d):
            module.weight.copy_(round_weight(module.weight))
            module.__class__ = nn.Conv2d
        elif isinstance(module, QuantizedAttention):
            module.__class__ = TinyLPRAttention
            del module.roundings, module.feature_scale
        elif isinstance(module, QuantizedClassifier):
            module.weight.copy_(module.rounded_weight())
            module.__class__ = nn.Linear
            del module.input_factor
        elif isinstance(module, FrozenBatchNorm1d):
            module.__class__ = nn.BatchNorm1d
