"""Exercises of notebook 15 (scaling up and out)."""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

from course_utils import checks

# Exercise 1: a data set and a job that the notebook does not show.
IMAGES, PROCESSES = 1000, 6
# Exercise 2: the recipe the scaled learning rate starts from.
BASE_LR, BASE_BATCH = 1e-3, 32


def evaluated_twice(images=IMAGES, processes=PROCESSES):
    """How many images DistributedSampler hands out a second time to even the shares."""
    handed_out = sum(len(DistributedSampler(range(images), processes, rank, shuffle=False))
                     for rank in range(processes))
    return handed_out - images


@checks.never_raises
def padding_prediction(prediction):
    """Exercise 1 (predict first): images counted twice with ``IMAGES`` over ``PROCESSES``."""
    return checks.check_prediction(
        prediction, evaluated_twice(), name="images evaluated twice", tolerance=0,
        explanation="DistributedSampler gives every process ceil(N / P) indices, so that all "
                    "take the same number of steps, and fills the gap with images from the "
                    "start of the list: P·ceil(N / P) − N of them, at most P − 1. Harmless "
                    "in training; in a metric, those images count twice.")


def _linear_rule(base_lr, base_batch, per_process, processes, accumulation):
    return base_lr * per_process * processes * accumulation / base_batch


@checks.never_raises
def scaled_lr(fn):
    """Exercise 2: ``fn(base_lr, base_batch, per_process, processes, accumulation)``, the linear
    scaling rule (Goyal et al. 2017) for the effective batch of the job."""
    # Case 1 tells every mistake below apart (each gives a different number there).
    cases = [((BASE_LR, BASE_BATCH, 16, 4, 3), _linear_rule),
             ((BASE_LR, BASE_BATCH, 16, 2, 1), _linear_rule),
             ((BASE_LR, BASE_BATCH, 64, 8, 2), _linear_rule),
             ((0.1, 256, 32, 4, 4), _linear_rule),
             ((0.1, 256, 8, 1, 1), _linear_rule)]
    return checks.check_function(fn, cases, name="scaled_lr", rtol=1e-6, atol=0, mistakes=[
        (lambda lr, b, n, p, a: lr * n * p / b, "the accumulation steps are missing: each "
                                                "update averages over all of their images too"),
        (lambda lr, b, n, p, a: lr * n * a / b, "the processes are missing: the gradients of "
                                                "all of them are averaged in every step"),
        (lambda lr, b, n, p, a: lr * n / b, "that scales by one process's batch only; the "
                                            "effective batch is per process × processes × "
                                            "accumulation steps"),
        (lambda lr, b, n, p, a: lr * b / (n * p * a), "the ratio is upside down: a larger "
                                                      "batch gets a larger learning rate"),
        (lambda lr, b, n, p, a: lr * math.sqrt(n * p * a / b), "that is the square-root rule "
                                                               "(used with Adam by some); the "
                                                               "exercise asks for the linear one"),
        (lambda lr, b, n, p, a: lr, "unchanged: the rule scales the rate with the batch"),
    ])


# ----- exercise 3: gradient accumulation ----------------------------------------------------

def _problem(seed, micro_batches=3, size=4):
    """A small model (no BatchNorm) and ``micro_batches`` equal batches of a 3-class task."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    batches = [(torch.randn(size, 5, generator=generator),
                torch.randint(0, 3, (size,), generator=generator)) for _ in range(micro_batches)]
    return model, batches


def _one_big_batch(model, batches, optimizer):
    X, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    optimizer.zero_grad()
    F.cross_entropy(model(X), y).backward()
    optimizer.step()


def _not_divided(model, batches, optimizer):
    optimizer.zero_grad()
    for X, y in batches:
        F.cross_entropy(model(X), y).backward()
    optimizer.step()


def _step_each(model, batches, optimizer):
    for X, y in batches:
        optimizer.zero_grad()
        (F.cross_entropy(model(X), y) / len(batches)).backward()
        optimizer.step()


def _last_only(model, batches, optimizer):
    for X, y in batches:
        optimizer.zero_grad()
        (F.cross_entropy(model(X), y) / len(batches)).backward()
    optimizer.step()


def _nothing(model, batches, optimizer):
    pass


def _after(accumulate, seed):
    """The parameters after ``accumulate`` made its update, from the same start every time."""
    model, batches = _problem(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    accumulate(model, copy.deepcopy(batches), optimizer)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@checks.never_raises
def accumulation(fn):
    """Exercise 3: ``fn(model, micro_batches, optimizer)`` makes the update one big batch makes."""
    name = "accumulate"
    if checks.unanswered(fn) or not callable(fn):
        return checks.Feedback(False, "not a function yet: define it with `def` and pass it "
                                      "in.", name)

    def learners(seed):
        return _after(fn, seed)

    learners.__name__ = name
    cases = [((seed,), lambda seed: _after(_one_big_batch, seed)) for seed in (0, 1, 2)]
    return checks.check_function(learners, cases, name=name, rtol=1e-5, atol=1e-6, mistakes=[
        (lambda seed: _after(_nothing, seed), "the parameters did not change: after the "
                                              "backward passes, call optimizer.step() once"),
        (lambda seed: _after(_not_divided, seed), "the update is as many times too large as "
                                                  "there are micro-batches: gradients add up, "
                                                  "so divide each micro-batch's loss by their "
                                                  "number"),
        (lambda seed: _after(_step_each, seed), "that is one step per micro-batch (small "
                                                "batches one after another), not one step "
                                                "from all of them: step once, after the loop"),
        (lambda seed: _after(_last_only, seed), "only the last micro-batch counted: "
                                                "zero_grad() inside the loop erased the others' "
                                                "gradients; call it once, before the loop"),
    ])


# ----- exercise 4: BatchNorm with more, smaller replicas ------------------------------------

def _flat_gradient(model, X, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(X), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])


def batchnorm_gap(model, X, y, replicas):
    """‖mean of the replicas' gradients − the full batch's gradient‖ / ‖the full batch's‖, with
    the model in train mode (BatchNorm normalises each replica over its own images)."""
    model = copy.deepcopy(model).train()
    full = _flat_gradient(model, X, y)
    shares = [_flat_gradient(model, X[r::replicas], y[r::replicas]) for r in range(replicas)]
    return ((sum(shares) / replicas - full).norm() / full.norm()).item()


@checks.never_raises
def gap_with_four_replicas(answer, model, X, y):
    """Exercise 4 (change the code): the gap the notebook's cell prints with four replicas."""
    four = batchnorm_gap(model, X, y, 4)
    two = batchnorm_gap(model, X, y, 2)
    return checks.check_value(answer, four, name="gap with four replicas", rtol=0.02, atol=1e-4,
                              mistakes=[
        (two, "that is the gap with two replicas: change REPLICAS to 4 and run the cell again"),
        (lambda a: a < 1e-4, "that is the gap with BatchNorm holding its statistics; the "
                             "exercise asks for the train-mode row"),
    ])
