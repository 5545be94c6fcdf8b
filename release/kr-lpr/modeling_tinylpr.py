"""TinyLPR: a multi-task MobileNetV3-Small recognizer for Korean license plates (seed 000).

Inference graph: backbone -> channel and spatial attention -> one character-order map per time
step -> per-step feature vectors -> BatchNorm -> linear CTC classifier. Every op has an Edge TPU-supported
TFLite builtin (CONV_2D, DEPTHWISE_CONV_2D, RELU6, MEAN, LOGISTIC, MUL, ADD, RESHAPE; the
1x1 CONV_2D classifier in TFLite). The mask head (bilinear upsampling of the order maps) runs only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_tinylpr import TinyLPRConfig


def make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class TinyLPRConvNormAct(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act:
            layers.append(nn.ReLU6())
        super().__init__(*layers)


class TinyLPRInvertedResidual(nn.Module):
    """MobileNetV3 bottleneck without SE, with ReLU6 (Edge TPU has no hard-swish)."""

    def __init__(self, in_ch: int, expanded: int, out_ch: int, kernel: int, stride: int):
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != in_ch:
            layers.append(TinyLPRConvNormAct(in_ch, expanded, 1))
        layers.append(TinyLPRConvNormAct(expanded, expanded, kernel, stride, groups=expanded))
        layers.append(TinyLPRConvNormAct(expanded, out_ch, 1, act=False))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class TinyLPRBackbone(nn.Module):
    def __init__(self, config: TinyLPRConfig):
        super().__init__()
        width = config.width_multiplier
        channels = make_divisible(config.stem_channels * width)
        layers: list[nn.Module] = [TinyLPRConvNormAct(config.num_channels, channels, 3, 2)]
        for kernel, expanded, out, stride in config.blocks:
            out_ch = make_divisible(out * width)
            layers.append(TinyLPRInvertedResidual(channels, make_divisible(expanded * width), out_ch, kernel, stride))
            channels = out_ch
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers(pixel_values)


class TinyLPRAttention(nn.Module):
    """Channel and spatial attention, then one sigmoid character-order map per time step.

    Step t's feature vector is the map-weighted mean of the features over the image, so the
    classifier sees one character (or nothing) per step.
    """

    def __init__(self, in_channels: int, config: TinyLPRConfig):
        super().__init__()
        hidden = max(8, in_channels // config.attention_reduction)
        self.project = TinyLPRConvNormAct(in_channels, config.feature_channels, 1)
        self.channel_gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(config.feature_channels, hidden, 1),
            nn.ReLU6(),
            nn.Conv2d(hidden, config.feature_channels, 1),
            nn.Sigmoid(),
        )
        self.spatial_gate = nn.Sequential(nn.Conv2d(config.feature_channels, 1, 1), nn.Sigmoid())
        self.order_maps = nn.Conv2d(config.feature_channels, config.time_steps, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns per-step features `(B, T, C)` and order-map logits `(B, T, H, W)`."""
        features = self.project(features)
        features = features * self.channel_gate(features)
        features = features * self.spatial_gate(features)
        map_logits = self.order_maps(features)
        weights = torch.sigmoid(map_logits)
        height, width = features.shape[-2:]
        sequence = torch.einsum("bthw,bchw->btc", weights, features) / (height * width)
        return sequence, map_logits


@dataclass
class TinyLPROutput(ModelOutput):
    """Output of [`TinyLPRModel`].

    Args:
        loss: weighted sum of the focal CTC, mask and center losses (when `labels` are given).
        logits: CTC logits `(batch, time_steps, num_classes)`.
        ctc_loss, mask_loss, center_loss: the loss terms, unweighted, for logging.
        sequence_features: per-step feature vectors `(batch, time_steps, feature_channels)`.
        order_maps: character-order map logits at feature resolution `(batch, time_steps, h, w)`.
        mask_logits: order maps upsampled to the input size, only with `output_masks=True`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    ctc_loss: torch.Tensor | None = None
    mask_loss: torch.Tensor | None = None
    center_loss: torch.Tensor | None = None
    sequence_features: torch.Tensor | None = None
    order_maps: torch.Tensor | None = None
    mask_logits: torch.Tensor | None = None


def focal_ctc_loss(
    log_probs: torch.Tensor, labels: torch.Tensor, alpha: float = 0.8, gamma: float = 3.0
) -> torch.Tensor:
    """Focal CTC (seed 000): `alpha * (1 - p)^gamma * nll` per plate, p the plate likelihood.

    `log_probs` is `(batch, time, classes)`; `labels` is `(batch, max_len)` padded with -100.
    """
    lengths = (labels >= 0).sum(dim=1)
    targets = labels.clamp(min=0)
    input_lengths = torch.full((log_probs.shape[0],), log_probs.shape[1], dtype=torch.long, device=log_probs.device)
    nll = F.ctc_loss(
        log_probs.transpose(0, 1).float(),
        targets,
        input_lengths,
        lengths,
        blank=0,
        reduction="none",
        zero_infinity=True,
    )
    likelihood = torch.exp(-nll)
    return (alpha * (1 - likelihood) ** gamma * nll).mean()


def dice_bce_loss(mask_logits: torch.Tensor, masks: torch.Tensor, has_masks: torch.Tensor) -> torch.Tensor:
    """Dice + BCE over each sample's stack of order masks; samples without boxes are skipped."""
    if not bool(has_masks.any()):
        return mask_logits.new_zeros(())
    logits, targets = mask_logits[has_masks].flatten(1), masks[has_masks].flatten(1).to(mask_logits.dtype)
    # Targets may be soft (area-averaged masks): BCE and the soft Dice both accept values in [0, 1].
    probs = torch.sigmoid(logits)
    dice = 1 - (2 * (probs * targets).sum(1) + 1) / (probs.sum(1) + targets.sum(1) + 1)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1)
    return (dice + bce).mean()


def center_loss(
    features: torch.Tensor, classes: torch.Tensor, centers: torch.Tensor, blank_id: int = 0
) -> torch.Tensor:
    """Mean squared distance of non-blank step features to their class centre."""
    keep = classes != blank_id
    if not bool(keep.any()):
        return features.new_zeros(())
    selected = features[keep]
    return ((selected - centers[classes[keep]]) ** 2).sum(-1).mean()


class TinyLPRPreTrainedModel(PreTrainedModel):
    config_class = TinyLPRConfig
    base_model_prefix = "tinylpr"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)


class TinyLPRModel(TinyLPRPreTrainedModel):
    """TinyLPR. `forward(pixel_values)` gives CTC logits; with `labels` it also gives the loss.

    Pixel values are `(batch, 1, H, W)` floats in [0, 1] (see the image processor).
    """

    def __init__(self, config: TinyLPRConfig):
        super().__init__(config)
        self.backbone = TinyLPRBackbone(config)
        self.attention = TinyLPRAttention(self.backbone.out_channels, config)
        # The map-weighted mean is ~10x smaller than the features (a character covers ~1/10 of the
        # map); normalising it lets the classifier learn at once. At export it folds into the classifier.
        self.sequence_norm = nn.BatchNorm1d(config.feature_channels)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.feature_channels, config.num_classes)
        # Class centres of the center loss: training state, saved so that training resumes exactly.
        self.register_buffer("class_centers", torch.zeros(config.num_classes, config.feature_channels))
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        char_masks: torch.Tensor | None = None,
        has_masks: torch.Tensor | None = None,
        output_masks: bool = False,
        use_center_loss: bool = False,
        return_dict: bool | None = None,
    ) -> TinyLPROutput | tuple:
        """
        Args:
            labels: token ids `(batch, max_len)` padded with -100.
            char_masks: per-step character masks `(batch, time_steps, H, W)` in {0, 1}; token i's
                mask at step 2i (see `TinyLPRConfig.time_steps`).
            has_masks: `(batch,)` bools, False for samples without character boxes.
            output_masks: also return the upsampled mask logits (training-only head).
            use_center_loss: add the center loss and update the class centres (after warm-up).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        sequence, order_maps = self.attention(self.backbone(pixel_values))
        sequence = self.sequence_norm(sequence.transpose(1, 2)).transpose(1, 2)
        logits = self.classifier(self.dropout(sequence))

        mask_logits = None
        if output_masks:
            mask_logits = F.interpolate(order_maps, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)

        loss = ctc = mask = center = None
        if labels is not None:
            ctc = focal_ctc_loss(logits.log_softmax(-1), labels, self.config.focal_alpha, self.config.focal_gamma)
            loss = ctc
            if char_masks is not None:
                if has_masks is None:
                    has_masks = torch.ones(char_masks.shape[0], dtype=torch.bool, device=char_masks.device)
                mask = self._mask_loss(order_maps, char_masks, has_masks)
                loss = loss + self.config.mask_loss_weight * mask
            if use_center_loss:
                predicted = logits.argmax(-1)
                center = center_loss(sequence, predicted, self.class_centers, self.config.blank_id)
                loss = loss + self.config.center_loss_weight * center
                if self.training:
                    self._update_centers(sequence.detach(), predicted)

        output = TinyLPROutput(loss, logits, ctc, mask, center, sequence, order_maps, mask_logits)
        return output if return_dict else output.to_tuple()

    def _mask_loss(self, order_maps: torch.Tensor, char_masks: torch.Tensor, has_masks: torch.Tensor) -> torch.Tensor:
        stride = self.config.mask_loss_stride
        targets = F.avg_pool2d(char_masks.to(order_maps.dtype), stride) if stride > 1 else char_masks
        logits = F.interpolate(order_maps, size=targets.shape[-2:], mode="bilinear", align_corners=False)
        return dice_bce_loss(logits, targets, has_masks)

    @torch.no_grad()
    def _update_centers(self, features: torch.Tensor, classes: torch.Tensor) -> None:
        flat_features, flat_classes = features.flatten(0, 1), classes.flatten()
        keep = flat_classes != self.config.blank_id
        if not bool(keep.any()):
            return
        flat_features, flat_classes = flat_features[keep], flat_classes[keep]
        sums = torch.zeros_like(self.class_centers).index_add_(0, flat_classes, flat_features)
        counts = torch.bincount(flat_classes, minlength=self.class_centers.shape[0]).unsqueeze(1)
        seen = counts.squeeze(1) > 0
        means = sums[seen] / counts[seen]
        self.class_centers[seen] += self.config.center_momentum * (means - self.class_centers[seen])
