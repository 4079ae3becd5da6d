"""Exercises of notebook 12 (traffic signs: GTSRB, many classes, tiny images, no flips)."""

import copy

import numpy as np
import torch

from course_utils import checks
from course_utils.exercises import predictions


@checks.never_raises
def probe_at_128(prediction, accuracy_by_size, n_test):
    """Exercise 1 (predict first): the probe on 32 px images enlarged to 128 px, against 32 px.

    ``accuracy_by_size`` maps an image size to the probe's test accuracy at that size (it holds
    32 and 128); ``n_test`` is the number of test images, which sets what counts as "same"."""
    name = "the probe at 128 px"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    small, large = float(accuracy_by_size[32]), float(accuracy_by_size[128])
    change = (f"the probe went from {small:.3f} on the 32 px images to {large:.3f} on the same "
              f"images enlarged to 128 px ({100 * (large - small):+.1f} points)")
    why = {"higher": "Enlarging adds no information, but it changes what the network sees. Its "
                     "filters were learned on ImageNet objects tens to hundreds of pixels wide; "
                     "a 32 px sign is smaller than what its middle layers look at, and its last "
                     "feature map is a single position. At 128 px the sign has the scale the "
                     "filters know, and the last map is 4 x 4.",
           "lower": "Here the enlarged images misled the features: the blur of enlarging "
                    "outweighed the scale.",
           "same": "That is within what one accuracy on this many test images can resolve: the "
                   "size the network sees did not matter for these features."}
    return predictions.judge(prediction, small, large, n_test, change, why, name)


@checks.never_raises
def flips_in_training(prediction, accuracy, flip, pair_accuracy, n_pair_images):
    """Exercise 2 (predict, change the code and observe): random flips in fine-tuning.

    ``prediction`` is the learner's "higher", "lower" or "same" for the accuracy on the test
    images of the signs that have a mirror class, written before the run; ``accuracy`` what the
    changed cell printed and ``flip`` its ``FLIP``; ``pair_accuracy(flip)`` is the notebook's
    cached measurement, run again here for both settings; ``n_pair_images`` the number of those
    test images, which sets what counts as "same"."""
    name = "fine-tuning with flips"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    if checks.unanswered(accuracy) or checks.unanswered(flip):
        return checks.Feedback(False, "set FLIP = True, run the cell, and store the accuracy it "
                                      "prints in accuracy_with_flips.", name)
    if flip is not True:
        return checks.Feedback(False, f"FLIP is {flip!r}; the exercise asks for True. Change it "
                                      "in the cell above and run that cell again.", name)
    without, with_flips = pair_accuracy(False), pair_accuracy(True)
    wrong = predictions.stored_figure(accuracy, without, with_flips, name,
                                      "the accuracy without flips", "with FLIP = True",
                                      "with flips; store pair_accuracy(FLIP), or copy its printed "
                                      "value")
    if wrong is not None:
        return wrong
    change = (f"on the test images of the signs that have a mirror class, the accuracy went from "
              f"{without:.3f} without flips to {with_flips:.3f} with them "
              f"({100 * (with_flips - without):+.1f} points)")
    why = {"lower": "A mirrored 'turn left ahead' is a 'turn right ahead'. Trained on both "
                    "pictures under both names, the model cannot learn which way the arrow "
                    "points, and it guesses between the two. Flips are safe only for signs that "
                    "are their own mirror image.",
           "higher": "Here the flipped copies helped more than the mixed-up labels hurt; look "
                     "at which classes the model now confuses.",
           "same": "That is within what so few test images can resolve; the mixed-up labels "
                   "did not show in this run. Try another seed before drawing a rule."}
    return predictions.judge(prediction, without, with_flips, n_pair_images, change, why, name)


# ----- exercise 3: the training images a mirror adds ----------------------------------------

def _mirror_examples(X, y, same, mirror):
    """The reference: the mirror image (left and right swapped) of every image whose mirror is a
    sign of the set, labelled with the sign it shows."""
    y = torch.as_tensor(y)
    shows = torch.tensor([k if k in same else mirror.get(k, -1) for k in y.tolist()],
                         dtype=torch.long)
    keep = shows >= 0
    return X[keep].flip(-1), shows[keep]


def _upside_down(X, y, same, mirror):
    X_new, y_new = _mirror_examples(X, y, same, mirror)
    return X_new.flip(-1).flip(-2), y_new


def _labels_kept(X, y, same, mirror):
    X_new, _ = _mirror_examples(X, y, same, mirror)
    keep = torch.tensor([k in same or k in mirror for k in torch.as_tensor(y).tolist()])
    return X_new, torch.as_tensor(y)[keep]


def _pairs_only(X, y, same, mirror):
    return _mirror_examples(X, y, set(), mirror)


def _same_only(X, y, same, mirror):
    return _mirror_examples(X, y, same, {})


def _every_image(X, y, same, mirror):
    y = torch.as_tensor(y)
    return X.flip(-1), torch.tensor([mirror.get(k, k) for k in y.tolist()], dtype=torch.long)


def _mirror_cases():
    """Made-up batches: random images (no two columns alike, so every flip shows) and labels of
    signs of each kind: their own mirror image, one of a mirror pair, neither."""
    generator = torch.Generator().manual_seed(12)
    same, mirror = {11, 12, 13}, {19: 20, 20: 19, 33: 34, 34: 33}
    cases = []
    for labels in ([11, 19, 5, 20, 12, 7, 33], [34, 34, 2, 13, 19, 40], [5, 11, 33, 6, 20, 13, 12, 1]):
        X = torch.rand(len(labels), 3, 5, 6, generator=generator)
        cases.append((X, torch.tensor(labels), same, mirror))
    return cases


def _as_pair(result):
    """The learner's (images, labels) as tensors, or None when it is not a pair of that kind."""
    if not isinstance(result, tuple | list) or len(result) != 2:
        return None
    images, labels = (torch.as_tensor(np.asarray(part)) for part in result)
    return images.float(), labels.long()


def _same_pair(got, want):
    return (got[0].shape == want[0].shape and got[1].shape == want[1].shape
            and bool(torch.allclose(got[0], want[0].float())) and bool(torch.equal(got[1], want[1])))


@checks.never_raises
def mirror_examples(fn):
    """Exercise 3: the learner's ``mirror_examples(X, y, same, mirror)``.

    It is run on made-up batches and compared with the reference, images and labels; known
    mistakes are named."""
    name = "mirror_examples"
    if checks.unanswered(fn) or not callable(fn):
        return checks.Feedback(False, "not a function yet: define it with `def` and pass it in.",
                               name)
    mistakes = [
        (_upside_down, "the images are turned upside down: a mirror swaps left and right, the "
                       "last dimension (the width) of an N x C x H x W batch."),
        (_labels_kept, "the images are right, but each keeps its old label. A mirrored 'turn "
                       "left ahead' shows 'turn right ahead': label it with the sign it shows."),
        (_pairs_only, "the signs that are their own mirror image are missing: a mirrored "
                      "'yield' is still a 'yield', another training image."),
        (_same_only, "the mirror pairs are missing: a mirrored 'turn left ahead' is a "
                     "'turn right ahead', another training image of that class."),
        (_every_image, "every image is mirrored, also those whose mirror image is no sign of the "
                       "set (a mirrored '50' is no speed limit): keep only the images whose "
                       "class is in `same` or in `mirror`."),
    ]
    for i, case in enumerate(_mirror_cases(), start=1):
        got, failed = checks.call_learner(fn, copy.deepcopy(case), name, f"case {i}")
        if failed is not None:
            return failed
        pair = _as_pair(got)
        if pair is None:
            return checks.Feedback(False, f"case {i}: return two things, the images and their "
                                          "labels: `return X_new, y_new`.", name)
        want = _mirror_examples(*case)
        if _same_pair(pair, want):
            continue
        for wrong, diagnosis in mistakes:
            if _same_pair(pair, wrong(*case)):
                return checks.Feedback(False, f"case {i}: {diagnosis}", name)
        if len(pair[1]) != len(want[1]):
            return checks.Feedback(False, f"case {i}: {len(pair[1])} images came back, from a "
                                          f"batch of {len(case[1])}; count the labels in `same` "
                                          "and in `mirror`.", name)
        part = "labels" if pair[0].shape == want[0].shape and torch.allclose(pair[0], want[0]) \
            else "images"
        return checks.Feedback(False, f"case {i}: as many images as expected, but their {part} "
                                      "are not what a mirror gives.", name)
    return checks.Feedback(True, f"all {len(_mirror_cases())} batches correct.", name)
