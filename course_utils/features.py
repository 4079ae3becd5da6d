"""Embed a data set once with a frozen backbone and keep the features on disk (notebook 01 writes
the embedding by hand; 08 and 15 call this module).

A linear probe or a new head then trains on ``X`` in seconds instead of running the backbone
every epoch. The cache lives in ``cu.data.data_root() / "features"`` and is keyed by everything
that changes the numbers: data set, split, backbone and its weights, the transform, the subset
of images, the data files themselves, the device and precision that computed them and the
versions of the libraries involved. Change any of them and the features are recomputed; a stale
file is never read back.

    X, y = cu.features.cached_features("eurosat", "train", "efficientnet_lite0")
"""

import hashlib
import importlib.metadata
import json
import os
import pickle
import tempfile

import torch
from torchvision import transforms as T
from tqdm import tqdm  # plain text bar: no widget state stored in the notebooks

from course_utils import data, env, models

CACHE_FORMAT = 2  # bump when the stored layout changes, so old files are not read back


def embed(model, dataset, batch_size=64, device=None, num_workers=None, mirror=False,
          progress=True):
    """Features of every image as ``(X [N, D] float32, y [N] long)``; the model runs frozen.

    The features are the pooled ones that enter the head (``cu.models.forward_features``), so a
    model that still has its classifier gives features, not class scores. ``mirror=True`` also
    embeds each image flipped left-right, from the same decoded batch, and appends those
    features (and their labels) after the originals: ``2N`` rows, a cheap augmentation for a
    linear probe (used by the fine-tune command). The model is left where it was, in the mode
    it was in. ``progress=False`` hides the progress bar.
    """
    device = torch.device(device) if device is not None else env.get_device()
    was_training, was_on = model.training, _device_of(model)
    model.eval().to(device)  # eval: BatchNorm uses its running statistics, dropout is off
    loader = data.make_loader(dataset, batch_size, shuffle=False, device=device,
                              num_workers=num_workers)
    features, flipped, labels = [], [], []
    try:
        with torch.no_grad(), env.autocast(device):
            for X, y in tqdm(loader, desc="embedding", unit="batch", mininterval=2,
                             disable=not progress):
                X = X.to(device, non_blocking=True)
                if X.dim() == 4 and env.uses_channels_last(device):
                    X = X.contiguous(memory_format=torch.channels_last)
                features.append(models.forward_features(model, X).float().cpu())
                if mirror:
                    flipped.append(models.forward_features(model, X.flip(3)).float().cpu())
                labels.append(torch.as_tensor(y))
    finally:
        model.train(was_training).to(was_on)  # leave the learner's model as we found it
    if not features:
        raise ValueError("embed: the data set is empty")
    y = torch.cat(labels).long()
    if mirror:
        return torch.cat(features + flipped), torch.cat([y, y])
    return torch.cat(features), y


def _device_of(model):
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def weights_digest(model):
    """A short hash of a model's weights: a fine-tuned model never reuses its parent's cache."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:12]


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def describe_transform(transform):
    """A text that changes when the transform's numbers would: its repr, step by step.

    A step whose repr is Python's default (``<Foo object at 0x7f...>``, a new address in every
    run) is described by its class and a hash of its pickled state instead; a ``Lambda`` by its
    function's code. Without this such a transform would never hit the cache."""
    steps = getattr(transform, "transforms", None)
    if isinstance(steps, list | tuple):
        inner = ", ".join(describe_transform(step) for step in steps)
        return f"{type(transform).__name__}([{inner}])"
    if isinstance(transform, T.Lambda):
        code = transform.lambd.__code__
        return f"Lambda({code.co_name}, {hashlib.sha256(code.co_code).hexdigest()[:12]}, " \
               f"{code.co_consts!r})"
    if type(transform).__repr__ is object.__repr__:
        state = hashlib.sha256(pickle.dumps(transform)).hexdigest()[:12]
        return f"{type(transform).__module__}.{type(transform).__qualname__}({state})"
    return repr(transform)


def library_versions():
    """Versions of the libraries that decode, resize and embed images: new ones may change features."""
    return {name: importlib.metadata.version(name)
            for name in ("torch", "torchvision", "timm", "pillow", "numpy")}


def cache_key(dataset, backbone, model_id, transform, device):
    """Everything that changes the features of a loaded data set, as a dict."""
    device = torch.device(device)
    return {
        "format": CACHE_FORMAT,
        "dataset": dataset.name,
        "split": dataset.split,
        "backbone": backbone,
        "weights": model_id,
        "transform": describe_transform(transform),
        "indices": _digest(dataset.indices)[:16],
        "files": data.fingerprint(dataset.name),
        # embed runs 16-bit on CUDA (autocast) and float32 elsewhere; kernels differ by device.
        "device": device.type,
        "precision": str(env.amp_dtype(device) or torch.float32).removeprefix("torch."),
        "versions": library_versions(),
    }


def cache_path(key):
    """Where the features for a cache key live: features/<data set>/<split>-<backbone>-<hash>.pt."""
    name = f"{key['split']}-{key['backbone']}-{_digest(key)[:16]}.pt"
    return data.data_root() / "features" / key["dataset"] / name


def _read(path, key):
    """(X, y) from a cache file whose stored key matches, else None."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged file is a miss, not an error: it gets rewritten
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    return stored["X"], stored["y"]


def _write(path, key, X, y):
    """Save atomically: a crash mid-write never leaves a file that loads as valid features."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    try:
        torch.save({"key": key, "X": X, "y": y}, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def cached_features(name, split, backbone, transform=None, fast=None, batch_size=64,
                    device=None, model=None, model_id=None):
    """``(X, y)`` of a data set split embedded by a frozen backbone; computed once, then read back.

    ``model`` / ``model_id`` replace ``cu.models.create(backbone, num_classes=0)`` and its weights
    id (say, for a fine-tuned model); without ``model_id`` a passed model is keyed by its weights.
    """
    device = torch.device(device) if device is not None else env.get_device()
    if transform is None:
        transform = data.make_transform(backbone, train=False, dataset=name)
    dataset = data.load(name, split, transform=transform, fast=fast)
    if model_id is None:
        model_id = models.weights_id(backbone) if model is None else weights_digest(model)
    key = cache_key(dataset, backbone, model_id, transform, device)
    path = cache_path(key)
    cached = _read(path, key)
    if cached is not None:
        return cached
    if model is None:  # built only on a miss: a hit costs no model at all
        model = models.create(backbone, num_classes=0)
    X, y = embed(model, dataset, batch_size=batch_size, device=device)
    _write(path, key, X, y)
    return X, y
