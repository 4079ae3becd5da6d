"""cu.fewshot against references: episodes checked image by image, nearest prototypes against a
loop over every query and class, and the interval against scipy's t interval."""

import numpy as np
import pytest
from scipy import stats

import course_utils as cu


def labels_with(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_an_episode_draws_distinct_classes_and_disjoint_support_and_query():
    labels = labels_with([20] * 8)
    support, query = cu.fewshot.episode(labels, n_way=5, k_shot=3, n_query=4, rng=np.random.default_rng(0))
    assert support.shape == (5, 3) and query.shape == (5, 4)
    classes = [set(labels[row]) for row in np.hstack([support, query])]
    assert all(len(c) == 1 for c in classes)  # each row is one class
    assert len({c.pop() for c in classes}) == 5  # and the rows are five different classes
    assert not set(support.ravel()) & set(query.ravel())
    assert len(set(support.ravel()) | set(query.ravel())) == 5 * 7


def test_episodes_are_reproducible_and_vary_with_the_generator():
    labels = labels_with([30] * 10)
    first = cu.fewshot.episode(labels, 5, 1, 15, np.random.default_rng(1))
    again = cu.fewshot.episode(labels, 5, 1, 15, np.random.default_rng(1))
    other = cu.fewshot.episode(labels, 5, 1, 15, np.random.default_rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_every_class_and_image_is_drawn_in_the_long_run():
    labels = labels_with([6] * 6)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        support, query = cu.fewshot.episode(labels, 3, 2, 2, rng)
        seen |= set(support.ravel()) | set(query.ravel())
    assert seen == set(range(len(labels)))


def test_classes_with_too_few_images_are_never_drawn():
    labels = labels_with([10, 10, 3, 10])  # class 2 cannot give 2 + 3 images
    rng = np.random.default_rng(0)
    for _ in range(50):
        support, _ = cu.fewshot.episode(labels, 3, 2, 3, rng)
        assert 2 not in set(labels[support[:, 0]])
    with pytest.raises(ValueError, match="3 have that many"):
        cu.fewshot.episode(labels, 4, 2, 3, rng)
    with pytest.raises(ValueError, match="at least 1"):
        cu.fewshot.episode(labels, 3, 0, 3, rng)


def reference_prototypes(support, support_labels, query):
    predicted = []
    for q in query:
        best, best_distance = None, np.inf
        for c in sorted(set(support_labels)):
            centre = np.mean([s for s, label in zip(support, support_labels, strict=True) if label == c], axis=0)
            distance = sum((a - b) ** 2 for a, b in zip(q, centre, strict=True))
            if distance < best_distance:
                best, best_distance = c, distance
        predicted.append(best)
    return np.array(predicted)


def test_prototype_predict_matches_a_loop_over_queries_and_classes():
    rng = np.random.default_rng(0)
    support = rng.normal(size=(5 * 4, 7))
    support_labels = np.repeat(np.arange(5), 4)
    query = rng.normal(size=(30, 7))
    got = cu.fewshot.prototype_predict(support, support_labels, query)
    np.testing.assert_array_equal(got, reference_prototypes(support, support_labels, query))


def test_prototypes_are_means_not_nearest_neighbours():
    # class 0's support: two points far apart; their mean is near the query, neither point is
    support = np.array([[-10.0, 0.0], [10.0, 0.0], [3.0, 0.0]])
    labels = np.array([0, 0, 1])
    assert cu.fewshot.prototype_predict(support, labels, np.array([[0.5, 0.0]])).tolist() == [0]
    with pytest.raises(ValueError, match="every class"):
        cu.fewshot.prototype_predict(support, np.array([0, 0, 2]), np.array([[0.5, 0.0]]))


def test_mean_interval_is_scipys_t_interval():
    accuracies = np.random.default_rng(0).uniform(0.4, 1.0, size=300)
    mean, half = cu.fewshot.mean_interval(accuracies)
    low, high = stats.t.interval(0.95, len(accuracies) - 1, loc=accuracies.mean(), scale=stats.sem(accuracies))
    assert mean == pytest.approx(accuracies.mean())
    assert (mean - half, mean + half) == pytest.approx((low, high))
    assert cu.fewshot.mean_interval(accuracies, 0.99)[1] > half
    with pytest.raises(ValueError, match="two episodes"):
        cu.fewshot.mean_interval([0.5])
