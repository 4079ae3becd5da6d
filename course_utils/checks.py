"""Exercise checking: feedback a learner can act on, never a traceback (every notebook).

Each ``check_*`` function returns a :class:`Feedback` that shows as one line in a
notebook ("✅ ..." or "❌ ... what is off") and is truthy when the answer is right, so a
solutions notebook can ``assert`` it. A checker never raises on a learner's answer:
``None`` or ``...`` means "not answered yet", wrong types and shapes are named, and an
exception inside the learner's function is reported by type and message.

    answer = ...                       # the learner fills this in
    cu.checks.check_value(answer, expected=0.25, name="loss of a perfect guess")
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch


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


def _unanswered(answer):
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


def _never_raises(checker):
    """A bug in a checker, or an answer nobody foresaw, still gives feedback, not a traceback."""

    @functools.wraps(checker)
    def wrapper(answer, *args, **kwargs):
        try:
            return checker(answer, *args, **kwargs)
        except Exception as err:
            name = kwargs.get("name", "answer")
            return Feedback(False, f"could not check this answer ({type(err).__name__}: {err}).", name)

    return wrapper


@_never_raises
def check_value(answer, expected, name="answer", rtol=1e-4, atol=1e-6, hint=""):
    """Compare a number, string, sequence or tensor with the expected one (floats within tolerance)."""
    if _unanswered(answer):
        return Feedback(False, "not answered yet: replace `...` (or None) with your answer.", name)
    hint = f" Hint: {hint}" if hint else ""
    if isinstance(expected, str | bool) or isinstance(expected, int) and isinstance(answer, str):
        if answer == expected:
            return Feedback(True, f"correct ({_fmt(answer)}).", name)
        return Feedback(False, f"got {_fmt(answer)}, expected {_fmt(expected)}.{hint}", name)
    try:
        got, want = _as_array(answer).astype(float), _as_array(expected).astype(float)
    except (TypeError, ValueError):
        return Feedback(False, f"expected a number or an array like {_fmt(expected)}, "
                               f"got a {type(answer).__name__}: {_fmt(answer)}.{hint}", name)
    if got.shape != want.shape:
        return Feedback(False, f"shape {got.shape} but expected {want.shape}.{hint}", name)
    if np.isnan(got).any():
        return Feedback(False, f"contains NaN (a log of 0 or a division by 0?).{hint}", name)
    if np.allclose(got, want, rtol=rtol, atol=atol):
        return Feedback(True, f"correct ({_fmt(answer)}).", name)
    if got.size == 1:
        off = float(got.reshape(-1)[0]) - float(want.reshape(-1)[0])
        where = "too high" if off > 0 else "too low"
        return Feedback(False, f"got {float(got.reshape(-1)[0]):.6g}, {where} by {abs(off):.3g} "
                               f"(expected {float(want.reshape(-1)[0]):.6g}).{hint}", name)
    bad = int((~np.isclose(got, want, rtol=rtol, atol=atol)).sum())
    worst = float(np.abs(got - want).max())
    return Feedback(False, f"{bad} of {got.size} values differ (largest difference {worst:.3g}).{hint}", name)


@_never_raises
def check_shape(answer, expected_shape, name="shape"):
    """Check a tensor's (or array's) shape, or a shape given as a tuple."""
    if _unanswered(answer):
        return Feedback(False, "not answered yet: replace `...` (or None) with your answer.", name)
    shape = tuple(answer.shape) if hasattr(answer, "shape") else answer
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        return Feedback(False, f"expected a tensor or a tuple of sizes, got {type(answer).__name__}.", name)
    expected_shape = tuple(expected_shape)
    if shape == expected_shape:
        return Feedback(True, f"correct {shape}.", name)
    if len(shape) != len(expected_shape):
        return Feedback(False, f"{len(shape)} dimensions {shape}, expected {len(expected_shape)}: "
                               f"{expected_shape}.", name)
    dims = [i for i, (a, b) in enumerate(zip(shape, expected_shape, strict=True)) if a != b]
    return Feedback(False, f"got {shape}, expected {expected_shape} (dimension {dims[0]} is off).", name)


@_never_raises
def check_function(fn, cases, name=None, rtol=1e-4, atol=1e-6):
    """Run the learner's ``fn`` on ``cases`` — a list of ``(args, expected)`` — and compare.

    ``args`` is a tuple of positional arguments; ``expected`` a value, or a callable that
    computes it (a reference implementation, e.g. PyTorch's own loss).
    """
    name = name or getattr(fn, "__name__", "function")
    if _unanswered(fn) or not callable(fn):
        return Feedback(False, "not a function yet: define it with `def` and pass it in.", name)
    for i, (args, expected) in enumerate(cases, start=1):
        args = args if isinstance(args, tuple) else (args,)
        try:
            got = fn(*args)
        except NotImplementedError:
            return Feedback(False, "not implemented yet (it raises NotImplementedError).", name)
        except Exception as err:  # the learner's code: report it, don't crash the notebook
            return Feedback(False, f"case {i} raised {type(err).__name__}: {err}", name)
        want = expected(*args) if callable(expected) else expected
        result = check_value(got, want, name=name, rtol=rtol, atol=atol)
        if not result:
            if got is None:
                return Feedback(False, f"case {i} returned None: did you forget `return`?", name)
            return Feedback(False, f"case {i}: {result.message}", name)
    return Feedback(True, f"all {len(cases)} cases correct.", name)


@_never_raises
def check_between(answer, low, high, name="answer", hint=""):
    """Check that a measured number (an accuracy, a loss) lies in ``[low, high]``."""
    if _unanswered(answer):
        return Feedback(False, "not answered yet: replace `...` (or None) with your answer.", name)
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
