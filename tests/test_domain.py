"""cu.domain against references: scikit-learn's own cross-validation for the domain error, the
MMD written out from its formula, and importance weights against the true density ratio of two
Gaussians."""

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import course_utils as cu


def gaussians(shift, n=400, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(n, dim))
    target = rng.normal(size=(n, dim)) + np.r_[shift, np.zeros(dim - 1)]
    return source, target


def test_domain_error_is_one_minus_sklearns_cross_validated_accuracy():
    source, target = gaussians(1.0)
    d = np.repeat([0, 1], len(source))
    splits = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    # equal sizes: the balancing subsample is a permutation, and a permutation of the rows
    # changes the folds, so compare with the same rows in the order the helper uses
    rng = np.random.default_rng(0)
    X = np.vstack([source[rng.choice(400, 400, replace=False)], target[rng.choice(400, 400, replace=False)]])
    accuracy = cross_val_score(model, X, d, cv=splits).mean()
    assert cu.domain.domain_error(source, target) == pytest.approx(1 - accuracy, abs=1e-9)


def test_proxy_a_distance_is_near_zero_for_one_distribution_and_near_two_when_separable():
    same = cu.domain.proxy_a_distance(*gaussians(0.0))
    far = cu.domain.proxy_a_distance(*gaussians(8.0))
    between = cu.domain.proxy_a_distance(*gaussians(1.0))
    assert same < 0.2 and far > 1.95 and same < between < far
    # 1-D shift of 1 between unit Gaussians: the best error is Phi(-0.5) = 0.309
    assert between == pytest.approx(2 * (1 - 2 * stats.norm.cdf(-0.5)), abs=0.15)


def test_proxy_a_distance_balances_unequal_sizes():
    source, target = gaussians(0.0, n=400)
    # 400 source against 40 target: an unbalanced classifier would score 0.91 by saying "source"
    assert cu.domain.proxy_a_distance(source, target[:40]) < 0.5


def test_mmd2_matches_its_formula_written_out():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    k = lambda a, b: np.exp(-0.3 * np.sum((a - b) ** 2))  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(a, b) for a in x for b in y) / (7 * 5)
    assert cu.domain.mmd2(x, y, gamma=0.3) == pytest.approx(xx + yy - 2 * xy)


def test_mmd2_grows_with_the_shift_and_uses_the_median_heuristic_by_default():
    values = [cu.domain.mmd2(*gaussians(s, n=200)) for s in (0.0, 0.5, 2.0)]
    assert abs(values[0]) < 0.01 and values[0] < values[1] < values[2]
    source, target = gaussians(0.5, n=200)
    gamma = cu.domain.median_gamma(source, target)
    assert cu.domain.mmd2(source, target) == cu.domain.mmd2(source, target, gamma=gamma)


def test_importance_weights_follow_the_true_density_ratio_of_two_gaussians():
    source, target = gaussians(1.0, n=2000, dim=2)
    weights = cu.domain.importance_weights(source, target, clip=1e9)
    # N(mu, 1) over N(0, 1) along the first axis: exp(mu x - mu^2 / 2), here mu = 1
    true = np.exp(source[:, 0] - 0.5)
    assert weights.mean() == pytest.approx(1.0)
    assert np.corrcoef(np.log(weights), np.log(true))[0, 1] > 0.99
    assert np.median(weights / (true / true.mean())) == pytest.approx(1.0, abs=0.15)


def test_importance_weights_are_clipped_so_few_images_cannot_dominate():
    source, target = gaussians(4.0, n=300, dim=2)
    weights = cu.domain.importance_weights(source, target, clip=5.0)
    assert weights.mean() == pytest.approx(1.0) and weights.max() <= 5.0 + 1e-6


def test_domain_helpers_reject_mismatched_features():
    with pytest.raises(ValueError, match="same D"):
        cu.domain.proxy_a_distance(np.zeros((20, 3)), np.zeros((20, 4)))
    with pytest.raises(ValueError, match="at least 10"):
        cu.domain.proxy_a_distance(np.zeros((5, 3)), np.zeros((20, 3)))
