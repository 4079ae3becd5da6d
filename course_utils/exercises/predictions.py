"""Shared by the exercises that ask for a prediction before a measurement (09, 10, 11).

The learner writes "higher", "lower" or "same" before a cell runs; the check measures the
change itself and counts it as "same" when it is within what one figure on the test images can
resolve: half the width of the 95 % Wilson interval of the figure before the change.
"""

from course_utils import checks, stats

CHANGES = ("higher", "lower", "same")


def outcome(after, before, n_images):
    """"higher", "lower" or "same": the change from ``before`` to ``after`` (shares of
    ``n_images`` images), against what one share on that many images can resolve."""
    low, high = stats.accuracy_interval(round(before * n_images), n_images)
    if abs(after - before) <= (high - low) / 2:
        return "same"
    return "higher" if after > before else "lower"


def malformed(prediction, name, choices=CHANGES):
    """Feedback for a missing or malformed prediction, or None when it is one of ``choices``
    (11 asks which method wins, with its own choices)."""
    if checks.unanswered(prediction):
        return checks.Feedback(False, "no prediction yet: write down your guess before you run "
                                      "the measurement.", name)
    if prediction not in choices:
        return checks.Feedback(False, f"the prediction is one of {', '.join(map(repr, choices))}, "
                                      f"not {prediction!r}.", name)
    return None


def judge(prediction, before, after, n_images, change, why, name):
    """Feedback on a well-formed prediction: ``change`` says what was measured, and ``why`` holds
    one explanation per outcome; the learner's guess is right when it names the outcome."""
    result = outcome(after, before, n_images)
    verdict = "right" if prediction == result else f"you predicted {prediction!r}, but"
    return checks.Feedback(prediction == result,
                           f"{verdict}: {change}, which counts as {result!r}. {why[result]}", name)


def stored_figure(stored, before, after, name, before_is, rerun, after_is):
    """Feedback when the figure the learner stored is not the one measured after the change, or
    None when it is. ``before_is`` names the figure before the change ("the accuracy at 64 px"),
    ``rerun`` how to run the cell again ("with PROBE_SIZE = 128"), ``after_is`` where the right
    figure comes from. The figure after the change is never shown: the learner runs the cell."""
    if abs(float(stored) - after) <= 5e-4:
        return None
    if abs(float(stored) - before) <= 5e-4:
        return checks.Feedback(False, f"that is {before_is}, printed before the change: run the "
                                      f"cell again {rerun} and store the new figure.", name)
    return checks.Feedback(False, f"{float(stored):.3f} is not what the cell prints {after_is}.",
                           name)
