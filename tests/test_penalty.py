"""cu.penalty.L2SP: α/2·‖θ_f − θ_f⁰‖² + β/2·‖θ_head‖², checked by hand, against autograd,
through a plain training loop and through fastai."""

import copy

import pytest
import torch
from torch import nn

import course_utils as cu


def tiny(seed=0):
    """A body and a head, as small as a hand computation needs: 2 -> 3 -> 2."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))


def test_value_matches_a_hand_computation():
    model = tiny()
    penalty = cu.penalty.L2SP(model, alpha=0.5, beta=0.25, head="2")
    head_only = 0.25 / 2 * sum(float((p ** 2).sum()) for p in model[2].parameters())
    assert float(penalty(model)) == pytest.approx(head_only, rel=1e-6)  # at the start
    with torch.no_grad():
        model[0].weight += 1.0   # 6 weights, each 1 from its start
        model[0].bias -= 2.0     # 3 biases, each 2 from its start
    head = sum(float((p ** 2).sum()) for p in model[2].parameters())
    expected = 0.5 / 2 * (6 * 1.0 + 3 * 4.0) + 0.25 / 2 * head
    assert float(penalty(model)) == pytest.approx(expected, rel=1e-6)
    assert penalty.drift(model) == pytest.approx((6 + 12) ** 0.5, rel=1e-6)


def test_gradient_is_alpha_times_the_distance_and_beta_times_the_head():
    model = tiny()
    start = copy.deepcopy(model)
    penalty = cu.penalty.L2SP(model, alpha=0.3, beta=0.7, head="2")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    penalty(model).backward()
    for (name, p), p0 in zip(model.named_parameters(), start.parameters(), strict=True):
        expected = 0.7 * p if name.startswith("2.") else 0.3 * (p - p0)
        torch.testing.assert_close(p.grad, expected.detach())


def test_the_head_is_not_pulled_toward_its_start_and_the_body_not_toward_zero():
    model = tiny()
    penalty = cu.penalty.L2SP(model, alpha=1.0, beta=0.0, head=model[2])
    with torch.no_grad():
        model[2].weight.mul_(10)  # the head moves: no α term, and β = 0
    assert float(penalty(model)) == 0.0
    assert penalty.head == ["2.weight", "2.bias"]
    assert sorted(penalty.start) == ["0.bias", "0.weight"]


def test_the_start_is_a_copy_that_training_never_touches():
    model = tiny()
    pretrained = {k: v.clone() for k, v in model.state_dict().items()}
    penalty = cu.penalty.L2SP(model, alpha=0.1, beta=0.1, head="2")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    X, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
    for _ in range(20):
        optimizer.zero_grad()
        (nn.functional.cross_entropy(model(X), y) + penalty(model)).backward()
        optimizer.step()
    assert penalty.drift(model) > 0  # the body did move
    for name, start in penalty.start.items():
        assert not start.requires_grad
        torch.testing.assert_close(start, pretrained[name], rtol=0, atol=0)
    assert all(start is not p for start in penalty.start.values() for p in model.parameters())


def test_a_large_alpha_keeps_the_body_at_its_start():
    X, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    drifts = {}
    for alpha in (0.0, 100.0):
        model = tiny()
        penalty = cu.penalty.L2SP(model, alpha=alpha, head="2")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.005)
        for _ in range(100):
            optimizer.zero_grad()
            (nn.functional.cross_entropy(model(X), y) * 10 + penalty(model)).backward()
            optimizer.step()
        drifts[alpha] = penalty.drift(model)
    assert drifts[100.0] < drifts[0.0] / 10


def test_frozen_weights_add_nothing_and_a_course_model_finds_its_own_head():
    model = cu.models.create("efficientnet_lite0", num_classes=3, pretrained=False)
    penalty = cu.penalty.L2SP(model, alpha=1.0, beta=1.0)
    assert penalty.head == ["classifier.weight", "classifier.bias"]
    cu.models.freeze(model)
    with torch.no_grad():
        model.conv_stem.weight.add_(1.0)  # frozen: not trained, so not penalised
    head = sum(float((p ** 2).sum()) for p in model.classifier.parameters()) / 2
    assert float(penalty(model)) == pytest.approx(head, rel=1e-5)
    assert penalty.drift(model) > 0  # drift still measures every transferred weight


def test_the_start_follows_the_model_to_its_dtype_and_device():
    model = tiny()
    penalty = cu.penalty.L2SP(model, alpha=1.0, head="2")
    model.double()
    value = penalty(model)
    assert value.dtype == torch.float64 and float(value) == 0.0
    assert all(start.dtype == torch.float64 for start in penalty.start.values())


def test_refuses_what_is_not_a_penalty():
    with pytest.raises(ValueError, match=">= 0"):
        cu.penalty.L2SP(tiny(), alpha=-1, head="2")
    with pytest.raises(ValueError, match="head"):
        cu.penalty.L2SP(tiny(), alpha=1, head=nn.Linear(3, 2))  # not inside the model


def test_fastai_callback_adds_the_penalty_to_the_gradient_not_to_the_recorded_loss():
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from torch.utils.data import TensorDataset

    torch.manual_seed(0)
    X, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    dls = DataLoaders.from_dsets(TensorDataset(X, y), TensorDataset(X, y), bs=16, shuffle=False,
                                 device="cpu")
    results = {}
    for alpha in (0.0, 1000.0):
        model = tiny()
        penalty = cu.penalty.L2SP(model, alpha=alpha, head="2")
        learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), wd=0.0,
                        cbs=cu.penalty.fastai_callback(penalty))
        learn.fit(3, lr=0.01)
        results[alpha] = (penalty.drift(model), learn.recorder.values[-1][0])
    assert results[1000.0][0] < results[0.0][0] / 10  # held at its start
    assert results[1000.0][1] < 5  # the recorded loss is the data's, not 1000·‖θ − θ⁰‖²
