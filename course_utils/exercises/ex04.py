"""Exercises of notebook 04 (the five steps of feature transfer, in plain PyTorch)."""

import copy

import torch
import torch.nn as nn

from course_utils import checks
from course_utils.train import accuracy


@torch.no_grad()
def train_mode_accuracy(model, X, y, batch_size):
    """Accuracy with BatchNorm in train mode on batches of ``batch_size``, measured on a copy
    (a forward pass in train mode changes the running statistics)."""
    model = copy.deepcopy(model).train()
    return accuracy(torch.cat([model(x) for x in X.split(batch_size)]), y)


@checks.never_raises
def batch_of_one_prediction(prediction, model, X, y):
    """Exercise 1 (predict first): test accuracy in train mode on batches of one image."""
    measured = train_mode_accuracy(model, X, y, batch_size=1)
    majority = max(float((y == c).float().mean()) for c in y.unique())
    return checks.check_prediction(
        prediction, measured, name="train-mode accuracy, one image per batch", tolerance=0.1,
        explanation=f"(Always answering the commonest class would score {majority:.3f}.) In train "
                    "mode each BatchNorm layer normalises a channel with the batch's own mean and "
                    "variance; with one image, every channel of every image is centred on itself "
                    "at every layer, so how strongly a channel fires over the whole image no "
                    "longer reaches the head. Eval mode uses the stored statistics, the same for "
                    "every image.")


def _exercise_model(freeze_first=True):
    """A small CNN whose first block may be frozen; it starts in eval mode, so that a function
    that does nothing is seen to do nothing."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 2))
    if freeze_first:
        model[:3].requires_grad_(False)
    return model.eval()


def _modes_after(fn, freeze_first):
    model = _exercise_model(freeze_first)
    grads = [p.requires_grad for p in model.parameters()]
    fn(model)
    stats = [model[1].running_mean.clone(), model[4].running_mean.clone()]
    with torch.no_grad():
        model(torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 + 1)
    return {"first moved": not torch.equal(model[1].running_mean, stats[0]),
            "second moved": not torch.equal(model[4].running_mean, stats[1]),
            "dropout on": model[8].training,
            "grads kept": grads == [p.requires_grad for p in model.parameters()]}


@checks.never_raises
def set_train_mode(fn):
    """Exercise 2: ``fn(model)`` = train mode, but frozen BatchNorm layers in eval mode."""
    name = "set_train_mode"
    if not callable(fn):
        return checks.Feedback(False, "not a function yet: define set_train_mode(model).", name)
    try:
        frozen, free = _modes_after(fn, True), _modes_after(fn, False)
    except Exception as err:  # the learner's code
        return checks.Feedback(False, f"your function raised {type(err).__name__}: {err}", name)
    if not (frozen["grads kept"] and free["grads kept"]):
        return checks.Feedback(False, "it changed which parameters require gradients; it should "
                                      "only set modes (train or eval), not freeze anything.", name)
    if not frozen["dropout on"]:
        return checks.Feedback(False, "Dropout is still off, so the model is not in train mode: "
                                      "call model.train() first, then switch only the frozen "
                                      "BatchNorm layers back to eval mode.", name)
    if frozen["first moved"]:
        return checks.Feedback(False, "the frozen BatchNorm layer still updated its running "
                                      "statistics: a layer whose parameters do not require "
                                      "gradients has to end up in eval mode (and after "
                                      "model.train(), not before: train() resets every "
                                      "module).", name)
    if not (frozen["second moved"] and free["first moved"] and free["second moved"]):
        return checks.Feedback(False, "a BatchNorm layer whose parameters train stayed in eval "
                                      "mode: only the frozen ones (requires_grad False) should "
                                      "keep their statistics.", name)
    return checks.Feedback(True, "right: the frozen BatchNorm layer kept its statistics, the "
                                 "trainable one learned new ones, and Dropout is on.", name)


@checks.never_raises
def random_body_accuracy(answer, probe_test_accuracy, random_body, pretrained_body):
    """Exercise 3 (change the code): the probe's test accuracy on a random, untrained body.

    ``probe_test_accuracy(body)`` is the notebook's function; it runs on copies here."""
    expected = probe_test_accuracy(copy.deepcopy(random_body))
    pretrained = probe_test_accuracy(copy.deepcopy(pretrained_body))
    result = checks.check_value(answer, expected, rtol=0, atol=1e-3, name="probe test accuracy",
                                mistakes=[(pretrained, "that is the accuracy with the pretrained "
                                                       "body: change `body_for_exercise` to "
                                                       "`random_body` and run the cell again")])
    if result:
        gain = pretrained - expected
        return checks.Feedback(True, f"right: {expected:.3f} with random weights, against "
                               f"{pretrained:.3f} with the weights of step 1, so pretraining on "
                               f"Imagenette added {100 * gain:+.1f} points to this probe (one "
                               f"seed; compare it with the seed spread in the notebook's tables). "
                               "Random convolutions already give features a linear head can use: "
                               "that, not chance, is the baseline step 1 has to beat.",
                               "probe test accuracy")
    return result


@checks.never_raises
def selection_optimism(answer, test_grid, lr, weight_decay):
    """Exercise 4: best mean test accuracy of the grid minus that of the validation choice."""
    means = test_grid.groupby(["lr", "weight decay"])["accuracy"].mean()
    chosen = float(means[(lr, weight_decay)])
    expected = float(means.max()) - chosen
    return checks.check_value(answer, expected, rtol=0, atol=1e-4, name="optimism", mistakes=[
        (-expected, "the sign is reversed: the best test score minus the chosen setting's"),
        (100 * expected, "that is in percentage points; give it as a fraction, like the "
                         "accuracies"),
        (float(test_grid["accuracy"].max()) - chosen,
         "that uses the best single seed; compare the means over the seeds, as the choice did"),
        (float(means.max()) - float(means.mean()),
         "that compares with the average setting; compare with the one chosen on validation "
         "(head_lr, head_wd)"),
    ])
