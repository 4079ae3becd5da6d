"""Fine-tune a pretrained backbone on your own image folder (the course's recipe, notebook 07).

    python -m course_utils.finetune DATA_DIR --output OUT_DIR [options]

DATA_DIR holds either ``train/`` and ``val/`` with one subfolder per class, or only the class
subfolders (then a seeded, stratified 80/20 split is made and stated). Writes
``OUT_DIR/model.pt`` (reload it with ``cu.train.load_model``) and ``OUT_DIR/metrics.json``.

What it guarantees (README, "Reliability"): OUT_DIR is checked and locked before training, so
a second run on the same folder is refused at once; the two files are written to temporary
names and renamed into place, so a failure (full disk, Ctrl-C) leaves the previous ones as they
were, and ``metrics.json``, renamed last, names the sha256 of the ``model.pt`` it describes.

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

Several processes (notebook 15): ``torchrun --nproc_per_node=N -m course_utils.finetune ...``
(or ``accelerate launch --multi_gpu --num_processes N -m course_utils.finetune ...``; its
``--cpu`` starts one process) means the same job.
Each process embeds its share of the images and all of them train the same head on all the
features; fine-tuning runs in DistributedDataParallel, with ``32 / N`` images per process in a
step, so a step still averages the gradient over 32 images and the learning rate stays. The
metrics sum every process's share; process 0 alone prints, holds the lock and writes the files,
and a checkpoint it writes reloads in a single process. If one process fails, torchrun stops
the others, and the job ends with that process's one-line message and a non-zero exit.
"""

# ruff: noqa: E402  (run as the command, two things must happen before the imports below)
if __name__ == "__main__":
    import os
    import time

    # Only in the command's own process: importing this module changes nothing.
    # "seconds" in metrics.json counts from the start, imports included (torch alone takes seconds).
    _PROCESS_START = time.perf_counter()
    # Idle OpenMP threads sleep instead of spinning: on a CPU shared with other work, a spinning
    # thread waits for one that is descheduled (measured: 2x slower and erratic under load).
    # OpenMP reads the variable once, when torch loads it: hence before `import torch`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import ctypes
import io
import json
import math
import re
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler, Subset

from course_utils import data, distributed, env, features, files, models, train
from course_utils.data.images import UnreadableImage
from course_utils.data.store import sha256_file

# The head trains for at least HEAD_EPOCHS epochs and HEAD_STEPS optimizer steps: on a few dozen
# images an epoch is one step, and ten steps leave the head half-trained.
HEAD_EPOCHS, HEAD_STEPS, HEAD_LR, HEAD_WEIGHT_DECAY, LABEL_SMOOTHING = 10, 300, 1e-3, 0.05, 0.1
FINETUNE_EPOCHS, FINETUNE_LR, UNFREEZE_FRACTION, BATCH_SIZE = 4, 1e-3, 0.25, 32
SEED_RANGE = (0, 2**32 - 1)  # what numpy's and every library's seeding accepts
OUTPUT_FILES = ("model.pt", "metrics.json")
# glibc's mallopt(param, value) for the command's process (see _reuse_freed_memory). Both are C
# ints: 2 << 30 would not fit, and ctypes would silently pass it as -2**31.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
MALLOC_SETTINGS = ((M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, (1 << 31) - 1))


ONE_PROCESS = distributed.Job()


class UserError(Exception):
    """Bad input: reported as one clear message and a non-zero exit, never a traceback."""


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


def per_process_batch(job):
    """Images per process in one step: ``BATCH_SIZE`` shared out, so a step of the whole job
    still averages the gradient over about ``BATCH_SIZE`` images (exactly, when N divides it)."""
    return max(1, round(BATCH_SIZE / job.world_size))


def embed_shared(model, dataset, device, job=ONE_PROCESS, mirror=False):
    """``features.embed`` with each process embedding its share of ``dataset``; every process
    gets all the rows, in the data set's order (one process: ``features.embed`` itself)."""
    n = len(dataset)
    mine = Subset(dataset, distributed.shard(n, job))
    X, y = features.embed(model, mine, BATCH_SIZE, device, num_workers=loader_workers(device),
                          mirror=mirror, progress=job.is_main)
    parts = (slice(0, len(mine)), slice(len(mine), None)) if mirror else (slice(None),)
    return (torch.cat([distributed.gather_rows(X[part], n, job) for part in parts]),
            torch.cat([distributed.gather_rows(y[part], n, job) for part in parts]))


def head_epochs(num_features):
    """Epochs for the head on ``num_features`` feature vectors: >= HEAD_EPOCHS and >= HEAD_STEPS steps."""
    return max(HEAD_EPOCHS, math.ceil(HEAD_STEPS / math.ceil(num_features / BATCH_SIZE)))


def train_head(model, backbone, found, size, epochs, seed, device, log=print, job=ONE_PROCESS):
    """The probe: embed once (training images also mirrored), then train a linear head.

    ``epochs=None``: as many as ``head_epochs`` says; about ten lines of them are printed.
    Several processes: each embeds its share; then every process trains the same head on all
    the features, from the same seed (seconds; DistributedDataParallel makes them equal anyway)."""
    tf = data.make_transform(backbone, train=False, size=size)
    log(f"embedding {len(found.train)} training images (and their mirror images) and "
        f"{len(found.val)} validation images at {size} px")
    X, y = embed_shared(model, found.train.with_transform(tf), device, job, mirror=True)
    X_val, y_val = embed_shared(model, found.val.with_transform(tf), device, job)
    return train_linear_head(X, y, X_val, y_val, len(found.classes), seed, device, epochs, log)


def train_linear_head(X, y, X_val, y_val, num_classes, seed=0, device="cpu", epochs=None,
                      log=print):
    """The probe's head on features ``X`` (notebooks 07, 08): AdamW, one-cycle, label smoothing,
    at least ``HEAD_EPOCHS`` epochs and ``HEAD_STEPS`` steps; returns ``(head, history)``.
    Seed torch first for a reproducible head (the command seeds when it starts)."""
    head = train.prepare(nn.Linear(X.shape[1], num_classes), device)
    train_loader = _feature_loader(X, y, True, seed)
    val_loader = _feature_loader(X_val, y_val, False, seed)
    epochs = epochs or head_epochs(len(train_loader.dataset))
    optimizer = torch.optim.AdamW(head.parameters(), lr=HEAD_LR, weight_decay=HEAD_WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, HEAD_LR,
                                                    total_steps=epochs * len(train_loader))
    history = train.fit(head, train_loader, val_loader, optimizer, epochs,
                        nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING), scheduler,
                        stage="head", progress=False, log=log,
                        log_every=math.ceil(epochs / 10) if log else 1)
    return head, history


def attach_head(model, head, num_classes):
    """Put the trained linear head on the backbone: one model from image to class scores."""
    models.replace_head(model, num_classes)
    final = models.get_head(model)
    final.load_state_dict(head.state_dict())
    return final.to(head.weight.device)


def finetune_top(model, backbone, found, size, epochs, seed, device, history, log=print,
                 job=ONE_PROCESS):
    """Unfreeze the top blocks and train them and the head on augmented images.

    Several processes: DistributedDataParallel, each process a ``DistributedSampler``'s share
    of the training images and its own share of the validation images (``reduce`` sums them)."""
    blocks = top_blocks(model)
    models.freeze(model, [b for b in models.block_names(model) if b not in blocks
                          and b != models.head_name(model)])
    log(f"fine-tuning {', '.join(blocks)} and the head: {models.trainable_summary(model)}")
    train_set = found.train.with_transform(data.make_transform(backbone, True, size=size))
    val_set = found.val.with_transform(data.make_transform(backbone, False, size=size))
    workers, batch = loader_workers(device), per_process_batch(job)
    sampler = None
    if job.distributed:
        log(f"each step: {batch} images in each of {job.world_size} processes "
            f"({batch * job.world_size} in all)")
        sampler = DistributedSampler(train_set, job.world_size, job.rank, shuffle=True, seed=seed)
    train_loader = data.make_loader(train_set, batch, shuffle=sampler is None, device=device,
                                    seed=seed, num_workers=workers, sampler=sampler)
    val_loader = data.make_loader(Subset(val_set, distributed.shard(len(val_set), job)), batch,
                                  shuffle=False, device=device, num_workers=workers)
    head_params = list(models.get_head(model).parameters())
    ids = {id(p) for p in head_params}
    body_params = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    lrs = [FINETUNE_LR / 10, FINETUNE_LR]  # discriminative: the pretrained blocks move less
    optimizer = torch.optim.AdamW([{"params": body_params, "lr": lrs[0]},
                                   {"params": head_params, "lr": lrs[1]}], weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lrs,
                                                    total_steps=epochs * len(train_loader))
    trained = model
    if job.distributed:  # gradients are averaged over the processes in backward()
        trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return train.fit(trained, train_loader, val_loader, optimizer, epochs,
                     nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING), scheduler,
                     history=history, stage="finetune", log=log, progress=job.is_main,
                     reduce=distributed.all_sum)


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
    if not SEED_RANGE[0] <= args.seed <= SEED_RANGE[1]:
        parser.error(f"--seed must be between {SEED_RANGE[0]} and {SEED_RANGE[1]}")
    return args


def report_files(found, log=print):
    """Warn about skipped images, unfollowed links and a thin validation set; note non-images."""
    for path, reason in found.skipped:
        print(f"warning: skipped unreadable image {found.relative(path)} ({reason})", file=sys.stderr)
    for path, reason in found.links:
        print(f"warning: did not follow {found.relative(path)}: {reason}", file=sys.stderr)
    for warning in found.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if found.ignored:
        names = ", ".join(found.relative(p) for p in found.ignored[:5])
        more = f" and {len(found.ignored) - 5} more" if len(found.ignored) > 5 else ""
        log(f"note: ignored {len(found.ignored)} file(s) without an image extension: {names}{more}")


def resolve_device(args):
    """The device ``--device`` names, or the best one here; one that is not here is an error."""
    device = torch.device(args.device) if args.device else env.get_device()
    if args.device and env.get_device().type != device.type and device.type != "cpu":
        raise UserError(f"--device {args.device}: there is none here ({env.device_summary()})")
    return device


def check_output(out):
    """Before any training: ``out`` is a folder this process can write, with no folder named as
    one of the outputs (each would fail only at the end, after minutes of training)."""
    try:
        files.check_writable(out)
    except OSError as err:
        raise UserError(f"cannot write to --output {out}: {err.strerror or err}") from err
    for name in OUTPUT_FILES:
        if (out / name).is_dir():
            raise UserError(f"--output {out} holds a folder named {name}: the command writes a "
                            "file by that name; choose another --output")


def _quiet(*args, **kwargs):
    """The ``log`` of every process but the first: the job prints each line once."""


def run(args, log=print, start=None, job=None):
    """Fine-tune as ``args`` say; returns the metrics dict it also writes to metrics.json.

    ``metrics["seconds"]`` counts from ``start`` (a ``time.perf_counter()``; default: now).
    ``job``: this process's place in a torchrun job (default: read from the environment)."""
    start = time.perf_counter() if start is None else start
    job = job or distributed.job_from_env()
    env.set_seed(args.seed)
    device = distributed.device_for(job, resolve_device(args))
    out = Path(args.output).expanduser()
    if job.is_main:  # process 0 alone writes; the others never touch the folder
        check_output(out)
    # The lock is held until both files are written: one run per folder.
    lock = files.lock_folder(out) if job.is_main else contextlib.nullcontext()
    with lock, distributed.process_group(job, device):
        return _train_and_write(args, out, device, start, log if job.is_main else _quiet, job)


def _train_and_write(args, out, device, start, log, job):
    found = data.from_folder(args.data_dir, args.val_fraction, args.seed)
    if job.is_main:
        report_files(found, log)
    for split, images in (("training", found.train), ("validation", found.val)):
        if len(images) < job.world_size:
            raise UserError(f"{len(images)} {split} images cannot be shared out over "
                            f"{job.world_size} processes: use fewer processes")
    log(f"data: {args.data_dir} ({found.layout}); {len(found.classes)} classes: "
        f"{', '.join(found.classes[:10])}{' ...' if len(found.classes) > 10 else ''}; "
        f"{len(found.train)} training and {len(found.val)} validation images")
    size = args.image_size or default_image_size(args.backbone, args.mode)
    processes = f"; {job.world_size} processes" if job.distributed else ""
    log(f"backbone: {args.backbone} ({models.spec(args.backbone).source}); mode: {args.mode}; "
        f"device: {env.device_summary(device)}{processes}")
    model = train.prepare(models.create(args.backbone, num_classes=0), device)
    epochs = args.epochs if args.mode == "probe" else None
    head, history = train_head(model, args.backbone, found, size, epochs, args.seed, device, log,
                               job)
    attach_head(model, head, len(found.classes))
    if args.mode == "finetune":
        finetune_top(model, args.backbone, found, size, args.epochs or FINETUNE_EPOCHS, args.seed,
                     device, history, log, job)
    val_accuracy = history.last["val_acc"]
    metrics = {
        "val_accuracy": val_accuracy, "num_train": len(found.train), "num_val": len(found.val),
        "classes": found.classes, "backbone": args.backbone, "mode": args.mode,
        "image_size": size, "seed": args.seed, "layout": found.layout,
        "device": env.device_summary(device), "processes": job.world_size,
        "batch_size": (per_process_batch(job) * job.world_size if args.mode == "finetune"
                       else BATCH_SIZE),  # images a step averages over: the head's, or the job's
        "history": history.rows,
        "skipped": [found.relative(p) for p, _ in found.skipped], "warnings": found.warnings,
    }

    def write_model(tmp):
        train.save_model(model, tmp, found.classes, image_size=size, mode=args.mode)
        metrics["model_sha256"] = sha256_file(tmp)  # metrics.json names the model it describes

    def write_metrics(tmp):
        metrics["seconds"] = round(time.perf_counter() - start, 1)
        Path(tmp).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    if not job.is_main:
        return metrics
    files.write_together([(out / "model.pt", write_model), (out / "metrics.json", write_metrics)])
    correct = round(val_accuracy * len(found.val))
    log(f"final validation accuracy {val_accuracy:.4f} ({correct}/{len(found.val)}) in "
        f"{metrics['seconds']:.0f} s; wrote {out / 'model.pt'} and {out / 'metrics.json'}")
    return metrics


def _check_c_ints(settings):
    for param, value in settings:
        if ctypes.c_int(value).value != value:  # ctypes would wrap it silently
            raise OverflowError(f"mallopt({param}, {value}): the value does not fit a C int")


def _reuse_freed_memory(settings=MALLOC_SETTINGS):
    """Linux: keep freed memory in the process, not hand it back to the OS; True if it took (07)."""
    # glibc gives every large tensor its own memory map and unmaps it when the tensor is freed,
    # so each batch page-faults its activations in again. Measured in notebook 07 on a 2-core
    # VM: Lite0 inference on the CPU ~3x faster (~30 -> ~100 images/s at 288 px). The setting is
    # process-wide and the process then keeps its peak memory (forking DataLoader workers gets
    # slower), so only the command calls it, for its own process, when it runs on the CPU with
    # no workers; a library function must not change this for a learner's notebook.
    _check_c_ints(settings)
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in settings)


def _last_line(err):
    """The message itself: a DataLoader worker's error arrives with the worker's traceback,
    whose last line is ``module.ErrorType: message``."""
    lines = str(err).strip().splitlines() or [type(err).__name__]
    if "Traceback" not in str(err):
        return " ".join(lines)
    return re.sub(r"^[\w.]+: ", "", lines[-1])


@contextlib.contextmanager
def _silenced():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _error(job, message):
    """One line on stderr; in a job of several processes it says which one failed."""
    where = f"{job}: " if job.distributed else ""
    print(f"error: {where}{message}", file=sys.stderr)


def main(argv=None, start=None):
    """The command: one line and exit status 2 for bad input, 1 for a failure, never a traceback.

    Under torchrun, input errors are the same in every process and only process 0 says them;
    a failure of one process is said by that process, with its rank."""
    try:
        job = distributed.job_from_env()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # Every process parses the same options: only process 0 prints --help or a usage error.
    with contextlib.nullcontext() if job.is_main else _silenced():
        args = parse_args(argv)
    try:
        if resolve_device(args).type == "cpu":
            _reuse_freed_memory()  # this process is the command's own: see the comment there
        run(args, start=start, job=job)
    except (UserError, data.FolderError, models.BackboneUnavailable, files.FolderBusy) as err:
        if job.is_main:
            print(f"error: {_last_line(err)}", file=sys.stderr)
        return 2
    except UnreadableImage as err:
        _error(job, _last_line(err))
        return 1
    except OSError as err:  # the disk: full, read-only, gone; the previous outputs are unchanged
        where = f" ({err.filename})" if err.filename else ""
        _error(job, f"{err.strerror or _last_line(err)}{where}; nothing was written to "
                    f"{args.output} (what was there before is unchanged)")
        return 1
    except dist.DistError as err:  # a peer died or hung: its own message says why
        _error(job, f"lost contact with the job's other processes ({_last_line(err)}); "
                    "another process failed: see its message")
        return 1
    except KeyboardInterrupt:
        if job.is_main:
            print(f"interrupted; nothing half-written was left in {args.output}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(start=_PROCESS_START))
