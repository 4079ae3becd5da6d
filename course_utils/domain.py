"""How far apart two domains are, weights that make source images count like target ones, and
two ways to adapt to a target domain without its labels (notebook 02 writes the proxy
A-distance and MMD out by hand; notebook 03 uses the proxy A-distance and the weights;
notebook 14 writes CORAL and AdaBN out before it uses them here).

All but AdaBN work on features, one row per image (``cu.features.cached_features`` gives
them); AdaBN works on a model and a tensor of images:

    cu.domain.proxy_a_distance(F_source, F_target)    # 0 (indistinguishable) .. 2 (separable)
    cu.domain.mmd2(F_source, F_target)                # squared maximum mean discrepancy, RBF kernel
    w = cu.domain.importance_weights(F_source, F_target)  # one weight per source image, mean 1
    F_aligned = cu.domain.coral(F_source, F_target)   # source features with the target's covariance
    adapted = cu.domain.adabn(model, target_images)   # a copy with the target's BatchNorm statistics

The proxy A-distance (Ben-David et al., NeurIPS 2006) trains a classifier to tell the two
domains apart: if it cannot (error 0.5) the domains look alike to these features, if it never
errs they are disjoint. The importance weights use the same classifier's odds, which estimate
the density ratio p_target(x) / p_source(x) up to a constant (Bickel et al., ICML 2007).

CORAL (Sun, Feng and Saenko, AAAI 2016) whitens the source features and colours them with the
target's covariance, so that a classifier trained on them meets target-like statistics. AdaBN
(Li et al., 2016) leaves every weight as trained and re-estimates each BatchNorm layer's mean
and variance on target images. Neither needs a target label; whether either helps depends on
the shift, and notebook 14 measures both cases.
"""

import copy

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.optim.swa_utils import update_bn


def _domain_classifier(C):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


def _balanced(source, target, seed):
    """The two sets cut to the same size (a random subset of the larger one) and stacked, with
    domain labels 0 (source) and 1 (target): a classifier's error then means the same for both."""
    source, target = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError("source and target must be feature arrays [N, D] with the same D")
    n = min(len(source), len(target))
    if n < 10:
        raise ValueError(f"need at least 10 images in each domain, got {len(source)} and {len(target)}")
    rng = np.random.default_rng(seed)
    source = source[rng.choice(len(source), n, replace=False)]
    target = target[rng.choice(len(target), n, replace=False)]
    return np.vstack([source, target]), np.repeat([0, 1], n)


def domain_error(source, target, folds=5, C=1.0, seed=0):
    """Cross-validated error of a linear classifier that tells target from source (balanced)."""
    X, d = _balanced(source, target, seed)
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(_domain_classifier(C), X, d, cv=splits)
    return float((predicted != d).mean())


def proxy_a_distance(source, target, folds=5, C=1.0, seed=0):
    """2 (1 - 2 err): 0 when a linear classifier cannot tell the domains apart, 2 when it always
    can. Clipped at 0, since an error a little above 0.5 is chance, not a negative distance."""
    return max(0.0, 2.0 * (1.0 - 2.0 * domain_error(source, target, folds, C, seed)))


def median_gamma(source, target):
    """The RBF kernel's ``gamma`` by the median heuristic: 1 / median squared pairwise distance."""
    X = np.vstack([source, target])
    squared = euclidean_distances(X, squared=True)
    return 1.0 / float(np.median(squared[np.triu_indices(len(X), k=1)]))


def mmd2(source, target, gamma=None):
    """The unbiased estimate of the squared maximum mean discrepancy with an RBF kernel
    exp(-gamma ||x - y||^2) (Gretton et al., JMLR 2012): the mean within-domain similarity of
    each domain, without the diagonal, minus twice the mean similarity across the two.
    ``gamma`` defaults to the median heuristic. Near 0 (it can dip below) for one distribution."""
    source, target = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    if len(source) < 2 or len(target) < 2:
        raise ValueError("need at least two images in each domain")
    gamma = median_gamma(source, target) if gamma is None else gamma
    k_ss, k_tt = rbf_kernel(source, gamma=gamma), rbf_kernel(target, gamma=gamma)
    k_st = rbf_kernel(source, target, gamma=gamma)
    m, n = len(source), len(target)
    within_s = (k_ss.sum() - np.trace(k_ss)) / (m * (m - 1))
    within_t = (k_tt.sum() - np.trace(k_tt)) / (n * (n - 1))
    return float(within_s + within_t - 2.0 * k_st.mean())


def importance_weights(source, target, C=1.0, clip=10.0):
    """One weight per source image, estimating p_target(x) / p_source(x), scaled to mean 1.

    A classifier learns P(target | x) from all images of both domains; its odds
    P(target | x) / P(source | x), times n_source / n_target for the sizes of the two sets, are
    the density ratio. No weight may exceed ``clip`` times the mean, so that a few source
    images cannot carry the whole training set: the largest are cut to ``clip`` and the rest
    scaled up until the mean is 1 again."""
    if clip <= 1:
        raise ValueError("clip must be above 1: the weights have mean 1")
    source, target = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    X = np.vstack([source, target])
    d = np.repeat([0, 1], [len(source), len(target)])
    classifier = _domain_classifier(C).fit(X, d)
    p_target = classifier.predict_proba(source)[:, 1]
    weights = p_target / (1.0 - p_target) * len(source) / len(target)
    weights = weights / weights.mean()
    for _ in range(100):  # cutting lowers the mean, rescaling lifts the rest: repeat until still
        if weights.max() <= clip * (1 + 1e-9):
            break
        weights = np.minimum(weights, clip)
        weights = weights / weights.mean()
    return weights


def _matrix_power(C, power):
    """C ** power for a symmetric positive definite matrix, through its eigendecomposition."""
    values, vectors = np.linalg.eigh(C)
    return (vectors * np.clip(values, 1e-12, None) ** power) @ vectors.T


def coral(source, target, eps=1.0):
    """The source features moved to the target's mean and covariance (CORAL, in closed form):
    ``(source - mean_s) C_s^(-1/2) C_t^(1/2) + mean_t``, where ``C_s`` and ``C_t`` are the two
    covariances with ``eps`` added to their diagonal (Sun et al. add 1, on standardised
    features; it keeps a covariance of fewer images than dimensions invertible). With
    ``eps=0`` and more images than dimensions the result has exactly the target's covariance.
    Train the classifier on the result and apply it to target features unchanged."""
    source, target = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError("source and target must be feature arrays [N, D] with the same D")
    if len(source) < 2 or len(target) < 2:
        raise ValueError("need at least two images in each domain for a covariance")
    if eps < 0:
        raise ValueError(f"eps is added to the covariances' diagonal and cannot be negative, got {eps}")
    ridge = eps * np.eye(source.shape[1])
    C_s = np.cov(source, rowvar=False) + ridge
    C_t = np.cov(target, rowvar=False) + ridge
    centred = source - source.mean(axis=0)
    return centred @ _matrix_power(C_s, -0.5) @ _matrix_power(C_t, 0.5) + target.mean(axis=0)


def adabn(model, images, batch_size=64):
    """A copy of ``model``, in eval mode, whose BatchNorm layers hold the mean and variance of
    ``images`` (AdaBN). ``torch.optim.swa_utils.update_bn`` passes the images through in
    batches of ``batch_size`` with each layer's momentum set to None, so a layer's statistics
    are the plain average of the batches' statistics, every batch counting once (a short last
    batch counts as much as a full one), not a moving average that forgets the first batches.
    No weight changes, and ``model`` itself is left as it was. ``images`` is one tensor
    [N, C, H, W] on the model's device."""
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ValueError("the model has no BatchNorm layer: AdaBN has nothing to re-estimate")
    if len(images) < 2:
        raise ValueError("need at least two images to estimate a variance")
    adapted = copy.deepcopy(model)
    update_bn([images[i:i + batch_size] for i in range(0, len(images), batch_size)], adapted)
    return adapted.eval()
