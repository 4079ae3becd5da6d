"""Small data sets held in memory as one tensor: a small CNN, and its training loop (notebooks 01, 03).

Notebook 01 writes all of this out by hand; later notebooks call it:

    X, y = cu.inmemory.as_tensors(dataset)              # [N, 3, H, W] channels_last, labels
    model = cu.train.prepare(cu.inmemory.small_cnn(num_classes=10), device)   # 98,970 weights
    steps = cu.inmemory.train(model, X, y, lr=3e-3, epochs=15, min_steps=150, seed=0)
    cu.inmemory.test_accuracy(model, X_test, y_test)
    features = cu.inmemory.outputs(model[:-1], X).numpy()  # the body's features, eval mode
    views = cu.inmemory.dihedral_views(X)                 # 8 flips and quarter turns of X

``train`` draws every batch at random, with replacement (or, given ``weights``, each image in
proportion to its weight), flips and turns each image by a random multiple of 90 degrees, and
takes AdamW steps under a one-cycle learning-rate schedule. Flips and quarter turns keep the
class of an overhead image (a satellite view has no "up"), not of a photo of an upright thing or
of a traffic sign.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import train as training

BATCH = 32


def as_tensors(dataset):
    """Every image of a data set in one tensor ``[N, 3, H, W]`` (channels_last: faster
    convolutions on CPU and GPU), and its labels. Any data set of (image, label) pairs will do,
    a ``torch.utils.data.Subset`` of chosen images too: the labels come with the images."""
    images, labels = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    X = torch.stack(images).contiguous(memory_format=torch.channels_last)
    return X, torch.as_tensor(labels)


def small_cnn(num_classes=10, width=16):
    """Four blocks of a 3 x 3 convolution, BatchNorm, ReLU and a 2 x 2 max-pool, global average
    pooling and a linear layer (98,970 weights for ten classes at width 16). ``model[:-1]`` is
    its body (image to ``8 * width`` features), ``model[-1]`` its head."""
    layers, channels = [], 3
    for out in (width, 2 * width, 4 * width, 8 * width):
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                   nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(channels, num_classes))


def flip_rotate(X, generator):
    """Each image flipped left-right or not, then rotated by 0, 90, 180 or 270 degrees."""
    flip = torch.rand(len(X), generator=generator) < 0.5
    X = torch.where(flip[:, None, None, None], X.flip(3), X)
    turns = torch.randint(4, (len(X),), generator=generator)
    X = torch.stack([torch.rot90(x, int(k), dims=(1, 2)) for x, k in zip(X, turns, strict=True)])
    return X.contiguous(memory_format=torch.channels_last)


def dihedral_views(X):
    """The 8 flips and quarter turns of every image in X ([N, 3, H, W]), the symmetries of a
    square, as a list of 8 tensors like X: the 4 turns of X, then the 4 turns of its mirror image.
    Notebook 10 writes it out; 11 calls it. Averaging a model's outputs over the views is
    test-time augmentation, for images that have no "up" (satellite patches, steel surfaces)."""
    return [torch.rot90(V, k, dims=(2, 3)).contiguous(memory_format=torch.channels_last)
            for V in (X, X.flip(3)) for k in range(4)]


def train(model, X, y, lr, epochs, min_steps, seed, weights=None, batch_size=BATCH):
    """Train ``model`` on the images ``X`` (on the CPU) with labels ``y``; returns the steps taken.

    ``epochs`` passes over the images or ``min_steps`` steps, whichever is more, so that a run on
    a few images still gets enough steps. ``weights`` (one per image, at least 0) makes an image
    drawn in proportion to its weight, which in expectation is the loss weighted per image;
    without them every image is equally likely. The model's frozen weights stay as they are."""
    generator = torch.Generator().manual_seed(seed)
    if weights is not None:
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (len(X),) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("weights: one number per image, none negative, not all zero")
    steps = max(min_steps, math.ceil(epochs * len(X) / batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                   pct_start=0.2)
    device = next(model.parameters()).device
    model.train()
    for _ in range(steps):
        if weights is None:
            batch = torch.randint(len(X), (batch_size,), generator=generator)
        else:
            batch = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
        images, labels = training.to_device(flip_rotate(X[batch], generator), y[batch], device)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return steps


@torch.no_grad()
def outputs(model, X, batch_size=256):
    """The model's outputs for every image (class scores, or features for a body), in eval
    mode, as one CPU tensor."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(x.to(device)).float().cpu() for x in X.split(batch_size)])


def test_accuracy(model, X, y):
    """Share of the images ``X`` whose largest output is their label ``y``."""
    return training.accuracy(outputs(model, X), y)
