"""Pictures for the notebooks: images with labels, a training history, a confusion matrix.

Figures stay small (a notebook stores them as PNG) and every function returns its figure.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch


def normalization_of(transform):
    """``(mean, std)`` of the ``Normalize`` step inside a (composed) transform, or None."""
    from torchvision import transforms as T

    steps = getattr(transform, "transforms", [transform])
    for step in steps:
        if isinstance(step, T.Normalize):
            return step.mean, step.std
        found = normalization_of(step) if hasattr(step, "transforms") else None
        if found:
            return found
    return None


def to_image(x, mean=None, std=None):
    """A ``[3, H, W]`` tensor (normalised with ``mean``/``std``) as an ``[H, W, 3]`` array in [0, 1]."""
    x = x.detach().float().cpu()
    if mean is not None:
        x = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def show_images(images, titles=None, ncols=8, size=1.3, mean=None, std=None):
    """A grid of images (tensors, PIL images or arrays) with a title under each."""
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2 * nrows),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = images[i]
        ax.imshow(to_image(image, mean, std) if isinstance(image, torch.Tensor) else image)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def show_batch(dataset, n=8, seed=0, ncols=8, size=1.3):
    """``n`` random items of a labelled image dataset, as the model sees them (after its transform)."""
    picks = np.random.default_rng(seed).choice(len(dataset), size=min(n, len(dataset)), replace=False)
    items = [dataset[int(i)] for i in picks]
    stats = normalization_of(getattr(dataset, "transform", None)) or (None, None)
    classes = getattr(dataset, "classes", None)
    titles = [classes[y] if classes else y for _, y in items]
    return show_images([x for x, _ in items], titles, ncols, size, *stats)


def history(history, size=(8, 2.6)):
    """Loss and accuracy per epoch of a ``cu.train.History``; a dotted line where a stage begins."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=size)
    epochs = history["epoch"]
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = history[f"{split}_{metric}"]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, markersize=3, label=split)
        stages = history["stage"]
        for i in range(1, len(stages)):
            if stages[i] != stages[i - 1]:
                ax.axvline(epochs[i] - 0.5, color="gray", linestyle=":")
                ax.text(epochs[i] - 0.4, ax.get_ylim()[1], stages[i], fontsize=7, va="top")
        ax.set_xlabel("epoch")
        ax.set_title("loss" if metric == "loss" else "accuracy", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, classes, size=2.8):
    """Counts of (true class, predicted class), the diagonal being the correct predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            color = "white" if counts[i, j] > counts.max() / 2 else "black"
            ax.text(j, i, counts[i, j], ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig
