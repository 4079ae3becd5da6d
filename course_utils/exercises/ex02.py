"""Exercises of notebook 02 (domains made visible, and transfer's relatives)."""

import copy

import torch
from torch import nn

from course_utils import checks


@checks.never_raises
def farthest_prediction(prediction, gaps):
    """Exercise 1 (predict first): which data set is farthest from the source.

    ``gaps`` maps each target data set's name to its measured distance from the source (the
    notebook's MMD² table, a pandas Series or a dict); the learner predicted a name before the
    measurement ran. The feedback compares the two, as ``check_prediction`` does for numbers."""
    name = "the farthest data set"
    if checks.unanswered(prediction):
        return checks.Feedback(False, "no prediction yet: write down your guess before you run "
                                      "the measurement.", name)
    gaps = dict(gaps)
    if prediction not in gaps:
        return checks.Feedback(False, f"{prediction!r} is not one of the data sets measured; "
                                      f"write one of {sorted(gaps)} (as a string).", name)
    ranking = sorted(gaps, key=gaps.get, reverse=True)
    rank = ranking.index(prediction) + 1
    why = ("Far, to these features, means unlike the colour photos of objects ImageNet taught "
           "them: the four farthest here are grey images, textures without objects, or "
           "nearly one hue.")
    if rank == 1:
        return checks.Feedback(True, f"right: {prediction} is the farthest of the {len(ranking)} "
                                     f"in the table above. {why}", name)
    return checks.Feedback(False, f"you picked {prediction}, which the table above puts "
                                  f"{rank} of {len(ranking)} (1 = farthest), and {ranking[-1]} "
                                  f"nearest. {why} Which of these did your pick lack?", name)


def _statistics(model):
    """Every BatchNorm layer's running mean and variance, concatenated."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return torch.cat([torch.cat([m.running_mean, m.running_var]) for m in layers]).detach().cpu()


def _weights(model):
    return torch.cat([p.detach().flatten().cpu() for p in model.parameters()])


def _reference(model, X):
    """AdaBN by the library: torch's ``update_bn`` over all of ``X`` as one batch."""
    adapted = copy.deepcopy(model)
    torch.optim.swa_utils.update_bn([X], adapted)
    return adapted.eval()


def _moving_average(model, X):
    """The mistake of keeping the running statistics and momentum: one step of a moving
    average, 90 % source and 10 % target."""
    adapted = copy.deepcopy(model).train()
    with torch.no_grad():
        adapted(X)
    return adapted.eval()


def _same(a, b, rtol):
    return torch.allclose(a, b, rtol=rtol, atol=1e-6)


def _near(a, b, share):
    """``a`` within ``share`` of ``b``, measured on the whole vector (its length)."""
    return float((a - b).norm()) <= share * float(b.norm())


@checks.never_raises
def adapt_batchnorm(fn, model, X):
    """Exercise 2: the learner's ``adapt_batchnorm(model, X)`` (AdaBN), run on copies.

    The reference re-estimates every BatchNorm layer's statistics on ``X`` with
    ``torch.optim.swa_utils.update_bn``; the learner's copy must hold the same statistics (within
    5 % of their length, so that passing the images in a few batches also counts), the same weights, and be in
    eval mode, and the model it was given must be unchanged."""
    name = "adapt_batchnorm"
    if checks.unanswered(fn) or not callable(fn):
        return checks.Feedback(False, "not a function yet: define it with `def` and pass it in.",
                               name)
    given = copy.deepcopy(model).eval()
    before_stats, before_weights = _statistics(given), _weights(given)
    adapted, failed = checks.call_learner(fn, (given, X.clone()), name)
    if failed is not None:
        return failed
    if not isinstance(adapted, nn.Module):
        return checks.Feedback(False, f"returned a {type(adapted).__name__}, not a model.", name)
    if adapted is given or not _same(_statistics(given), before_stats, 0):
        return checks.Feedback(False, "it changed the model it was given. Adapt a copy "
                                      "(copy.deepcopy) and return that: the source model is "
                                      "still needed, for the source images.", name)
    if not _same(_weights(adapted), before_weights, 1e-6):
        return checks.Feedback(False, "the weights changed. AdaBN takes no optimizer step and "
                                      "computes no gradient: only the BatchNorm statistics "
                                      "(running_mean, running_var) change.", name)
    got = _statistics(adapted)
    if _same(got, before_stats, 1e-6):
        return checks.Feedback(False, "the BatchNorm statistics are still the source's. A "
                                      "forward pass updates them only in train mode: call "
                                      ".train() on the copy before running the images through "
                                      "it.", name)
    if _same(got, _statistics(_moving_average(model, X)), 1e-3):
        return checks.Feedback(False, "the statistics are 90 % the source's and 10 % the "
                                      "target's: BatchNorm kept its old values and its momentum "
                                      "of 0.1. Call reset_running_stats() on each BatchNorm "
                                      "layer and set its momentum to None (a plain average), "
                                      "then run the images.", name)
    if not _near(got, _statistics(_reference(model, X)), 0.05):
        return checks.Feedback(False, "the statistics changed, but they are not the target "
                                      "images' mean and variance. Reset each BatchNorm layer, "
                                      "set momentum to None, and run all the images of X "
                                      "through the copy in train mode, without gradients.",
                               name)
    if adapted.training:
        return checks.Feedback(False, "the statistics are right, but the copy is still in train "
                                      "mode: it would normalise each test batch by its own "
                                      "statistics. Return it in eval mode (.eval()).", name)
    return checks.Feedback(True, "correct: the copy normalises with the target images' own "
                                 "statistics, and every weight is the source model's.", name)


@checks.never_raises
def few_target_images(accuracy, n_images, run, all_images, spread):
    """Exercise 3 (change the code): AdaBN on ``n_images`` unlabelled target images.

    ``run(n)`` is the notebook's cached, deterministic AdaBN of seed 0 on ``n`` images, giving
    the dark test accuracy; ``all_images`` the number the experiment used; ``spread`` the
    standard deviation of AdaBN's accuracy across seeds."""
    name = "AdaBN on a few target images"
    if checks.unanswered(accuracy) or checks.unanswered(n_images):
        return checks.Feedback(False, checks.NOT_ANSWERED, name)
    n_images = int(n_images)
    if n_images >= all_images:
        return checks.Feedback(False, f"N_ADAPT is still {n_images}, all the target images. "
                                      "Set it to 16, run the cell again, and copy the accuracy "
                                      "it prints.", name)
    if n_images > 32:
        return checks.Feedback(False, f"N_ADAPT is {n_images}; the question is about a handful "
                                      "of images: set it to 16 (anything from 2 to 32 is "
                                      "fine).", name)
    if n_images < 2:
        return checks.Feedback(False, "one image has no variance to measure: BatchNorm needs "
                                      "at least two. Set N_ADAPT to 16.", name)
    measured = run(n_images)
    if abs(float(accuracy) - measured) > 1e-6:
        hint = ("that is the accuracy with all the target images: the run still used them."
                if abs(float(accuracy) - run(all_images)) <= 1e-6 else
                f"this is not what AdaBN on {n_images} images measures here. Did you run the "
                "cell again after changing N_ADAPT, and copy its accuracy?")
        return checks.Feedback(False, hint, name)
    full = run(all_images)
    change = measured - full
    text = (f"correct: with {n_images} unlabelled target images, {measured:.3f}; with all "
            f"{all_images}, {full:.3f} ({100 * change:+.1f} points). ")
    if abs(change) <= 2 * spread:
        text += (f"Within twice the spread of AdaBN across seeds ({100 * spread:.1f} points): a "
                 "handful of images gives BatchNorm most of what it needs, a mean and a "
                 "variance per channel, which many pixels of few images already estimate.")
    else:
        text += (f"Beyond twice the spread of AdaBN across seeds ({100 * spread:.1f} points): "
                 f"{n_images} images estimate the statistics too roughly here. Try 64 or 128: "
                 "where does it stop mattering?")
    return checks.Feedback(True, text, name)
