"""Exercises of notebook 06 (MSE and regression transfer on RetinaMNIST)."""

import torch
import torch.nn.functional as F

from course_utils import checks

# Exercise 1: four eyes, their grades and a regression head's predictions.
GRADES = (0, 2, 4, 3)
PREDICTIONS = (0.5, 2.0, 3.5, 1.0)
# Exercise 2: a grade-4 eye and two classifiers that put half their probability on grade 4.
HALF_ON_GRADE_3 = (0.0, 0.0, 0.0, 0.5, 0.5)
HALF_ON_GRADE_0 = (0.5, 0.0, 0.0, 0.0, 0.5)
TRUE_GRADE = 4


@checks.never_raises
def mse_by_hand(answer):
    """Exercise 1: the mean squared error of ``PREDICTIONS`` against ``GRADES``."""
    pred, grades = torch.tensor(PREDICTIONS), torch.tensor(GRADES, dtype=torch.float)
    expected = F.mse_loss(pred, grades).item()
    errors = pred - grades
    return checks.check_value(answer, expected, rtol=0, atol=1e-3, name="MSE", mistakes=[
        (errors.abs().mean().item(), "that is the mean absolute error: square each error "
                                     "before taking the mean"),
        ((errors ** 2).sum().item(), "that is the sum of the squared errors: divide by the "
                                     "number of eyes"),
        ((errors ** 2).mean().sqrt().item(), "that is the root of the MSE (RMSE), in grade "
                                             "units; the MSE itself has no square root"),
        (errors.mean().item(), "that is the mean error: positive and negative errors cancel, "
                               "which is why the errors are squared"),
        (expected / 2, "half the MSE: the ½ of the Gaussian derivation scales the loss but is "
                       "not part of the MSE that F.mse_loss computes"),
    ])


def cross_entropy_of_probabilities(probabilities, true_class):
    """-log p(true class): the cross-entropy of one prediction given as probabilities."""
    p = torch.tensor([probabilities])
    return F.nll_loss(p.log(), torch.tensor([true_class])).item()


@checks.never_raises
def order_blind_prediction(prediction):
    """Exercise 2 (predict first): loss(half on grade 0) − loss(half on grade 3), grade 4 true."""
    measured = (cross_entropy_of_probabilities(HALF_ON_GRADE_0, TRUE_GRADE)
                - cross_entropy_of_probabilities(HALF_ON_GRADE_3, TRUE_GRADE))
    return checks.check_prediction(
        prediction, measured, name="cross-entropy difference", tolerance=0.05,
        explanation="Cross-entropy is −log p(true grade), and both give grade 4 the same 0.5: "
                    "where the other half goes does not count. It cannot tell 'nearly right' "
                    "from 'four grades off'. A regression head's squared error can: 1 against 16 "
                    "for predictions 3 and 0.")


def _reference_to_grades(values, cuts):
    return torch.bucketize(torch.as_tensor(values, dtype=torch.float), torch.as_tensor(cuts))


def _grade_cases():
    halves = torch.tensor([0.5, 1.5, 2.5, 3.5])
    moved = torch.tensor([0.7, 1.2, 2.9, 3.1])
    return [((torch.tensor([0.2, 1.6, 3.4, 2.3]), halves), _reference_to_grades),
            ((torch.tensor([-0.7, 4.8, 0.6, 3.9, -2.0]), halves), _reference_to_grades),
            ((torch.tensor([0.6, 1.0, 1.3, 3.0, 3.2, 5.0, -1.0]), moved), _reference_to_grades)]


@checks.never_raises
def to_grades(fn):
    """Exercise 3: ``fn(values, cuts)`` = how many of the sorted ``cuts`` lie below each value."""
    return checks.check_function(fn, _grade_cases(), name="to_grades", mistakes=[
        (lambda v, c: v.round().clamp(0, 4).long(), "that rounds at the halves whatever the "
                                                    "cuts are: count the cuts below each value"),
        (lambda v, c: (v[:, None] < c).sum(dim=1), "that counts the cuts above each value; a "
                                                   "grade is the number of cuts below it"),
        (lambda v, c: (v[:, None] > c).sum(dim=1).clamp(max=3), "a value above the last cut is "
                                                                "the top grade, 4"),
    ])


@checks.never_raises
def mean_prediction_with_l1(answer, fit_probe, features, grades):
    """Exercise 4 (change the code): the mean test prediction of a head trained with L1.

    ``fit_probe(loss_fn, outputs, seed)`` is the notebook's probe trainer, ``features`` the
    test features and ``grades`` the training grades."""
    def mean_prediction(loss):
        head = fit_probe(lambda out, target: loss(out.squeeze(1), target.float()), outputs=1,
                         seed=0)
        with torch.no_grad():
            return head(features).mean().item()

    expected, unchanged = mean_prediction(F.l1_loss), mean_prediction(F.mse_loss)
    median = float(torch.as_tensor(grades).float().median())
    mean = float(torch.as_tensor(grades).float().mean())
    result = checks.check_value(answer, expected, rtol=0, atol=0.01, name="mean prediction",
                                mistakes=[
        (unchanged, "that is the mean prediction of the MSE head: change `F.mse_loss` to "
                    "`F.l1_loss` in the cell, run it again and read the new mean"),
    ])
    if result:
        return checks.Feedback(True, f"right: {expected:.2f}, against {unchanged:.2f} with MSE. "
                               f"The training grades have mean {mean:.2f} and median "
                               f"{median:.0f}. A constant that minimises the squared error is "
                               "the mean; one that minimises the absolute error is the median. "
                               "A head trained with L1 leans toward the median of what it "
                               "cannot tell apart, and with MSE toward the mean.",
                               "mean prediction")
    return result
