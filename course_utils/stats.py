"""Accuracies with their noise: several seeds, intervals and a plain verdict (notebooks 07, 08);
reading a learning curve (notebook 01); a bootstrap interval of any test metric (09-12).

On 153 validation images one image is 0.65 points of accuracy, and a second run with another
seed moves a result by a few images. So a comparison of two approaches runs each several
times and asks two questions: is the gap larger than the spread across seeds (Welch's t-test),
and is it larger than what the validation set itself can resolve (a Wilson interval for one
accuracy on that many images)?

    runs = {"fixed features": [0.961, 0.967, ...], "full fine-tuning": [0.948, ...]}
    cu.stats.summarize(runs)                                     # one row per approach
    print(cu.stats.compare(runs["fixed features"], runs["full fine-tuning"], n_images=153))
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats


def accuracy_interval(correct, total, confidence=0.95):
    """``(low, high)``: the Wilson interval of an accuracy of ``correct`` out of ``total``."""
    ci = scipy_stats.binomtest(int(correct), int(total)).proportion_ci(confidence, method="wilson")
    return ci.low, ci.high


def bootstrap_interval(metric, y_true, y_score, confidence=0.95, n_resamples=2000, seed=0):
    """``(low, high)``: a percentile bootstrap interval of a test-set metric (09-12).

    The test images are drawn again with replacement ``n_resamples`` times (labels and scores
    together, by ``scipy.stats.bootstrap``); the interval holds the middle ``confidence`` of the
    metric over those draws. ``metric(y_true, y_score)`` is any function of both, such as
    ``sklearn.metrics.roc_auc_score``. It measures how much the figure depends on which test
    images were drawn, not how much it depends on the seed of training."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if len(y_true) != len(y_score) or len(y_true) < 2:
        raise ValueError("y_true and y_score: one entry per test image, at least two")
    result = scipy_stats.bootstrap((y_true, y_score), metric, paired=True, vectorized=False,
                                   n_resamples=n_resamples, confidence_level=confidence,
                                   method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarize(runs):
    """A table with one row per approach: number of seeds, mean, standard deviation, min, max."""
    rows = {name: {"seeds": len(values), "mean": np.mean(values),
                   "std": np.std(values, ddof=1) if len(values) > 1 else float("nan"),
                   "min": np.min(values), "max": np.max(values)}
            for name, values in runs.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass
class Comparison:
    """The outcome of :func:`compare`; ``str()`` gives it in words."""

    names: tuple
    means: tuple
    stds: tuple
    seeds: tuple
    difference: float  # mean of the first minus mean of the second
    n_images: int
    p_value: float  # Welch's t-test across seeds
    half_width: float  # of the 95% Wilson interval of one accuracy on n_images
    verdict: str  # "clear", "seed noise", "a few images" or "validation-set noise"
    images_name: str = "validation set"  # what the accuracies were measured on, for the words

    @property
    def is_clear(self):
        return self.verdict == "clear"

    def __str__(self):
        (a, b), n = self.names, self.n_images
        images = abs(self.difference) * n
        lines = [
            f"{a}: {self.means[0]:.3f} ± {self.stds[0]:.3f} over {self.seeds[0]} seeds; "
            f"{b}: {self.means[1]:.3f} ± {self.stds[1]:.3f} over {self.seeds[1]} seeds.",
            f"Difference {100 * self.difference:+.1f} points, {images:.1f} images of {n}; "
            f"Welch's t-test across seeds: p = {self.p_value:.2g}. One accuracy on {n} images is "
            f"known to ±{100 * self.half_width:.1f} points (95% interval).",
        ]
        lines.append({
            "seed noise": "Within noise: the runs of one approach differ as much as the two "
                          "approaches do. Do not rank them on this evidence.",
            "a few images": "Within noise: a difference of two images or fewer. Do not rank "
                            "them on this evidence.",
            "validation-set noise": "The gap is consistent across seeds on these images, but "
                                    f"smaller than what this {self.images_name} can resolve: "
                                    "another sample of images could reverse it. Draw no rule "
                                    "from it.",
            "clear": f"A clear difference: larger than the spread across seeds and than the "
                     f"uncertainty of the {self.images_name}. {a if self.difference > 0 else b} "
                     f"is better here.",
        }[self.verdict])
        return "\n".join(lines)

    __repr__ = __str__


def _welch_p(a, b):
    if np.std(a) == 0 and np.std(b) == 0:  # deterministic runs: any gap is systematic
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    return float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)


def compare(a, b, n_images, names=("A", "B"), images_name="validation set"):
    """Compare two approaches from their accuracies over several seeds (at least two each).

    ``images_name`` says in the verdict what the ``n_images`` were ("test set")."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("compare needs at least two seeds per approach to see their spread")
    difference = float(a.mean() - b.mean())
    p_value = _welch_p(a, b)
    mean = (a.mean() + b.mean()) / 2
    low, high = accuracy_interval(round(mean * n_images), n_images)
    half_width = (high - low) / 2
    if math.isnan(p_value) or p_value >= 0.05:
        verdict = "seed noise"
    elif abs(difference) * n_images <= 2:
        verdict = "a few images"
    elif abs(difference) < half_width:
        verdict = "validation-set noise"
    else:
        verdict = "clear"
    return Comparison(tuple(names), (a.mean(), b.mean()), (a.std(ddof=1), b.std(ddof=1)),
                      (len(a), len(b)), difference, int(n_images), p_value, half_width, verdict,
                      images_name)


def labels_to_reach(budgets, accuracies, target):
    """Labelled images per class at which a learning curve first reaches ``target`` (01).

    ``budgets`` are the measured numbers of labels per class, increasing; ``accuracies`` the
    accuracy at each. Between two measured budgets the curve is read on a log scale of labels,
    as it is plotted: the first pair that brackets ``target`` is interpolated linearly in
    ``log(budget)``. A curve already at ``target`` on its first budget gives that budget (it
    may need fewer: nothing below was measured); a curve that never reaches it gives ``inf``.
    """
    budgets, accuracies = np.asarray(budgets, dtype=float), np.asarray(accuracies, dtype=float)
    if budgets.shape != accuracies.shape or budgets.ndim != 1 or len(budgets) == 0:
        raise ValueError("budgets and accuracies must be two lists of the same, non-zero length")
    if np.any(np.diff(budgets) <= 0) or budgets[0] <= 0:
        raise ValueError("budgets must be positive and increasing")
    if accuracies[0] >= target:
        return float(budgets[0])
    for i in range(1, len(budgets)):
        if accuracies[i] >= target:
            low, high = accuracies[i - 1], accuracies[i]
            share = (target - low) / (high - low)
            log_budget = math.log(budgets[i - 1]) + share * math.log(budgets[i] / budgets[i - 1])
            return float(math.exp(log_budget))
    return math.inf
