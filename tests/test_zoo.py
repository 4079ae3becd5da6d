"""cu.zoo against references: torchvision's documented figures for ResNet-50's default weights,
the published size of EfficientNet-Lite0, and a model whose speed is known because it sleeps."""

import logging
import time

import pytest
import torch
from torch import nn

import course_utils as cu


def test_torchvision_card_reads_the_documented_figures_of_resnet50():
    # torchvision's model page for ResNet50_Weights.IMAGENET1K_V2 (the default since 0.13):
    # acc@1 80.858, acc@5 95.434, 25,557,032 parameters, 4.09 GFLOPs, 97.79 MB, 224 px crop
    card = cu.zoo.torchvision_card("resnet50")
    assert card["weights"] == "ResNet50_Weights.IMAGENET1K_V2"
    assert card["top-1 (%)"] == pytest.approx(80.858)
    assert card["top-5 (%)"] == pytest.approx(95.434)
    assert card["params (M)"] == pytest.approx(25.557032)
    assert card["GFLOPs"] == pytest.approx(4.09, abs=0.01)
    assert card["file (MB)"] == pytest.approx(97.79, abs=0.01)
    assert card["input (px)"] == 224


def test_torchvision_cards_cover_the_classification_models_only():
    names = cu.zoo.torchvision_models()
    assert {"resnet18", "mobilenet_v3_small", "vit_b_16", "convnext_tiny"} <= set(names)
    assert not any(name.startswith(("fasterrcnn", "deeplab", "r3d", "raft")) for name in names)
    table = cu.zoo.torchvision_cards(["resnet18", "vit_b_16"])
    assert list(table.index) == ["resnet18", "vit_b_16"]
    assert table.loc["vit_b_16", "top-1 (%)"] == pytest.approx(81.072)
    # the parameters in the metadata are those of the model torchvision builds
    assert table.loc["resnet18", "params (M)"] * 1e6 == sum(
        p.numel() for p in cu.models.create("resnet18", pretrained=False).parameters())


def test_timm_card_has_the_preprocessing_and_no_accuracy():
    card = cu.zoo.timm_card("tf_efficientnet_lite0")
    assert card["params (M)"] == pytest.approx(4.652, abs=0.001)  # 4.7 M in the authors' README
    assert card["input (px)"] == 224 and card["crop_pct"] == 0.875
    assert card["mean"] == (0.5, 0.5, 0.5) and card["license"] == "apache-2.0"
    assert card["top-1 (%)"] is None


class Sleeper(nn.Module):
    """Takes ``seconds`` per call whatever the batch: its throughput is batch / seconds."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        time.sleep(self.seconds)
        return x.mean(dim=(1, 2, 3)) + self.weight


def test_images_per_second_is_batch_size_over_the_time_per_batch():
    rate = cu.zoo.images_per_second(Sleeper(0.02), batch_size=8, size=8, min_run_time=0.3)
    assert rate == pytest.approx(8 / 0.02, rel=0.15)


def test_images_per_second_leaves_the_model_the_threads_and_the_logging_as_it_found_them():
    model = Sleeper(0.001).train()
    threads = torch.get_num_threads()
    logger = logging.getLogger("torch.utils.cpp_extension")  # quieted while the Timer is imported
    level = logger.level
    cu.zoo.images_per_second(model, batch_size=2, size=8, min_run_time=0.05)
    assert model.training and model.weight.device.type == "cpu"
    assert torch.get_num_threads() == threads and logger.level == level


class ThreadCounter(nn.Module):
    """Records how many threads PyTorch uses while it runs."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen = set()

    def forward(self, x):
        self.seen.add(torch.get_num_threads())
        return x.mean(dim=(1, 2, 3)) + self.weight


def test_images_per_second_times_with_this_process_threads_not_the_timers_default_of_one():
    model = ThreadCounter()
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cu.zoo.images_per_second(model, batch_size=2, size=8, min_run_time=0.05)
    finally:
        torch.set_num_threads(previous)
    assert model.seen == {2}
