import numpy as np
import pytest
import torch
from torch import nn

import course_utils as cu
from course_utils.checks import (
    call_learner,
    check_between,
    check_function,
    check_prediction,
    check_shape,
    check_value,
)


def test_right_answers_pass_and_show_a_tick():
    fb = check_value(0.5000001, 0.5, name="p")
    assert fb and str(fb).startswith("✅ p")
    assert check_value(torch.tensor([1.0, 2.0]), [1.0, 2.0])
    assert check_value("bees", "bees")
    assert check_shape(torch.zeros(2, 3), (2, 3))


def test_unanswered_is_not_an_error():
    for blank in (None, ...):
        fb = check_value(blank, 1.0)
        assert not fb and "not answered yet" in fb.message


def test_wrong_value_says_the_direction_not_the_distance():
    fb = check_value(0.7, 0.5, hint="average over the batch")
    assert not fb
    assert "too high" in fb.message and "average over the batch" in fb.message
    assert "0.2" not in fb.message and "0.5" not in fb.message  # answer + distance = answer


@pytest.mark.parametrize("answer, expected", [
    (7, 1000), (0.55, 0.9477), ([1e-5, 5e-4, 1e-3], [1e-5, 1e-4, 1e-3]), ("ants", "bees"),
    ([1, 2, 3], [17, 29]), ({"a": 1}, 12810),
])
def test_feedback_never_shows_the_expected_answer(answer, expected):
    """A student notebook must not print its own solutions, not even on a wrong answer."""
    fb = check_value(answer, expected)
    assert not fb
    for shown in (str(expected), repr(expected), f"{expected!s}".strip("[]")):
        assert shown not in fb.message, fb.message
    shape = check_shape(torch.zeros(1, 3, 224, 224), (4, 3, 224, 224))
    assert not shape and "4" not in shape.message.replace("224", "")


def test_known_mistakes_get_their_diagnosis():
    mistakes = [(0.55, "is BatchNorm in train mode?"), (lambda a: a > 1, "a count, not a share")]
    assert check_value(0.5500001, 0.9477, mistakes=mistakes).message.endswith(
        "is BatchNorm in train mode?")
    assert "a count, not a share" in check_value(145, 0.9477, mistakes=mistakes).message
    assert "too low" in check_value(0.3, 0.9477, mistakes=mistakes).message  # not a known one
    assert check_value(0.9477, 0.9477, mistakes=mistakes)  # right stays right
    assert "dim=0" in check_shape((1, 3, 224, 896), (4, 3, 224, 224),
                                  mistakes=[((1, 3, 224, 896), "joined along dim=3; use dim=0")]).message


def test_malformed_answers_get_specific_feedback():
    assert "has shape (3,); the answer has shape (2,)" in check_value([1, 2, 3], [1, 2]).message
    assert "expected a number" in check_value({"a": 1}, 1.0).message
    assert "NaN" in check_value(float("nan"), 1.0).message
    assert "2 of 3 values are off" in check_value([1, 5, 6], [1, 2, 3]).message
    assert "dimension 1 is off" in check_shape(torch.zeros(2, 4), (2, 3)).message
    assert "2 dimensions" in check_shape((2, 3), (2, 3, 1)).message
    assert "expected a number" in check_between("high", 0, 1).message
    assert "outside" in check_between(1.5, 0, 1).message


def test_function_checker_reports_errors_without_raising():
    def softmax_sum(x):
        return torch.softmax(x, dim=-1).sum()

    cases = [((torch.randn(3),), 1.0), ((torch.randn(5),), 1.0)]
    assert check_function(softmax_sum, cases)

    def broken(x):
        return x / undefined_name  # noqa: F821

    fb = check_function(broken, cases)
    assert not fb and "NameError" in fb.message

    def forgot_return(x):
        torch.softmax(x, dim=-1).sum()

    assert "forget `return`" in check_function(forgot_return, cases).message

    def todo(x):
        raise NotImplementedError

    assert "not implemented yet" in check_function(todo, cases).message
    assert "not a function" in check_function(..., cases).message


def test_function_checker_compares_with_a_reference():
    ref = torch.nn.functional.cross_entropy
    cases = [((torch.randn(4, 3), torch.tensor([0, 2, 1, 1])), ref)]
    assert check_function(lambda z, y: ref(z, y), cases)
    wrong = check_function(lambda z, y: ref(z, y) * 2, cases)
    assert not wrong and "case 1" in wrong.message


def test_function_checker_diagnoses_a_known_mistake():
    def mean_of_batch_means(losses, sizes):
        return sum(losses) / len(losses)

    def per_image(losses, sizes):
        return sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)

    cases = [(([0.5, 1.0], [32, 4]), per_image)]
    fb = check_function(mean_of_batch_means, cases,
                        mistakes=[(mean_of_batch_means, "a mean of batch means")])
    assert not fb and "a mean of batch means" in fb.message


def test_a_learners_function_runs_on_copies_and_cannot_damage_the_notebook():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).eval()
    stats = model[1].running_mean.clone()
    weights = model[0].weight.detach().clone()
    losses = [3.0, 1.0, 2.0]

    def careless(model, losses):
        model.train()  # forgets eval(): BatchNorm learns statistics from this batch
        with torch.no_grad():
            model(torch.randn(8, 3) + 5)
            model[0].weight.mul_(0)
        losses.sort()
        return 0.0

    check_function(careless, [((model, losses), 1.0)])
    assert not model.training and torch.equal(model[1].running_mean, stats)
    assert torch.equal(model[0].weight, weights) and losses == [3.0, 1.0, 2.0]


def test_a_prediction_is_compared_with_the_measurement():
    assert "no prediction yet" in check_prediction(..., 0.6).message
    close = check_prediction(0.55, 0.6, tolerance=0.1, explanation="random features are weak")
    assert close and "measured 0.6" in close.message and "random features are weak" in close.message
    far = check_prediction(0.95, 0.6, tolerance=0.1)
    assert not far and "far off" in far.message
    assert "is a number" in check_prediction("high", 0.6).message


def test_feedback_renders_in_a_notebook():
    html = cu.checks.check_value(2, 1)._repr_html_()
    assert "❌" in html and "#cf222e" in html


def test_an_unforeseen_answer_still_gets_feedback():
    class Weird:
        def __float__(self):
            raise RuntimeError("boom")

    fb = check_between(Weird(), 0, 1, name="accuracy")
    assert not fb and "RuntimeError" in fb.message and fb.name == "accuracy"


def test_call_learner_returns_the_result_or_says_what_went_wrong():
    assert call_learner(lambda a, b: a + b, (1, 2), "add") == (3, None)
    for fn, words in [(lambda: 1 / 0, "it raised ZeroDivisionError"),
                      (lambda: None, "it returned None"),
                      (_not_implemented, "not implemented yet")]:
        got, feedback = call_learner(fn, (), "f")
        assert got is None and feedback is not None and not feedback and words in feedback.message
    assert "case 2 raised" in call_learner(lambda: [][0], (), "f", who="case 2")[1].message


def _not_implemented():
    raise NotImplementedError


def test_a_threshold_is_judged_by_the_items_it_selects():
    scores = np.array([0.9, 0.2, 0.7, 0.4])
    cases = [(scores, 0.5)]  # (scores, cut): the reference keeps the scores at or above the cut

    def reference(s, cut):
        return s[s >= cut].min()

    assert cu.checks.check_threshold(reference, cases, reference, scores_at=0, name="t")
    # another threshold between the same neighbouring scores selects the same items: right too
    assert cu.checks.check_threshold(lambda s, cut: 0.45, cases, reference, scores_at=0, name="t")
    too_high = cu.checks.check_threshold(lambda s, cut: 0.8, cases, reference, scores_at=0, name="t",
                                         mistakes=[(lambda s, cut: s.max(), "only the top one")])
    assert not too_high and "only the top one" in too_high.message
    assert not cu.checks.check_threshold(lambda s, cut: 0.1, cases, reference, scores_at=0, name="t")
    assert "not a function" in cu.checks.check_threshold(..., cases, reference, scores_at=0, name="t").message
    assert "returned None" in cu.checks.check_threshold(lambda s, cut: None, cases, reference, 0, "t").message
