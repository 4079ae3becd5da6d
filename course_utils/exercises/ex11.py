"""Exercises of notebook 11 (industrial defects with few labels: NEU steel surfaces)."""

import numpy as np

from course_utils import checks
from course_utils.exercises import predictions

WINNERS = ("nearest class mean", "probe", "tie")


@checks.never_raises
def winner_at_one_label(prediction, nearest_mean, probe):
    """Exercise 1 (predict first): with one labelled image per class, which method wins?

    ``nearest_mean`` and ``probe`` are the test accuracies of the two methods on the same draws
    of labelled images, in the same order. A "tie" is a mean difference within two standard
    errors of the paired differences: what this many draws can resolve."""
    name = "the winner at one label per class"
    malformed = predictions.malformed(prediction, name, choices=WINNERS)
    if malformed is not None:
        return malformed
    nearest_mean, probe = np.asarray(nearest_mean, dtype=float), np.asarray(probe, dtype=float)
    difference = nearest_mean - probe
    resolution = 2 * difference.std(ddof=1) / np.sqrt(len(difference))
    if abs(difference.mean()) <= resolution:
        result = "tie"
    else:
        result = "nearest class mean" if difference.mean() > 0 else "probe"
    measured = (f"over {len(difference)} draws, the nearest class mean scored "
                f"{nearest_mean.mean():.3f} and the probe {probe.mean():.3f}; the nearest class "
                f"mean was ahead in {int((difference > 0).sum())} of {len(difference)} draws")
    why = {"nearest class mean": "With one image per class, the class mean is that image's "
                                 "features: nothing is fitted, so nothing can overfit. The "
                                 "probe fits 1,281 weights per class to six images; any line "
                                 "that separates six points does, and it picks one the test "
                                 "images do not follow.",
           "probe": "Here the fitted weights generalised better than the raw distances: the "
                    "features that tell these classes apart outweighed the others.",
           "tie": "Neither method is ahead by more than the draws can resolve."}
    verdict = "right" if prediction == result else f"you predicted {prediction!r}, but"
    return checks.Feedback(prediction == result,
                           f"{verdict}: {measured}, which counts as {result!r}. {why[result]}",
                           name)


@checks.never_raises
def views_at_five_labels(prediction, accuracy, views, probe_at, n_test):
    """Exercise 2 (predict, change the code and observe): the probe on the 8 views of each image.

    ``prediction`` is the learner's "higher", "lower" or "same", written before the run;
    ``accuracy`` what the changed cell printed, ``views`` its ``VIEWS``; ``probe_at(views)`` is
    the notebook's cached mean accuracy over the draws at five labels per class, run again here
    for 1 and 8 views; ``n_test`` the number of test images, which sets what counts as "same"."""
    name = "the probe on 8 views"
    malformed = predictions.malformed(prediction, name)
    if malformed is not None:
        return malformed
    if checks.unanswered(accuracy) or checks.unanswered(views):
        return checks.Feedback(False, "set VIEWS = 8, run the cell, and store the mean accuracy "
                                      "it prints in accuracy_8_views.", name)
    if int(views) != 8:
        return checks.Feedback(False, f"VIEWS is {views}; the exercise asks for 8. Change it in "
                                      "the cell above and run that cell again.", name)
    one, eight = probe_at(1), probe_at(8)
    wrong = predictions.stored_figure(accuracy, one, eight, name,
                                      "the mean accuracy on one view", "with VIEWS = 8",
                                      "with 8 views; store probe_at(VIEWS), or copy its printed "
                                      "value")
    if wrong is not None:
        return wrong
    change = (f"the probe's mean accuracy at five labels per class went from {one:.3f} on one "
              f"view to {eight:.3f} on 8 views ({100 * (eight - one):+.1f} points)")
    why = {"higher": "A scratch turned by 90 degrees is still a scratch, so each labelled image "
                     "counts eight times in training, and the test image's 8 views average out "
                     "what one orientation gets wrong. Five labels become forty, at no cost to "
                     "the inspectors.",
           "lower": "Here the turned and mirrored copies misled the probe: its classes depend "
                    "on orientation.",
           "same": "That is within what one accuracy on this many test images can resolve: "
                   "the views added nothing the five labels did not already give."}
    return predictions.judge(prediction, one, eight, n_test, change, why, name)


def _walk_down(confidence, correct):
    """The confidences from the most confident image down, and the share of mistakes among the
    images at or above each: the error a threshold at that confidence lets through."""
    confidence, wrong = np.asarray(confidence, dtype=float), ~np.asarray(correct, dtype=bool)
    order = np.argsort(-confidence, kind="stable")
    return confidence[order], np.cumsum(wrong[order]), np.arange(1, len(order) + 1)


def _referral_threshold(confidence, correct, max_error):
    """The reference: the lowest threshold, among the confidences, whose accepted images are at
    most ``max_error`` wrong."""
    descending, mistakes, accepted = _walk_down(confidence, correct)
    return descending[np.flatnonzero(mistakes / accepted <= max_error)[-1]]


def _over_all_images(confidence, correct, max_error):
    """A known mistake: the mistakes divided by all the images instead of the accepted ones."""
    descending, mistakes, accepted = _walk_down(confidence, correct)
    return descending[np.flatnonzero(mistakes / len(accepted) <= max_error)[-1]]


def _first_break(confidence, correct, max_error):
    """A known mistake: walking down from the most confident image and stopping at the first
    threshold whose error is over the target, although lower thresholds may meet it again."""
    descending, mistakes, accepted = _walk_down(confidence, correct)
    over = np.flatnonzero(mistakes / accepted > max_error)
    last = (over[0] - 1) if len(over) else len(descending) - 1
    return descending[max(last, 0)]


def _referral_cases():
    """Made-up calibration images: confidences, and whether the model was right. The most
    confident images are right, so every case has an answer; in each, the error among the
    accepted crosses the target more than once on the way down."""
    rng = np.random.default_rng(11)
    cases = []
    for n, max_error in [(60, 0.05), (120, 0.03), (90, 0.1)]:
        confidence = np.sort(rng.beta(8, 1.5, n))[::-1]
        correct = rng.uniform(size=n) < confidence  # right about as often as it is confident
        correct[:40] = True
        correct[3] = False  # an early mistake: the share of mistakes crosses the target, then recovers
        order = rng.permutation(n)
        cases.append((confidence[order], correct[order], max_error))
    return cases


@checks.never_raises
def referral_threshold(fn):
    """Exercise 3: the learner's ``referral_threshold(confidence, correct, max_error)``.

    It is compared with the reference by what its threshold does (the images it accepts), on
    made-up calibration images; known mistakes are named."""
    mistakes = [
        (_over_all_images,
         "you divided the mistakes by all the images; the target is the share of mistakes among "
         "the images the threshold accepts (those at or above it), which are fewer."),
        (lambda c, ok, e: np.quantile(np.asarray(c, dtype=float), e),
         "that refers a fixed share of the images (a budget, as in the lesson): the least "
         "confident max_error of them. Here the target is the error among the accepted images, "
         "whatever share that refers."),
        (lambda c, ok, e: np.max(np.asarray(c, dtype=float)),
         "that accepts only the most confident image: its error is 0, but every other image goes "
         "to the inspector. Look for the lowest threshold that meets the target."),
        (_first_break,
         "you stopped at the first threshold whose error is over the target. The share of "
         "mistakes can fall back under it further down, when right answers follow a mistake: "
         "check every threshold and keep the lowest that meets the target."),
    ]
    return checks.check_threshold(fn, _referral_cases(), _referral_threshold, scores_at=0,
                                  name="referral_threshold", mistakes=mistakes)
