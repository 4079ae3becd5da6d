"""Fine-tune a pretrained backbone on your own image folder (the course's recipe, notebook 07).

    python -m course_utils.finetune DATA_DIR --output OUT_DIR [options]

DATA_DIR holds either ``train/`` and ``val/`` with one subfolder per class, or only the class
subfolders (then a seeded, stratified 80/20 split is made and stated). Writes
``OUT_DIR/model.pt`` (reload it with ``cu.train.load_model``) and ``OUT_DIR/metrics.json``.

The recipe (``--mode``):

* ``probe`` (default): every image is embedded once by the frozen backbone, the training
  images a second time mirrored (augmentation for free), and a linear head trains on those
  features for ``--epochs`` epochs: seconds. The images are embedded at ~1.3x the
  pretraining resolution (288 px for Lite0): networks trained on random crops see objects
  larger than a centre crop shows them, and a larger test image makes up for it (Touvron et
  al., "Fixing the train-test resolution discrepancy", 2019).
* ``finetune``: the probe first (so the new head starts out sensible), then the top blocks
  (those holding the top quarter of the weights) are unfrozen and trained on augmented images
  for ``--epochs`` epochs, with a 10x smaller learning rate for the backbone than for the head.
"""

# ruff: noqa: E402  (the clock starts before the imports: torch alone takes seconds)
import time

_START = time.perf_counter()  # "seconds" in metrics.json counts from here, imports included

import argparse
import json
import math
import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a CPU shared with other work, a spinning
# thread waits for one that is descheduled (measured: 2x slower and erratic under load).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from course_utils import data, env, features, models, train

VAL_NAMES = ("val", "valid", "validation")
# The head trains for at least HEAD_EPOCHS epochs and HEAD_STEPS optimizer steps: on a few dozen
# images an epoch is one step, and ten steps leave the head half-trained.
HEAD_EPOCHS, HEAD_STEPS, HEAD_LR, HEAD_WEIGHT_DECAY, LABEL_SMOOTHING = 10, 300, 1e-3, 0.05, 0.1
FINETUNE_EPOCHS, FINETUNE_LR, UNFREEZE_FRACTION, BATCH_SIZE = 4, 1e-3, 0.25, 32


class UserError(Exception):
    """Bad input: reported as one clear message and a non-zero exit, never a traceback."""


# ----- finding the images --------------------------------------------------------------------

@dataclass
class ImageSet:
    """The images found in DATA_DIR, already split: ``(path, class index)`` pairs."""

    classes: list
    train: list
    val: list
    layout: str  # in words, printed and stored in metrics.json
    skipped: list = field(default_factory=list)  # (path, reason) of unreadable images
    ignored: list = field(default_factory=list)  # files without an image extension


def _is_image_name(path):
    return path.lower().endswith(data_extensions())


def data_extensions():
    """The file extensions read as images (torchvision's list: .jpg .png .bmp .webp ...)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return IMG_EXTENSIONS


def readable(path):
    """None when ``path`` decodes as an image, else the reason it does not."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))  # JPEG: decode at 1/8 scale, still reads every byte
            image.load()
        return None
    except Exception as err:  # PIL raises many types for a broken file; all mean "skip it"
        return f"{type(err).__name__}: {err}".splitlines()[0][:120]


def _scan(folder, classes, found):
    """``(path, class index)`` of the readable images in ``folder/<class>/``, recursively."""
    from torchvision.datasets.folder import make_dataset

    def is_valid(path):
        if not _is_image_name(path):
            found.ignored.append(path)
            return False
        reason = readable(path)
        if reason:
            found.skipped.append((path, reason))
        return reason is None

    class_to_idx = {name: i for i, name in enumerate(classes)}
    return make_dataset(str(folder), class_to_idx, is_valid_file=is_valid, allow_empty=True)


def _class_folders(folder):
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _check_classes(classes, where):
    if not classes:
        loose = [e.name for e in os.scandir(where) if e.is_file() and _is_image_name(e.name)]
        if loose:
            raise UserError(f"{where} holds images ({len(loose)}) but no class folders. Put each "
                            f"class's images in its own subfolder: {where}/<class name>/*.jpg")
        raise UserError(f"no class folders in {where}: expected {where}/<class name>/*.jpg "
                        f"(or train/ and val/ folders that each hold the class folders)")
    if len(classes) == 1:
        raise UserError(f"only one class folder ({classes[0]!r}) in {where}: a classifier needs "
                        f"at least two, one subfolder per class")


def _check_images(samples, classes, where, found):
    counts = [sum(1 for _, c in samples if c == i) for i in range(len(classes))]
    empty = [name for name, n in zip(classes, counts, strict=True) if n == 0]
    unreadable = f" (unreadable: {', '.join(_relative(p, where) for p, _ in found.skipped)})" \
        if found.skipped else ""
    if not samples:
        raise UserError(f"no images found in {where} (looked for files ending in "
                        f"{' '.join(data_extensions())}){unreadable}")
    if empty:
        raise UserError(f"no readable images for class(es) {', '.join(empty)} in {where}{unreadable}")


def find_images(data_dir, val_fraction=0.2, seed=0):
    """Read DATA_DIR's layout: ``train/`` + ``val/``, or class folders to split (seeded)."""
    root = Path(data_dir)
    if not root.exists():
        raise UserError(f"DATA_DIR not found: {root}")
    if not root.is_dir():
        raise UserError(f"{root} is a file, not a folder of images (unpack an archive first)")
    subfolders = _class_folders(root)
    val_name = next((n for n in VAL_NAMES if n in subfolders), None)
    if "train" in subfolders or val_name:
        return _find_train_val(root, val_name)
    return _find_and_split(root, subfolders, val_fraction, seed)


def _find_train_val(root, val_name):
    if val_name is None:
        raise UserError(f"{root} has train/ but no val/: add {root}/val/<class>/..., or put the "
                        f"class folders directly in {root} to have a validation split made")
    if not (root / "train").is_dir():
        raise UserError(f"{root} has {val_name}/ but no train/: expected {root}/train/<class>/...")
    classes = _class_folders(root / "train")
    _check_classes(classes, root / "train")
    extra = sorted(set(_class_folders(root / val_name)) - set(classes))
    if extra:
        raise UserError(f"{root / val_name} has class folder(s) that train/ lacks: {', '.join(extra)}")
    found = ImageSet(classes, [], [], f"train/ and {val_name}/ folders")
    found.train = _scan(root / "train", classes, found)
    found.val = _scan(root / val_name, classes, found)
    _check_images(found.train, classes, root / "train", found)
    if not found.val:
        raise UserError(f"no images found in {root / val_name}")
    return found


def _find_and_split(root, classes, val_fraction, seed):
    _check_classes(classes, root)
    found = ImageSet(classes, [], [], "")
    samples = _scan(root, classes, found)
    _check_images(samples, classes, root, found)
    train_idx, val_idx = data.stratified_split([c for _, c in samples], val_fraction, seed)
    if not val_idx:
        raise UserError(f"too few images in {root} to hold out a validation split "
                        f"(each class needs at least {int(0.5 / val_fraction) + 1})")
    found.train = [samples[i] for i in train_idx]
    found.val = [samples[i] for i in val_idx]
    found.layout = (f"class folders only: split by class, seeded (seed {seed}), "
                    f"{1 - val_fraction:.0%} train / {val_fraction:.0%} val")
    return found


class ImageList(torch.utils.data.Dataset):
    """``(path, class index)`` pairs as a Dataset of ``(transformed image, label)``."""

    def __init__(self, samples, classes, transform):
        self.samples, self.classes, self.transform = samples, list(classes), transform
        self.targets = [c for _, c in samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from torchvision.datasets.folder import default_loader

        path, target = self.samples[i]
        return self.transform(default_loader(path)), target


# ----- the recipe ----------------------------------------------------------------------------

def default_image_size(backbone, mode):
    """The probe embeds at ~1.3x the pretraining size (224 -> 288); fine-tuning trains at it."""
    size = models.spec(backbone).input_size
    return size if mode == "finetune" else int(round(size * 1.3 / 32)) * 32


def top_blocks(model, fraction=UNFREEZE_FRACTION):
    """The top blocks (head excluded) that together hold at least ``fraction`` of the weights."""
    head = models.head_name(model)
    sizes = [(name, sum(p.numel() for p in model.get_submodule(name).parameters()))
             for name in models.block_names(model) if name != head]
    total, chosen, count = sum(n for _, n in sizes), [], 0
    for name, n in reversed(sizes):
        if count >= fraction * total:
            break
        if n:
            chosen.append(name)
            count += n
    return chosen[::-1]


def _feature_loader(X, y, shuffle, seed):
    dataset = torch.utils.data.TensorDataset(X, y)
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(seed))


def loader_workers(device):
    """DataLoader worker processes: none on a CPU, whose cores are busy running the model."""
    return 0 if device.type == "cpu" else data.safe_num_workers()


def head_epochs(num_features):
    """Epochs for the head on ``num_features`` feature vectors: >= HEAD_EPOCHS and >= HEAD_STEPS steps."""
    return max(HEAD_EPOCHS, math.ceil(HEAD_STEPS / math.ceil(num_features / BATCH_SIZE)))


def train_head(model, found, size, epochs, seed, device, log=print):
    """The probe: embed once (training images also mirrored), then train a linear head.

    ``epochs=None``: as many as ``head_epochs`` says; about ten lines of them are printed."""
    tf = data.make_transform(model.backbone_name, train=False, size=size)
    log(f"embedding {len(found.train)} training images (and their mirror images) and "
        f"{len(found.val)} validation images at {size} px")
    workers = loader_workers(device)
    X, y = features.embed(model, ImageList(found.train, found.classes, tf), BATCH_SIZE, device,
                          num_workers=workers, mirror=True)
    X_val, y_val = features.embed(model, ImageList(found.val, found.classes, tf), BATCH_SIZE,
                                  device, num_workers=workers)
    head = train.prepare(nn.Linear(X.shape[1], len(found.classes)), device)
    train_loader = _feature_loader(X, y, True, seed)
    val_loader = _feature_loader(X_val, y_val, False, seed)
    epochs = epochs or head_epochs(len(train_loader.dataset))
    optimizer = torch.optim.AdamW(head.parameters(), lr=HEAD_LR, weight_decay=HEAD_WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, HEAD_LR,
                                                    total_steps=epochs * len(train_loader))
    history = train.fit(head, train_loader, val_loader, optimizer, epochs,
                        nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING), scheduler,
                        stage="head", progress=False, log=log, log_every=math.ceil(epochs / 10))
    return head, history


def attach_head(model, head, num_classes):
    """Put the trained linear head on the backbone: one model from image to class scores."""
    models.replace_head(model, num_classes)
    final = models.get_head(model)
    final.load_state_dict(head.state_dict())
    return final.to(head.weight.device)


def finetune_top(model, found, size, epochs, seed, device, history, log=print):
    """Unfreeze the top blocks and train them and the head on augmented images."""
    blocks = top_blocks(model)
    models.freeze(model, [b for b in models.block_names(model) if b not in blocks
                          and b != models.head_name(model)])
    log(f"fine-tuning {', '.join(blocks)} and the head: {models.trainable_summary(model)}")
    name = model.backbone_name
    train_set = ImageList(found.train, found.classes, data.make_transform(name, True, size=size))
    val_set = ImageList(found.val, found.classes, data.make_transform(name, False, size=size))
    workers = loader_workers(device)
    train_loader = data.make_loader(train_set, BATCH_SIZE, shuffle=True, device=device, seed=seed,
                                    num_workers=workers)
    val_loader = data.make_loader(val_set, BATCH_SIZE, shuffle=False, device=device,
                                  num_workers=workers)
    head_params = list(models.get_head(model).parameters())
    ids = {id(p) for p in head_params}
    body_params = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    lrs = [FINETUNE_LR / 10, FINETUNE_LR]  # discriminative: the pretrained blocks move less
    optimizer = torch.optim.AdamW([{"params": body_params, "lr": lrs[0]},
                                   {"params": head_params, "lr": lrs[1]}], weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lrs,
                                                    total_steps=epochs * len(train_loader))
    return train.fit(model, train_loader, val_loader, optimizer, epochs,
                     nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING), scheduler,
                     history=history, stage="finetune", log=log)


# ----- the command ---------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.finetune",
        description="Fine-tune a pretrained backbone on a folder of images: DATA_DIR/train/<class>/"
                    " and DATA_DIR/val/<class>/, or DATA_DIR/<class>/ (then a seeded, stratified "
                    "split is made). Writes OUT_DIR/model.pt and OUT_DIR/metrics.json.")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder of images, one subfolder per class")
    parser.add_argument("--output", "-o", metavar="OUT_DIR", required=True,
                        help="where model.pt and metrics.json go (created if missing)")
    parser.add_argument("--backbone", default=models.OFFLINE_BACKBONE, choices=sorted(models.BACKBONES),
                        help="pretrained backbone (default: %(default)s, whose weights come with pip)")
    parser.add_argument("--mode", choices=("probe", "finetune"), default="probe",
                        help="probe: frozen backbone, new linear head (default, seconds); finetune: "
                             "the probe, then the top blocks train too (minutes on a CPU)")
    parser.add_argument("--epochs", type=int, help=f"probe: epochs of the head on features (default: "
                        f"{HEAD_EPOCHS}, more on small data sets: at least {HEAD_STEPS} steps); "
                        f"finetune: epochs of the top blocks (default {FINETUNE_EPOCHS})")
    parser.add_argument("--image-size", type=int, metavar="PX",
                        help="image side in pixels (default: 288 for the probe, 224 to fine-tune, "
                             "for Lite0; 1.3x and 1x the backbone's pretraining size)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="share of each class held out when DATA_DIR has no val/ (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"),
                        help="where to train (default: the best one here)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.image_size is not None and not 32 <= args.image_size <= 1024:
        parser.error("--image-size must be between 32 and 1024")
    if not 0 < args.val_fraction < 1:
        parser.error("--val-fraction must be between 0 and 1")
    return args


def _relative(path, root):
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def report_files(found, root, log=print):
    """Warn about skipped unreadable images by name; note files that are not images."""
    for path, reason in found.skipped:
        print(f"warning: skipped unreadable image {_relative(path, root)} ({reason})", file=sys.stderr)
    if found.ignored:
        names = ", ".join(_relative(p, root) for p in found.ignored[:5])
        more = f" and {len(found.ignored) - 5} more" if len(found.ignored) > 5 else ""
        log(f"note: ignored {len(found.ignored)} file(s) without an image extension: {names}{more}")


def run(args, log=print):
    """Fine-tune as ``args`` say; returns the metrics dict it also writes to metrics.json."""
    env.set_seed(args.seed)
    device = torch.device(args.device) if args.device else env.get_device()
    if args.device and env.get_device().type != device.type and device.type != "cpu":
        raise UserError(f"--device {args.device}: there is none here ({env.device_summary()})")
    if device.type == "cpu":
        train.reuse_freed_memory()  # ~3x faster on CPU; we start no worker processes there
    found = find_images(args.data_dir, args.val_fraction, args.seed)
    report_files(found, args.data_dir, log)
    log(f"data: {args.data_dir} ({found.layout}); {len(found.classes)} classes: "
        f"{', '.join(found.classes[:10])}{' ...' if len(found.classes) > 10 else ''}; "
        f"{len(found.train)} training and {len(found.val)} validation images")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create --output {out}: {err}") from err
    size = args.image_size or default_image_size(args.backbone, args.mode)
    log(f"backbone: {args.backbone} ({models.spec(args.backbone).source}); mode: {args.mode}; "
        f"device: {env.device_summary(device)}")
    model = train.prepare(models.create(args.backbone, num_classes=0), device)
    epochs = args.epochs if args.mode == "probe" else None
    head, history = train_head(model, found, size, epochs, args.seed, device, log)
    attach_head(model, head, len(found.classes))
    if args.mode == "finetune":
        finetune_top(model, found, size, args.epochs or FINETUNE_EPOCHS, args.seed, device,
                     history, log)
    val_accuracy = history.last["val_acc"]
    train.save_model(model, out / "model.pt", found.classes, image_size=size, mode=args.mode)
    metrics = {
        "val_accuracy": val_accuracy, "num_train": len(found.train), "num_val": len(found.val),
        "classes": found.classes, "backbone": args.backbone, "mode": args.mode,
        "image_size": size, "seed": args.seed, "layout": found.layout,
        "device": env.device_summary(device), "history": history.rows,
        "skipped": [_relative(p, args.data_dir) for p, _ in found.skipped],
        "seconds": round(time.perf_counter() - _START, 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    correct = round(val_accuracy * len(found.val))
    log(f"final validation accuracy {val_accuracy:.4f} ({correct}/{len(found.val)}) in "
        f"{metrics['seconds']:.0f} s; wrote {out / 'model.pt'} and {out / 'metrics.json'}")
    return metrics


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except (UserError, models.BackboneUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
