"""Real data for every notebook: fetch, verify, load, split, transform, DataLoaders (notebook 00).

    ds = cu.data.load("eurosat", "train", transform=cu.data.make_transform("resnet18", train=True,
                                                                             dataset="eurosat"))
    loader = cu.data.make_loader(ds, batch_size=64, shuffle=True)

``load`` fetches first (data root, then mirror, then download; see ``store.py``), reads the
files with the standard loader named in the catalog, applies the catalog's split and, in fast
mode (``COURSE_FAST=1``), a small stratified subset. Every data set comes back with the same
attributes: ``.classes`` (names), ``.targets`` (ints), ``.indices`` (into the full loader).
The command line is ``python -m course_utils.data list | fetch NAME | verify | mirror DEST``.
"""

import os
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as _TorchDataset

from course_utils import catalog, env
from course_utils.data.store import (
    ChecksumError,
    DataUnavailable,
    UnsafeArchive,
    data_root,
    expected_sums,
    export_mirror,
    extract_safely,
    fetch,
    fingerprint,
    is_present,
    mirror_root,
    verify,
)

__all__ = [
    "ChecksumError", "CourseDataset", "DataUnavailable", "UnsafeArchive", "data_root",
    "expected_sums", "export_mirror", "extract_safely", "fetch", "fingerprint", "is_present", "load",
    "make_loader", "make_transform", "mirror_root", "safe_num_workers", "stratified_split",
    "stratified_subset", "status", "verify",
]

FAST_SUBSET_SEED = 0  # the fast-mode subset is the same images in every run and on every machine


# ----- splits and subsets --------------------------------------------------------------------

def _by_class(targets):
    targets = np.asarray(targets)
    return {int(c): np.flatnonzero(targets == c) for c in np.unique(targets)}


def stratified_split(targets, val_fraction, seed):
    """Seeded split keeping each class's share: ``val_fraction`` of every class goes to val."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for _, idx in sorted(_by_class(targets).items()):
        idx = rng.permutation(idx)
        n_val = int(round(len(idx) * val_fraction))
        val_idx += idx[:n_val].tolist()
        train_idx += idx[n_val:].tolist()
    return sorted(train_idx), sorted(val_idx)


def stratified_subset(targets, per_class, seed):
    """Seeded subset with at most ``per_class`` items of each class (fast mode, few-shot)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for _, idx in sorted(_by_class(targets).items()):
        chosen += rng.permutation(idx)[:per_class].tolist()
    return sorted(chosen)


# ----- one data set type, whatever the loader ------------------------------------------------

class CourseDataset(_TorchDataset):
    """A split of a catalog data set: ``.classes``, ``.targets`` and ``.indices`` into ``.base``."""

    def __init__(self, base, indices, targets, classes, transform=None, name="", split=""):
        self.base = base  # the standard loader's dataset, without a transform
        self.indices = [int(i) for i in indices]
        self.targets = [int(targets[i]) for i in self.indices]
        self.classes = list(classes)
        self.transform = transform
        self.name, self.split = name, split

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        image = self.base[self.indices[i]][0]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[i]

    @property
    def paths(self):
        """Image file of each item (None for MedMNIST, whose images live in one .npz)."""
        samples = getattr(self.base, "samples", None) or getattr(self.base, "_samples", None)
        return None if samples is None else [str(samples[i][0]) for i in self.indices]

    def __repr__(self):
        return (f"CourseDataset({self.name!r}, split={self.split!r}, {len(self)} images, "
                f"{len(self.classes)} classes)")


# Each reader returns (the standard loader's dataset, its targets, number of classes it found).

def _read_imagefolder(entry, split):
    from torchvision import datasets

    base = datasets.ImageFolder(data_root() / entry.folder / split)  # one folder per split
    return base, base.targets, len(base.classes)


def _read_imagefolder_seeded(entry, split):
    from torchvision import datasets

    base = datasets.ImageFolder(data_root() / entry.folder)  # one folder; the split is seeded
    return base, base.targets, len(base.classes)


def _read_eurosat(entry, split):
    from torchvision import datasets

    base = datasets.EuroSAT(data_root() / entry.folder)
    return base, base.targets, len(base.classes)


def _read_imagenette(entry, split):
    from torchvision import datasets

    base = datasets.Imagenette(data_root(), split=split, size="160px")
    return base, [t for _, t in base._samples], len(base.wnids)  # no public .targets


def _read_gtsrb(entry, split):
    from torchvision import datasets

    base = datasets.GTSRB(data_root(), split=split)
    targets = [t for _, t in base._samples]  # no public .targets
    return base, targets, len(set(targets))


def _read_medmnist(entry, split):
    import medmnist  # imported here: it creates ~/.medmnist on import

    info = medmnist.INFO[entry.name]
    loader = getattr(medmnist, info["python_class"])
    # as_rgb: three channels like every other loader, so one transform fits all.
    base = loader(split=split, root=str(data_root() / entry.folder), download=False, size=28,
                  as_rgb=True)
    return base, base.labels[:, 0].tolist(), len(info["label"])


READERS = {
    "imagefolder": _read_imagefolder,
    "imagefolder_seeded": _read_imagefolder_seeded,
    "eurosat": _read_eurosat,
    "imagenette": _read_imagenette,
    "gtsrb": _read_gtsrb,
    "medmnist": _read_medmnist,
}


def _split_indices(entry, split, targets):
    """Indices of `split`: all of them (official split) or the catalog's seeded holdout."""
    if not entry.holdout:
        return list(range(len(targets)))
    train_idx, test_idx = stratified_split(targets, entry.holdout, entry.split_seed)
    return train_idx if split == "train" else test_idx


def load(name, split, transform=None, fast=None):
    """A split of a catalog data set, fetched if needed; a small stratified subset in fast mode."""
    entry = catalog.get(name)
    if split not in entry.splits:
        raise ValueError(f"{name} has the splits {entry.splits}, not {split!r}")
    fetch(name)
    try:
        base, targets, n_found = READERS[entry.reader](entry, split)
    except (RuntimeError, FileNotFoundError) as err:  # the standard loaders' "not found"
        raise DataUnavailable(f"{name}: {data_root() / entry.folder} does not have the expected "
                              f"layout ({entry.layout}): {err}") from err
    if n_found != len(entry.classes):
        raise DataUnavailable(f"{name}: found {n_found} classes in {data_root() / entry.folder}, "
                              f"the catalog lists {len(entry.classes)} (layout: {entry.layout}).")
    indices = _split_indices(entry, split, targets)
    fast = env.is_fast() if fast is None else fast
    if fast:
        per_class = entry.fast_per_class[0 if split == "train" else 1]
        subset = stratified_subset([targets[i] for i in indices], per_class, FAST_SUBSET_SEED)
        indices = [indices[j] for j in subset]
    return CourseDataset(base, indices, targets, entry.classes, transform, name, split)


# ----- what is here ---------------------------------------------------------------------------

def _disk_mb(entry):
    """Megabytes a present data set takes, following links into a mirror."""
    folder = data_root() / entry.folder
    paths = [folder / m for m in entry.members] or [
        os.path.join(d, f) for d, _, files in os.walk(folder, followlinks=True) for f in files]
    return sum(os.path.getsize(p) for p in paths) / 1e6


def status():
    """One row per catalog data set: what it is, its size and license, and where it is (00)."""
    from course_utils.data.store import _mirror_source

    rows = []
    for name, entry in catalog.DATASETS.items():
        if is_present(name):
            first = data_root() / entry.folder / (entry.members[0] if entry.members else "")
            where = "present (mirror link)" if first.is_symlink() else "present"
            size = _disk_mb(entry)
        else:
            where = "in mirror (fetch links it)" if _mirror_source(entry) else "missing"
            size = entry.size_mb
        rows.append({"name": name, "status": where, "size_mb": round(size, 1),
                     "classes": len(entry.classes), "task": entry.task, "license": entry.license})
    return rows


# ----- transforms ----------------------------------------------------------------------------

_PHOTOS = catalog.Dataset(name="", title="", task="", classes=[], splits=(), split_policy="",
                          folder="", loader="", reader="", layout="")  # the default policy


def make_transform(backbone, train, dataset=None, size=None):
    """Preprocessing that matches the backbone's statistics and the data set's domain (04)."""
    from torchvision import transforms as T

    if isinstance(backbone, str):
        from course_utils import models

        backbone = models.spec(backbone)  # anything with .mean, .std, .input_size works too
    size = size or backbone.input_size
    policy = catalog.get(dataset) if dataset else _PHOTOS
    steps = [T.Grayscale(num_output_channels=3)] if policy.grayscale else []
    if train:
        if policy.rotate:  # before the crop, so the crop trims the black corners
            steps.append(T.RandomRotation(policy.rotate, interpolation=T.InterpolationMode.BILINEAR))
        steps.append(T.RandomResizedCrop(size, scale=policy.crop_scale))
        steps += [T.RandomHorizontalFlip()] if policy.hflip else []
        steps += [T.RandomVerticalFlip()] if policy.vflip else []
    elif policy.center_crop:
        steps += [T.Resize(round(size / 0.875)), T.CenterCrop(size)]  # ImageNet's 256 -> 224
    else:
        steps.append(T.Resize((size, size)))  # small images: a crop would cut off the sign or lesion
    steps += [T.ToTensor(), T.Normalize(backbone.mean, backbone.std)]
    return T.Compose(steps)


# ----- DataLoaders ---------------------------------------------------------------------------

def safe_num_workers():
    """Worker processes that work everywhere: 0 on Windows/macOS and in fast mode, else up to 4."""
    # Windows and macOS start workers by "spawn", which re-imports the notebook's code: classes
    # defined in a notebook then fail to unpickle, and each epoch pays seconds of start-up.
    # Linux (Colab included) forks cheaply. Fast mode's tiny subsets don't repay the start-up.
    if sys.platform != "linux" or env.is_fast():
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))  # leave a core for the training loop


def make_loader(dataset, batch_size, shuffle, device=None, seed=0, num_workers=None):
    """A DataLoader that is safe on every platform, seeded, pinning memory only for CUDA."""
    device = torch.device(device) if device is not None else env.get_device()
    workers = safe_num_workers() if num_workers is None else num_workers
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
        pin_memory=device.type == "cuda",  # pinned memory only speeds up copies to a CUDA GPU
        generator=torch.Generator().manual_seed(seed), worker_init_fn=env.seed_worker,
        persistent_workers=workers > 0,
    )
