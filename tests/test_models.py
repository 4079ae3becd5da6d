import urllib.error
import urllib.request

import pytest
import torch
from PIL import Image
from skimage import data as skdata
from torchvision.models import ResNet50_Weights

import course_utils as cu

IMAGENET_CLASSES = ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def lite0():
    return cu.models.create("efficientnet_lite0").eval()


def top5(model, photo):
    """Classify a scikit-image photo through the course's own preprocessing."""
    transform = cu.data.make_transform("efficientnet_lite0", train=False)
    x = transform(Image.fromarray(photo)).unsqueeze(0)
    with torch.no_grad():
        logits = model(x)
    return [IMAGENET_CLASSES[i] for i in logits.topk(5).indices[0].tolist()]


def test_offline_weights_are_real_imagenet_weights(lite0):
    """Proof that the weights are real: a cat photo is a cat, a coffee photo is espresso."""
    cat = top5(lite0, skdata.chelsea())
    assert cat[0] in CAT_CLASSES, cat
    coffee = top5(lite0, skdata.coffee())
    assert {"espresso", "cup"} & set(coffee[:5]), coffee
    assert coffee[0] == "espresso"


def test_untrained_model_does_not_pass_the_weights_test():
    """The photo test would catch a loader that silently left random weights."""
    torch.manual_seed(0)
    random_model = cu.models.create("efficientnet_lite0", pretrained=False).eval()
    assert top5(random_model, skdata.coffee())[0] != "espresso"


def test_lite_weights_file_loads_safely():
    path = cu.models.lite_weights_path("efficientnet_lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert len([k for k in state if not k.endswith("num_batches_tracked")]) == 247
    assert len(cu.models.weights_id("efficientnet_lite0")) == 12


def test_spec_gives_the_normalisation_each_family_needs():
    assert cu.models.spec("efficientnet_lite0").mean == (0.5, 0.5, 0.5)
    assert cu.models.spec("efficientnet_lite1").input_size == 240
    assert cu.models.spec("resnet50").mean == cu.models.IMAGENET_MEAN
    with pytest.raises(ValueError, match="unknown backbone"):
        cu.models.spec("resnet1000")


@pytest.mark.parametrize("name, head, width", [
    ("efficientnet_lite0", "classifier", 1280),
    ("resnet18", "fc", 512),
    ("mobilenet_v3_large", "classifier", 1280),
])
def test_one_head_interface_for_every_family(name, head, width):
    model = cu.models.create(name, num_classes=3, pretrained=name.startswith("efficientnet"))
    assert cu.models.head_name(model) == head
    assert cu.models.num_features(model) == width
    x = torch.randn(2, 3, 96, 96)
    model.eval()
    assert model(x).shape == (2, 3)
    assert cu.models.forward_features(model, x).shape == (2, width)
    cu.models.replace_head(model, 0)
    assert model(x).shape == (2, width)


def test_freeze_leaves_only_the_head_trainable_and_freezes_batchnorm(lite0):
    model = cu.models.create("efficientnet_lite0", num_classes=2)
    total = cu.models.count_parameters(model, trainable_only=False)
    cu.models.freeze(model)
    assert cu.models.count_parameters(model) == 1280 * 2 + 2
    assert cu.models.count_parameters(model, trainable_only=False) == total
    # A frozen block computes the same in train and eval mode: BatchNorm stats don't move.
    x = torch.randn(4, 3, 64, 64)
    model.eval()
    before = model(x)
    model.train()
    model(x)
    model.eval()
    assert torch.allclose(before, model(x))

    cu.models.unfreeze(model, ["blocks.6", "conv_head", "bn2"])
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"blocks", "conv_head", "bn2", "classifier"}
    assert all(p.requires_grad for p in model.blocks[6].parameters())
    assert not any(p.requires_grad for p in model.blocks[5].parameters())
    cu.models.unfreeze(model)
    assert cu.models.count_parameters(model) == total


def test_freezing_an_empty_list_freezes_nothing():
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False)
    total = cu.models.count_parameters(model)
    cu.models.freeze(model, [])
    assert cu.models.count_parameters(model) == total


def test_freeze_and_unfreeze_work_in_place_under_an_existing_optimizer():
    """Nothing is swapped: an optimizer built first still holds every trainable parameter."""
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False)
    modules_before = dict(model.named_modules())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for step in (cu.models.freeze, cu.models.unfreeze):
        step(model)
        assert all(id(p) in in_optimizer for p in model.parameters() if p.requires_grad)
        assert {name: id(m) for name, m in model.named_modules()} == \
            {name: id(m) for name, m in modules_before.items()}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == \
        sum(p.numel() for group in optimizer.param_groups for p in group["params"])


def test_frozen_batchnorm_keeps_its_statistics_in_a_plain_train_loop_until_unfrozen():
    torch.manual_seed(0)
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False)
    bn = model.blocks[2][0].bn1
    cu.models.freeze(model)
    stats = bn.running_mean.clone()
    model.train()  # what every training loop does first, the hand-written one of 07 included
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64))
    assert torch.equal(bn.running_mean, stats)
    cu.models.unfreeze(model)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64))
    assert not torch.equal(bn.running_mean, stats)  # trainable again: it learns statistics


def test_loading_by_position_checks_what_each_tensor_is():
    """A BatchNorm layer's four tensors share one shape: a shifted order must be refused."""
    model = cu.models.create("efficientnet_lite0", pretrained=False)
    state = torch.load(cu.models.lite_weights_path("efficientnet_lite0"), map_location="cpu",
                       weights_only=True)
    keys = [k for k in state if not k.endswith("num_batches_tracked")]
    mean_key = next(k for k in keys if k.endswith("running_mean"))
    var_key = mean_key.replace("running_mean", "running_var")
    shifted = {}
    for key in state:  # the same tensors, with one BatchNorm's mean and variance swapped in order
        if key == mean_key:
            shifted[var_key] = state[var_key]
        elif key == var_key:
            shifted[mean_key] = state[mean_key]
        else:
            shifted[key] = state[key]
    with pytest.raises(ValueError, match="out of order"):
        cu.models.load_by_position(model, shifted)
    with pytest.raises(ValueError, match="tensors"):
        cu.models.load_by_position(model, dict(list(state.items())[:-3]))


def test_the_model_record_follows_create_replace_head_copies_and_wrappers():
    import copy

    model = cu.models.create("efficientnet_lite0", num_classes=5, pretrained=False, dropout=0.2)
    info = cu.models.record(model)
    assert (info.backbone, info.num_features, info.num_classes, info.head_dropout,
            info.image_size) == ("efficientnet_lite0", 1280, 5, 0.2, 224)
    cu.models.replace_head(model, 3)
    assert cu.models.record(model).num_classes == 3 and cu.models.record(model).head_dropout == 0
    assert cu.models.record(copy.deepcopy(model)) == cu.models.record(model)
    wrapped = torch.nn.DataParallel(model)  # on a CPU a pass-through wrapper, like DDP's .module
    assert cu.models.record(wrapped) is cu.models.record(model)
    assert cu.models.get_head(wrapped) is model.classifier
    with pytest.raises(ValueError, match="no course record"):
        cu.models.record(torch.nn.Linear(2, 2))
    assert cu.models.ModelRecord.from_dict(info.to_dict()) == info


def test_spec_follows_the_weights_own_preprocessing():
    from torchvision.models import ResNet50_Weights

    preset = ResNet50_Weights.DEFAULT.transforms()
    resnet50 = cu.models.spec("resnet50")
    assert (resnet50.input_size, resnet50.resize_size) == (preset.crop_size[0], preset.resize_size[0]) == (224, 232)
    assert resnet50.mean == tuple(preset.mean) and resnet50.interpolation == "bilinear"
    lite0 = cu.models.spec("efficientnet_lite0")
    assert (lite0.input_size, lite0.resize_size, lite0.interpolation) == (224, 256, "bicubic")


def test_block_names_run_input_to_output():
    model = cu.models.create("resnet18", pretrained=False)
    assert cu.models.block_names(model)[:2] == ["conv1", "bn1"]
    assert cu.models.block_names(model)[-1] == "fc"
    lite = cu.models.create("efficientnet_lite0", pretrained=False)
    assert "blocks.6" in cu.models.block_names(lite)


@pytest.mark.parametrize("name, layer", [("resnet18", "layer4"), ("resnet50", "layer4"),
                                         ("efficientnet_lite0", "bn2"),
                                         ("mobilenet_v3_large", "features.16")])
def test_feature_map_layer_is_the_last_spatial_block(name, layer):
    # Random weights stand in for the downloads: the layer depends on the architecture only.
    model = cu.models.create(name, num_classes=2, pretrained=False).train()
    head = cu.models.get_head(model).eval()  # a part a learner put in eval mode stays there
    assert cu.models.feature_map_layer(model) == layer
    assert model.training and not head.training  # the probe's eval() is undone, part by part


def test_torchvision_weights_offline_give_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(cu.models.BackboneUnavailable) as err:
        cu.models.create("resnet50")
    message = str(err.value)
    assert "resnet50" in message and "efficientnet_lite0" in message
    assert str(tmp_path) in message and "download.pytorch.org" in message
    assert not cu.models.is_available("resnet50")
    assert cu.models.pick_backbone("resnet50") == "efficientnet_lite0"


def test_pick_backbone_offline_falls_back_without_trying_a_download(monkeypatch, tmp_path, capfd):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    def no_download(*args, **kwargs):
        raise AssertionError("pick_backbone started a download although the server is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    assert cu.models.pick_backbone("resnet34") == "efficientnet_lite0"
    out, err = capfd.readouterr()
    assert "Downloading" not in out + err  # torch hub's message for an attempt that cannot succeed


@pytest.mark.parametrize("name, before, head", [("efficientnet_lite0", "conv_head", "classifier"),
                                                ("resnet18", "layer4", "fc"),
                                                ("efficientnet_lite0", "classifier", "classifier")])
def test_split_halves_compose_to_the_model_and_share_its_weights(name, before, head):
    model = cu.models.create(name, num_classes=3, pretrained=False).eval()
    lower, upper = cu.models.split(model, before)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(upper(lower(x)), model(x))
    assert isinstance(getattr(upper, head), torch.nn.Linear)  # L2SP(upper, head=...) finds it
    ids = {id(p) for p in model.parameters()}
    halves = [p for half in (lower, upper) for p in half.parameters()]
    assert len(halves) == len(ids) and all(id(p) in ids for p in halves)  # shared, not copied


def test_split_names_the_blocks_when_the_cut_is_wrong():
    model = cu.models.create("efficientnet_lite0", pretrained=False)
    with pytest.raises(ValueError, match="blocks.6"):
        cu.models.split(model, "block6")
    with pytest.raises(ValueError, match="nothing below"):
        cu.models.split(model, "conv_stem")
