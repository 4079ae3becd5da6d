"""Exercise checking: feedback a learner can act on, never a traceback (every notebook).

Each ``check_*`` function returns a :class:`Feedback` that shows as one line in a
notebook ("✅ ..." or "❌ ... what is off") and is truthy when the answer is right, so a
solutions notebook can ``assert`` it. A checker never raises on a learner's answer:
``None`` or ``...`` means "not answered yet", wrong types and shapes are named, and an
exception inside the learner's function is reported by type and message.

Feedback never shows the expected answer: a student notebook must not print its own
solutions. The expected value is computed at check time (``cu.exercises`` computes it from
the notebook's data and model) and the feedback says what is off: the direction, the shape,
or, for a ``mistakes`` entry, the diagnosis of a mistake we know learners make:

    cu.checks.check_value(answer, expected, name="accuracy",
                          mistakes=[(lambda a: a > 1, "a count, not a share: divide by the "
                                                      "number of images")])

``check_function`` runs the learner's function on copies of its arguments, so a wrong answer
(a model left in train mode, a list sorted in place) cannot change the notebook's state.
"""

import copy
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

NOT_ANSWERED = "not answered yet: replace `...` (or None) with your answer."


@dataclass
class Feedback:
    ok: bool
    message: str
    name: str = "answer"

    def __bool__(self):
        return self.ok

    def __str__(self):
        return f"{'✅' if self.ok else '❌'} {self.name}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self):
        color = "#1a7f37" if self.ok else "#cf222e"
        text = str(self).replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
        return f'<div style="color:{color};font-family:monospace">{text}</div>'


def unanswered(answer):
    """True for None or `...`: the learner has not answered yet."""
    return answer is None or answer is Ellipsis


def _as_array(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _fmt(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}" if x.size > 6 else np.array2string(x, precision=6)
    if isinstance(x, float | np.floating):
        return f"{x:.6g}"
    return repr(x)


def never_raises(checker):
    """A bug in a checker, or an answer nobody foresaw, still gives feedback, not a traceback."""

    @functools.wraps(checker)
    def wrapper(answer, *args, **kwargs):
        try:
            return checker(answer, *args, **kwargs)
        except Exception as err:
            name = kwargs.get("name", "answer")
            return Feedback(False, f"could not check this answer ({type(err).__name__}: {err}).", name)

    return wrapper


def _close(got, want, rtol, atol):
    """True when two answers agree: equal strings, or numbers/arrays within tolerance."""
    if isinstance(want, str | bool) or isinstance(got, str):
        return got == want
    try:
        got, want = _as_array(got).astype(float), _as_array(want).astype(float)
    except (TypeError, ValueError):
        return False
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=rtol, atol=atol))


def diagnose(answer, mistakes, rtol=1e-4, atol=1e-6):
    """The diagnosis of the first known mistake ``answer`` matches, else None.

    ``mistakes`` is a list of ``(wrong, diagnosis)``: ``wrong`` is a value a learner who made
    that mistake would get (compared within tolerance) or a predicate on the answer."""
    for wrong, diagnosis in mistakes:
        try:
            hit = wrong(answer) if callable(wrong) else _close(answer, wrong, rtol, atol)
        except Exception:  # a predicate that does not apply to this kind of answer
            hit = False
        if hit:
            return diagnosis
    return None


@never_raises
def check_value(answer, expected, name="answer", rtol=1e-4, atol=1e-6, hint="", mistakes=()):
    """Compare a number, string, sequence or tensor with the expected one (floats within
    tolerance); say what is off without showing ``expected``."""
    if unanswered(answer):
        return Feedback(False, NOT_ANSWERED, name)
    hint = f" Hint: {hint}" if hint else ""
    if _close(answer, expected, rtol, atol):
        return Feedback(True, f"correct ({_fmt(answer)}).", name)
    known = diagnose(answer, mistakes, rtol, atol)
    if known:
        return Feedback(False, f"{_fmt(answer)} is not it: {known}", name)
    if isinstance(expected, str | bool) or isinstance(answer, str):
        return Feedback(False, f"{_fmt(answer)} is not it.{hint}", name)
    try:
        got, want = _as_array(answer).astype(float), _as_array(expected).astype(float)
    except (TypeError, ValueError):
        kind = "a number" if np.ndim(expected) == 0 else f"{np.size(expected)} numbers"
        return Feedback(False, f"expected {kind}, got a {type(answer).__name__}: "
                               f"{_fmt(answer)}.{hint}", name)
    if got.shape != want.shape:
        return Feedback(False, f"{_fmt(answer)} has shape {got.shape}; the answer has shape "
                               f"{want.shape}.{hint}", name)
    if np.isnan(got).any():
        return Feedback(False, f"contains NaN (a log of 0 or a division by 0?).{hint}", name)
    if got.size == 1:
        where = "too high" if got.reshape(-1)[0] > want.reshape(-1)[0] else "too low"
        return Feedback(False, f"{_fmt(answer)} is {where}.{hint}", name)
    bad = int((~np.isclose(got, want, rtol=rtol, atol=atol)).sum())
    return Feedback(False, f"{bad} of {got.size} values are off.{hint}", name)


@never_raises
def check_shape(answer, expected_shape, name="shape", mistakes=()):
    """Check a tensor's (or array's) shape, or a shape given as a tuple, without showing it."""
    if unanswered(answer):
        return Feedback(False, NOT_ANSWERED, name)
    shape = tuple(answer.shape) if hasattr(answer, "shape") else answer
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        return Feedback(False, f"expected a tensor or a tuple of sizes, got {type(answer).__name__}.", name)
    expected_shape = tuple(expected_shape)
    if shape == expected_shape:
        return Feedback(True, f"correct {shape}.", name)
    known = diagnose(shape, mistakes)
    if known:
        return Feedback(False, f"shape {shape}: {known}", name)
    if len(shape) != len(expected_shape):
        return Feedback(False, f"{len(shape)} dimensions {shape}; the answer has "
                               f"{len(expected_shape)}.", name)
    dims = [i for i, (a, b) in enumerate(zip(shape, expected_shape, strict=True)) if a != b]
    return Feedback(False, f"got {shape}: dimension {dims[0]} is off.", name)


def _copy_for_check(value):
    """A copy a learner's function may change freely: models, tensors, arrays, lists, dicts.

    Loaders and datasets are passed as they are (they hold no state a check could damage)."""
    if isinstance(value, nn.Module | torch.Tensor | np.ndarray | list | dict):
        return copy.deepcopy(value)
    return value


def call_learner(fn, args, name, who="it"):
    """Run a learner's function on ``args``: ``(result, None)``, or ``(None, feedback)`` when it
    is not implemented, raises (reported by type and message, never as a traceback) or returns
    None. ``who`` starts the feedback ("case 2 raised ..."). Test ``feedback is not None``: a
    Feedback that reports a failure is falsy."""
    try:
        got = fn(*args)
    except NotImplementedError:
        return None, Feedback(False, "not implemented yet (it raises NotImplementedError).", name)
    except Exception as err:  # the learner's code: report it, don't crash the notebook
        return None, Feedback(False, f"{who} raised {type(err).__name__}: {err}", name)
    if got is None:
        return None, Feedback(False, f"{who} returned None: did you forget `return`?", name)
    return got, None


@never_raises
def check_function(fn, cases, name=None, rtol=1e-4, atol=1e-6, mistakes=()):
    """Run the learner's ``fn`` on ``cases`` — a list of ``(args, expected)`` — and compare.

    ``args`` is a tuple of positional arguments, given to ``fn`` as copies; ``expected`` a value,
    or a callable that computes it (a reference implementation, e.g. PyTorch's own loss).
    ``mistakes`` holds ``(wrong_fn, diagnosis)``: a function that makes a known mistake; when the
    learner's output equals its output, the diagnosis is the feedback.
    """
    name = name or getattr(fn, "__name__", "function")
    if unanswered(fn) or not callable(fn):
        return Feedback(False, "not a function yet: define it with `def` and pass it in.", name)
    for i, (args, expected) in enumerate(cases, start=1):
        args = args if isinstance(args, tuple) else (args,)
        got, failed = call_learner(fn, tuple(map(_copy_for_check, args)), name, f"case {i}")
        if failed is not None:
            return failed
        want = expected(*map(_copy_for_check, args)) if callable(expected) else expected
        if _close(got, want, rtol, atol):
            continue
        for wrong_fn, diagnosis in mistakes:
            if _close(got, wrong_fn(*map(_copy_for_check, args)), rtol, atol):
                return Feedback(False, f"case {i}: {diagnosis}", name)
        result = check_value(got, want, name=name, rtol=rtol, atol=atol)
        return Feedback(False, f"case {i}: {result.message}", name)
    return Feedback(True, f"all {len(cases)} cases correct.", name)


def _selection(threshold_fn, scores_at, name):
    """What a threshold does: which items of ``args[scores_at]`` score at or above it."""
    def selected(*args):
        threshold = threshold_fn(*args)
        if threshold is None:
            return None
        return (np.asarray(args[scores_at]) >= float(threshold)).astype(float)
    selected.__name__ = getattr(threshold_fn, "__name__", name)
    return selected


def check_threshold(fn, cases, reference, scores_at, name, mistakes=()):
    """Check the learner's function that returns a threshold by what the threshold does: which
    items of its argument number ``scores_at`` score at or above it, case by case, against the
    ``reference`` function's threshold. Two thresholds between the same neighbouring scores are
    the same answer. ``mistakes`` holds ``(wrong_threshold_fn, diagnosis)``, as in
    ``check_function`` (09's threshold for a sensitivity, 11's referral threshold)."""
    if unanswered(fn) or not callable(fn):
        return check_function(fn, [], name=name)
    return check_function(_selection(fn, scores_at, name),
                          [(case, _selection(reference, scores_at, name)) for case in cases],
                          name=name,
                          mistakes=[(_selection(wrong, scores_at, name), diagnosis)
                                    for wrong, diagnosis in mistakes])


@never_raises
def check_between(answer, low, high, name="answer", hint=""):
    """Check that a measured number (an accuracy, a loss) lies in ``[low, high]``."""
    if unanswered(answer):
        return Feedback(False, NOT_ANSWERED, name)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, f"expected a number, got a {type(answer).__name__}.", name)
    hint = f" Hint: {hint}" if hint else ""
    if math.isnan(value):
        return Feedback(False, f"is NaN.{hint}", name)
    if low <= value <= high:
        return Feedback(True, f"{value:.4g} is in the expected range [{low}, {high}].", name)
    return Feedback(False, f"{value:.4g} is outside the expected range [{low}, {high}].{hint}", name)


@never_raises
def check_prediction(prediction, measured, name="prediction", tolerance=0.1, explanation=""):
    """Compare what the learner predicted *before* running something with what it measured.

    Both are numbers; the prediction counts as right within ``tolerance``. The feedback shows
    the measurement (the learner has just run it) and ``explanation``, the reason behind it.
    """
    if unanswered(prediction):
        return Feedback(False, "no prediction yet: write down your guess before you run the "
                               "measurement.", name)
    try:
        guess = float(prediction)
    except (TypeError, ValueError):
        return Feedback(False, f"a prediction is a number here, got a {type(prediction).__name__}.",
                        name)
    close = abs(guess - float(measured)) <= tolerance
    verdict = "close" if close else "far off"
    explanation = f" {explanation}" if explanation else ""
    return Feedback(close, f"you predicted {guess:.3g}, the run measured {float(measured):.3g}: "
                           f"{verdict}.{explanation}", name)
