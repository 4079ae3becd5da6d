import torch

import course_utils as cu
from course_utils.checks import check_between, check_function, check_shape, check_value


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


def test_wrong_value_says_how_far_off():
    fb = check_value(0.7, 0.5, hint="average over the batch")
    assert not fb
    assert "too high by 0.2" in fb.message and "average over the batch" in fb.message


def test_malformed_answers_get_specific_feedback():
    assert "shape (3,) but expected (2,)" in check_value([1, 2, 3], [1, 2]).message
    assert "expected a number" in check_value({"a": 1}, 1.0).message
    assert "NaN" in check_value(float("nan"), 1.0).message
    assert "2 of 3 values differ" in check_value([1, 5, 6], [1, 2, 3]).message
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


def test_feedback_renders_in_a_notebook():
    html = cu.checks.check_value(2, 1)._repr_html_()
    assert "❌" in html and "#cf222e" in html


def test_an_unforeseen_answer_still_gets_feedback():
    class Weird:
        def __float__(self):
            raise RuntimeError("boom")

    fb = check_between(Weird(), 0, 1, name="accuracy")
    assert not fb and "RuntimeError" in fb.message and fb.name == "accuracy"
