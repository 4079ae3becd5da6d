"""Helpers for the course *Transfer Learning for Computer Vision*.

Use it as ``import course_utils as cu`` and call ``cu.<module>.<function>``:

    env       device, seeds, mixed precision, fast/full run mode   (00)
    catalog   what each data set is: source, checksum, license      (00)
    data      fetch, verify, load, split, transform, DataLoaders    (00)
    models    pretrained backbones, the model record, heads, freezing, cuts (04, 05, 07)
    features  embed a data set once and cache the features          (08, 15)
    train     training loop, evaluation, history, save and reload   (04, 07)
    inmemory  a small CNN and its loop on images held in one tensor (01, 03)
    penalty   L2-SP: fine-tuning pulled toward the pretrained start  (05)
    distributed  one job in several processes (torchrun): shares, sums (15)
    files     whole-or-nothing writes, one writer per output folder (07)
    stats     accuracies with their noise: seeds, intervals; learning curves (01, 07, 08)
    domain    how far apart two domains are; importance weights; CORAL, AdaBN (02, 03, 14)
    fewshot   N-way K-shot episodes, nearest prototypes, their interval (14)
    results   the application notebooks' final figures, for the README (09-12)
    zoo       pretrained models' metadata, and images per second measured here (13)
    checks    exercise checking with feedback                       (every notebook)
    exercises the checks of each notebook's exercises               (every notebook)
    plot      images, learning curves                               (every notebook)
    widgets   a slider and a photo upload, with printed fallbacks   (00, 07, 08)

Submodules are imported on first use, so ``python -m course_utils.data`` and
``python -m course_utils.finetune`` run without importing the whole package.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = {"env", "catalog", "data", "models", "features", "train", "stats", "checks",
               "exercises", "plot", "finetune", "files", "widgets", "penalty",
               "distributed", "domain", "inmemory", "results", "zoo", "fewshot"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
