"""cu.features: embedding a real subset, cache hits, and every way a cache must go stale."""

import shutil

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import transforms as T

import course_utils as cu

TF = T.Compose([T.Resize(16), T.ToTensor()])  # small and cheap: the tests are about caching


class TinyNet(nn.Module):
    """A stand-in backbone with a classifier head: pools to 4x4, counts the images it embedded."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.proj = nn.Linear(48, 8)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(8, 2)
        self.seen = 0

    def features(self, x):
        return self.drop(self.proj(self.pool(x).flatten(1)))

    def forward(self, x):
        self.seen += x.shape[0]
        return self.classifier(self.features(x))


@pytest.fixture
def breast_data(empty_data, shared_mirror):
    """A data root holding a real copy (not a link) of breastmnist.npz, so a test may edit it."""
    (empty_data / "medmnist").mkdir(parents=True)
    shutil.copyfile(shared_mirror / "medmnist" / "breastmnist.npz",
                    empty_data / "medmnist" / "breastmnist.npz")
    return empty_data


def features(model, **kwargs):
    args = {"transform": TF, "fast": True, "model": model, "model_id": "tiny-v1", **kwargs}
    return cu.features.cached_features("breastmnist", "train", "tinynet", **args)


def test_embed_runs_the_model_frozen_in_eval_mode(breast_data, capfd):
    torch.manual_seed(0)
    model = TinyNet(dropout=0.5).train()
    ds = cu.data.load("breastmnist", "test", transform=TF, fast=True)
    X, y = cu.features.embed(model, ds, batch_size=7, device="cpu")
    assert "embedding" in capfd.readouterr().err  # the progress bar
    assert X.shape == (len(ds), 8) and X.dtype == torch.float32 and y.dtype == torch.long
    assert y.tolist() == ds.targets
    model.eval()
    with torch.no_grad():  # reference: the same images through the model by hand, up to the head
        expected = model.features(torch.stack([ds[i][0] for i in range(len(ds))]))
    assert torch.allclose(X, expected, atol=1e-6)  # features, not class scores; dropout was off
    assert not X.requires_grad
    model.train()
    cu.features.embed(model, ds, device="cpu")
    assert model.training  # the learner's model is left as it was


def test_second_call_is_a_cache_hit_stored_under_the_data_root(breast_data):
    model = TinyNet()
    X, y = features(model)
    assert model.seen == len(y) == 2 * cu.catalog.DATASETS["breastmnist"].fast_per_class[0]
    files = list((breast_data / "features" / "breastmnist").glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("train-tinynet-")
    X2, y2 = features(model)
    assert model.seen == len(y)  # the model did not run again
    assert torch.equal(X, X2) and torch.equal(y, y2)


@pytest.mark.parametrize("change", [
    {"transform": T.Compose([T.Resize(20), T.ToTensor()])},
    {"model_id": "tiny-v2"},
    {"fast": False},
])
def test_a_change_of_transform_weights_or_subset_recomputes(breast_data, change):
    model = TinyNet()
    features(model)
    seen = model.seen
    if change.get("fast") is False:  # the full split: embed only a few images' worth of work
        change = {"fast": False, "batch_size": 256}
    X, y = features(model, **change)
    assert model.seen > seen
    assert len(list((breast_data / "features" / "breastmnist").glob("*.pt"))) == 2
    features(model, **change)
    assert model.seen == seen + len(y)  # ...and the new features are a hit afterwards


def test_edited_data_files_invalidate_the_cache(breast_data):
    model = TinyNet()
    X, y = features(model)
    npz = breast_data / "medmnist" / "breastmnist.npz"
    arrays = dict(np.load(npz))
    first = cu.data.load("breastmnist", "train", fast=True).indices[0]
    arrays["train_images"][first] = 255 - arrays["train_images"][first]  # edit one image
    np.savez_compressed(npz, **arrays)
    seen = model.seen
    X_new, y_new = features(model)
    assert model.seen == seen + len(y)  # recomputed from the edited file
    assert not torch.allclose(X_new[0], X[0]) and torch.equal(X_new[1:], X[1:])
    assert torch.equal(y_new, y)


def test_a_passed_model_without_id_is_keyed_by_its_weights(breast_data):
    torch.manual_seed(0)
    a, b = TinyNet(), TinyNet()
    Xa, _ = features(a, model_id=None)
    Xb, _ = features(b, model_id=None)
    assert b.seen > 0 and not torch.equal(Xa, Xb)  # different weights, different cache
    b.load_state_dict(a.state_dict())
    seen = b.seen
    assert torch.equal(features(b, model_id=None)[0], Xa) and b.seen == seen  # same weights: hit


def test_damaged_or_foreign_cache_files_are_never_reused(breast_data):
    model = TinyNet()
    X, _ = features(model)
    path = next((breast_data / "features" / "breastmnist").glob("*.pt"))
    path.write_bytes(b"half a file")
    seen = model.seen
    assert torch.equal(features(model)[0], X) and model.seen > seen
    stored = torch.load(path, weights_only=True)
    torch.save({**stored, "key": {**stored["key"], "weights": "other"}, "X": X + 1}, path)
    assert torch.equal(features(model)[0], X)  # a file with another key is a miss


def test_a_failed_write_leaves_no_cache_file(breast_data, monkeypatch):
    def disk_full(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        features(TinyNet())
    assert list((breast_data / "features" / "breastmnist").iterdir()) == []


def test_default_extractor_comes_from_models_and_only_on_a_miss(breast_data, monkeypatch):
    created = []

    def create(name, num_classes=None, pretrained=True):
        created.append((name, num_classes))
        return TinyNet()

    monkeypatch.setattr(cu.models, "create", create)
    monkeypatch.setattr(cu.models, "weights_id", lambda name: "abc123")
    X, _ = cu.features.cached_features("breastmnist", "test", "efficientnet_lite0", fast=True)
    assert created == [("efficientnet_lite0", 0)] and X.shape[1] == 8
    cu.features.cached_features("breastmnist", "test", "efficientnet_lite0", fast=True)
    assert len(created) == 1  # a hit builds no model
    monkeypatch.setattr(cu.models, "weights_id", lambda name: "def456")  # new weights
    cu.features.cached_features("breastmnist", "test", "efficientnet_lite0", fast=True)
    assert len(created) == 2


def test_a_real_model_with_its_head_gives_features_not_logits(breast_data):
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False)
    ds = cu.data.load("breastmnist", "test", transform=T.Compose([T.Resize(32), T.ToTensor()]),
                      fast=True)
    X, _ = cu.features.embed(model, ds, device="cpu")
    assert X.shape == (len(ds), 1280)
    batch = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        assert torch.allclose(X, cu.models.forward_features(model.eval(), batch), atol=1e-5)


class Brighten:
    """A transform step with Python's default repr: ``<...Brighten object at 0x7f...>``."""

    def __init__(self, amount):
        self.amount = amount

    def __call__(self, x):
        return x + self.amount


def test_a_transform_without_a_repr_still_hits_and_its_settings_still_count(breast_data):
    model = TinyNet()
    features(model, transform=T.Compose([T.Resize(16), T.ToTensor(), Brighten(0.1)]))
    seen = model.seen
    features(model, transform=T.Compose([T.Resize(16), T.ToTensor(), Brighten(0.1)]))
    assert model.seen == seen  # a new object, the same settings: a hit
    features(model, transform=T.Compose([T.Resize(16), T.ToTensor(), Brighten(0.2)]))
    assert model.seen > seen  # other settings: computed anew


def test_lambdas_are_told_apart_by_their_code():
    describe = cu.features.describe_transform
    assert describe(T.Lambda(lambda x: x * 2)) != describe(T.Lambda(lambda x: x * 3))
    assert describe(T.Lambda(lambda x: x * 2)) == describe(T.Lambda(lambda x: x * 2))


def test_the_key_holds_device_precision_and_library_versions(breast_data, monkeypatch):
    ds = cu.data.load("breastmnist", "train", transform=TF, fast=True)
    cpu = cu.features.cache_key(ds, "tinynet", "tiny-v1", TF, "cpu")
    cuda = cu.features.cache_key(ds, "tinynet", "tiny-v1", TF, "cuda")
    assert (cpu["device"], cpu["precision"]) == ("cpu", "float32")
    assert (cuda["device"], cuda["precision"]) == ("cuda", "float16")
    assert cu.features.cache_path(cpu) != cu.features.cache_path(cuda)
    assert cpu["versions"]["torch"] == torch.__version__.split("+")[0]
    monkeypatch.setattr(cu.features, "library_versions", lambda: {"torch": "9.9"})
    assert cu.features.cache_path(cu.features.cache_key(ds, "tinynet", "tiny-v1", TF, "cpu")) \
        != cu.features.cache_path(cpu)
