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


def test_coral_gives_the_source_the_targets_mean_and_covariance():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    target = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4)) + 3.0
    aligned = cu.domain.coral(source, target, eps=0.0)
    np.testing.assert_allclose(aligned.mean(axis=0), target.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(np.cov(aligned, rowvar=False), np.cov(target, rowvar=False), atol=1e-9)


def test_coral_is_its_formula_with_scipys_matrix_square_roots():
    from scipy.linalg import inv, sqrtm

    rng = np.random.default_rng(1)
    source, target = rng.normal(size=(30, 6)), 2 * rng.normal(size=(20, 6))  # fewer images than D needs eps
    ridge = np.eye(6)
    C_s, C_t = np.cov(source, rowvar=False) + ridge, np.cov(target, rowvar=False) + ridge
    want = (source - source.mean(0)) @ inv(sqrtm(C_s)).real @ sqrtm(C_t).real + target.mean(0)
    np.testing.assert_allclose(cu.domain.coral(source, target, eps=1.0), want, atol=1e-8)
    with pytest.raises(ValueError, match="same D"):
        cu.domain.coral(source, target[:, :5])
    with pytest.raises(ValueError, match="negative"):
        cu.domain.coral(source, target, eps=-1)


def test_adabn_holds_the_average_of_the_batches_statistics_and_leaves_the_model_alone():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    images = 3 + 2 * torch.randn(50, 3, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = cu.domain.adabn(model, images, batch_size=16)  # batches of 16, 16, 16 and 2
    with torch.no_grad():
        batches = [model[0](images[i:i + 16]) for i in range(0, 50, 16)]
    # each batch counts once; BatchNorm stores each batch's unbiased variance
    want_mean = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    want_var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    bn = adapted[1]
    torch.testing.assert_close(bn.running_mean, want_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, want_var, rtol=1e-5, atol=1e-5)
    assert not adapted.training and bn.momentum == model[1].momentum
    torch.testing.assert_close(adapted[0].weight, model[0].weight)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="no BatchNorm"):
        cu.domain.adabn(torch.nn.Linear(3, 2), torch.randn(4, 3))
