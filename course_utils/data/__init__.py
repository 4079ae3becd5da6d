"""Real data for every notebook: fetch, verify, load, split, transform, DataLoaders (notebook 00).

    ds = cu.data.load("eurosat", "train", transform=cu.data.make_transform("resnet18", train=True,
                                                                             dataset="eurosat"))
    loader = cu.data.make_loader(ds, batch_size=64, shuffle=True)

``load`` fetches first (data root, then mirror, then download; see ``store.py``), reads the
files with the standard loader named in the catalog, applies the catalog's split and, in fast
mode (``COURSE_FAST=1``), a small stratified subset. Every data set comes back with the same
attributes: ``.classes`` (names), ``.targets`` (ints), ``.indices`` (into the full loader).
A learner's own folder of images (notebook 07) comes back as the same type:

    found = cu.data.from_folder("path/to/images", val_fraction=0.2, seed=0)
    train_set = found.train.with_transform(cu.data.make_transform("resnet18", train=True))

The command line is ``python -m course_utils.data list | fetch NAME | verify | mirror DEST``.
"""

import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
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
from course_utils.data.walk import walk

__all__ = [
    "ChecksumError", "CourseDataset", "DataUnavailable", "FolderData", "FolderError",
    "UnsafeArchive", "data_root", "expected_sums", "export_mirror", "extract_safely", "fetch",
    "fingerprint", "from_folder", "is_present", "load", "make_loader", "make_transform",
    "mirror_root", "safe_num_workers", "stratified_split", "stratified_subset", "status", "verify",
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

    def with_transform(self, transform):
        """The same images (one shared ``.base``) with another transform: train and val need two."""
        twin = copy.copy(self)
        twin.transform = transform
        return twin

    @property
    def paths(self):
        """Image file of each item (None for MedMNIST, whose images live in one .npz)."""
        samples = getattr(self.base, "samples", None) or getattr(self.base, "_samples", None)
        return None if samples is None else [str(samples[i][0]) for i in self.indices]

    def __repr__(self):
        return (f"CourseDataset({self.name!r}, split={self.split!r}, {len(self)} images, "
                f"{len(self.classes)} classes)")


# Each reader returns (the standard loader's dataset, its targets, number of classes it found).

def _read_class_tree(folder):
    """torchvision's ImageFolder, walked safely (each real folder once, hidden files left out)."""
    from course_utils.data.images import ClassFolders  # imports torchvision: see images.py

    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    base = ClassFolders(folder, _class_folders(folder))
    return base, base.targets, len(base.classes)


def _read_imagefolder(entry, split):
    return _read_class_tree(data_root() / entry.folder / split)  # one folder per split


def _read_imagefolder_seeded(entry, split):
    return _read_class_tree(data_root() / entry.folder)  # one folder; the split is seeded


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


# ----- a learner's own folder of images ------------------------------------------------------

VAL_NAMES = ("val", "valid", "validation")


class FolderError(ValueError):
    """A folder that cannot be read as one subfolder per class; the message says what to fix."""


@dataclass
class FolderData:
    """A learner's image folder read by :func:`from_folder`: two splits and what was left out."""

    train: CourseDataset
    val: CourseDataset
    classes: list
    layout: str  # in words: which layout was found and how the split was made
    root: Path
    skipped: list = field(default_factory=list)  # (path, reason) of images that do not decode
    ignored: list = field(default_factory=list)  # files without an image extension, hidden files
    links: list = field(default_factory=list)  # (path, reason) of links to folders not followed
    warnings: list = field(default_factory=list)  # why the validation accuracy says less

    def relative(self, path):
        """``path`` relative to the folder that was read, for messages."""
        return _relative(path, self.root)


def _relative(path, root):
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _image_extensions():
    """The file extensions read as images (torchvision's list: .jpg .png .bmp .webp ...)."""
    # torchvision is imported where it is needed: it takes seconds to import, and the data
    # command (`python -m course_utils.data`) has no use for it.
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return IMG_EXTENSIONS


def _unreadable(path):
    """None when ``path`` decodes as an image, else the reason it does not."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))  # JPEG: decode at 1/8 scale, still reads every byte
            image.load()
        return None
    except Exception as err:  # PIL raises many types for a broken file; all mean "skip it"
        return f"{type(err).__name__}: {err}".splitlines()[0][:120]


class _ImageCheck:
    """ImageFolder's ``is_valid_file``: an image name and a file that decodes; notes the rest."""

    def __init__(self):
        self.skipped, self.ignored, self.links = [], [], []

    def __call__(self, path):
        if not path.lower().endswith(_image_extensions()):
            self.ignored.append(path)
            return False
        reason = _unreadable(path)
        if reason:
            self.skipped.append((path, reason))
        return reason is None

    def read(self, folder, classes):
        """``folder/<class>/`` as a :class:`~course_utils.data.images.ClassFolders` (see there)."""
        from course_utils.data.images import ClassFolders  # imports torchvision: see images.py

        base = ClassFolders(folder, classes, is_valid_file=self)
        self.ignored += [str(p) for p in base.hidden]
        self.links += base.links
        return base


def _class_folders(folder):
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _check_classes(classes, where):
    if not classes:
        loose = [e.name for e in os.scandir(where)
                 if e.is_file() and e.name.lower().endswith(_image_extensions())]
        if loose:
            raise FolderError(f"{where} holds images ({len(loose)}) but no class folders. Put each "
                              f"class's images in its own subfolder: {where}/<class name>/*.jpg")
        raise FolderError(f"no class folders in {where}: expected {where}/<class name>/*.jpg "
                          f"(or train/ and val/ folders that each hold the class folders)")
    if len(classes) == 1:
        raise FolderError(f"only one class folder ({classes[0]!r}) in {where}: a classifier needs "
                          f"at least two, one subfolder per class")


def _check_images(base, where, check):
    counts = np.bincount(base.targets, minlength=len(base.classes))
    empty = [name for name, n in zip(base.classes, counts, strict=True) if n == 0]
    unreadable = f" (unreadable: {', '.join(_relative(p, where) for p, _ in check.skipped)})" \
        if check.skipped else ""
    if not base.samples:
        raise FolderError(f"no images found in {where} (looked for files ending in "
                          f"{' '.join(_image_extensions())}){unreadable}")
    if empty:
        raise FolderError(f"no readable images for class(es) {', '.join(empty)} in {where}{unreadable}")


def _check_validation(targets, classes, where):
    """Refuse a validation set of one class; warn about classes it lacks (returns the warnings)."""
    counts = np.bincount(targets, minlength=len(classes))
    missing = [name for name, n in zip(classes, counts, strict=True) if n == 0]
    present = [name for name, n in zip(classes, counts, strict=True) if n > 0]
    if len(present) == 1:
        raise FolderError(f"{where} holds images of one class only ({present[0]}): its accuracy "
                          f"would measure nothing (a model that always answers {present[0]!r} "
                          "scores 100%). Add validation images of every class")
    if missing:
        return [f"{where} has no images of class(es) {', '.join(missing)}: the validation "
                "accuracy says nothing about them"]
    return []


def from_folder(data_dir, val_fraction=0.2, seed=0):
    """A folder of images, one subfolder per class, as train and val :class:`CourseDataset` (07).

    ``train/`` and ``val/`` (or ``valid/``, ``validation/``) are used as they are; class folders
    alone are split by :func:`stratified_split` (``val_fraction`` of each class, seeded).
    Unreadable images are skipped, files without an image extension and hidden files ignored,
    links that would read a folder twice not followed (all listed). A validation set that lacks
    a class gives a warning (``.warnings``); one with a single class is refused.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise FolderError(f"DATA_DIR not found: {root}")
    if not root.is_dir():
        raise FolderError(f"{root} is a file, not a folder of images (unpack an archive first)")
    try:
        subfolders = _class_folders(root)
        val_name = next((n for n in VAL_NAMES if n in subfolders), None)
        if "train" in subfolders or val_name:
            return _read_train_val(root, val_name)
        return _read_and_split(root, subfolders, val_fraction, seed)
    except OSError as err:  # a folder we may not list, an image we may not open
        where = err.filename or root
        raise FolderError(f"cannot read {where}: {err.strerror or err}") from err


def _read_train_val(root, val_name):
    if val_name is None:
        raise FolderError(f"{root} has train/ but no val/: add {root}/val/<class>/..., or put the "
                          f"class folders directly in {root} to have a validation split made")
    if not (root / "train").is_dir():
        raise FolderError(f"{root} has {val_name}/ but no train/: expected {root}/train/<class>/...")
    classes = _class_folders(root / "train")
    _check_classes(classes, root / "train")
    extra = sorted(set(_class_folders(root / val_name)) - set(classes))
    if extra:
        raise FolderError(f"{root / val_name} has class folder(s) that train/ lacks: {', '.join(extra)}")
    check = _ImageCheck()
    train_base = check.read(root / "train", classes)
    _check_images(train_base, root / "train", check)
    val_base = check.read(root / val_name, classes)
    if not val_base.samples:
        raise FolderError(f"no images found in {root / val_name}")
    warnings = _check_validation(val_base.targets, classes, f"{val_name}/")
    train = CourseDataset(train_base, range(len(train_base)), train_base.targets, classes,
                          name=root.name, split="train")
    val = CourseDataset(val_base, range(len(val_base)), val_base.targets, classes,
                        name=root.name, split="val")
    return FolderData(train, val, classes, f"train/ and {val_name}/ folders", root, check.skipped,
                      check.ignored, check.links, warnings)


def _read_and_split(root, classes, val_fraction, seed):
    _check_classes(classes, root)
    check = _ImageCheck()
    base = check.read(root, classes)
    _check_images(base, root, check)
    train_idx, val_idx = stratified_split(base.targets, val_fraction, seed)
    if not val_idx:
        raise FolderError(f"too few images in {root} to hold out a validation split "
                          f"(each class needs at least {int(0.5 / val_fraction) + 1})")
    warnings = _check_validation([base.targets[i] for i in val_idx], classes,
                                 "the validation split")
    # One ImageFolder, two index lists: the images are read once and never counted twice.
    train = CourseDataset(base, train_idx, base.targets, classes, name=root.name, split="train")
    val = CourseDataset(base, val_idx, base.targets, classes, name=root.name, split="val")
    layout = (f"class folders only: split by class, seeded (seed {seed}), "
              f"{1 - val_fraction:.0%} train / {val_fraction:.0%} val")
    return FolderData(train, val, classes, layout, root, check.skipped, check.ignored,
                      check.links, warnings)


# ----- what is here ---------------------------------------------------------------------------

def _disk_mb(entry):
    """Megabytes a present data set takes, following links into a mirror."""
    folder = data_root() / entry.folder
    paths = [folder / m for m in entry.members] or walk(folder).files  # each real folder once
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
    """Preprocessing that matches the backbone's weights and the data set's domain (04, 07).

    For photos, evaluation resizes and centre-crops as the weights were evaluated (ResNet-50's
    torchvision weights: resize 232, crop 224, bilinear; Lite0: 256, 224, bicubic), read from
    ``cu.models.spec``; ``size`` scales both sides (the probe's 288 px resizes to 329)."""
    from torchvision import transforms as T

    if isinstance(backbone, str):
        from course_utils import models

        backbone = models.spec(backbone)
    size = size or backbone.input_size
    resize = round(size * backbone.resize_size / backbone.input_size)
    interpolation = T.InterpolationMode(backbone.interpolation)
    policy = catalog.get(dataset) if dataset else _PHOTOS
    steps = [T.Grayscale(num_output_channels=3)] if policy.grayscale else []
    if train:
        if policy.rotate:  # before the crop, so the crop trims the black corners
            steps.append(T.RandomRotation(policy.rotate, interpolation=T.InterpolationMode.BILINEAR))
        steps.append(T.RandomResizedCrop(size, scale=policy.crop_scale, interpolation=interpolation))
        steps += [T.RandomHorizontalFlip()] if policy.hflip else []
        steps += [T.RandomVerticalFlip()] if policy.vflip else []
    elif policy.center_crop:
        steps += [T.Resize(resize, interpolation=interpolation), T.CenterCrop(size)]
    else:  # small images: a crop would cut off the sign or lesion
        steps.append(T.Resize((size, size), interpolation=interpolation))
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


def make_loader(dataset, batch_size, shuffle, device=None, seed=0, num_workers=None,
                sampler=None):
    """A DataLoader that is safe on every platform, seeded, pinning memory only for CUDA.

    ``sampler`` (such as a ``DistributedSampler``, notebook 15) picks the order instead of
    ``shuffle``, which must then be False."""
    device = torch.device(device) if device is not None else env.get_device()
    workers = safe_num_workers() if num_workers is None else num_workers
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=workers,
        pin_memory=device.type == "cuda",  # pinned memory only speeds up copies to a CUDA GPU
        generator=torch.Generator().manual_seed(seed), worker_init_fn=env.seed_worker,
        persistent_workers=workers > 0,
    )
