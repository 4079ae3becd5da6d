"""Exercises of notebook 07 (PyTorch: fine-tuning ResNet)."""

import copy

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from course_utils import checks, features, models, train


@checks.never_raises
def head_parameters(answer, model):
    """Exercise 1: the number of parameters of the new ``nn.Linear(num_ftrs, num_classes)``."""
    head = models.get_head(model)
    inputs, outputs = head.in_features, head.out_features
    return checks.check_value(answer, models.count_parameters(head, trainable_only=False),
                              name="parameters of the new head", mistakes=[
        (inputs * outputs, "that counts the weights; each output also has a bias"),
        (inputs + outputs, "every output has its own weight for each input feature: multiply"),
        ((inputs + 1) * (outputs + 1), "one bias per output, not one per input as well"),
    ])


def _per_image(batch_losses, batch_sizes):
    return sum(loss * n for loss, n in zip(batch_losses, batch_sizes, strict=True)) / sum(batch_sizes)


@checks.never_raises
def epoch_loss(fn):
    """Exercise 2: the mean loss per image from per-batch mean losses and batch sizes."""
    rng = np.random.default_rng(7)
    cases = [((list(rng.uniform(0.1, 2.0, size=k).round(3)), sizes), _per_image)
             for k, sizes in ((2, [32, 4]), (3, [8, 8, 8]), (5, [32, 32, 32, 32, 11]))]
    return checks.check_function(fn, cases, name="epoch_loss", mistakes=[
        (lambda losses, sizes: sum(losses) / len(losses),
         "that is the mean of the batch means, the article's number: a last, small batch "
         "counts as much as a full one. Weight each batch's loss by its number of images"),
        (lambda losses, sizes: sum(loss * n for loss, n in zip(losses, sizes, strict=True)),
         "the sum over images is right; now divide by the number of images"),
        (lambda losses, sizes: sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / len(sizes),
         "divide by the number of images, not the number of batches"),
    ])


def _batchnorm_statistics(model):
    return [m.running_mean.clone() for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]


@checks.never_raises
def validation_accuracy(fn, model, loader):
    """Exercise 3: the learner's ``fn(model, loader)`` on a copy of ``model`` left in train mode."""
    name = "validation_accuracy"
    if checks.unanswered(fn) or not callable(fn):
        return checks.Feedback(False, "not a function yet: define it with `def` and pass it in.", name)
    trap = copy.deepcopy(model).train()  # the notebook's model is never touched
    before = _batchnorm_statistics(trap)
    got, failed = checks.call_learner(fn, (trap, loader), name)
    if failed is not None:
        return failed
    changed = any(not torch.equal(a, b) for a, b in zip(before, _batchnorm_statistics(trap),
                                                      strict=True))
    if changed:
        return checks.Feedback(False, "your function changed the model's BatchNorm statistics, "
                                      "so it ran the model in train mode: call model.eval() "
                                      "before the loop.", name)
    if any(p.grad is not None for p in trap.parameters()):
        return checks.Feedback(False, "gradients were computed while evaluating: wrap the loop in "
                                      "torch.no_grad() (it saves memory and time).", name)
    _, reference = train.evaluate(copy.deepcopy(model), loader)
    return checks.check_value(got, reference, name=name, rtol=0, atol=1e-6, mistakes=[
        (lambda a: a > 1, "a count, not a share: divide by the number of images"),
        (1 - reference, "that is the share of mistakes, the error rate"),
    ])


def _probe_accuracy(train_xy, val_xy):
    """A linear classifier (logistic regression) on fixed features: its validation accuracy."""
    probe = LogisticRegression(max_iter=2000).fit(train_xy[0].numpy(), train_xy[1].numpy())
    return probe.score(val_xy[0].numpy(), val_xy[1].numpy())


@checks.never_raises
def random_backbone_prediction(prediction, backbone):
    """Exercise 4 (predict first): a linear probe on the features of an *untrained* backbone."""
    if checks.unanswered(prediction):  # the measurement waits for a prediction
        return checks.check_prediction(prediction, 0.0, name="your prediction")
    with torch.random.fork_rng():  # a fixed random network, without touching the notebook's RNG
        torch.manual_seed(0)
        random_model = models.create(backbone, num_classes=0, pretrained=False)
    measured = {}
    for label, kwargs in (("random", {"model": random_model, "model_id": "random-init-seed0"}),
                          ("pretrained", {})):
        splits = [features.cached_features("hymenoptera", split, backbone, **kwargs)
                  for split in ("train", "val")]
        measured[label] = _probe_accuracy(*splits)
    return checks.check_prediction(
        prediction, measured["random"], name="your prediction", tolerance=0.1,
        explanation=f"The same probe on the pretrained features scores {measured['pretrained']:.3f}. "
                    "The architecture and the head are the same; what transfers is what the "
                    "weights learned on ImageNet. (Random convolutions are not useless: they "
                    "keep some colour and texture, which is why the result is not exactly 0.5.)")


def _drift(backbone, loader, course_freeze):
    model = models.create(backbone, num_classes=2)
    for param in model.parameters():
        param.requires_grad = False
    if course_freeze:
        models.freeze(model)
    before = _batchnorm_statistics(model)
    model.train()
    with torch.no_grad():
        inputs, _ = next(iter(loader))
        model(inputs)
    return max((a - b).abs().max().item()
               for a, b in zip(before, _batchnorm_statistics(model), strict=True))


@checks.never_raises
def batchnorm_drift(drift_article, drift_course, backbone, loader):
    """Exercise 5 (change the code): BatchNorm statistics after one batch in train mode."""
    name = "BatchNorm drift"
    if checks.unanswered(drift_article) or checks.unanswered(drift_course):
        return checks.Feedback(False, checks.NOT_ANSWERED, name)
    article, course = _drift(backbone, loader, False), _drift(backbone, loader, True)
    first = checks.check_value(drift_article, article, name=name, rtol=1e-3, atol=1e-5, mistakes=[
        (0.0, "0 for the article's freezing? requires_grad=False stops the gradients, but "
              "BatchNorm still updates its statistics in train mode: run the cell with "
              "cu.models.freeze commented out, in train mode, on the first validation batch"),
    ])
    if not first:
        return checks.Feedback(False, f"drift_article: {first.message}", name)
    second = checks.check_value(drift_course, course, name=name, rtol=1e-3, atol=1e-5, mistakes=[
        (article, "that is the drift without cu.models.freeze: un-comment that line and run "
                  "the cell again"),
    ])
    if not second:
        return checks.Feedback(False, f"drift_course: {second.message}", name)
    return checks.Feedback(True, "right. With requires_grad=False alone, one batch in train "
                                 "mode moved the pretrained statistics; every training step "
                                 "would move them further, towards statistics of a few dozen "
                                 "of our images. cu.models.freeze keeps them.", name)
