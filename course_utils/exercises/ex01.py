"""Exercises of notebook 01 (why transfer learning: learning curves on EuroSAT)."""

import math

from course_utils import checks, stats


@checks.never_raises
def scratch_prediction(prediction, measured, chance):
    """Exercise 1 (predict first): a CNN trained from scratch on the fewest labels."""
    return checks.check_prediction(
        prediction, measured, name="from scratch, fewest labels", tolerance=0.1,
        explanation=f"(Chance is {chance:.2f}.) Some land covers already differ in colour "
                    "alone (sea and lake are dark blue, forest is dark green), and a small CNN "
                    "can pick up colour and texture from a few images per class; shapes take "
                    "many more.")


def _linear_in_labels(budgets, accuracies, target):
    """Mistake: interpolating on a linear scale of labels, not the log scale of the plot."""
    for i in range(1, len(budgets)):
        if accuracies[i - 1] < target <= accuracies[i]:
            share = (target - accuracies[i - 1]) / (accuracies[i] - accuracies[i - 1])
            return budgets[i - 1] + share * (budgets[i] - budgets[i - 1])
    return stats.labels_to_reach(budgets, accuracies, target)


def _next_budget_up(budgets, accuracies, target):
    """Mistake: no interpolation, the first measured budget at or above the target."""
    return next((float(b) for b, a in zip(budgets, accuracies, strict=True) if a >= target), math.inf)


def _last_budget_when_never(budgets, accuracies, target):
    """Mistake: a curve that never reaches the target gives the largest budget."""
    value = stats.labels_to_reach(budgets, accuracies, target)
    return float(budgets[-1]) if math.isinf(value) else value


def _last_crossing(budgets, accuracies, target):
    """Mistake: the last pair that brackets the target (a noisy curve can cross twice)."""
    for i in range(len(budgets) - 1, 0, -1):
        if accuracies[i - 1] < target <= accuracies[i]:
            return stats.labels_to_reach(budgets[i - 1:], accuracies[i - 1:], target)
    return stats.labels_to_reach(budgets, accuracies, target)


LABELS_CASES = [
    (([5, 10, 25, 50], [0.50, 0.60, 0.70, 0.80], 0.65), stats.labels_to_reach),
    (([5, 10, 25, 50], [0.50, 0.60, 0.70, 0.80], 0.75), stats.labels_to_reach),
    (([5, 10, 25, 50], [0.50, 0.60, 0.70, 0.80], 0.45), stats.labels_to_reach),
    (([5, 10, 25, 50], [0.50, 0.60, 0.70, 0.80], 0.85), stats.labels_to_reach),
    (([5, 10, 25, 50], [0.50, 0.70, 0.65, 0.80], 0.68), stats.labels_to_reach),
    (([2, 8], [0.3, 0.9], 0.6), stats.labels_to_reach),
]

LABELS_MISTAKES = [
    (_linear_in_labels, "that is the straight line between the two budgets on a linear axis. "
                        "The plot's axis is logarithmic (5 → 10 is as far as 50 → 100), and so "
                        "is the reading: interpolate in log(budget), then take exp."),
    (_next_budget_up, "that is the first measured budget at or above the target, with no "
                      "reading between the points: interpolate between the budget below and "
                      "the one above."),
    (_last_budget_when_never, "the curve never reaches the target, so no number of labels "
                              "measured here is enough: return math.inf, not the largest "
                              "budget."),
    (_last_crossing, "this curve crosses the target twice (a dip from seed noise); the first "
                     "crossing is the fewest labels that reached it."),
]


@checks.never_raises
def labels_to_reach(fn):
    """Exercise 2: the learner's ``labels_to_reach(budgets, accuracies, target)``."""
    return checks.check_function(fn, LABELS_CASES, name="labels_to_reach", rtol=1e-3,
                                 mistakes=LABELS_MISTAKES)


@checks.never_raises
def large_learning_rate(answer, finetune_accuracy, recipe_lr, recipe_accuracy, spread):
    """Exercise 3 (change the code): fine-tuning with ten times the recipe's learning rate.

    ``finetune_accuracy(lr)`` is the notebook's own run of method 3 (deterministic on a CPU; the
    notebook caches it), asked here for ten times the recipe's rate, so a number copied from
    another run or rate is caught; ``spread`` is the standard deviation of the recipe's accuracy
    across seeds at that budget."""
    name = "ten times the learning rate"
    if checks.unanswered(answer):
        return checks.Feedback(False, checks.NOT_ANSWERED, name)
    answer = float(answer)
    if abs(answer - recipe_accuracy) < 0.002:
        return checks.Feedback(False, "that is the recipe's accuracy: the run still used the "
                                      f"recipe's learning rate, {recipe_lr:g}. Set exercise_lr "
                                      "to ten times that, run the cell again and copy what it "
                                      "prints.", name)
    measured = finetune_accuracy(10 * recipe_lr)
    if abs(answer - measured) > 0.002:
        return checks.Feedback(False, "this is not what fine-tuning with ten times the "
                                      f"recipe's learning rate ({10 * recipe_lr:g}) measures "
                                      "here. Did you change the rate by another factor, or "
                                      "copy another number?", name)
    change = measured - recipe_accuracy
    if abs(change) <= 2 * spread:
        size = (f"{100 * change:+.1f} points, within twice the spread across seeds "
                f"({100 * spread:.1f} points): one run cannot tell them apart.")
    else:
        size = (f"{100 * change:+.1f} points, far beyond the spread across seeds "
                f"({100 * spread:.1f} points).")
        if change < 0:
            size += (" Large steps on few images move the pretrained weights far from where "
                     "ImageNet left them, and what they knew is lost before the new head has "
                     "learned to use it: the transfer is undone. This is why fine-tuning uses "
                     "small learning rates, and why notebook 05 adds a penalty that holds the "
                     "weights near their pretrained values.")
    return checks.Feedback(True, f"correct ({answer:.3f} against the recipe's "
                                 f"{recipe_accuracy:.3f}): {size}", name)
