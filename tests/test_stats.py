"""cu.stats against references: the Wilson interval by its formula, the verdicts of compare, and the
bootstrap interval beside the binomial one."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

import course_utils as cu


def wilson(k, n, z=1.959963984540054):
    """The Wilson score interval, written out from its formula."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(149, 153), (145, 153), (76, 153), (0, 10), (10, 10)])
def test_accuracy_interval_is_the_wilson_interval(k, n):
    assert cu.stats.accuracy_interval(k, n) == pytest.approx(wilson(k, n), abs=1e-9)


def test_summarize_gives_mean_and_spread_per_approach():
    table = cu.stats.summarize({"a": [0.9, 0.92, 0.94], "b": [0.8, 0.8]})
    assert table.loc["a", "seeds"] == 3 and table.loc["a", "mean"] == pytest.approx(0.92)
    assert table.loc["a", "std"] == pytest.approx(0.02)
    assert table.loc["b", "min"] == table.loc["b", "max"] == 0.8


def test_two_images_on_153_is_noise_even_when_every_seed_agrees():
    n = 153
    a = [149 / n, 149 / n, 149 / n, 148 / n]
    b = [147 / n, 147 / n, 147 / n, 146 / n]
    result = cu.stats.compare(a, b, n, names=("frozen", "default"))
    assert result.p_value < 0.05 and result.verdict == "a few images" and not result.is_clear
    assert "Within noise" in str(result) and "2.0 images of 153" in str(result)


def test_overlapping_seeds_are_seed_noise():
    result = cu.stats.compare([0.95, 0.90, 0.97], [0.93, 0.96, 0.89], 153)
    assert result.verdict == "seed noise" and "Do not rank" in str(result)


def test_a_consistent_gap_smaller_than_the_validation_interval_draws_no_rule():
    n = 153
    a = [150 / n, 151 / n, 150 / n]  # 0.98
    b = [146 / n, 146 / n, 147 / n]  # about 4 images fewer
    result = cu.stats.compare(a, b, n)
    assert result.verdict == "validation-set noise" and "Draw no rule" in str(result)


def test_a_large_consistent_gap_is_clear():
    n = 153
    result = cu.stats.compare([0.96, 0.95, 0.97], [0.70, 0.72, 0.69], n, names=("probe", "scratch"))
    assert result.is_clear and "probe is better here" in str(result)
    assert "validation set" in str(result)  # the default: what 05, 07 and 08 compare on
    on_test = cu.stats.compare([0.96, 0.95, 0.97], [0.70, 0.72, 0.69], n, images_name="test set")
    assert "uncertainty of the test set" in str(on_test) and "validation" not in str(on_test)


def test_compare_needs_two_seeds_each():
    with pytest.raises(ValueError, match="two seeds"):
        cu.stats.compare([0.9], [0.8, 0.85], 153)


@pytest.mark.parametrize("target", [0.42, 0.55, 0.61, 0.7, 0.79])
def test_labels_to_reach_interpolates_on_a_log_scale_like_numpy(target):
    budgets, accuracies = [5, 10, 25, 50, 100], [0.40, 0.52, 0.63, 0.71, 0.80]
    reference = float(np.exp(np.interp(target, accuracies, np.log(budgets))))  # monotone curve
    assert cu.stats.labels_to_reach(budgets, accuracies, target) == pytest.approx(reference)


def test_labels_to_reach_at_a_measured_point_and_at_the_ends():
    budgets, accuracies = [5, 10, 25], [0.5, 0.6, 0.7]
    assert cu.stats.labels_to_reach(budgets, accuracies, 0.6) == pytest.approx(10)
    assert cu.stats.labels_to_reach(budgets, accuracies, 0.3) == 5  # reached at the first budget
    assert cu.stats.labels_to_reach(budgets, accuracies, 0.9) == math.inf  # never reached
    # halfway in accuracy between 5 and 10 labels is their geometric mean, not 7.5
    assert cu.stats.labels_to_reach(budgets, accuracies, 0.55) == pytest.approx(math.sqrt(50))


def test_labels_to_reach_takes_the_first_crossing_of_a_noisy_curve():
    # a dip after the first crossing (seed noise) does not move the answer
    assert cu.stats.labels_to_reach([5, 10, 25, 50], [0.5, 0.7, 0.65, 0.8], 0.6) == \
        pytest.approx(math.exp(math.log(5) + 0.5 * math.log(2)))


def test_labels_to_reach_rejects_unordered_or_mismatched_budgets():
    with pytest.raises(ValueError, match="increasing"):
        cu.stats.labels_to_reach([10, 5], [0.5, 0.6], 0.55)
    with pytest.raises(ValueError, match="same"):
        cu.stats.labels_to_reach([5, 10], [0.5], 0.55)


def test_the_bootstrap_interval_of_an_accuracy_is_close_to_the_binomial_one():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    predicted = np.where(rng.random(400) < 0.9, y, 1 - y)
    low, high = cu.stats.bootstrap_interval(accuracy_score, y, predicted)
    wilson = cu.stats.accuracy_interval((y == predicted).sum(), len(y))
    assert low < (y == predicted).mean() < high
    assert abs(low - wilson[0]) < 0.01 and abs(high - wilson[1]) < 0.01
    assert cu.stats.bootstrap_interval(accuracy_score, y, predicted) == (low, high)  # seeded


def test_the_bootstrap_interval_takes_any_metric_and_narrows_with_more_images():
    rng = np.random.default_rng(2)
    widths = []
    for n in (100, 1600):
        y = rng.integers(0, 2, n)
        scores = 0.4 * y + 0.6 * rng.random(n)
        low, high = cu.stats.bootstrap_interval(roc_auc_score, y, scores, n_resamples=500)
        assert low <= roc_auc_score(y, scores) <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2.5  # about 1 / sqrt(16) = 1/4 as wide
    with pytest.raises(ValueError, match="one entry per test image"):
        cu.stats.bootstrap_interval(accuracy_score, [1, 0], [1])
