"""Exercises of notebook 10 (remote sensing: EuroSAT land cover)."""

from collections.abc import Collection

import numpy as np
from sklearn.metrics import recall_score

from course_utils import checks
from course_utils.exercises import predictions


@checks.never_raises
def enlarged_probe(prediction, accuracy, size, probe_at, n_test):
    """Exercise 1 (predict, change the code and observe): the probe on patches enlarged to 128 px.

    ``prediction`` is the learner's "higher", "lower" or "same", written before the run;
    ``accuracy`` what the changed cell printed, ``size`` its ``PROBE_SIZE``; ``probe_at(size)``
    is the notebook's cached probe, run again here for 64 and 128 px; ``n_test`` the number of
    test images, which sets what counts as "same"."""
    name = "the enlarged probe"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    if checks.unanswered(accuracy) or checks.unanswered(size):
        return checks.Feedback(False, "set PROBE_SIZE = 128, run the cell, and store the accuracy "
                                      "it prints in probe_accuracy_128.", name)
    if int(size) != 128:
        return checks.Feedback(False, f"PROBE_SIZE is {size}; the exercise asks for 128. Change "
                                      "it in the cell above and run that cell again.", name)
    original, enlarged = probe_at(64), probe_at(128)
    wrong = predictions.stored_figure(accuracy, original, enlarged, name,
                                      "the accuracy at 64 px", "with PROBE_SIZE = 128",
                                      "at 128 px; store probe_at(PROBE_SIZE), or copy its "
                                      "printed value")
    if wrong is not None:
        return wrong
    change = (f"the probe went from {original:.3f} at 64 px to {enlarged:.3f} at 128 px "
              f"({100 * (enlarged - original):+.1f} points on {n_test} test images)")
    why = {"higher": "Enlarging adds no detail, but it brings fields, roads and roofs closer to "
                     "the scale ImageNet's filters learned on 224 px photos, and leaves the "
                     "network a 4 x 4 map to describe instead of 2 x 2.",
           "lower": "Here the enlarged patches suited the frozen filters worse: blurred by "
                    "the enlargement, their textures no longer look like the photos the filters "
                    "learned from.",
           "same": "That is within what one accuracy on this many test images can resolve: "
                   "here the size did not matter to the frozen features."}
    return predictions.judge(prediction, original, enlarged, n_test, change, why, name)


@checks.never_raises
def confused_pair(prediction, counts, classes):
    """Exercise 2 (predict first): the two classes the model confuses most with each other.

    ``counts`` is the confusion matrix (rows true, columns predicted), ``classes`` the class
    names; confusions count both ways. The feedback ranks the learner's pair without naming the
    pair that is most confused: the matrix is right above the check."""
    name = "the most confused pair"
    if checks.unanswered(prediction):
        return checks.Feedback(False, "no prediction yet: write down your guess before you look "
                                      "at the matrix.", name)
    if isinstance(prediction, str) or not isinstance(prediction, Collection):
        return checks.Feedback(False, "write two class names as a set of strings, such as "
                                      "{\"forest\", \"pasture\"}.", name)
    pair = set(prediction)
    if len(pair) != 2 or not all(isinstance(c, str) for c in pair):
        return checks.Feedback(False, f"a pair is two different class names; got {len(pair)} "
                                      "distinct items.", name)
    unknown = sorted(pair - set(classes))
    if unknown:
        return checks.Feedback(False, f"{', '.join(map(repr, unknown))} is not a class here; the "
                                      f"classes are {list(classes)}.", name)
    counts = np.asarray(counts)
    both_ways = counts + counts.T
    i, j = sorted(list(classes).index(c) for c in pair)
    mine = int(both_ways[i, j])
    pairs = [int(both_ways[a, b]) for a in range(len(classes)) for b in range(a + 1, len(classes))]
    top = max(pairs)
    rank = 1 + sum(n > mine for n in pairs)
    if mine == top:
        return checks.Feedback(True, f"right: the model mixed these two up {mine} times, more than "
                                     f"any other pair. From 640 m above, in three colour bands, "
                                     f"they share colour and texture.", name)
    return checks.Feedback(False, f"the model mixed up your pair {mine} times, rank {rank} of "
                                  f"{len(pairs)} pairs; the most confused pair, {top} times. Find "
                                  "it in the matrix: the largest count off the diagonal, plus the "
                                  "count in its mirror position. What do its two classes share, "
                                  "seen from above?", name)


def _recall(counts):
    """The reference: sklearn's recall per class, from the images the matrix counts."""
    counts = np.asarray(counts)
    k = len(counts)
    true, predicted = np.nonzero(counts)
    repeats = counts[true, predicted]
    return recall_score(np.repeat(true, repeats), np.repeat(predicted, repeats), labels=range(k),
                        average=None, zero_division=0)


def _share(counts, total):
    total = np.asarray(total, dtype=float)
    return np.divide(np.diag(counts), total, out=np.zeros(len(counts)), where=total > 0)


def _cases():
    rng = np.random.default_rng(10)
    lopsided = rng.integers(0, 30, (4, 4)) + np.diag([40, 5, 60, 12])
    empty_class = rng.integers(0, 20, (3, 3))
    empty_class[1] = 0  # a class with no images: its recall is 0 by convention
    return [(rng.integers(0, 50, (5, 5)),), (lopsided,), (empty_class,)]


@checks.never_raises
def per_class_recall(fn):
    """Exercise 3: the learner's ``per_class_recall(counts)``, against sklearn's recall."""
    mistakes = [
        (lambda c: _share(c, np.asarray(c).sum(axis=0)),
         "that is precision: you divided by the column sums, the images the model *called* each "
         "class. Recall divides by the row sums, the images that truly *are* each class."),
        (lambda c: _share(c, np.full(len(c), np.asarray(c).sum())),
         "you divided by all the images of the test set; recall divides each class's hits by the "
         "number of images of that class (its row sum)."),
        (lambda c: np.diag(c).astype(float),
         "those are the counts of hits; divide each by its class's number of images (row sum)."),
    ]
    learner = fn if checks.unanswered(fn) or not callable(fn) else _nan_guard(fn)
    return checks.check_function(learner, [(args, _recall) for args in _cases()],
                                 name="per_class_recall", mistakes=mistakes)


def _nan_guard(fn):
    """The learner's function, with a class that has no images reported plainly: 0/0 is NaN."""
    def guarded(counts):
        got = fn(counts)
        if got is not None and np.isnan(np.asarray(got, dtype=float)).any():
            raise ValueError("a class with no images gave NaN (0/0); return 0 for it")
        return got
    guarded.__name__ = getattr(fn, "__name__", "per_class_recall")
    return guarded
