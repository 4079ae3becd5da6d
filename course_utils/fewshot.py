"""Few-shot episodes on features: draw an N-way K-shot task, classify its queries by the nearest
class mean (Prototypical Networks), and give the mean accuracy over many episodes with its
confidence interval (notebook 14 writes each out by hand first).

    rng = np.random.default_rng(0)
    support, query = cu.fewshot.episode(labels, n_way=5, k_shot=1, n_query=15, rng=rng)
    predicted = cu.fewshot.prototype_predict(F[support], np.repeat(np.arange(5), 1), F[query])
    mean, half_width = cu.fewshot.mean_interval(accuracies)   # over the episodes

An episode is a small classification task: ``n_way`` classes drawn at random, ``k_shot``
labelled images of each (the support) and ``n_query`` other images of each to classify (the
query). Its classes are renamed 0 .. n_way - 1 in the order drawn, so one episode's class 0 is
another's class 3. Accuracy varies a lot from one episode to the next, so papers report the
mean over hundreds of episodes with a 95 % interval of that mean (Snell, Swersky and Zemel,
NeurIPS 2017; Chen et al., ICLR 2019).
"""

import numpy as np
from scipy import stats


def episode(labels, n_way, k_shot, n_query, rng):
    """``(support, query)``: index arrays of shape [n_way, k_shot] and [n_way, n_query] into
    ``labels``; row i holds images of the episode's class i, and no image is in both. The
    classes and images are drawn with ``rng`` (a ``numpy.random.Generator``), without
    replacement. Only classes with at least ``k_shot + n_query`` images can be drawn."""
    labels = np.asarray(labels)
    if min(n_way, k_shot, n_query) < 1:
        raise ValueError(f"n_way, k_shot and n_query must be at least 1, got {n_way}, {k_shot}, {n_query}")
    classes, counts = np.unique(labels, return_counts=True)
    usable = classes[counts >= k_shot + n_query]
    if len(usable) < n_way:
        raise ValueError(f"{n_way}-way episodes with {k_shot} + {n_query} images per class need "
                         f"{n_way} classes with at least {k_shot + n_query} images; "
                         f"{len(usable)} have that many")
    chosen = rng.choice(usable, n_way, replace=False)
    support, query = [], []
    for c in chosen:
        rows = rng.permutation(np.flatnonzero(labels == c))
        support.append(rows[:k_shot])
        query.append(rows[k_shot:k_shot + n_query])
    return np.stack(support), np.stack(query)


def prototype_predict(support, support_labels, query):
    """The label of the nearest prototype (squared Euclidean distance) for each query row. A
    class's prototype is the mean of its support rows; labels are 0 .. n_way - 1."""
    support, query = np.asarray(support, dtype=float), np.asarray(query, dtype=float)
    support_labels = np.asarray(support_labels)
    n_way = int(support_labels.max()) + 1
    if sorted(set(support_labels.tolist())) != list(range(n_way)):
        raise ValueError("support_labels must name every class 0 .. n_way - 1 at least once")
    prototypes = np.stack([support[support_labels == c].mean(axis=0) for c in range(n_way)])
    distances = ((query[:, None, :] - prototypes[None, :, :]) ** 2).sum(axis=-1)
    return distances.argmin(axis=1)


def mean_interval(accuracies, confidence=0.95):
    """``(mean, half_width)``: the mean of per-episode accuracies and the half width of its
    Student-t confidence interval, t * standard deviation / sqrt(episodes)."""
    accuracies = np.asarray(accuracies, dtype=float)
    if len(accuracies) < 2:
        raise ValueError("need at least two episodes for an interval")
    half = stats.t.ppf(0.5 + confidence / 2, len(accuracies) - 1) * stats.sem(accuracies)
    return float(accuracies.mean()), float(half)
