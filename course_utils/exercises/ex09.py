"""Exercises of notebook 09 (medical images: PneumoniaMNIST and BreastMNIST)."""

import numpy as np
from sklearn.metrics import roc_curve

from course_utils import checks
from course_utils.exercises import predictions


@checks.never_raises
def threshold_on_validation(prediction, at_half, at_validation_threshold, n_test):
    """Exercise 2 (predict first): does a threshold chosen on the validation split raise test accuracy?

    ``at_half`` and ``at_validation_threshold`` are the test accuracies of the same runs, at 0.5
    and at the threshold each run chose on its validation images; ``n_test`` the number of test
    images. The mean change is judged against what one accuracy on ``n_test`` images can resolve."""
    name = "the threshold chosen on validation"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    before, after = np.asarray(at_half, dtype=float), np.asarray(at_validation_threshold, dtype=float)
    lower = int((after < before).sum())
    change = (f"over {len(before)} runs, test accuracy went from {before.mean():.3f} at 0.5 to "
              f"{after.mean():.3f} at the validation threshold, lower in {lower} of {len(before)}")
    why = {"lower": "The threshold fitted the validation images, which are drawn from the same "
                    "pool as the training images: the same class balance, and cases the model "
                    "finds easier. The test images are another population, and a threshold tuned "
                    "to one population carries its mistakes to the next.",
           "higher": "Here the validation images resembled the test images enough for their "
                     "threshold to carry over.",
           "same": "That is within what one accuracy on this many test images can resolve: the "
                   "threshold moved few test images across the line."}
    return predictions.judge(prediction, before.mean(), after.mean(), n_test, change, why, name)


def _sensitivity_threshold(y_true, scores, target):
    """The reference: the highest threshold whose sensitivity (recall of class 1) reaches target,
    read off sklearn's ROC curve."""
    _, tpr, thresholds = roc_curve(y_true, scores, drop_intermediate=False)
    return thresholds[np.flatnonzero(tpr >= target)[0]]


def _specificity_threshold(y_true, scores, target):
    """A known mistake: the threshold at which class 0's recall reaches target instead."""
    fpr, _, thresholds = roc_curve(y_true, scores, drop_intermediate=False)
    return thresholds[np.flatnonzero(1 - fpr >= target)[-1]]


def _youden_threshold(y_true, scores, target):
    """A known mistake: the notebook's threshold (largest sensitivity + specificity - 1)."""
    fpr, tpr, thresholds = roc_curve(y_true, scores, drop_intermediate=False)
    return thresholds[np.argmax(tpr - fpr)]


def _threshold_cases():
    rng = np.random.default_rng(9)
    cases = []
    for n_negative, n_positive, target in [(30, 47, 0.9), (120, 33, 0.95), (18, 61, 0.8)]:
        y = np.r_[np.zeros(n_negative, int), np.ones(n_positive, int)]
        scores = np.r_[rng.beta(2, 5, n_negative), rng.beta(5, 2, n_positive)]
        order = rng.permutation(len(y))
        cases.append((y[order], scores[order], target))
    return cases


@checks.never_raises
def threshold_for_sensitivity(fn):
    """Exercise 3: the learner's ``threshold_for_sensitivity(y_true, scores, target)``.

    It is compared with sklearn's ROC curve by what its threshold does (the images it calls
    positive), on made-up validation scores; known mistakes are named."""
    mistakes = [
        (_specificity_threshold,
         "that threshold reaches the target for class 0 (specificity: the share of healthy "
         "cases cleared). Sensitivity is the share of the positive cases, y_true == 1, that "
         "score at or above the threshold."),
        (lambda y, s, t: np.min(s),
         "that calls every image positive: sensitivity 1, but every healthy case flagged. Look "
         "for the highest threshold that still reaches the target."),
        (_youden_threshold,
         "that is the threshold with the largest sensitivity + specificity - 1 (Youden's J), "
         "the notebook's choice above. Here the sensitivity is fixed first: the highest threshold "
         "at which it reaches the target."),
        (lambda y, s, t: np.sort(np.asarray(s)[np.asarray(y) == 1])[::-1][
            int(np.floor(t * np.sum(np.asarray(y) == 1))) - 1],
         "one positive case short: at that threshold the sensitivity is just below the target. "
         "Check your rounding, or compare with >= rather than >."),
    ]
    return checks.check_threshold(fn, _threshold_cases(), _sensitivity_threshold, scores_at=1,
                                  name="threshold_for_sensitivity", mistakes=mistakes)


@checks.never_raises
def unweighted_probe(prediction, recall, class_weight, recall_with, n_minority):
    """Exercise 1 (predict, change the code and observe): the probe without class weights.

    ``prediction`` is the learner's "higher", "lower" or "same" for the test recall of the
    minority class (normal X-rays) once the weights are gone; ``recall`` what the changed cell
    printed and ``class_weight`` its ``CLASS_WEIGHT``; ``recall_with(class_weight)`` the
    notebook's cached probe, run again here with and without weights; ``n_minority`` the number
    of test images of that class, which sets what counts as "same"."""
    name = "the probe without class weights"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    if checks.unanswered(recall):  # (None is an answer for class_weight: no weights)
        return checks.Feedback(False, "set CLASS_WEIGHT = None, run the cell, and store the "
                                      "recall of normal X-rays it prints in recall_unweighted.",
                               name)
    if class_weight is not None:
        return checks.Feedback(False, f"CLASS_WEIGHT is {class_weight!r}; the exercise asks for "
                                      "None (every image counts the same). Change it in the cell "
                                      "above and run that cell again.", name)
    weighted, unweighted = recall_with("balanced"), recall_with(None)
    wrong = predictions.stored_figure(recall, weighted, unweighted, name,
                                      "the recall with class weights", "with CLASS_WEIGHT = None",
                                      "without weights; store recall_with(CLASS_WEIGHT), or copy "
                                      "its printed value")
    if wrong is not None:
        return wrong
    change = (f"the recall of normal X-rays went from {weighted:.3f} with class weights to "
              f"{unweighted:.3f} without ({100 * (unweighted - weighted):+.1f} points on "
              f"{n_minority} test images)")
    why = {"lower": "Without weights, the loss is an average over training images, three in four "
                    "of them pneumonia: the probe lowers it most by leaning toward pneumonia, and "
                    "the rarer class pays.",
           "higher": "Here the unweighted probe leaned toward the rarer class, which is unusual: "
                     "look at the balance of the training split.",
           "same": "That is within what a recall on this many images can resolve: here the "
                   "weights did not move the rarer class."}
    return predictions.judge(prediction, weighted, unweighted, n_minority, change, why, name)
