"""Exercises of notebook 05 (cross-entropy and the penalty λ·Ω(θ_f, θ_f⁰))."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks

# Exercise 1: one image, three classes, the true class first.
LOGITS = (2.0, 1.0, 0.1)
TRUE_CLASS = 0
# Exercise 2: a confident, correct prediction.
CONFIDENT_LOGITS = (8.0, 0.0, 0.0)


@checks.never_raises
def cross_entropy_by_hand(answer):
    """Exercise 1: the cross-entropy of ``LOGITS`` for ``TRUE_CLASS``, computed by hand."""
    z = torch.tensor([LOGITS])
    loss = F.cross_entropy(z, torch.tensor([TRUE_CLASS])).item()
    p_true = z.softmax(dim=1)[0, TRUE_CLASS].item()
    return checks.check_value(answer, loss, rtol=0, atol=1e-3, name="cross-entropy", mistakes=[
        (p_true, "that is the probability of the true class; the loss is minus its logarithm"),
        (-loss, "the sign: log of a probability is negative, and the loss is minus that log"),
        (loss / math.log(10), "a base-10 logarithm; cross-entropy uses the natural log"),
        (1 - p_true, "that is 1 − p, the push on the true logit (the gradient), not the loss"),
        (math.log(sum(math.exp(v) for v in LOGITS)), "you have log Σ exp(z); subtract the true "
                                                     "class's logit"),
        (lambda a: a < 0, "a loss is -log of a probability: never negative"),
    ])


def confident_gradient():
    """What exercise 2 measures: ∂ℓ/∂z of the true class for ``CONFIDENT_LOGITS``."""
    z = torch.tensor([CONFIDENT_LOGITS], requires_grad=True)
    F.cross_entropy(z, torch.tensor([0])).backward()
    return z.grad[0, 0].item()


@checks.never_raises
def confident_gradient_prediction(prediction):
    """Exercise 2 (predict first): the gradient on the true logit of a confident right answer."""
    measured = confident_gradient()
    return checks.check_prediction(
        prediction, measured, name="gradient on the true class's logit", tolerance=0.05,
        explanation="The gradient is softmax minus one-hot: p − 1 for the true class. At "
                    "p ≈ 0.999 that is almost 0: a confident right answer barely moves the "
                    "weights, and the images the model already gets right stop teaching it.")


def _reference_l2sp(model, start, alpha):
    return alpha / 2 * sum(((p - start[name]) ** 2).sum()
                           for name, p in model.named_parameters() if name in start)


def _cases():
    """Small models moved away from a start, with some parameters (a head) not in ``start``."""
    cases = []
    for seed, alpha in ((0, 0.1), (1, 2.0), (2, 0.0)):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        start = {name: p.detach().clone() for name, p in model.named_parameters()
                 if name.startswith("0.")}
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        cases.append(((model, start, alpha), _reference_l2sp))
    return cases


@checks.never_raises
def l2sp(fn):
    """Exercise 3: ``fn(model, start, alpha)`` = α/2 Σ‖θ − θ⁰‖² over the weights named in ``start``."""
    def named(model, start):
        return [(name, p) for name, p in model.named_parameters() if name in start]

    return checks.check_function(fn, _cases(), name="l2sp", rtol=1e-4, atol=1e-6, mistakes=[
        (lambda m, s, a: 2 * _reference_l2sp(m, s, a), "twice the expected value: the penalty "
                                                       "is α/2 times the squared distance"),
        (lambda m, s, a: a / 2 * sum((p ** 2).sum() for _, p in named(m, s)),
         "that is weight decay, which pulls toward zero: measure the distance to the start, "
         "θ − θ⁰"),
        (lambda m, s, a: a / 2 * sum((p - s[n]).norm() for n, p in named(m, s)),
         "the squared distance, not the distance: square each difference, no square root"),
        (lambda m, s, a: a / 2 * sum(((p - s.get(n, 0)) ** 2).sum()
                                     for n, p in m.named_parameters()),
         "the new head has no starting point: sum only over the weights named in `start`"),
    ])


def toy_gap(A, lam, w_target, w_start):
    """Distance between the weight-decay and the L2-SP minimum of the two-parameter bowl."""
    A, w_target, w_start = (np.asarray(v, dtype=float) for v in (A, w_target, w_start))

    def best(anchor):
        return np.linalg.solve(A + lam * np.eye(2), A @ w_target + lam * anchor)

    return float(np.linalg.norm(best(np.zeros(2)) - best(w_start)))


@checks.never_raises
def gap_with_more_data(answer, w_target, w_start, lam=0.1, original_A=((1.0, 0.0), (0.0, 0.02))):
    """Exercise 4 (change the code): the gap when the data decide w2 as firmly as w1."""
    expected = toy_gap(np.eye(2), lam, w_target, w_start)
    unchanged = toy_gap(original_A, lam, w_target, w_start)
    result = checks.check_value(answer, expected, rtol=0, atol=2e-3, name="gap with more data",
                                mistakes=[
        (unchanged, "that is the gap with the original bowl: set the second diagonal entry of "
                    "A_more_data to 1.0, run the cell again and read the new gap"),
        (lambda a: a > unchanged, "the gap should shrink when the data decide w2: check which "
                                  "entry of A you changed (the second diagonal one)"),
    ])
    if result:
        return checks.Feedback(True, f"right: the gap shrank from {unchanged:.3f} to about "
                               f"{expected:.3f}. Where the data decide a weight, the anchor "
                               "hardly matters; the penalties differ only where data are "
                               "scarce, which is exactly where transfer learning lives.",
                               "gap with more data")
    return result
