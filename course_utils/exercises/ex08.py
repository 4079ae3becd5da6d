"""Exercises of notebook 08 (fastai: fine-tuning in a few lines)."""

import numpy as np
from fastai.torch_core import even_mults
from fastai.vision.all import AdaptiveConcatPool2d, get_image_files
from torch import nn

from course_utils import checks, models


@checks.never_raises
def training_photos(answer, data_dir):
    """Exercise 1: the training photos that ``get_image_files`` finds, without the placeholder."""
    files = get_image_files(data_dir / "train")
    photos = [f for f in files if f.suffix.lower() != ".gif"]
    everything = get_image_files(data_dir)
    return checks.check_value(answer, len(photos), name="training photos", mistakes=[
        (len(files), "the placeholder GIF (imageNotFound.gif) is still counted"),
        (len(everything), "that counts the validation folder too: list data_dir / 'train'"),
        (len([f for f in everything if f.suffix.lower() != ".gif"]),
         "that counts the validation folder too: list data_dir / 'train'"),
    ])


@checks.never_raises
def three_group_lrs(answer, low=1e-5, high=1e-3):
    """Exercise 2 (predict first): the learning rates ``slice(low, high)`` gives three groups."""
    return checks.check_value(answer, even_mults(low, high, 3), rtol=1e-3, atol=0,
                              name="learning rates of three groups", mistakes=[
        (list(np.linspace(low, high, 3)), "equal steps in between: fastai spaces them by a "
                                          "constant factor instead (geometric steps)"),
        (even_mults(low, high, 3)[::-1], "reversed: the first group is the body's input end, "
                                         "which needs the smallest changes"),
        (lambda a: len(a) != 3, "one learning rate per group: three numbers"),
    ])


@checks.never_raises
def misclassified(answer, interp):
    """Exercise 3: the validation images off the confusion matrix's diagonal."""
    matrix = interp.confusion_matrix()
    return checks.check_value(answer, int(matrix.sum() - np.trace(matrix)),
                              name="misclassified validation images", mistakes=[
        (int(np.trace(matrix)), "the diagonal counts the images the model got right"),
        (int(matrix.sum()), "that is every validation image"),
    ])


@checks.never_raises
def head_without_concat_pool(answer, learner):
    """Exercise 4 (change the code): parameters of a one-layer head on average pooling only."""
    head = learner.model[1]
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    name = "parameters of the head"
    if any(isinstance(m, AdaptiveConcatPool2d) for m in head.modules()):
        return checks.Feedback(False, "this learner's head still concatenates average and max "
                                      "pooling: build it with concat_pool=False", name)
    if len(linears) != 1:
        return checks.Feedback(False, f"this learner's head has {len(linears)} linear layers: "
                                      "build it with lin_ftrs=[] for a single one", name)
    width = linears[0].in_features
    measured = models.count_parameters(head, trainable_only=False)
    result = checks.check_value(answer, measured, name=name, mistakes=[
        (2 * measured, "that is the head with concatenated pooling (twice as wide)"),
        (linears[0].weight.numel(), "you counted the linear layer; the head's BatchNorm has a "
                                    "scale and a shift per feature too"),
    ])
    if result:
        return checks.Feedback(True, f"right: BatchNorm over {width} features (a scale and a "
                                     f"shift each) and one linear layer of {width} x "
                                     f"{linears[0].out_features} weights. Concatenating max and "
                                     "average pooling doubles the width, and so the head.", name)
    return result
