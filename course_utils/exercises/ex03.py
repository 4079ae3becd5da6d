"""Exercises of notebook 03 (three kinds of transfer: a source archive, a hazy target)."""

import numpy as np

from course_utils import checks


@checks.never_raises
def source_only_prediction(prediction, measured, clear_accuracy, chance):
    """Exercise 1 (predict first): the clear archive's model on hazy test images."""
    return checks.check_prediction(
        prediction, measured, name="the clear archive's model on hazy images", tolerance=0.1,
        explanation=f"(On clear test images the same models score {clear_accuracy:.2f}; chance "
                    f"is {chance:.2f}.) The network learned from clear images only: their "
                    "colours and their fine texture. Haze pulls every colour toward the same "
                    "pale grey and blur wipes out the texture, so the hazy images fall where "
                    "it has never seen an image, and what it answers there has little to do "
                    "with land cover. Nothing in its training told it which of its features "
                    "survive haze.")


def _reference_weights(p_target):
    p = np.asarray(p_target, dtype=float)
    odds = p / (1.0 - p)
    return odds / odds.mean()


def _probabilities(p_target):
    p = np.asarray(p_target, dtype=float)
    return p / p.mean()


def _inverted(p_target):
    p = np.asarray(p_target, dtype=float)
    odds = (1.0 - p) / p
    return odds / odds.mean()


def _not_normalised(p_target):
    p = np.asarray(p_target, dtype=float)
    return p / (1.0 - p)


def _sum_one(p_target):
    odds = _not_normalised(p_target)
    return odds / odds.sum()


WEIGHT_CASES = [
    (np.array([0.5, 0.5, 0.5, 0.5]), _reference_weights),
    (np.array([0.9, 0.5, 0.1, 0.5]), _reference_weights),
    (np.array([0.2, 0.6, 0.75, 0.05, 0.4]), _reference_weights),
    (np.array([0.99, 0.01, 0.3]), _reference_weights),
]

WEIGHT_MISTAKES = [
    (_probabilities, "these are the probabilities scaled to mean 1, not the odds. The density "
                     "ratio is P(target | x) / P(source | x): an image the classifier gives "
                     "0.9 should count 9 times one it gives 0.5 (odds 9 against 1), not 1.8 "
                     "times."),
    (_inverted, "these are upside down: P(source | x) / P(target | x) gives the images that "
                "look most like the target the smallest weights. Put P(target | x) on top."),
    (_not_normalised, "the odds are right, but their mean is not 1. Divide by their mean, so "
                      "that a weight of 1 means 'counts like an ordinary image'."),
    (_sum_one, "these sum to 1, so each image counts about 1/N of an image. Divide by the "
               "mean, not the sum: the weights should have mean 1."),
]


@checks.never_raises
def weights_from_probabilities(fn):
    """Exercise 2: the learner's ``weights_from_probabilities(p_target)``."""
    return checks.check_function(fn, WEIGHT_CASES, name="weights_from_probabilities",
                                 rtol=1e-6, mistakes=WEIGHT_MISTAKES)


@checks.never_raises
def more_target_labels(answer, run, labels, gap_spread):
    """Exercise 3 (change the code): the gap between model transfer and target only, with ten
    times the target labels.

    ``run(labels_per_class)`` is the notebook's own (cached, deterministic on a CPU) run of both
    methods for seed 0, returning ``(target only, model transfer)`` test accuracies; ``labels``
    the experiment's number of target labels per class; ``gap_spread`` the standard deviation
    of the experiment's gap across seeds."""
    name = "model transfer minus target only, ten times the labels"
    if checks.unanswered(answer):
        return checks.Feedback(False, checks.NOT_ANSWERED, name)
    answer = float(answer)
    target_only, transferred = run(10 * labels)
    measured = transferred - target_only
    base_target, base_transferred = run(labels)
    base = base_transferred - base_target
    if abs(answer - measured) > 0.002:
        if abs(answer - base) <= 0.002:
            hint = (f"that is the gap with the experiment's {labels} labels per class: the run "
                    f"still used them. Set exercise_labels to 10 * TARGET_LABELS, run the cell "
                    "again and copy the gap it prints.")
        elif abs(answer + measured) <= 0.002:
            hint = "the sign is turned round: model transfer minus target only."
        elif abs(answer - 100 * measured) <= 0.2:
            hint = "that is the gap in points; give it as a difference of accuracies (0.05, not 5)."
        else:
            hint = (f"this is not the gap the run with {10 * labels} labels per class measures "
                    "here. Did you use another number of labels, or copy another number?")
        return checks.Feedback(False, hint, name)
    change = measured - base
    text = (f"correct ({measured:+.3f}). With {labels} target labels per class the gap was "
            f"{base:+.3f}: target only {base_target:.3f}, model transfer {base_transferred:.3f}; "
            f"with {10 * labels}: {target_only:.3f} and {transferred:.3f}. ")
    if abs(change) <= 2 * gap_spread:
        text += (f"The gap moved by {100 * change:+.1f} points, within twice its spread across "
                 f"seeds ({100 * gap_spread:.1f} points): one seed cannot say it changed.")
    elif change < 0:
        text += (f"The gap shrank by {-100 * change:.1f} points, beyond its spread across seeds "
                 f"({100 * gap_spread:.1f} points). Ten times the target labels taught the "
                 "network from scratch much of what the archive gave the transferred one: what "
                 "a source adds is worth most when the target has few labels.")
    else:
        text += (f"The gap grew by {100 * change:.1f} points, beyond its spread across seeds "
                 f"({100 * gap_spread:.1f} points): here the transferred model made more of "
                 "the extra labels than the network from scratch did.")
    return checks.Feedback(True, text, name)
