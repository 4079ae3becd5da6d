"""The notebooks' exercise checks: right answers pass, known mistakes get their diagnosis, no
feedback shows the answer, and a learner's wrong function leaves the notebook's state alone."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_curve
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms as T

import course_utils as cu
from course_utils.exercises import (
    ex00,
    ex01,
    ex02,
    ex03,
    ex04,
    ex05,
    ex06,
    ex07,
    ex09,
    ex10,
    ex11,
    ex12,
    ex13,
    ex14,
    ex15,
)


@pytest.fixture(scope="module")
def lite0():
    return cu.models.create("efficientnet_lite0").eval()


# ----- notebook 00 ---------------------------------------------------------------------------

def test_ex00_number_of_classes(lite0):
    assert ex00.num_classes(1000, lite0)
    wrong = ex00.num_classes(1280, lite0)
    assert not wrong and "in_features" in wrong.message and "1000" not in wrong.message
    assert "not answered" in ex00.num_classes(..., lite0).message


def test_ex00_batch_of_four_names_each_wrong_way_to_join():
    x = torch.randn(1, 3, 8, 8)
    assert ex00.batch_of_four(x.repeat(4, 1, 1, 1), x)
    assert "torch.stack" in ex00.batch_of_four(torch.stack([x] * 4), x).message
    assert "width" in ex00.batch_of_four(torch.cat([x] * 4, dim=3), x).message
    assert "channels" in ex00.batch_of_four(torch.cat([x] * 4, dim=1), x).message
    assert "not copies" in ex00.batch_of_four(torch.zeros(4, 3, 8, 8), x).message
    assert not ex00.batch_of_four("four cats", x)  # nonsense is feedback, not a traceback


def test_ex00_prediction_of_the_trainable_parameters():
    assert ex00.trainable_prediction(1280 * 10 + 10)
    assert "biases" in ex00.trainable_prediction(1280 * 10).message
    assert "whole model" in ex00.trainable_prediction(3_384_170).message


def test_ex00_espresso_without_normalize_diagnoses_the_unchanged_cell(lite0):
    from PIL import Image
    from skimage import data as skdata

    transform = cu.data.make_transform("efficientnet_lite0", train=False)
    coffee = Image.fromarray(skdata.coffee())
    espresso = 967
    plain = T.Compose(transform.transforms[:-1])  # the learner's change: no Normalize
    with torch.no_grad():
        normalized = lite0(transform(coffee).unsqueeze(0)).softmax(1)[0, espresso].item()
        without = lite0(plain(coffee).unsqueeze(0)).softmax(1)[0, espresso].item()
    assert ex00.espresso_without_normalize(round(without, 2))
    unchanged = ex00.espresso_without_normalize(normalized)
    assert not unchanged and "with Normalize" in unchanged.message
    assert "between 0 and 1" in ex00.espresso_without_normalize(100 * without).message
    assert f"{without:.2f}" not in unchanged.message


# ----- notebook 07 ---------------------------------------------------------------------------

def test_ex07_head_parameters():
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False)
    assert ex07.head_parameters(1280 * 2 + 2, model)
    assert "bias" in ex07.head_parameters(1280 * 2, model).message


def test_ex07_epoch_loss_diagnoses_the_articles_mean_of_batch_means():
    def per_image(losses, sizes):
        return sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)

    def articles(losses, sizes):
        return sum(losses) / len(losses)

    def forgot_to_divide(losses, sizes):
        return sum(loss * n for loss, n in zip(losses, sizes, strict=True))

    assert ex07.epoch_loss(per_image)
    assert "mean of the batch means" in ex07.epoch_loss(articles).message
    assert "divide by the number of images" in ex07.epoch_loss(forgot_to_divide).message
    assert "forget `return`" in ex07.epoch_loss(lambda losses, sizes: None).message


class TinyCNN(nn.Module):
    """Convolution, BatchNorm and a head: small enough to train-mode-trap in a test."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture
def tiny_model_and_loader():
    torch.manual_seed(0)
    model = TinyCNN().eval()
    X, y = torch.randn(24, 3, 8, 8) * 3 + 1, torch.randint(0, 2, (24,))
    return model, DataLoader(TensorDataset(X, y), batch_size=8)


def right_accuracy(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for X, y in loader:
            correct += (model(X).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def test_ex07_validation_accuracy_passes_the_right_function(tiny_model_and_loader):
    assert ex07.validation_accuracy(right_accuracy, *tiny_model_and_loader)


def test_ex07_forgetting_eval_is_diagnosed_and_changes_nothing_in_the_notebook(tiny_model_and_loader):
    model, loader = tiny_model_and_loader
    state = copy.deepcopy(model.state_dict())

    def forgot_eval(model, loader):
        correct = 0
        with torch.no_grad():
            for X, y in loader:
                correct += (model(X).argmax(1) == y).sum().item()
        return correct / len(loader.dataset)

    feedback = ex07.validation_accuracy(forgot_eval, model, loader)
    assert not feedback and "model.eval()" in feedback.message
    assert not model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_ex07_gradients_and_counts_are_diagnosed(tiny_model_and_loader):
    model, loader = tiny_model_and_loader

    def with_gradients(model, loader):
        model.eval()
        correct = 0
        for X, y in loader:
            logits = model(X)
            logits.sum().backward()
            correct += (logits.argmax(1) == y).sum().item()
        return correct / len(loader.dataset)

    def a_count(model, loader):
        return right_accuracy(model, loader) * len(loader.dataset)

    assert "torch.no_grad()" in ex07.validation_accuracy(with_gradients, model, loader).message
    assert "a count" in ex07.validation_accuracy(a_count, model, loader).message
    assert "raised ZeroDivisionError" in ex07.validation_accuracy(lambda m, data: 1 / 0, model, loader).message


def _drift(model, loader):
    before = [m.running_mean.clone() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.train()
    with torch.no_grad():
        model(next(iter(loader))[0])
    after = [m.running_mean for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    return max((a - b).abs().max().item() for a, b in zip(after, before, strict=True))


def test_ex07_batchnorm_drift_of_the_articles_freezing_and_the_courses():
    loader = DataLoader(TensorDataset(torch.randn(4, 3, 64, 64), torch.zeros(4, dtype=torch.long)),
                        batch_size=4)
    article = cu.models.create("efficientnet_lite0", num_classes=2)
    article.requires_grad_(False)
    course = cu.models.freeze(cu.models.create("efficientnet_lite0", num_classes=2))
    drift_article, drift_course = _drift(article, loader), _drift(course, loader)
    assert drift_article > 0 and drift_course == 0
    assert ex07.batchnorm_drift(drift_article, drift_course, "efficientnet_lite0", loader)
    no_freeze = ex07.batchnorm_drift(drift_article, drift_article, "efficientnet_lite0", loader)
    assert not no_freeze and "un-comment" in no_freeze.message
    eval_mode = ex07.batchnorm_drift(0.0, 0.0, "efficientnet_lite0", loader)
    assert not eval_mode and "train mode" in eval_mode.message


@pytest.mark.slow
def test_ex07_random_backbone_prediction_measures_both_probes(mirrored_data, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")  # 16 + 8 images per class: seconds
    far = ex07.random_backbone_prediction(0.99, "efficientnet_lite0")
    assert not far and "far off" in far.message and "pretrained features" in far.message
    measured = float(far.message.split("the run measured ")[1].split(":")[0])
    assert ex07.random_backbone_prediction(measured, "efficientnet_lite0")


# ----- notebook 08 ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ex08():
    from course_utils.exercises import ex08

    return ex08


def test_ex08_training_photos(ex08, shared_mirror):
    data_dir = shared_mirror / "hymenoptera_data"
    assert ex08.training_photos(244, data_dir)
    assert "GIF" in ex08.training_photos(245, data_dir).message
    assert "validation folder" in ex08.training_photos(398, data_dir).message


def test_ex08_three_group_learning_rates(ex08):
    assert ex08.three_group_lrs([1e-5, 1e-4, 1e-3])
    assert "geometric" in ex08.three_group_lrs([1e-5, 5.05e-4, 1e-3]).message
    assert "reversed" in ex08.three_group_lrs([1e-3, 1e-4, 1e-5]).message
    assert "three numbers" in ex08.three_group_lrs([1e-5, 1e-3]).message


def test_ex08_misclassified_from_the_confusion_matrix(ex08):
    import numpy as np

    class Interpretation:  # what ClassificationInterpretation offers the check
        def confusion_matrix(self):
            return np.array([[60, 10], [5, 78]])

    assert ex08.misclassified(15, Interpretation())
    assert "diagonal" in ex08.misclassified(138, Interpretation()).message


def test_ex08_head_without_concat_pool(ex08, shared_mirror, tmp_path):
    import shutil
    import warnings

    from fastai.vision.all import ImageDataLoaders, Resize, vision_learner

    for split in ("train", "valid"):
        for name in ("ants", "bees"):
            (tmp_path / split / name).mkdir(parents=True)
            source = sorted((shared_mirror / "hymenoptera_data" / "train" / name).glob("*.jpg"))[0]
            shutil.copyfile(source, tmp_path / split / name / source.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dls = ImageDataLoaders.from_folder(tmp_path, item_tfms=Resize(64), bs=2, num_workers=0)
        small = vision_learner(dls, "tf_efficientnet_lite0", pretrained=False, lin_ftrs=[],
                               concat_pool=False)
        default = vision_learner(dls, "tf_efficientnet_lite0", pretrained=False)
    assert ex08.head_without_concat_pool(2 * 1280 + 1280 * 2, small)
    assert "twice as wide" in ex08.head_without_concat_pool(2 * 5120, small).message
    assert "concat_pool=False" in ex08.head_without_concat_pool(5120, default).message


def test_ex05_cross_entropy_by_hand_names_each_slip():
    import math

    z = ex05.LOGITS
    loss = math.log(sum(math.exp(v) for v in z)) - z[0]
    assert ex05.cross_entropy_by_hand(loss)
    p_true = math.exp(z[0]) / sum(math.exp(v) for v in z)
    assert "minus its logarithm" in ex05.cross_entropy_by_hand(p_true).message
    assert "sign" in ex05.cross_entropy_by_hand(-loss).message
    assert "base-10" in ex05.cross_entropy_by_hand(loss / math.log(10)).message
    assert "subtract the true" in ex05.cross_entropy_by_hand(loss + z[0]).message
    for wrong in (p_true, loss + z[0], 0.5):  # no feedback shows the answer (a sign slip
        # echoes the learner's own number, which is all the feedback ever repeats)
        assert f"{loss:.3f}" not in ex05.cross_entropy_by_hand(wrong).message
        assert f"{loss:.6g}" not in ex05.cross_entropy_by_hand(wrong).message


def test_ex05_prediction_of_the_confident_gradient():
    assert abs(ex05.confident_gradient()) < 1e-3
    assert ex05.confident_gradient_prediction(0.0)
    assert not ex05.confident_gradient_prediction(-1.0)
    assert "no prediction yet" in ex05.confident_gradient_prediction(...).message


def test_ex05_l2sp_diagnoses_weight_decay_the_missing_half_the_norm_and_the_head():
    def right(model, start, alpha):
        return alpha / 2 * sum(((p - start[n]) ** 2).sum() for n, p in model.named_parameters() if n in start)

    def toward_zero(model, start, alpha):
        return alpha / 2 * sum((p ** 2).sum() for n, p in model.named_parameters() if n in start)

    def no_half(model, start, alpha):
        return 2 * right(model, start, alpha)

    def norm(model, start, alpha):
        return alpha / 2 * sum((p - start[n]).norm() for n, p in model.named_parameters() if n in start)

    def with_head(model, start, alpha):
        return alpha / 2 * sum(((p - start.get(n, 0)) ** 2).sum() for n, p in model.named_parameters())

    def changes_its_input(model, start, alpha):
        for p in model.parameters():
            p.data.zero_()  # a learner's side effect: the check runs on copies
        return right(model, start, alpha)

    assert ex05.l2sp(right)
    assert "weight decay" in ex05.l2sp(toward_zero).message
    assert "α/2" in ex05.l2sp(no_half).message
    assert "no square root" in ex05.l2sp(norm).message
    assert "new head" in ex05.l2sp(with_head).message
    assert "forget `return`" in ex05.l2sp(lambda model, start, alpha: None).message
    assert not ex05.l2sp(changes_its_input)  # zeroed copies give another value
    assert "not a function" in ex05.l2sp(...).message


def test_ex05_gap_with_more_data_tells_an_unchanged_cell_apart():
    w_target, w_start = [2.0, -1.0], [1.5, 1.0]
    gap = ex05.toy_gap([[1.0, 0.0], [0.0, 1.0]], 0.1, w_target, w_start)
    assert abs(gap - 0.1 / 1.1 * (1.5 ** 2 + 1) ** 0.5) < 1e-9  # λ/(1+λ)·‖w⁰‖ when A = I
    assert ex05.gap_with_more_data(round(gap, 3), w_target, w_start)
    unchanged = ex05.toy_gap([[1.0, 0.0], [0.0, 0.02]], 0.1, w_target, w_start)
    feedback = ex05.gap_with_more_data(round(unchanged, 3), w_target, w_start)
    assert "original bowl" in feedback.message and f"{gap:.3f}" not in feedback.message


# ----- notebook 01 ---------------------------------------------------------------------------

def test_ex01_scratch_prediction_compares_with_the_measurement():
    assert ex01.scratch_prediction(0.5, 0.55, chance=0.1)
    far = ex01.scratch_prediction(0.1, 0.55, chance=0.1)
    assert not far and "far off" in far.message
    assert "no prediction yet" in ex01.scratch_prediction(..., 0.55, chance=0.1).message


def _labels_right(budgets, accuracies, target):
    if accuracies[0] >= target:
        return budgets[0]
    for i in range(1, len(budgets)):
        if accuracies[i] >= target:
            share = (target - accuracies[i - 1]) / (accuracies[i] - accuracies[i - 1])
            return budgets[i - 1] * (budgets[i] / budgets[i - 1]) ** share
    return math.inf


def test_ex01_labels_to_reach_accepts_a_right_answer_and_the_helper():
    assert ex01.labels_to_reach(_labels_right)
    assert ex01.labels_to_reach(cu.stats.labels_to_reach)


@pytest.mark.parametrize("mistake, words", [
    (ex01._linear_in_labels, "logarithmic"),
    (ex01._next_budget_up, "no reading between"),
    (ex01._last_budget_when_never, "math.inf"),
    (ex01._last_crossing, "first"),
])
def test_ex01_labels_to_reach_names_each_known_mistake(mistake, words):
    feedback = ex01.labels_to_reach(mistake)
    assert not feedback and words in feedback.message


def test_ex01_labels_to_reach_survives_a_broken_function():
    assert "not a function" in ex01.labels_to_reach(...).message
    assert "raised ZeroDivisionError" in ex01.labels_to_reach(lambda b, a, t: 1 / 0).message
    assert "returned None" in ex01.labels_to_reach(lambda b, a, t: None).message


def test_ex01_large_learning_rate_measures_again_and_names_the_recipe_rate():
    calls = []

    def finetune_accuracy(lr):
        calls.append(lr)
        return {0.001: 0.72, 0.01: 0.49}[lr]

    right = ex01.large_learning_rate(0.49, finetune_accuracy, 0.001, 0.72, spread=0.02)
    assert right and calls == [0.01] and "beyond the spread" in right.message
    kept = ex01.large_learning_rate(0.72, finetune_accuracy, 0.001, 0.72, spread=0.02)
    assert not kept and "recipe's learning rate" in kept.message
    other = ex01.large_learning_rate(0.60, finetune_accuracy, 0.001, 0.72, spread=0.02)
    assert not other and "0.49" not in other.message  # no answer given away
    noise = ex01.large_learning_rate(0.49, finetune_accuracy, 0.001, 0.50, spread=0.02)
    assert noise and "cannot tell" in noise.message
    assert "not answered" in ex01.large_learning_rate(..., finetune_accuracy, 0.001, 0.72, 0.02).message


# ----- notebook 02 ---------------------------------------------------------------------------

GAPS = {"hymenoptera": 0.07, "eurosat": 0.14, "retinamnist": 0.46, "neu": 0.38}


def test_ex02_farthest_prediction_compares_with_the_table():
    right = ex02.farthest_prediction("retinamnist", pd.Series(GAPS))
    assert right and "farthest" in right.message
    wrong = ex02.farthest_prediction("eurosat", GAPS)
    assert not wrong and "3 of 4" in wrong.message
    assert "not one of" in ex02.farthest_prediction("imagenet", GAPS).message
    assert "no prediction yet" in ex02.farthest_prediction(..., GAPS).message
    assert not ex02.farthest_prediction(3, GAPS)  # nonsense is feedback, not a traceback


@pytest.fixture(scope="module")
def source_cnn():
    """A small CNN whose BatchNorm statistics come from 'source' images (mean 0), and
    'target' images from another distribution (brighter, less contrast)."""
    torch.manual_seed(0)
    model = cu.inmemory.small_cnn(5, width=4)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(16, 3, 16, 16))
    return model.eval(), 0.5 * torch.randn(24, 3, 16, 16) + 1.0


def _adabn_right(model, X):
    adapted = copy.deepcopy(model)
    for module in adapted.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    adapted.train()
    with torch.no_grad():
        adapted(X)
    return adapted.eval()


def _adabn_in_batches(model, X):
    adapted = copy.deepcopy(model)
    torch.optim.swa_utils.update_bn([X[:12], X[12:]], adapted)
    return adapted.eval()


def _adabn_in_place(model, X):
    return _adabn_right(model, X).state_dict() and model.load_state_dict(
        _adabn_right(model, X).state_dict()) and model


def _adabn_eval_forward(model, X):
    adapted = copy.deepcopy(model).eval()
    with torch.no_grad():
        adapted(X)
    return adapted


def _adabn_moving_average(model, X):
    adapted = copy.deepcopy(model).train()
    with torch.no_grad():
        adapted(X)
    return adapted.eval()


def _adabn_train_mode(model, X):
    return _adabn_right(model, X).train()


def _adabn_trains(model, X):
    adapted = _adabn_right(model, X).train()
    optimizer = torch.optim.SGD(adapted.parameters(), lr=0.1)
    adapted(X).logsumexp(1).mean().backward()
    optimizer.step()
    return adapted.eval()


def test_ex02_adapt_batchnorm_accepts_right_answers_and_leaves_the_model_alone(source_cnn):
    model, X = source_cnn
    before = copy.deepcopy(model.state_dict())
    assert ex02.adapt_batchnorm(_adabn_right, model, X)
    assert ex02.adapt_batchnorm(_adabn_in_batches, model, X)  # a few batches: close enough
    for mistake in (_adabn_right, _adabn_in_place, _adabn_trains):
        ex02.adapt_batchnorm(mistake, model, X)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("mistake, words", [
    (_adabn_in_place, "changed the model it was given"),
    (_adabn_eval_forward, "only in train mode"),
    (_adabn_moving_average, "momentum"),
    (_adabn_train_mode, "still in train mode"),
    (_adabn_trains, "weights changed"),
    (lambda model, X: None, "returned None"),
    (lambda model, X: 1 / 0, "ZeroDivisionError"),
    (lambda model, X: X, "not a model"),
])
def test_ex02_adapt_batchnorm_names_each_known_mistake(source_cnn, mistake, words):
    feedback = ex02.adapt_batchnorm(mistake, *source_cnn)
    assert not feedback and words in feedback.message


def test_ex02_adapt_batchnorm_survives_no_answer(source_cnn):
    assert "not a function" in ex02.adapt_batchnorm(..., *source_cnn).message


def test_ex02_few_target_images_measures_again_and_gives_nothing_away():
    accuracies = {16: 0.55, 500: 0.57, 4: 0.30}
    calls = []

    def run(n):
        calls.append(n)
        return accuracies[n]

    right = ex02.few_target_images(0.55, 16, run, 500, spread=0.03)
    assert right and 16 in calls and "Within twice" in right.message
    rough = ex02.few_target_images(0.30, 4, run, 500, spread=0.03)
    assert rough and "too roughly" in rough.message
    kept = ex02.few_target_images(0.57, 500, run, 500, spread=0.03)
    assert not kept and "still 500" in kept.message
    stale = ex02.few_target_images(0.57, 16, run, 500, spread=0.03)
    assert not stale and "still used them" in stale.message and "0.55" not in stale.message
    other = ex02.few_target_images(0.40, 16, run, 500, spread=0.03)
    assert not other and "0.55" not in other.message
    assert "handful" in ex02.few_target_images(0.5, 100, run, 500, spread=0.03).message
    assert "two" in ex02.few_target_images(0.5, 1, run, 500, spread=0.03).message
    assert "not answered" in ex02.few_target_images(..., 16, run, 500, 0.03).message


# ----- notebook 03 ---------------------------------------------------------------------------

def test_ex03_source_only_prediction_compares_with_the_measurement():
    assert ex03.source_only_prediction(0.2, 0.15, clear_accuracy=0.8, chance=0.1)
    far = ex03.source_only_prediction(0.7, 0.15, clear_accuracy=0.8, chance=0.1)
    assert not far and "far off" in far.message and "0.80" in far.message
    assert "no prediction yet" in ex03.source_only_prediction(..., 0.15, 0.8, 0.1).message


def _weights_right(p_target):
    odds = p_target / (1 - p_target)
    return odds / odds.mean()


def test_ex03_weights_accept_a_right_answer_and_match_the_density_ratio_of_cu_domain():
    assert ex03.weights_from_probabilities(_weights_right)
    # the course's helper, before clipping, gives the same weights from its own classifier
    rng = np.random.default_rng(0)
    source, target = rng.normal(0, 1, (300, 2)), rng.normal(0.5, 1, (200, 2))
    helper = cu.domain.importance_weights(source, target, clip=1e9)
    X = np.vstack([source, target])
    d = np.repeat([0, 1], [300, 200])
    p = cu.domain._domain_classifier(1.0).fit(X, d).predict_proba(source)[:, 1]
    assert np.allclose(_weights_right(p), helper)


@pytest.mark.parametrize("mistake, words", [
    (ex03._probabilities, "not the odds"),
    (ex03._inverted, "upside down"),
    (ex03._not_normalised, "mean is not 1"),
    (ex03._sum_one, "sum to 1"),
])
def test_ex03_weights_name_each_known_mistake(mistake, words):
    feedback = ex03.weights_from_probabilities(mistake)
    assert not feedback and words in feedback.message


def test_ex03_weights_survive_a_broken_function():
    assert "not a function" in ex03.weights_from_probabilities(...).message
    assert "returned None" in ex03.weights_from_probabilities(lambda p: None).message


def test_ex03_more_target_labels_measures_again_and_gives_nothing_away():
    calls = []

    def run(labels):
        calls.append(labels)
        return {10: (0.50, 0.65), 100: (0.70, 0.74)}[labels]

    right = ex03.more_target_labels(0.04, run, 10, gap_spread=0.02)
    assert right and 100 in calls and "shrank" in right.message
    kept = ex03.more_target_labels(0.15, run, 10, gap_spread=0.02)
    assert not kept and "still used them" in kept.message and "0.04" not in kept.message
    flipped = ex03.more_target_labels(-0.04, run, 10, gap_spread=0.02)
    assert not flipped and "sign" in flipped.message
    points = ex03.more_target_labels(4.0, run, 10, gap_spread=0.02)
    assert not points and "in points" in points.message
    other = ex03.more_target_labels(0.10, run, 10, gap_spread=0.02)
    assert not other and "0.04" not in other.message and "0.74" not in other.message
    noise = ex03.more_target_labels(0.04, run, 10, gap_spread=0.08)
    assert noise and "cannot say" in noise.message
    grew = ex03.more_target_labels(0.30, lambda n: {10: (0.5, 0.6), 100: (0.5, 0.8)}[n], 10, 0.02)
    assert grew and "grew" in grew.message
    assert "not answered" in ex03.more_target_labels(..., run, 10, 0.02).message


# ----- notebook 04 ---------------------------------------------------------------------------

def _bn_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()


def test_ex04_batch_of_one_measures_on_a_copy_and_keeps_the_model():
    net, X, y = _bn_net(), torch.randn(12, 3, 8, 8), torch.tensor([0, 1] * 6)
    before = copy.deepcopy(net.state_dict())
    measured = ex04.train_mode_accuracy(net, X, y, batch_size=1)
    assert ex04.batch_of_one_prediction(measured, net, X, y)
    far = ex04.batch_of_one_prediction(measured + 0.3 if measured < 0.6 else measured - 0.3,
                                       net, X, y)
    assert not far and "far off" in far.message
    assert "no prediction yet" in ex04.batch_of_one_prediction(..., net, X, y).message
    assert not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def _train_mode_right(model):
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()


def test_ex04_set_train_mode_names_each_wrong_mode():
    assert ex04.set_train_mode(_train_mode_right)

    def eval_first(model):  # the right idea in the wrong order: train() undoes it
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
                module.eval()
        model.train()

    def all_bn_eval(model):
        model.train()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()

    def refreezes(model):
        _train_mode_right(model)
        model.requires_grad_(False)

    def raises(model):
        raise RuntimeError("oops")

    assert "still updated" in ex04.set_train_mode(lambda m: m.train()).message
    assert "after" in ex04.set_train_mode(eval_first).message
    assert "Dropout is still off" in ex04.set_train_mode(lambda m: m.eval()).message
    assert "Dropout is still off" in ex04.set_train_mode(lambda m: None).message
    assert "stayed in eval" in ex04.set_train_mode(all_bn_eval).message
    assert "require gradients" in ex04.set_train_mode(refreezes).message
    assert "RuntimeError" in ex04.set_train_mode(raises).message
    assert "not a function" in ex04.set_train_mode(...).message


def test_ex04_random_body_accuracy_recomputes_both_and_spots_an_unchanged_cell():
    torch.manual_seed(0)
    random_body, pretrained_body = nn.Linear(3, 2), nn.Linear(3, 2)
    x = torch.randn(50, 3)

    def probe_test_accuracy(body):  # a stand-in: any deterministic function of the body
        with torch.no_grad():
            return (body(x).argmax(dim=1) == 0).float().mean().item()

    random_acc = probe_test_accuracy(random_body)
    pretrained_acc = probe_test_accuracy(pretrained_body)
    assert random_acc != pretrained_acc
    assert ex04.random_body_accuracy(random_acc, probe_test_accuracy, random_body,
                                     pretrained_body)
    unchanged = ex04.random_body_accuracy(pretrained_acc, probe_test_accuracy, random_body,
                                          pretrained_body)
    assert "pretrained body" in unchanged.message
    assert f"{random_acc:.3f}" not in unchanged.message


def test_ex04_selection_optimism_names_sign_percent_best_seed_and_average():
    grid = pd.DataFrame({"lr": [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
                         "weight decay": [0.0] * 6, "seed": [0, 1] * 3,
                         "accuracy": [0.70, 0.80, 0.80, 0.90, 0.60, 0.60]})
    # mean accuracies 0.75, 0.85 and 0.60; chosen on validation: lr 0.1, so the optimism is 0.10
    assert ex04.selection_optimism(0.10, grid, 0.1, 0.0)
    assert "sign" in ex04.selection_optimism(-0.10, grid, 0.1, 0.0).message
    assert "percentage points" in ex04.selection_optimism(10.0, grid, 0.1, 0.0).message
    assert "single seed" in ex04.selection_optimism(0.15, grid, 0.1, 0.0).message
    assert "average setting" in ex04.selection_optimism(0.85 - 0.7333333, grid, 0.1, 0.0).message
    assert "0.1" not in ex04.selection_optimism(0.3, grid, 0.1, 0.0).message

# ----- notebook 06 ---------------------------------------------------------------------------

def test_ex06_mse_by_hand_names_each_slip():
    errors = [p - g for p, g in zip(ex06.PREDICTIONS, ex06.GRADES, strict=True)]
    mse = sum(e * e for e in errors) / len(errors)
    assert abs(mse - 1.125) < 1e-12 and ex06.mse_by_hand(mse)
    assert "absolute error" in ex06.mse_by_hand(sum(abs(e) for e in errors) / 4).message
    assert "sum of the squared" in ex06.mse_by_hand(mse * 4).message
    assert "RMSE" in ex06.mse_by_hand(mse ** 0.5).message
    assert "cancel" in ex06.mse_by_hand(sum(errors) / 4).message
    assert "½" in ex06.mse_by_hand(mse / 2).message
    for wrong in (mse * 4, mse ** 0.5, 0.3):
        assert "1.125" not in ex06.mse_by_hand(wrong).message


def test_ex06_cross_entropy_is_blind_to_where_the_rest_goes():
    a = ex06.cross_entropy_of_probabilities(ex06.HALF_ON_GRADE_3, ex06.TRUE_GRADE)
    b = ex06.cross_entropy_of_probabilities(ex06.HALF_ON_GRADE_0, ex06.TRUE_GRADE)
    assert a == b == pytest.approx(math.log(2))
    assert ex06.order_blind_prediction(0.0)
    assert not ex06.order_blind_prediction(1.0)
    assert "no prediction yet" in ex06.order_blind_prediction(...).message


def test_ex06_to_grades_counts_the_cuts_below_and_diagnoses_rounding_and_direction():
    def right(values, cuts):
        return (values[:, None] > cuts).sum(dim=1)

    def clipped_round(values, cuts):
        return values.round().clamp(0, 4).long()

    def above(values, cuts):
        return (values[:, None] < cuts).sum(dim=1)

    assert ex06.to_grades(right)
    assert ex06.to_grades(lambda values, cuts: torch.bucketize(values, cuts))
    assert "rounds at the halves" in ex06.to_grades(clipped_round).message
    assert "above each value" in ex06.to_grades(above).message
    assert "not a function" in ex06.to_grades(...).message


def test_ex06_mean_prediction_with_l1_recomputes_both_heads_and_spots_an_unchanged_cell():
    torch.manual_seed(0)
    features = torch.randn(60, 8)
    grades = torch.tensor([0] * 30 + [1] * 10 + [4] * 20)

    def fit_probe(loss_fn, outputs, seed):
        cu.env.set_seed(seed)
        head = nn.Linear(8, outputs)
        optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
        for _ in range(100):
            loss = loss_fn(head(features), grades)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return head

    def mean_with(loss):
        head = fit_probe(lambda out, g: loss(out.squeeze(1), g.float()), 1, 0)
        with torch.no_grad():
            return head(features).mean().item()

    l1, mse = mean_with(torch.nn.functional.l1_loss), mean_with(torch.nn.functional.mse_loss)
    assert abs(l1 - mse) > 0.05  # the two losses really lead to different heads here
    assert ex06.mean_prediction_with_l1(l1, fit_probe, features, grades)
    unchanged = ex06.mean_prediction_with_l1(mse, fit_probe, features, grades)
    assert "mean prediction of the MSE head" in unchanged.message and f"{l1:.2f}" not in unchanged.message



# ----- notebook 14 ---------------------------------------------------------------------------

def test_ex14_adabn_on_darkness_judges_against_what_one_figure_resolves():
    # 240 dark test images: one accuracy near 0.35 is known to about +-0.06
    lower = ex14.adabn_on_darkness("lower", 0.354, 0.274, 240)
    assert lower and "0.354" in lower.message and "from scratch" in lower.message
    assert not ex14.adabn_on_darkness("higher", 0.354, 0.274, 240)
    same = ex14.adabn_on_darkness("same", 0.354, 0.33, 240)
    assert same and "'same'" in same.message
    assert "no prediction yet" in ex14.adabn_on_darkness(..., 0.354, 0.274, 240).message
    assert "one of" in ex14.adabn_on_darkness("worse", 0.354, 0.274, 240).message


def test_ex14_prototypes_passes_the_reference_and_another_right_way():
    assert ex14.prototypes(cu.fewshot.prototype_predict)

    def with_torch(support, labels, query):
        support, query = torch.as_tensor(support), torch.as_tensor(query)
        labels = torch.as_tensor(labels)
        means = torch.stack([support[labels == c].mean(0) for c in range(int(labels.max()) + 1)])
        return torch.cdist(query, means).argmin(1).numpy()

    assert ex14.prototypes(with_torch)


@pytest.mark.parametrize("mistake, words", [
    ("_farthest", "farthest"), ("_nearest_neighbour", "nearest single support image"),
    ("_summed", "sums"), ("_cosine", "angle"), ("_row_order", "position")])
def test_ex14_prototypes_names_each_known_mistake(mistake, words):
    feedback = ex14.prototypes(getattr(ex14, mistake))
    assert not feedback and words in feedback.message


def test_ex14_prototypes_survives_crashes_shapes_and_inputs_changed_in_place():
    assert "not a function" in ex14.prototypes(...).message
    assert not ex14.prototypes(lambda support, labels, query: 1 / 0)
    assert "shape" in ex14.prototypes(lambda support, labels, query: np.zeros((len(query), 3))).message

    def vandal(support, labels, query):
        answer = cu.fewshot.prototype_predict(support, labels, query)
        support[:], query[:] = 0, 0  # the check hands out copies: its reference must not see this
        return answer

    assert ex14.prototypes(vandal)


def test_ex14_inner_steps_asks_for_the_change_then_judges_it():
    not_changed = ex14.inner_steps("lower", 5, 0.641, 0.641, 10000)
    assert not not_changed and "still 5" in not_changed.message and "0.6" not in not_changed.message
    assert "META_STEPS = 1" in ex14.inner_steps("lower", ..., 0.641, 0.641, 10000).message
    assert "asks for 1" in ex14.inner_steps("lower", 3, 0.641, 0.62, 10000).message
    right = ex14.inner_steps("lower", 1, 0.641, 0.598, 10000)
    assert right and "0.598" in right.message and "ordinary training" in right.message
    assert not ex14.inner_steps("same", 1, 0.641, 0.598, 10000)
    assert ex14.inner_steps("same", 1, 0.641, 0.638, 10000)


# ----- notebook 15 ---------------------------------------------------------------------------

def test_ex15_padding_is_measured_on_a_real_sampler_and_explained():
    assert ex15.evaluated_twice(153, 4) == 3 and ex15.evaluated_twice(8, 4) == 0
    assert ex15.padding_prediction(ex15.evaluated_twice())
    wrong = ex15.padding_prediction(0)
    assert not wrong and "ceil(N / P)" in wrong.message
    assert "no prediction yet" in ex15.padding_prediction(...).message


def test_ex15_scaled_lr_names_each_mistake_without_the_answer():
    assert ex15.scaled_lr(lambda lr, b, n, p, a: lr * n * p * a / b)
    diagnoses = {
        "accumulation steps are missing": lambda lr, b, n, p, a: lr * n * p / b,
        "processes are missing": lambda lr, b, n, p, a: lr * n * a / b,
        "one process's batch only": lambda lr, b, n, p, a: lr * n / b,
        "upside down": lambda lr, b, n, p, a: lr * b / (n * p * a),
        "square-root rule": lambda lr, b, n, p, a: lr * math.sqrt(n * p * a / b),
        "unchanged": lambda lr, b, n, p, a: lr,
    }
    for diagnosis, wrong in diagnoses.items():
        feedback = ex15.scaled_lr(wrong)
        assert not feedback and diagnosis in feedback.message, (diagnosis, feedback.message)
    assert "0.006" not in ex15.scaled_lr(lambda lr, b, n, p, a: 1.0).message  # case 1's answer


# ----- notebook 10 ---------------------------------------------------------------------------

def test_ex09_threshold_on_validation_judges_the_mean_change_against_the_noise():
    at_half, at_val = [0.90, 0.90, 0.88], [0.81, 0.81, 0.87]  # like the notebook's runs
    right = ex09.threshold_on_validation("lower", at_half, at_val, 624)
    assert right and "lower in 3 of 3" in right.message and "another population" in right.message
    wrong = ex09.threshold_on_validation("higher", at_half, at_val, 624)
    assert not wrong and "'lower'" in wrong.message
    # 624 test images resolve about ±2.4 points at 0.89: a one-point change is "same"
    assert ex09.threshold_on_validation("same", [0.89, 0.89], [0.90, 0.88], 624)
    assert ex09.threshold_on_validation("higher", [0.80, 0.80], [0.86, 0.85], 624)


def test_ex09_threshold_on_validation_names_each_slip():
    assert "no prediction yet" in ex09.threshold_on_validation(..., [0.9], [0.8], 624).message
    assert "one of" in ex09.threshold_on_validation("worse", [0.9], [0.8], 624).message
    assert not ex09.threshold_on_validation("lower", "n/a", [0.8], 624)  # feedback, not a crash


def _threshold_right(y_true, scores, target):
    positive = np.sort(scores[y_true == 1])[::-1]
    return positive[math.ceil(target * len(positive)) - 1]


def test_ex09_threshold_for_sensitivity_agrees_with_the_roc_curve_and_names_each_mistake():
    assert ex09.threshold_for_sensitivity(_threshold_right)
    # a threshold just below the right score calls the same images positive: also right
    assert ex09.threshold_for_sensitivity(lambda y, s, t: _threshold_right(y, s, t) - 1e-9)

    def specificity(y, s, t):
        negative = np.sort(s[y == 0])
        return negative[math.ceil(t * len(negative)) - 1] + 1e-12

    def youden(y, s, t):
        fpr, tpr, thresholds = roc_curve(y, s)
        return thresholds[np.argmax(tpr - fpr)]

    def one_short(y, s, t):
        positive = np.sort(s[y == 1])[::-1]
        return positive[math.floor(t * len(positive)) - 1]

    for wrong, words in [(specificity, "specificity"), (lambda y, s, t: s.min(), "every image"),
                         (youden, "Youden"), (one_short, "one positive case short")]:
        feedback = ex09.threshold_for_sensitivity(wrong)
        assert not feedback and words in feedback.message, feedback.message
    assert "not a function" in ex09.threshold_for_sensitivity(...).message
    assert "returned None" in ex09.threshold_for_sensitivity(lambda y, s, t: None).message
    assert "raised" in ex09.threshold_for_sensitivity(lambda y, s, t: "high").message


def _recall_with(recalls):
    calls = []

    def recall_with(class_weight):
        calls.append(class_weight)
        return recalls[class_weight]

    return recall_with, calls


def test_ex09_unweighted_probe_measures_again_and_judges_against_the_noise():
    recall_with, calls = _recall_with({"balanced": 0.85, None: 0.70})
    right = ex09.unweighted_probe("lower", 0.70, None, recall_with, 234)
    assert right and "-15.0 points" in right.message and set(calls) == {"balanced", None}
    assert not ex09.unweighted_probe("same", 0.70, None, recall_with, 234)
    # 234 normal X-rays resolve about ±4.6 points at 0.85: a two-point change is "same"
    recall_with, _ = _recall_with({"balanced": 0.85, None: 0.83})
    assert ex09.unweighted_probe("same", 0.83, None, recall_with, 234)


def test_ex09_unweighted_probe_names_each_slip():
    recall_with, _ = _recall_with({"balanced": 0.85, None: 0.70})
    assert "no prediction yet" in ex09.unweighted_probe(..., 0.7, None, recall_with, 234).message
    assert "one of" in ex09.unweighted_probe("down", 0.7, None, recall_with, 234).message
    assert "CLASS_WEIGHT = None" in ex09.unweighted_probe("lower", ..., None, recall_with, 234).message
    assert "'balanced'" in ex09.unweighted_probe("lower", 0.85, "balanced", recall_with, 234).message
    assert "with class weights" in ex09.unweighted_probe("lower", 0.85, None, recall_with, 234).message
    stale = ex09.unweighted_probe("lower", 0.60, None, recall_with, 234)
    assert not stale and "0.700" not in stale.message  # the check does not give the figure away


def _probe_at(accuracies):
    calls = []

    def probe_at(size):
        calls.append(size)
        return accuracies[size]

    return probe_at, calls


def test_ex10_enlarged_probe_measures_again_and_judges_against_the_noise():
    probe_at, calls = _probe_at({64: 0.900, 128: 0.930})
    right = ex10.enlarged_probe("higher", 0.930, 128, probe_at, 2000)
    assert right and "+3.0 points" in right.message and set(calls) == {64, 128}
    wrong = ex10.enlarged_probe("same", 0.930, 128, probe_at, 2000)
    assert not wrong and "'higher'" in wrong.message
    # within the noise of 2,000 test images (about ±1.3 points at 0.90) a change is "same"
    probe_at, _ = _probe_at({64: 0.900, 128: 0.905})
    assert ex10.enlarged_probe("same", 0.905, 128, probe_at, 2000)
    assert not ex10.enlarged_probe("higher", 0.905, 128, probe_at, 2000)
    probe_at, _ = _probe_at({64: 0.900, 128: 0.850})
    assert ex10.enlarged_probe("lower", 0.850, 128, probe_at, 2000)


def test_ex10_enlarged_probe_names_each_slip():
    probe_at, calls = _probe_at({64: 0.900, 128: 0.930})
    assert "no prediction yet" in ex10.enlarged_probe(..., 0.93, 128, probe_at, 2000).message
    assert "one of" in ex10.enlarged_probe("better", 0.93, 128, probe_at, 2000).message
    assert "PROBE_SIZE = 128" in ex10.enlarged_probe("higher", ..., 128, probe_at, 2000).message
    assert "PROBE_SIZE is 64" in ex10.enlarged_probe("higher", 0.90, 64, probe_at, 2000).message
    assert "at 64 px" in ex10.enlarged_probe("higher", 0.90, 128, probe_at, 2000).message
    stale = ex10.enlarged_probe("higher", 0.95, 128, probe_at, 2000)
    assert not stale and "0.930" not in stale.message  # the check does not give the figure away
    assert not ex10.enlarged_probe("higher", "a lot", 128, probe_at, 2000)  # feedback, not a crash


CLASSES = ["crop", "forest", "river", "sea"]
COUNTS = np.array([[50, 1, 0, 0],
                   [2, 47, 0, 1],
                   [0, 0, 45, 6],
                   [0, 0, 3, 48]])  # river <-> sea: 9 both ways, the most


def test_ex10_confused_pair_ranks_without_naming_the_answer():
    right = ex10.confused_pair({"sea", "river"}, COUNTS, CLASSES)
    assert right and "9 times" in right.message
    assert ex10.confused_pair(["river", "sea"], COUNTS, CLASSES)  # any collection of two names
    wrong = ex10.confused_pair({"crop", "forest"}, COUNTS, CLASSES)
    assert not wrong and "3 times, rank 2 of 6" in wrong.message and "9 times" in wrong.message
    assert "river" not in wrong.message and "sea" not in wrong.message
    assert "no prediction yet" in ex10.confused_pair(..., COUNTS, CLASSES).message
    assert "not a class" in ex10.confused_pair({"crop", "desert"}, COUNTS, CLASSES).message
    assert "set of strings" in ex10.confused_pair("river", COUNTS, CLASSES).message
    assert "two different" in ex10.confused_pair({"river"}, COUNTS, CLASSES).message


def _recall_right(counts):
    present = counts.sum(axis=1)
    return np.divide(np.diag(counts), present, out=np.zeros(len(counts)), where=present > 0)


def test_ex10_per_class_recall_agrees_with_sklearn_and_names_each_mistake():
    assert ex10.per_class_recall(_recall_right)
    assert ex10.per_class_recall(lambda c: list(_recall_right(c)))  # a list is fine too
    for wrong, words in [(lambda c: np.diag(c) / np.maximum(c.sum(axis=0), 1), "precision"),
                         (lambda c: np.diag(c) / c.sum(), "all the images"),
                         (lambda c: np.diag(c), "counts of hits"),
                         (lambda c: np.diag(c) / c.sum(axis=1), "NaN")]:
        with np.errstate(invalid="ignore"):  # the last one divides 0 by 0 on purpose
            feedback = ex10.per_class_recall(wrong)
        assert not feedback and words in feedback.message, feedback.message
    assert "not a function" in ex10.per_class_recall(...).message
    assert "returned None" in ex10.per_class_recall(lambda c: None).message


# ----- notebook 11 ---------------------------------------------------------------------------

def test_ex11_winner_at_one_label_judges_paired_draws():
    nearest_mean = np.array([0.70, 0.66, 0.72, 0.61, 0.69, 0.65])
    probe = nearest_mean - np.array([0.20, 0.15, 0.18, 0.12, 0.22, 0.17])
    right = ex11.winner_at_one_label("nearest class mean", nearest_mean, probe)
    assert right and "ahead in 6 of 6 draws" in right.message
    wrong = ex11.winner_at_one_label("probe", nearest_mean, probe)
    assert not wrong and "'nearest class mean'" in wrong.message and "you predicted 'probe'" in wrong.message
    assert ex11.winner_at_one_label("probe", probe, nearest_mean)
    # a mean difference within two standard errors of the paired differences is a tie
    wobbly = nearest_mean + np.array([0.03, -0.04, 0.02, -0.03, 0.01, 0.0])
    assert ex11.winner_at_one_label("tie", wobbly, nearest_mean)
    assert not ex11.winner_at_one_label("nearest class mean", wobbly, nearest_mean)


def test_ex11_winner_at_one_label_names_each_slip():
    assert "no prediction yet" in ex11.winner_at_one_label(..., [0.7, 0.6], [0.5, 0.4]).message
    assert "one of" in ex11.winner_at_one_label("NCM", [0.7, 0.6], [0.5, 0.4]).message
    assert not ex11.winner_at_one_label("probe", "high", [0.5, 0.4])  # feedback, not a crash


def test_ex11_views_measures_again_and_judges_against_the_noise():
    probe_at, calls = _probe_at({1: 0.808, 8: 0.930})
    right = ex11.views_at_five_labels("higher", 0.930, 8, probe_at, 360)
    assert right and "+12.2 points" in right.message and set(calls) == {1, 8}
    wrong = ex11.views_at_five_labels("same", 0.930, 8, probe_at, 360)
    assert not wrong and "'higher'" in wrong.message
    probe_at, _ = _probe_at({1: 0.900, 8: 0.910})  # within the noise of 360 test images
    assert ex11.views_at_five_labels("same", 0.910, 8, probe_at, 360)
    assert not ex11.views_at_five_labels("higher", 0.910, 8, probe_at, 360)


def test_ex11_views_names_each_slip_without_the_figure():
    probe_at, _ = _probe_at({1: 0.808, 8: 0.930})
    assert "no prediction yet" in ex11.views_at_five_labels(..., 0.93, 8, probe_at, 360).message
    assert "VIEWS = 8" in ex11.views_at_five_labels("higher", ..., 8, probe_at, 360).message
    assert "VIEWS is 1" in ex11.views_at_five_labels("higher", 0.808, 1, probe_at, 360).message
    assert "on one view" in ex11.views_at_five_labels("higher", 0.808, 8, probe_at, 360).message
    stale = ex11.views_at_five_labels("higher", 0.95, 8, probe_at, 360)
    assert not stale and "0.930" not in stale.message
    assert not ex11.views_at_five_labels("higher", "a lot", 8, probe_at, 360)


def _referral_right(confidence, correct, max_error):
    order = np.argsort(-confidence)
    error = np.cumsum(~correct[order]) / np.arange(1, len(order) + 1)
    return confidence[order][np.flatnonzero(error <= max_error)[-1]]


def _referral_by_loop(confidence, correct, max_error):
    best = None
    for t in sorted(confidence, reverse=True):
        accepted = confidence >= t
        if np.mean(~correct[accepted]) <= max_error:
            best = t
    return best


def test_ex11_referral_threshold_accepts_what_the_reference_accepts():
    assert ex11.referral_threshold(_referral_right)
    assert ex11.referral_threshold(_referral_by_loop)
    # a threshold halfway to the next confidence accepts the same images: also right
    assert ex11.referral_threshold(lambda c, ok, e: _referral_right(c, ok, e) - 1e-9)


def _first_break_by_loop(confidence, correct, max_error):
    last = None
    for t in sorted(confidence, reverse=True):
        if np.mean(~correct[confidence >= t]) > max_error:
            break
        last = t
    return last


def test_ex11_referral_threshold_names_each_mistake():
    for wrong, words in [
        (lambda c, ok, e: np.sort(c)[::-1][np.flatnonzero(np.cumsum(~ok[np.argsort(-c)]) / len(c) <= e)[-1]],
         "divided the mistakes by all"),
        (lambda c, ok, e: np.quantile(c, e), "fixed share"),
        (lambda c, ok, e: np.max(c), "only the most confident"),
        (_first_break_by_loop, "stopped at the first threshold"),
    ]:
        feedback = ex11.referral_threshold(wrong)
        assert not feedback and words in feedback.message, feedback.message
    assert "not a function" in ex11.referral_threshold(...).message
    assert "returned None" in ex11.referral_threshold(lambda c, ok, e: None).message
    assert not ex11.referral_threshold(lambda c, ok, e: 1 / 0)  # feedback, not a traceback


def _accumulate(model, micro_batches, optimizer):
    optimizer.zero_grad()
    for X, y in micro_batches:
        (torch.nn.functional.cross_entropy(model(X), y) / len(micro_batches)).backward()
    optimizer.step()


def test_ex15_accumulation_names_each_mistake():
    assert ex15.accumulation(_accumulate)
    for wrong, diagnosis in ((ex15._nothing, "did not change"), (ex15._not_divided, "divide"),
                             (ex15._step_each, "one step per micro-batch"),
                             (ex15._last_only, "zero_grad() inside the loop")):
        feedback = ex15.accumulation(wrong)
        assert not feedback and diagnosis in feedback.message, (wrong.__name__, feedback.message)
    assert "not a function" in ex15.accumulation(...).message

    def broken(model, micro_batches, optimizer):
        raise KeyError("oops")

    assert "raised KeyError" in ex15.accumulation(broken).message


def test_ex15_gap_with_four_replicas_recomputes_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    X, y = torch.randn(32, 3, 8, 8), torch.randint(0, 2, (32,))
    before = copy.deepcopy(model.state_dict())
    four, two = (ex15.batchnorm_gap(model, X, y, r) for r in (4, 2))
    assert four > two > 0.01  # smaller replicas: noisier statistics, a larger gap
    assert ex15.gap_with_four_replicas(four, model, X, y)
    assert "two replicas" in ex15.gap_with_four_replicas(two, model, X, y).message
    assert "holding its statistics" in ex15.gap_with_four_replicas(1e-7, model, X, y).message
    assert f"{four:.3f}" not in ex15.gap_with_four_replicas(2 * four, model, X, y).message
    assert not model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ----- notebook 12 ---------------------------------------------------------------------------

def test_ex12_probe_at_128_judges_against_the_noise():
    right = ex12.probe_at_128("higher", {32: 0.279, 64: 0.445, 128: 0.549}, 645)
    assert right and "+27.0 points" in right.message and "right" in right.message
    wrong = ex12.probe_at_128("same", {32: 0.279, 128: 0.549}, 645)
    assert not wrong and "'higher'" in wrong.message and "you predicted 'same'" in wrong.message
    assert ex12.probe_at_128("same", {32: 0.540, 128: 0.549}, 645)  # within 645 images' noise
    assert "no prediction yet" in ex12.probe_at_128(..., {32: 0.3, 128: 0.5}, 645).message
    assert "one of" in ex12.probe_at_128("better", {32: 0.3, 128: 0.5}, 645).message
    assert not ex12.probe_at_128("higher", {32: 0.3}, 645)  # feedback, not a crash


def test_ex12_flips_measures_again_and_judges_on_the_mirror_classes():
    pair_accuracy, calls = _probe_at({False: 0.967, True: 0.525})
    right = ex12.flips_in_training("lower", 0.525, True, pair_accuracy, 120)
    assert right and "-44.2 points" in right.message and set(calls) == {False, True}
    wrong = ex12.flips_in_training("same", 0.525, True, pair_accuracy, 120)
    assert not wrong and "'lower'" in wrong.message
    pair_accuracy, _ = _probe_at({False: 0.90, True: 0.92})  # within the noise of 120 images
    assert ex12.flips_in_training("same", 0.92, True, pair_accuracy, 120)


def test_ex12_flips_names_each_slip_without_the_figure():
    pair_accuracy, _ = _probe_at({False: 0.967, True: 0.525})
    assert "no prediction yet" in ex12.flips_in_training(..., 0.5, True, pair_accuracy, 120).message
    assert "FLIP = True" in ex12.flips_in_training("lower", ..., True, pair_accuracy, 120).message
    assert "FLIP is False" in ex12.flips_in_training("lower", 0.967, False, pair_accuracy, 120).message
    assert "without flips" in ex12.flips_in_training("lower", 0.967, True, pair_accuracy, 120).message
    stale = ex12.flips_in_training("lower", 0.6, True, pair_accuracy, 120)
    assert not stale and "0.525" not in stale.message
    assert not ex12.flips_in_training("lower", "a lot", True, pair_accuracy, 120)


def _mirror_right(X, y, same, mirror):
    shows = torch.tensor([k if k in same else mirror.get(k, -1) for k in y.tolist()])
    return X[shows >= 0].flip(3), shows[shows >= 0]


def _mirror_by_loop(X, y, same, mirror):
    images, labels = [], []
    for x, k in zip(X, y.tolist(), strict=True):
        if k in same or k in mirror:
            images.append(torch.flip(x, dims=[2]))  # one image: C x H x W
            labels.append(k if k in same else mirror[k])
    return torch.stack(images), labels


def test_ex12_mirror_examples_agrees_with_two_ways_of_writing_it():
    assert ex12.mirror_examples(_mirror_right)
    assert ex12.mirror_examples(_mirror_by_loop)  # a list of labels is fine too


def test_ex12_mirror_examples_names_each_mistake():
    def upside_down(X, y, same, mirror):  # flipped along the height, not the width
        images, labels = _mirror_right(X, y, same, mirror)
        return images.flip(3).flip(2), labels

    def kept(X, y, same, mirror):
        return _mirror_right(X, y, same, mirror)[0], y[torch.tensor([k in same or k in mirror for k in y.tolist()])]

    for wrong, words in [(upside_down, "upside down"), (kept, "keeps its old label"),
                         (lambda X, y, s, m: _mirror_right(X, y, set(), m), "own mirror image"),
                         (lambda X, y, s, m: _mirror_right(X, y, s, {}), "mirror pairs are missing"),
                         (lambda X, y, s, m: (X.flip(3), torch.tensor([m.get(k, k) for k in y.tolist()])),
                          "every image is mirrored"),
                         (lambda X, y, s, m: _mirror_right(X, y, s, m)[0], "return two things"),
                         (lambda X, y, s, m: (X[:1], y[:1]), "1 images came back"),
                         (lambda X, y, s, m: (_mirror_right(X, y, s, m)[0] + 1, _mirror_right(X, y, s, m)[1]),
                          "their images")]:
        feedback = ex12.mirror_examples(wrong)
        assert not feedback and words in feedback.message, feedback.message
    assert "not a function" in ex12.mirror_examples(...).message
    assert "returned None" in ex12.mirror_examples(lambda X, y, s, m: None).message


def test_ex12_mirror_examples_leaves_the_cases_alone():
    def vandal(X, y, same, mirror):
        X.zero_()
        same.clear()
        return _mirror_right(X, y, same, mirror)

    assert not ex12.mirror_examples(vandal)
    assert ex12.mirror_examples(_mirror_right)  # the reference was computed on untouched cases


# ----- notebook 13 ---------------------------------------------------------------------------

SPEED = {"resnet18": 47.7, "efficientnet_b0": 54.1}  # images per second, measured on 2 cores
FLOPS = {"resnet18": 1.814, "efficientnet_b0": 0.386}  # GFLOPs, torchvision's metadata


def test_ex13_flops_and_speed_is_right_within_a_factor_of_one_and_a_half():
    right = ex13.flops_and_speed(1.3, SPEED, FLOPS)
    assert right and "1.13 times" in right.message and "4.7 times fewer" in right.message
    assert ex13.flops_and_speed(0.8, SPEED, FLOPS)  # 1.13 / 0.8 < 1.5
    assert not ex13.flops_and_speed(0.7, SPEED, FLOPS)


def test_ex13_flops_and_speed_names_the_flops_guess_and_the_slips():
    flops_guess = ex13.flops_and_speed(4.5, SPEED, FLOPS)
    assert not flops_guess and "ratio of their FLOPs" in flops_guess.message
    assert "more than" in ex13.flops_and_speed(2.5, SPEED, FLOPS).message
    assert "less than" in ex13.flops_and_speed(0.3, SPEED, FLOPS).message
    assert "no prediction yet" in ex13.flops_and_speed(..., SPEED, FLOPS).message
    assert "positive" in ex13.flops_and_speed(-2, SPEED, FLOPS).message
    assert "positive" in ex13.flops_and_speed(0, SPEED, FLOPS).message
    assert "is a number" in ex13.flops_and_speed("faster", SPEED, FLOPS).message
    assert not ex13.flops_and_speed(2.0, {"resnet18": 47.7}, FLOPS)  # feedback, not a crash


def speed_at(batch):
    """Measured on 2 cores at 224 px: the small model keeps 29 % at batch 1, the large one 82 %."""
    return {1: {"mobilenet_v3_small": 136.4, "resnet50": 13.8},
            16: {"mobilenet_v3_small": 469.5, "resnet50": 16.8}}[batch]


def test_ex13_batch_of_one_judges_the_share_each_model_keeps():
    right = ex13.batch_of_one("mobilenet_v3_small", 1, speed_at, 16)
    assert right and "29 %" in right.message and "82 %" in right.message
    wrong = ex13.batch_of_one("resnet50", 1, speed_at, 16)
    assert not wrong and "you predicted 'resnet50'" in wrong.message

    def reversed_speeds(batch):
        return {1: {"mobilenet_v3_small": 400.0, "resnet50": 5.0},
                16: {"mobilenet_v3_small": 469.5, "resnet50": 16.8}}[batch]

    assert ex13.batch_of_one("resnet50", 1, reversed_speeds, 16)  # judged on the measurement


def test_ex13_batch_of_one_asks_for_the_change_before_judging():
    assert "no prediction yet" in ex13.batch_of_one(..., 1, speed_at, 16).message
    assert "one of" in ex13.batch_of_one("vit_b_16", 1, speed_at, 16).message
    not_changed = ex13.batch_of_one("resnet50", 16, speed_at, 16)
    assert not not_changed and "SPEED_BATCH is 16" in not_changed.message
    assert "%" not in not_changed.message  # the measurement stays hidden until the learner runs it
    assert "SPEED_BATCH = 1" in ex13.batch_of_one("resnet50", ..., speed_at, 16).message


def front_by_sorting(speed, accuracy):
    """Another way to the front: fastest first, keep each model more accurate than all before."""
    front, best = [], float("-inf")
    for name in sorted(speed, key=lambda n: (-speed[n], -accuracy[n])):
        if accuracy[name] > best or (front and (speed[name], accuracy[name]) == (speed[front[-1]], accuracy[front[-1]])):
            front.append(name)
            best = max(best, accuracy[name])
    return front


def front_by_pairs(speed, accuracy):
    return {a for a in speed
            if not any(speed[b] >= speed[a] and accuracy[b] >= accuracy[a] and (speed[b], accuracy[b]) != (speed[a], accuracy[a])
                       for b in speed)}


def test_ex13_pareto_front_agrees_with_two_ways_of_writing_it():
    assert ex13.pareto_front(front_by_sorting)
    assert ex13.pareto_front(front_by_pairs)  # a set is fine too


def test_ex13_pareto_front_names_each_mistake():
    def beaten(speed, accuracy):
        return set(speed) - front_by_pairs(speed, accuracy)

    def strict(speed, accuracy):
        return [a for a in speed if not any(speed[b] > speed[a] or accuracy[b] > accuracy[a] for b in speed if b != a)]

    def ties_vanish(speed, accuracy):
        return [a for a in speed if not any(speed[b] >= speed[a] and accuracy[b] >= accuracy[a] for b in speed if b != a)]

    for wrong, words in [(beaten, "*are* beaten"),
                         (lambda s, a: [max(s, key=s.get)], "only the fastest"),
                         (lambda s, a: [max(a, key=a.get)], "only the most accurate"),
                         (lambda s, a: {max(s, key=s.get), max(a, key=a.get)}, "only the two ends"),
                         (strict, "*or* on accuracy"),
                         (ties_vanish, "identical models"),
                         (lambda s, a: ["zz"], "not models of the zoo"),
                         (lambda s, a: sorted(s), "models came back"),
                         (lambda s, a: "a", "of type str"),
                         (lambda s, a: 3, "of type int")]:
        feedback = ex13.pareto_front(wrong)
        assert not feedback and words in feedback.message, (words, feedback.message)
    assert "not a function" in ex13.pareto_front(...).message
    assert "returned None" in ex13.pareto_front(lambda s, a: None).message
    assert "raised KeyError" in ex13.pareto_front(lambda s, a: s["nope"]).message


def test_ex13_pareto_front_leaves_the_cases_alone():
    def vandal(speed, accuracy):
        speed.clear()
        return []

    assert not ex13.pareto_front(vandal)
    assert ex13.pareto_front(front_by_pairs)  # the reference was computed on untouched cases
