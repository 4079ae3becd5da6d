"""cu.train against references: a hand-written PyTorch step, eval-mode semantics, a real probe,
and a save/reload round trip of a partly frozen real backbone."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset
from torchvision import datasets

import course_utils as cu


@pytest.fixture(scope="module")
def hymenoptera(shared_mirror):
    return shared_mirror / "hymenoptera_data"


@pytest.fixture(scope="module")
def lite0():
    return cu.train.prepare(cu.models.create("efficientnet_lite0", num_classes=0), "cpu")


@pytest.fixture(scope="module")
def real_features(hymenoptera, lite0):
    """Lite0 features of 20 + 10 real ants and bees per class (128 px: cheap, still separable)."""
    tf = cu.data.make_transform("efficientnet_lite0", train=False, size=128)
    out = {}
    for split, per_class in (("train", 20), ("val", 10)):
        images = datasets.ImageFolder(hymenoptera / split, tf)
        subset = Subset(images, cu.data.stratified_subset(images.targets, per_class, seed=0))
        out[split] = cu.features.embed(lite0, subset, batch_size=32, device="cpu")
    return out


def loaders(real_features, batch_size=8):
    train = DataLoader(TensorDataset(*real_features["train"]), batch_size=batch_size, shuffle=False)
    val = DataLoader(TensorDataset(*real_features["val"]), batch_size=batch_size)
    return train, val


def test_accuracy_counts_rows_whose_top_logit_is_the_label():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1]])
    assert cu.train.accuracy(logits, torch.tensor([0, 1, 1, 1])) == pytest.approx(0.5)


def test_train_epoch_is_the_hand_written_loop(real_features):
    torch.manual_seed(0)
    model = nn.Linear(1280, 2)
    reference = copy.deepcopy(model)
    train_loader, _ = loaders(real_features)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss, acc = cu.train.train_epoch(model, train_loader, nn.CrossEntropyLoss(), optimizer,
                                     progress=False)
    # The seed's loop (section 5), written out: what train_epoch must do on a CPU.
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    losses, correct = [], 0
    for X, y in train_loader:
        ref_optimizer.zero_grad()
        logits = reference(X)
        batch_loss = nn.functional.cross_entropy(logits, y)
        batch_loss.backward()
        ref_optimizer.step()
        losses.append(batch_loss.item() * len(y))
        correct += (logits.argmax(1) == y).sum().item()
    n = len(train_loader.dataset)
    assert loss == pytest.approx(sum(losses) / n) and acc == pytest.approx(correct / n)
    assert torch.allclose(model.weight, reference.weight) and torch.allclose(model.bias, reference.bias)


def test_fit_trains_a_linear_probe_on_real_features(real_features, capsys):
    torch.manual_seed(0)
    model = nn.Linear(1280, 2)
    train_loader, val_loader = loaders(real_features)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = cu.train.fit(model, train_loader, val_loader, optimizer, num_epochs=5,
                           progress=False)
    assert len(history) == 5 and history["epoch"] == [1, 2, 3, 4, 5]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["val_acc"] >= 0.85  # ImageNet features separate ants from bees
    assert history.best("val_acc")["val_acc"] == max(history["val_acc"])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5 and printed[-1].startswith("epoch  5") and printed[-1].endswith(" s")
    more = cu.train.fit(model, train_loader, None, optimizer, num_epochs=2, history=history,
                        stage="more", progress=False, log=None)
    assert more is history and history["epoch"][-2:] == [6, 7] and history["stage"][-1] == "more"
    assert history.last["val_acc"] is None and "val_acc" not in history.format_row(history.last)


def test_plot_history_draws_every_epoch_of_every_stage():
    import matplotlib

    matplotlib.use("Agg")
    history = cu.train.History()
    for epoch, stage in enumerate(["head", "head", "finetune"], start=1):
        history.add(epoch=epoch, stage=stage, train_loss=1.0 / epoch, train_acc=0.5 + 0.1 * epoch,
                    val_loss=1.2 / epoch, val_acc=0.4 + 0.1 * epoch, seconds=1.0)
    fig = cu.plot.history(history)
    ax_loss, ax_acc = fig.axes
    lines = {line.get_label(): list(line.get_ydata()) for line in ax_acc.get_lines() if line.get_label() in ("train", "val")}
    assert lines == {"train": history["train_acc"], "val": history["val_acc"]}
    assert [t.get_text() for t in ax_loss.texts] == ["finetune"]  # where the second stage begins


def test_confusion_matrix_counts_pairs():
    import matplotlib

    matplotlib.use("Agg")
    fig = cu.plot.confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["ants", "bees"])
    counts = fig.axes[0].images[0].get_array()
    assert counts.tolist() == [[1, 1], [1, 2]]


def test_evaluate_uses_eval_mode_and_no_gradients(real_features):
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm1d(1280), nn.Dropout(0.5), nn.Linear(1280, 2)).train()
    _, val_loader = loaders(real_features)
    stats = model[0].running_mean.clone()
    first = cu.train.evaluate(model, val_loader)
    assert first == cu.train.evaluate(model, val_loader)  # dropout off: the same every time
    assert torch.equal(model[0].running_mean, stats)  # BatchNorm statistics not updated
    assert all(p.grad is None for p in model.parameters())
    X, y = real_features["val"]
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model.eval()(X), y).item()
    assert first[0] == pytest.approx(expected, rel=1e-5)


def test_prepare_puts_convolutions_in_channels_last_on_cpu(lite0):
    assert lite0.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    X, y = cu.train.to_device(torch.zeros(2, 3, 8, 8), torch.zeros(2), torch.device("cpu"))
    assert X.is_contiguous(memory_format=torch.channels_last)


def test_evaluate_computes_the_loss_batch_by_batch_where_the_model_runs(real_features):
    """A class-weighted loss whose weights live on the GPU needs logits on the GPU too."""
    torch.manual_seed(0)
    model = nn.Linear(1280, 2)
    _, val_loader = loaders(real_features, batch_size=8)
    calls = []

    def recording_loss(logits, y):
        calls.append((logits.device, len(y)))
        return nn.functional.cross_entropy(logits, y, weight=torch.tensor([1.0, 3.0]))

    loss, _ = cu.train.evaluate(model, val_loader, recording_loss)
    assert [n for _, n in calls] == [len(y) for _, y in val_loader]  # once per batch
    assert {device for device, _ in calls} == {next(model.parameters()).device}
    with torch.no_grad():  # the mean over images of the per-batch losses, as train_epoch reports
        expected = sum(recording_loss(model(X), y).item() * len(y) for X, y in val_loader)
    assert loss == pytest.approx(expected / len(val_loader.dataset))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_evaluate_with_a_class_weighted_loss_on_cuda(real_features):
    model = cu.train.prepare(nn.Linear(1280, 2), "cuda")
    _, val_loader = loaders(real_features)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0], device="cuda"))
    loss, accuracy = cu.train.evaluate(model, val_loader, loss_fn)
    assert loss > 0 and 0 <= accuracy <= 1


def test_save_and_reload_a_partly_frozen_backbone(hymenoptera, tmp_path):
    torch.manual_seed(0)
    model = cu.models.create("efficientnet_lite0", num_classes=2)
    cu.models.freeze(model, cu.models.block_names(model)[:-4])  # FrozenBatchNorm below the top
    nn.init.normal_(model.classifier.weight)  # a head that is not the fresh default
    path = cu.train.save_model(cu.train.prepare(model, "cpu"), tmp_path / "m" / "model.pt",
                               classes=["ants", "bees"], image_size=160)
    reloaded = cu.train.load_model(path, device="cpu")
    info = cu.models.record(reloaded)
    assert info.classes == ("ants", "bees") and info.image_size == 160
    assert not reloaded.training
    tf = cu.data.make_transform("efficientnet_lite0", train=False, size=160)
    image = sorted((hymenoptera / "val" / "bees").glob("*.jpg"))[0]
    X = tf(datasets.folder.default_loader(image)).unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(reloaded(X), model.eval()(X), atol=1e-5)
        expected = model(X).softmax(1)[0]
    label, probability = cu.train.predict_image(reloaded, image)
    assert label == ["ants", "bees"][int(expected.argmax())]
    assert probability == pytest.approx(float(expected.max()), abs=1e-5)


def test_save_model_refuses_a_model_it_could_not_rebuild(tmp_path):
    with pytest.raises(ValueError, match="cu.models.create"):
        cu.train.save_model(nn.Linear(2, 2), tmp_path / "model.pt", classes=["a", "b"])
    model = cu.models.create("efficientnet_lite0", num_classes=3, pretrained=False)
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        cu.train.save_model(model, tmp_path / "model.pt", classes=["a", "b"])


def test_a_head_with_dropout_reloads(tmp_path):
    torch.manual_seed(0)
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False, dropout=0.3)
    path = cu.train.save_model(model, tmp_path / "model.pt", classes=["ants", "bees"])
    reloaded = cu.train.load_model(path, device="cpu")
    assert cu.models.record(reloaded).head_dropout == 0.3
    X = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(reloaded(X), model.eval()(X), atol=1e-5)


def test_a_wrapped_model_saves_as_the_model_inside(tmp_path):
    """DataParallel here (no GPU needed); DistributedDataParallel wraps the same way (.module)."""
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False)
    path = cu.train.save_model(nn.DataParallel(model), tmp_path / "model.pt", classes=["a", "b"])
    state = torch.load(path, weights_only=True)["state_dict"]
    assert not any(key.startswith("module.") for key in state)
    reloaded = cu.train.load_model(path, device="cpu")
    assert cu.models.record(reloaded).classes == ("a", "b")
