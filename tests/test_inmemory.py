"""cu.inmemory against the loop notebook 01 writes out by hand (copied here as the reference),
and the per-image weights of notebook 03."""

import math

import pytest
import torch
import torch.nn.functional as F

import course_utils as cu

BATCH = 32


# ----- notebook 01's code, verbatim but for the device (the reference) ------------------------

def augment_01(X, generator):
    flip = torch.rand(len(X), generator=generator) < 0.5
    X = torch.where(flip[:, None, None, None], X.flip(3), X)
    turns = torch.randint(4, (len(X),), generator=generator)
    X = torch.stack([torch.rot90(x, int(k), dims=(1, 2)) for x, k in zip(X, turns)])  # noqa: B905 (verbatim from 01)
    return X.contiguous(memory_format=torch.channels_last)


def train_01(model, X, y, lr, epochs, min_steps, seed):
    generator = torch.Generator().manual_seed(seed)
    steps = max(min_steps, math.ceil(epochs * len(X) / BATCH))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                   pct_start=0.2)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(X), (BATCH,), generator=generator)
        images, labels = cu.train.to_device(augment_01(X[batch], generator), y[batch], "cpu")
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return steps


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, 16, 16, generator=generator).contiguous(memory_format=torch.channels_last)
    return X, torch.randint(3, (40,), generator=generator)


def test_the_small_cnn_is_notebook_01s():
    model = cu.inmemory.small_cnn(num_classes=10)
    assert cu.models.count_parameters(model) == 98_970  # the count notebook 01 prints
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    assert model[:-1](torch.zeros(2, 3, 64, 64)).shape == (2, 128)  # body: 8 * width features


def test_flip_rotate_gives_one_of_the_eight_symmetries_of_each_image(images):
    X, _ = images
    out = cu.inmemory.flip_rotate(X, torch.Generator().manual_seed(1))
    for original, changed in zip(X, out, strict=True):
        versions = [torch.rot90(v, k, dims=(1, 2)) for v in (original, original.flip(2))
                    for k in range(4)]
        assert any(torch.equal(changed, v) for v in versions)
    again = cu.inmemory.flip_rotate(X, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    assert torch.equal(out, augment_01(X, torch.Generator().manual_seed(1)))


def test_dihedral_views_are_notebook_10s_eight_distinct_symmetries(images):
    X, _ = images
    views = cu.inmemory.dihedral_views(X)
    by_hand = [torch.rot90(V, k, dims=(2, 3)) for V in (X, X.flip(3)) for k in range(4)]  # 10's cell
    assert len(views) == 8 and all(torch.equal(v, w) for v, w in zip(views, by_hand, strict=True))
    assert torch.equal(views[0], X) and torch.equal(views[4], X.flip(3))
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in views)
    for i in range(8):  # a generic image: no two symmetries coincide
        assert all(not torch.equal(views[i], views[j]) for j in range(i + 1, 8))
    assert all(any(torch.equal(flipped[0], v[0]) for v in views)  # one of them, as flip_rotate draws
               for flipped in [cu.inmemory.flip_rotate(X[:1], torch.Generator().manual_seed(s))
                               for s in range(5)])


def test_train_takes_the_same_steps_as_notebook_01s_loop(images):
    X, y = images
    torch.manual_seed(0)
    ours = cu.inmemory.small_cnn(num_classes=3, width=4)
    reference = cu.inmemory.small_cnn(num_classes=3, width=4)
    reference.load_state_dict(ours.state_dict())
    recipe = {"lr": 3e-3, "epochs": 2, "min_steps": 10, "seed": 7}
    assert cu.inmemory.train(ours, X, y, **recipe) == train_01(reference, X, y, **recipe) == 10
    for a, b in zip(ours.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_epochs_decide_the_steps_when_they_are_more(images):
    X, y = images
    model = cu.inmemory.small_cnn(num_classes=3, width=4)
    assert cu.inmemory.train(model, X, y, lr=1e-3, epochs=3, min_steps=1, seed=0) == math.ceil(3 * 40 / 32)


def test_an_image_of_weight_zero_is_never_drawn(images, monkeypatch):
    X, y = images
    weights = torch.zeros(len(X))
    weights[:5] = 1.0
    drawn = []
    real = cu.inmemory.flip_rotate

    def spy(batch, generator):
        drawn.append(batch.clone())
        return real(batch, generator)

    monkeypatch.setattr(cu.inmemory, "flip_rotate", spy)
    cu.inmemory.train(cu.inmemory.small_cnn(3, width=4), X, y, lr=1e-3, epochs=1, min_steps=4,
                      seed=0, weights=weights)
    allowed = X[:5]
    for batch in drawn:
        for image in batch:
            assert any(torch.equal(image, a) for a in allowed)


def test_weights_draw_images_in_proportion(images, monkeypatch):
    """Weights 3 : 1 between two halves: about three quarters of the draws from the first."""
    X, y = images
    X = torch.cat([torch.zeros(20, 3, 16, 16), torch.ones(20, 3, 16, 16)])
    weights = torch.tensor([3.0] * 20 + [1.0] * 20)
    drawn = []
    real = cu.inmemory.flip_rotate
    monkeypatch.setattr(cu.inmemory, "flip_rotate",
                        lambda batch, g: drawn.append(batch.flatten(1)[:, 0]) or real(batch, g))
    cu.inmemory.train(cu.inmemory.small_cnn(3, width=4), X, y, lr=1e-3, epochs=1, min_steps=60,
                      seed=0, weights=weights)
    share_first = float((torch.cat(drawn) == 0).float().mean())
    assert 0.70 < share_first < 0.80  # 1,920 draws: the standard error is about 0.01


@pytest.mark.parametrize("weights", [[1.0] * 39, [-1.0] + [1.0] * 39, [0.0] * 40])
def test_bad_weights_are_refused_before_training(images, weights):
    X, y = images
    with pytest.raises(ValueError, match="weights"):
        cu.inmemory.train(cu.inmemory.small_cnn(3, width=4), X, y, lr=1e-3, epochs=1,
                          min_steps=1, seed=0, weights=weights)


def test_frozen_weights_stay_as_they_are(images):
    X, y = images
    model = cu.inmemory.small_cnn(3, width=4)
    for parameter in model[:-1].parameters():
        parameter.requires_grad = False
    before = [p.clone() for p in model[:-1].parameters()]
    head_before = model[-1].weight.clone()
    cu.inmemory.train(model, X, y, lr=1e-2, epochs=1, min_steps=3, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model[:-1].parameters(), strict=True))
    assert not torch.equal(head_before, model[-1].weight)


def test_test_accuracy_is_the_share_of_right_answers_in_eval_mode(images):
    X, y = images
    model = cu.inmemory.small_cnn(3, width=4).train()
    by_hand = float((model.eval()(X).argmax(1) == y).float().mean())
    model.train()
    assert cu.inmemory.test_accuracy(model, X, y) == pytest.approx(by_hand)
    assert not model.training


def test_as_tensors_stacks_a_data_set(images):
    X, y = images
    dataset = torch.utils.data.TensorDataset(X, y)
    dataset.targets = y.tolist()
    stacked, labels = cu.inmemory.as_tensors(dataset)
    assert torch.equal(stacked, X) and torch.equal(labels, y)
    assert stacked.is_contiguous(memory_format=torch.channels_last)


def test_as_tensors_takes_a_subset_whose_labels_come_with_its_images(images):
    X, y = images
    chosen = [5, 0, 3]
    subset = torch.utils.data.Subset(torch.utils.data.TensorDataset(X, y), chosen)  # no .targets
    stacked, labels = cu.inmemory.as_tensors(subset)
    assert torch.equal(stacked, X[chosen]) and torch.equal(labels, y[chosen])
    assert labels.dtype == torch.int64 and stacked.is_contiguous(memory_format=torch.channels_last)
