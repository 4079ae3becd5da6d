"""Exercises of notebook 13 (tools and the model zoo: FLOPs against speed, batches of one, the
models worth choosing)."""

import copy
import math

from course_utils import checks
from course_utils.exercises import predictions

# ----- exercise 1: FLOPs against speed --------------------------------------------------------

@checks.never_raises
def flops_and_speed(prediction, speed, flops, fast="efficientnet_b0", slow="resnet18"):
    """Exercise 1 (predict first): how many times as many images per second ``fast`` runs as
    ``slow`` on this machine. ``speed`` maps a model to its measured images per second,
    ``flops`` to its GFLOPs per image (torchvision's metadata). Right within a factor of 1.5."""
    name = "FLOPs and speed"
    if checks.unanswered(prediction):
        return checks.Feedback(False, "no prediction yet: write down your guess before you run "
                                      "the measurement.", name)
    try:
        guess = float(prediction)
    except (TypeError, ValueError):
        return checks.Feedback(False, f"the prediction is a number (a ratio of images per "
                                      f"second), not a {type(prediction).__name__}.", name)
    if not guess > 0 or math.isinf(guess):
        return checks.Feedback(False, f"{guess:g} cannot be a ratio of two speeds: both count "
                                      "images per second, so the ratio is a positive number.",
                               name)
    measured = speed[fast] / speed[slow]
    flops_ratio = flops[slow] / flops[fast]
    facts = (f"{fast} needs {flops_ratio:.1f} times fewer GFLOPs per image than {slow}, and it "
             f"ran {measured:.2f} times as many images per second here.")
    why = ("FLOPs count multiply-adds, not seconds. Most of efficientnet_b0's arithmetic is in "
           "depthwise convolutions and small squeeze-and-excitation layers, which do little "
           "arithmetic per byte they read: on a CPU they wait for memory, and its many small "
           "layers each cost a call. ResNet-18's dense 3 x 3 convolutions keep the arithmetic "
           "units busy. Measure speed on the machine that will run the model.")
    if abs(math.log(guess / measured)) <= math.log(1.5):
        return checks.Feedback(True, f"you predicted {guess:.2g}: close. {facts} {why}", name)
    if abs(math.log(guess / flops_ratio)) <= math.log(1.25):
        return checks.Feedback(False, f"you predicted {guess:.2g}, about the ratio of their "
                                      f"FLOPs: speed does not follow FLOPs here. {facts} {why}",
                               name)
    direction = "more" if guess > measured else "less"
    return checks.Feedback(False, f"you predicted {guess:.2g}, {direction} than was measured. "
                                  f"{facts} {why}", name)


# ----- exercise 2: a batch of one -------------------------------------------------------------

LOSERS = ("mobilenet_v3_small", "resnet50")


@checks.never_raises
def batch_of_one(prediction, batch, speed_at, full_batch):
    """Exercise 2 (predict, change the code and observe): which of :data:`LOSERS` keeps the
    smaller share of its images per second when batches of ``full_batch`` images become
    batches of one. ``batch`` is the learner's ``SPEED_BATCH``; ``speed_at(batch)`` the
    notebook's cached measurement (model -> images per second)."""
    name = "a batch of one"
    malformed = predictions.malformed(prediction, name, LOSERS)
    if malformed is not None:
        return malformed
    if checks.unanswered(batch):
        return checks.Feedback(False, "set SPEED_BATCH = 1 in the cell above and run it.", name)
    if batch != 1:
        return checks.Feedback(False, f"SPEED_BATCH is {batch!r}; the exercise asks for 1. Change "
                                      "it in the cell above and run that cell again.", name)
    kept = {model: speed_at(1)[model] / speed_at(full_batch)[model] for model in LOSERS}
    loser = min(kept, key=kept.get)
    facts = "; ".join(f"{model} kept {100 * share:.0f} % of its images per second"
                      for model, share in kept.items())
    why = {"mobilenet_v3_small": "A small, fast model does little arithmetic per image, so the "
                                 "fixed cost of each call (launching dozens of small layers, "
                                 "reading every weight once) is a large share of its time; a "
                                 "batch shares that cost among its images. A large model's "
                                 "time is mostly arithmetic, which grows with the batch anyway.",
           "resnet50": "Here the large model lost more: on this machine its layers ran less "
                       "efficiently on one image than on a batch. Compare the other small and "
                       "large models in the table before drawing a rule from one pair."}
    verdict = "right" if prediction == loser else f"you predicted {prediction!r}, but"
    return checks.Feedback(prediction == loser,
                           f"{verdict}: {facts}, so {loser} lost the larger share. {why[loser]} "
                           "Throughput (batches) and latency (one image) rank models "
                           "differently: measure the one your use needs.", name)


# ----- exercise 3: the models worth choosing --------------------------------------------------

def _pareto_front(speed, accuracy):
    """The reference: the models that no other model matches or beats on both speed and accuracy
    while beating it on one, sorted by name."""
    def beaten(a):
        return any(speed[b] >= speed[a] and accuracy[b] >= accuracy[a]
                   and (speed[b] > speed[a] or accuracy[b] > accuracy[a]) for b in speed if b != a)
    return sorted(a for a in speed if not beaten(a))


def _dominated(speed, accuracy):
    return sorted(set(speed) - set(_pareto_front(speed, accuracy)))


def _fastest(speed, accuracy):
    return [max(speed, key=speed.get)]


def _most_accurate(speed, accuracy):
    return [max(accuracy, key=accuracy.get)]


def _both_ends(speed, accuracy):
    return sorted({max(speed, key=speed.get), max(accuracy, key=accuracy.get)})


def _beaten_on_either(speed, accuracy):
    """Drops a model that another beats on speed *or* on accuracy: too strict."""
    return sorted(a for a in speed if not any(speed[b] > speed[a] or accuracy[b] > accuracy[a]
                                              for b in speed if b != a))


def _ties_drop_both(speed, accuracy):
    """Counts a model as beaten by an identical one: both copies of a tie vanish."""
    return sorted(a for a in speed if not any(speed[b] >= speed[a] and accuracy[b] >= accuracy[a]
                                              for b in speed if b != a))


def _front_cases():
    """Made-up zoos (images per second, top-1 %): a front with a beaten model in the middle; a
    model beaten on both counts; a tie on one axis; two identical models; one model alone."""
    return [
        ({"a": 400.0, "b": 120.0, "c": 50.0, "d": 15.0, "e": 45.0},
         {"a": 67.7, "b": 75.3, "c": 77.7, "d": 82.5, "e": 69.8}),
        ({"p": 10.0, "q": 20.0, "r": 5.0, "s": 30.0}, {"p": 70.0, "q": 80.0, "r": 60.0, "s": 75.0}),
        ({"x": 100.0, "y": 100.0, "z": 50.0}, {"x": 70.0, "y": 72.0, "z": 80.0}),
        ({"m": 60.0, "n": 60.0, "o": 20.0}, {"m": 75.0, "n": 75.0, "o": 74.0}),
        ({"only": 42.0}, {"only": 70.0}),
    ]


def _as_names(result):
    """The learner's answer as a sorted list of names, or None when it is not a collection."""
    if isinstance(result, str) or not hasattr(result, "__iter__"):
        return None
    return sorted(str(name) for name in result)


@checks.never_raises
def pareto_front(fn):
    """Exercise 3: the learner's ``pareto_front(speed, accuracy)`` on made-up zoos, compared
    with the reference as a set of names; known mistakes are named."""
    name = "pareto_front"
    if checks.unanswered(fn) or not callable(fn):
        return checks.Feedback(False, "not a function yet: define it with `def` and pass it in.",
                               name)
    mistakes = [
        (_dominated, "these are the models that *are* beaten; the front is the others."),
        (_fastest, "only the fastest model came back: a slower model belongs on the front when "
                   "nothing faster is as accurate."),
        (_most_accurate, "only the most accurate model came back: a less accurate model belongs "
                         "on the front when nothing as accurate is as fast."),
        (_both_ends, "only the two ends came back: a model between them belongs on the front "
                     "when no model is both faster and more accurate."),
        (_beaten_on_either, "a model was dropped when another beat it on speed *or* on accuracy. "
                            "It is beaten only when another is at least as good on both, and "
                            "better on one."),
        (_ties_drop_both, "two identical models knocked each other out. A model beats another "
                          "only when it is better on at least one count, not just as good."),
    ]
    for i, (speed, accuracy) in enumerate(_front_cases(), start=1):
        got, failed = checks.call_learner(fn, copy.deepcopy((speed, accuracy)), name, f"case {i}")
        if failed is not None:
            return failed
        names = _as_names(got)
        if names is None:
            return checks.Feedback(False, f"case {i}: return the names of the models on the "
                                          f"front (a list or a set); this is a value "
                                          f"of type {type(got).__name__}.", name)
        want = _pareto_front(speed, accuracy)
        if names == want:
            continue
        for wrong, diagnosis in mistakes:
            if names == wrong(speed, accuracy):
                return checks.Feedback(False, f"case {i}: {diagnosis}", name)
        unknown = sorted(set(names) - set(speed))
        if unknown:
            return checks.Feedback(False, f"case {i}: {unknown} are not models of the zoo it was "
                                          "given; return keys of `speed`.", name)
        return checks.Feedback(False, f"case {i}: {len(names)} models came back, not the front "
                                      f"of this zoo of {len(speed)}; for each model, ask whether "
                                      "another is at least as fast and as accurate, and better "
                                      "on one.", name)
    return checks.Feedback(True, f"the front of all {len(_front_cases())} zoos is right.", name)
