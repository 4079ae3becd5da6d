"""Exercises of notebook 14 (open problems: adapting to dark traffic signs without their labels,
nearest prototypes, how many inner steps Reptile needs)."""

import copy

import numpy as np

from course_utils import checks, fewshot
from course_utils.exercises import predictions

# ----- exercise 1: AdaBN on dark traffic signs ------------------------------------------------

@checks.never_raises
def adabn_on_darkness(prediction, before, after, n_images):
    """Exercise 1 (predict first): does AdaBN raise the accuracy of a probe on frozen Lite0
    features on the dark test signs? ``before`` and ``after`` are the mean accuracies over the
    draws without and with AdaBN, on ``n_images`` dark test images."""
    name = "AdaBN on dark signs"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    change = (f"over the draws the dark-sign accuracy went from {before:.3f} without AdaBN to "
              f"{after:.3f} with it, on {n_images} dark test images")
    why = {"higher": "Re-estimating the BatchNorm statistics on dark images brought the dark "
                     "features back toward what the probe was trained on, as it did for the small "
                     "CNN of notebook 02.",
           "lower": "The network was pretrained on ImageNet, with every BatchNorm layer's "
                    "statistics estimated on about a million varied photos. Re-estimated on a few "
                    "hundred dark signs of 43 classes, they describe this small set more than "
                    "the darkness, and every later layer receives inputs normalised differently "
                    "from those it was trained on. The small CNN of notebook 02 was trained from "
                    "scratch on these very signs, so its statistics were this data set's own and "
                    "only the brightness moved them.",
           "same": "Re-estimating the statistics moved the features, but not enough, or not in "
                   "a direction that mattered to the probe: what separates the classes in the "
                   "dark did not come back."}
    return predictions.judge(prediction, before, after, n_images, change, why, name)


# ----- exercise 2: nearest prototypes ---------------------------------------------------------

def _case(seed, n_way, k_shot, n_query, dim):
    """Support rows grouped around one centre per class, with labels in a shuffled order, and
    query rows around the same centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(n_way, dim))
    labels = rng.permutation(np.repeat(np.arange(n_way), k_shot))
    support = centres[labels] + rng.normal(scale=1.5, size=(len(labels), dim))
    query = centres[rng.integers(n_way, size=n_query)] + rng.normal(scale=1.5, size=(n_query, dim))
    return support, labels, query


def _cases():
    """Made-up episodes (support, support_labels, query): a 5-way 3-shot one, a 3-way 1-shot one,
    and one built so that a mean and the nearest single support row disagree, and so does the
    angle (cosine) with the distance."""
    awkward = (np.array([[-6.0, 1.0], [6.0, 1.0], [2.5, 0.2], [9.0, 9.0]]), np.array([0, 0, 1, 2]),
               np.array([[0.4, 0.0], [5.5, 0.3], [1.0, 1.0], [8.0, 7.0]]))
    return [_case(0, 5, 3, 20, 8), _case(1, 3, 1, 12, 4), awkward]


def _farthest(support, labels, query):
    n = int(labels.max()) + 1
    P = np.stack([support[labels == c].mean(0) for c in range(n)])
    return ((query[:, None] - P[None]) ** 2).sum(-1).argmax(1)


def _nearest_neighbour(support, labels, query):
    return labels[((query[:, None] - support[None]) ** 2).sum(-1).argmin(1)]


def _summed(support, labels, query):
    n = int(labels.max()) + 1
    P = np.stack([support[labels == c].sum(0) for c in range(n)])
    return ((query[:, None] - P[None]) ** 2).sum(-1).argmin(1)


def _cosine(support, labels, query):
    n = int(labels.max()) + 1
    P = np.stack([support[labels == c].mean(0) for c in range(n)])
    P = P / np.linalg.norm(P, axis=1, keepdims=True)
    Q = query / np.linalg.norm(query, axis=1, keepdims=True)
    return (Q @ P.T).argmax(1)


def _row_order(support, labels, query):
    """The index of the nearest support row, not its label."""
    return ((query[:, None] - support[None]) ** 2).sum(-1).argmin(1)


MISTAKES = [
    (_farthest, "each query got the class of the *farthest* prototype: take the smallest "
                "distance (argmin), not the largest."),
    (_nearest_neighbour, "each query got the label of its nearest single support image. A "
                         "prototype is the *mean* of its class's support images, one point per "
                         "class; with one shot per class the two agree, with several they do "
                         "not."),
    (_summed, "the prototypes are sums of the support rows, not means: a sum lies K times as "
              "far from the origin as the class's centre."),
    (_cosine, "this picks the prototype at the smallest angle (cosine), not the nearest one: "
              "Prototypical Networks use the squared Euclidean distance."),
    (_row_order, "this returns the position of the nearest support row, not a class label; "
                 "return a label 0 .. n_way - 1 for each query."),
]


@checks.never_raises
def prototypes(fn):
    """Exercise 2: the learner's ``prototype_predict(support, support_labels, query)`` on made-up
    episodes, against :func:`course_utils.fewshot.prototype_predict`; known mistakes named."""
    name = "prototype_predict"
    if checks.unanswered(fn) or not callable(fn):
        return checks.Feedback(False, "not a function yet: define it with `def` and pass it in.",
                               name)
    for i, (support, labels, query) in enumerate(_cases(), start=1):
        got, failed = checks.call_learner(fn, copy.deepcopy((support, labels, query)), name, f"case {i}")
        if failed is not None:
            return failed
        got = np.asarray(got)
        if got.shape != (len(query),):
            return checks.Feedback(False, f"case {i}: return one label per query row, an array "
                                          f"of shape ({len(query)},); this has shape "
                                          f"{got.shape}.", name)
        want = fewshot.prototype_predict(support, labels, query)
        if np.array_equal(got, want):
            continue
        for wrong, diagnosis in MISTAKES:
            if np.array_equal(got, wrong(support, labels, query)):
                return checks.Feedback(False, f"case {i}: {diagnosis}", name)
        wrong_count = int((got != want).sum())
        return checks.Feedback(False, f"case {i}: {wrong_count} of {len(query)} queries got "
                                      "another label than the nearest class mean; compute one "
                                      "mean per class from the support rows with that label, "
                                      "then the squared distance of every query to every mean.",
                               name)
    return checks.Feedback(True, f"all {len(_cases())} episodes are classified as nearest "
                                 "prototypes classify them.", name)


# ----- exercise 3: Reptile with one inner step ------------------------------------------------

@checks.never_raises
def inner_steps(prediction, steps, before, after, n_images, default_steps=5):
    """Exercise 3 (predict, change the code and observe): Reptile meta-trained with one inner
    step instead of ``default_steps``. ``before`` is seed 0's held-out accuracy with the
    default, ``after`` the learner's run with ``steps`` inner steps, both over ``n_images``
    query images."""
    name = "Reptile's inner steps"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    if checks.unanswered(steps):
        return checks.Feedback(False, "set META_STEPS = 1 in the cell above and run it.", name)
    if steps == default_steps:
        return checks.Feedback(False, f"META_STEPS is still {default_steps}; the exercise asks "
                                      "for 1. Change it in the cell above and run that cell "
                                      "again.", name)
    if steps != 1:
        return checks.Feedback(False, f"META_STEPS is {steps!r}; the exercise asks for 1. Change "
                                      "it and run the cell again.", name)
    change = (f"with {default_steps} inner steps seed 0 scored {before:.3f} on the held-out "
              f"tasks, with 1 inner step {after:.3f}")
    why = {"lower": "With one inner step, Reptile's update is the gradient of one task's loss at "
                    "the start, so meta-training is ordinary training on all tasks mixed (Nichol "
                    "et al., 2018). Each task names its classes 0 to 4 in a new order, so mixed "
                    "together they cancel, and little is learned that helps a new task. Several "
                    "steps add terms that reward a start from which a few steps go far, which "
                    "is what Reptile is for.",
           "higher": "One inner step did better here. Look at how far each run is from the random "
                     "start before drawing a rule from one seed.",
           "same": "One inner step and several ended within what these query images resolve: "
                   "run more seeds before drawing a rule."}
    return predictions.judge(prediction, before, after, n_images, change, why, name)
