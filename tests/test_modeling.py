import numpy as np
import pytest
import torch

from kr_lpr import TinyLPRConfig, TinyLPRModel
from kr_lpr.modeling_tinylpr import center_loss, dice_bce_loss, focal_ctc_loss


@pytest.mark.parametrize("height, width", [(64, 128), (96, 192)])
@pytest.mark.parametrize("batch", [1, 7])
def test_output_shapes(height, width, batch):
    config = TinyLPRConfig(image_height=height, image_width=width)
    model = TinyLPRModel(config).eval()
    outputs = model(torch.rand(batch, 1, height, width))
    assert outputs.logits.shape == (batch, 16, 68) and outputs.logits.dtype == torch.float32
    assert outputs.sequence_features.shape == (batch, 16, config.feature_channels)
    assert outputs.order_maps.shape == (batch, 16, height // 8, width // 8)
    assert outputs.mask_logits is None and outputs.loss is None


def test_mask_head_only_when_asked():
    model = TinyLPRModel(TinyLPRConfig()).eval()
    outputs = model(torch.rand(2, 1, 64, 128), output_masks=True)
    assert outputs.mask_logits.shape == (2, 16, 64, 128)


def test_training_loss_terms():
    model = TinyLPRModel(TinyLPRConfig()).train()
    labels = torch.tensor([[1, 2, 11, 3, 4, 5, 6, -100], [51, 1, 2, 11, 3, 4, 5, 6]])
    masks = torch.zeros(2, 16, 64, 128)
    outputs = model(
        torch.rand(2, 1, 64, 128), labels=labels, char_masks=masks, has_masks=torch.tensor([True, False]),
        use_center_loss=True,
    )  # fmt: skip
    for term in (outputs.ctc_loss, outputs.mask_loss, outputs.center_loss):
        assert term is not None and torch.isfinite(term)
    outputs.loss.backward()
    assert model.classifier.weight.grad is not None


@pytest.mark.parametrize(
    "overrides, message",
    [({"image_height": 60}, "multiple of the total stride"), ({"time_steps": 0}, "time_steps"),
     ({"width_multiplier": 0}, "width_multiplier"), ({"labels": ["1", "1"]}, "unique"),
     ({"blocks": [[4, 16, 16, 1]]}, "odd")],
)  # fmt: skip
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        TinyLPRConfig(**overrides)


def test_focal_ctc_equals_ctc_at_gamma_zero():
    torch.manual_seed(0)
    log_probs = torch.randn(3, 16, 68).log_softmax(-1)
    labels = torch.tensor([[1, 2, 3, -100], [4, 4, 5, 6], [7, -100, -100, -100]])
    lengths = (labels >= 0).sum(1)
    plain = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), labels.clamp(min=0), torch.full((3,), 16), lengths, reduction="none"
    ).mean()
    assert torch.allclose(focal_ctc_loss(log_probs, labels, alpha=1.0, gamma=0.0), plain)
    assert focal_ctc_loss(log_probs, labels, alpha=0.8, gamma=3.0) < plain


def test_dice_bce_zero_on_perfect_masks():
    masks = torch.zeros(2, 16, 8, 8)
    masks[:, 0, 2:5, 2:5] = 1
    perfect_logits = (masks * 2 - 1) * 50
    assert dice_bce_loss(perfect_logits, masks, torch.tensor([True, True])) < 1e-3
    assert dice_bce_loss(-perfect_logits, masks, torch.tensor([True, True])) > 1.0
    assert dice_bce_loss(-perfect_logits, masks, torch.tensor([False, False])) == 0


def test_center_loss_zero_at_centres():
    centers = torch.randn(68, 96)
    classes = torch.tensor([[0, 5, 0, 7]])
    features = centers[classes]
    assert center_loss(features, classes, centers) == 0
    assert center_loss(features + 1, classes, centers) == pytest.approx(96.0)


def test_center_update_moves_towards_features():
    model = TinyLPRModel(TinyLPRConfig(center_momentum=0.5)).train()
    features = torch.ones(1, 2, 96)
    model._update_centers(features, torch.tensor([[3, 0]]))
    assert torch.allclose(model.class_centers[3], torch.full((96,), 0.5))
    assert model.class_centers[0].abs().sum() == 0


def test_inference_graph_has_only_edge_tpu_friendly_modules():
    allowed = (torch.nn.Conv2d, torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.ReLU6, torch.nn.Sigmoid,
               torch.nn.Linear, torch.nn.AdaptiveAvgPool2d, torch.nn.Dropout)  # fmt: skip
    model = TinyLPRModel(TinyLPRConfig())
    leaves = [m for m in model.modules() if not list(m.children())]
    assert all(isinstance(m, allowed) for m in leaves), {type(m).__name__ for m in leaves}
    assert not np.isnan(model(torch.rand(1, 1, 64, 128)).logits.detach().numpy()).any()
