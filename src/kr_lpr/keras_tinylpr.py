"""TinyLPR's inference graph re-defined in Keras (NHWC) for the TFLite converter.

The Keras model takes the trained PyTorch weights with BatchNorm folded into the convolutions and
is built so that the converter emits only Edge TPU builtins, with no layout glue: CONV_2D and
DEPTHWISE_CONV_2D (ReLU6 fused), PAD, ADD, MEAN, LOGISTIC, MUL and RESHAPE. The
per-step features follow seed 000: features as `(1, HW, 1, C)`, scaled per channel, times order
weights as `(1, HW, T, 1)`, MEAN over axis 1, then the classifier as a 1x1 convolution. The output is
logits (no softmax), or with `logit_floor` `max(logits, -floor) + floor` (a ReLU fused into the
classifier; see `export.convert_tflite`).

Export-time only (needs TensorFlow); not part of the Hub remote code.
"""

from __future__ import annotations

import keras
import numpy as np
import torch
from torch import nn

from .modeling_tinylpr import TinyLPRConvNormAct, TinyLPRInvertedResidual, TinyLPRModel
from .quantization import classifier_input_factor, fold_norm, norm_scale, sequence_scale


@torch.no_grad()
def fold_conv_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A convolution followed by an eval-mode BatchNorm as one `(out, in/groups, kh, kw)` kernel and bias."""
    kernel, bias, _ = fold_norm(conv, norm)
    return kernel.numpy(), bias.numpy()


@torch.no_grad()
def fold_linear_after_norm(linear: nn.Linear, norm: nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    """An eval-mode BatchNorm followed by a linear layer as one `(out, in)` weight and bias, for inputs
    that arrive multiplied by `sequence_scale(norm)` (per channel)."""
    shift = norm.bias.double() - norm.running_mean.double() * norm_scale(norm)
    weight = linear.weight.double()
    bias = linear.bias.double() + weight @ shift
    return (weight * classifier_input_factor(norm)).numpy(), bias.numpy()


def keras_conv(x, conv: nn.Conv2d, name: str, norm: nn.BatchNorm2d | None = None, activation: str | None = None):
    """Applies a PyTorch convolution (+ BatchNorm) as a Keras Conv2D or DepthwiseConv2D with the same weights."""
    kernel, bias = fold_conv_norm(conv, norm)
    stride = conv.stride[0]
    padding = "same"
    if stride > 1:
        # TF "same" pads the odd pixel at the end, PyTorch pads k//2 on both sides. An explicit PAD matches
        # PyTorch; XNNPACK folds it into the convolution and the Edge TPU runs it. (A (k+1) kernel with a
        # zero last row/column avoids the PAD, but XNNPACK runs a 6x6 depthwise far slower.)
        x = keras.layers.ZeroPadding2D(conv.padding[0], name=f"{name}_pad")(x)
        padding = "valid"
    size = kernel.shape[-1]
    if conv.groups == 1:
        layer = keras.layers.Conv2D(kernel.shape[0], size, stride, padding, activation=activation, name=name)
        weights = kernel.transpose(2, 3, 1, 0)  # (kh, kw, in, out)
    elif conv.groups == conv.in_channels == conv.out_channels:
        layer = keras.layers.DepthwiseConv2D(size, stride, padding, activation=activation, name=name)
        weights = kernel.transpose(2, 3, 0, 1)  # (kh, kw, channels, 1)
    else:
        raise ValueError(f"grouped convolutions other than depthwise are not supported: {conv}")
    outputs = layer(x)
    layer.set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    return outputs


def keras_conv_norm_act(x, module: TinyLPRConvNormAct, name: str):
    conv, norm = module[0], module[1]
    return keras_conv(x, conv, name, norm, activation="relu6" if len(module) == 3 else None)


def keras_inverted_residual(x, module: TinyLPRInvertedResidual, name: str):
    out = x
    for index, layer in enumerate(module.block):
        out = keras_conv_norm_act(out, layer, f"{name}_{index}")
    return keras.layers.Add(name=f"{name}_residual")([x, out]) if module.use_residual else out


def build_keras_model(model: TinyLPRModel, logit_floor: float | None = None) -> keras.Model:
    """The inference graph of `model` (batch 1, `(1, H, W, 1)` input in [0, 1]) as a Keras model with its weights.

    Layers are named after the PyTorch modules, so two builds give identical TFLite files. With
    `logit_floor` the output is `max(logits, -logit_floor) + logit_floor`.
    """
    config = model.config
    inputs = keras.Input((config.image_height, config.image_width, config.num_channels), 1, name="pixel_values")
    stem, *blocks = model.backbone.layers
    x = keras_conv_norm_act(inputs, stem, "backbone_0")
    for index, block in enumerate(blocks, start=1):
        x = keras_inverted_residual(x, block, f"backbone_{index}")

    attention = model.attention
    features = keras_conv_norm_act(x, attention.project, "attention_project")
    _, squeeze, _, excite, _ = attention.channel_gate
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="channel_gate_pool")(features)
    gate = keras_conv(gate, squeeze, "channel_gate_squeeze", activation="relu6")
    gate = keras_conv(gate, excite, "channel_gate_excite", activation="sigmoid")
    features = keras.layers.Multiply(name="channel_gated")([features, gate])
    gate = keras_conv(features, attention.spatial_gate[0], "spatial_gate", activation="sigmoid")
    features = keras.layers.Multiply(name="spatial_gated")([features, gate])
    weights = keras_conv(features, attention.order_maps, "order_maps", activation="sigmoid")

    _, height, width, channels = features.shape
    features = keras.layers.Reshape((height * width, 1, channels), name="features_flat")(features)
    weights = keras.layers.Reshape((height * width, config.time_steps, 1), name="order_weights_flat")(weights)
    # See sequence_scale: without it the stage-4 uint8 model read 7.5 points fewer real plates than PyTorch.
    scale = sequence_scale(model.sequence_norm)
    scale_vector = scale.numpy().astype(np.float32).reshape(1, 1, 1, channels)
    features = keras.layers.Lambda(lambda t: t * scale_vector, name="features_scaled")(features)
    weighted = keras.layers.Multiply(name="weighted_features")([features, weights])  # (1, HW, T, C)
    # keepdims: (1, 1, T, C), so the classifier is a 1x1 CONV_2D. The Edge TPU maps FULLY_CONNECTED
    # only with a one-dimensional output, and the per-step logits are (T, classes).
    sequence = keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=1, keepdims=True), name="sequence")(weighted)
    classifier = keras.layers.Conv2D(
        config.num_classes, 1, activation=None if logit_floor is None else "relu", name="classifier"
    )
    logits = classifier(sequence)
    weight, bias = fold_linear_after_norm(model.classifier, model.sequence_norm)
    bias = bias + (logit_floor or 0.0)
    classifier.set_weights([weight.T[None, None].astype(np.float32), bias.astype(np.float32)])  # (1, 1, C, classes)
    logits = keras.layers.Reshape((config.time_steps, config.num_classes), name="logits")(logits)
    return keras.Model(inputs, logits, name="tinylpr")
