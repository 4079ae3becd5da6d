"""Training loop, evaluation, history, saving and predicting (notebooks 04 and 07).

    model = cu.train.prepare(model, device)        # device, channels_last
    history = cu.train.fit(model, train_loader, val_loader, optimizer, num_epochs=3)
    cu.plot.history(history)
    cu.train.save_model(model, "runs/ants_bees/model.pt", classes=train_set.classes)

The loop is the one notebook 07 writes out by hand: ``model.train()`` and mixed precision
(CUDA only) while training; ``model.eval()`` and ``torch.no_grad()`` while evaluating; one
line per epoch with its time.
"""

import ctypes
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm  # plain text bar: no widget state stored in the notebooks

from course_utils import env

# ----- device and memory layout --------------------------------------------------------------

# Lives in env so that features (a lower layer) can use it too; notebook 07 calls it from here.
uses_channels_last = env.uses_channels_last


def reuse_freed_memory():
    """Linux: keep freed memory in the process instead of handing it back to the OS (07).

    glibc gives every large tensor its own memory map and unmaps it when the tensor is freed, so
    each batch page-faults its activations in again. Measured in 07 on a 2-core VM: Lite0
    inference at 288 px went from ~30 to ~100 images/s. The process then keeps its peak memory,
    which makes forking DataLoader workers slower: use it with ``num_workers=0`` (a CPU has no
    spare core for them anyway). Returns True when the setting took.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another libc: nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 2 << 30))


def prepare(model, device=None):
    """Move ``model`` to ``device`` (default: the best one here), channels_last where it pays (07)."""
    device = torch.device(device) if device is not None else env.get_device()
    model.to(device)
    if uses_channels_last(device):
        model.to(memory_format=torch.channels_last)
    return model


def to_device(X, y, device):
    """A batch on ``device``; 4-D image batches in channels_last where the model uses it (07)."""
    X = X.to(device, non_blocking=True)
    if X.dim() == 4 and uses_channels_last(device):
        X = X.contiguous(memory_format=torch.channels_last)
    return X, y.to(device, non_blocking=True)


def _device_of(model):
    return next(model.parameters()).device


# ----- one epoch, evaluation, prediction -----------------------------------------------------

def accuracy(logits, y):
    """Fraction of rows whose largest logit is the label (04)."""
    return (logits.argmax(dim=1) == y).float().mean().item()


def train_epoch(model, loader, loss_fn, optimizer, scaler=None, scheduler=None, progress=True):
    """One pass over ``loader`` in train mode; returns ``(mean loss, accuracy)`` (07).

    Mixed precision (float16 autocast + GradScaler) on CUDA, plain float32 elsewhere;
    ``scheduler`` (e.g. OneCycleLR) steps after every batch.
    """
    device = _device_of(model)
    scaler = scaler if scaler is not None else env.grad_scaler(device)
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    # mininterval: a notebook stores every redraw of the bar; one every 2 s is plenty.
    for X, y in tqdm(loader, desc="train", leave=False, disable=not progress, mininterval=2):
        X, y = to_device(X, y, device)
        with env.autocast(device):
            logits = model(X)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # on CPU the scaler is a pass-through
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        count += len(y)
    return total_loss / count, correct / count


@torch.no_grad()
def predict(model, loader, progress=False):
    """Logits of every batch in ``loader`` and their labels, in eval mode: ``(logits, y)`` (07)."""
    device = _device_of(model)
    model.eval()  # BatchNorm uses its running statistics, dropout is off
    all_logits, all_y = [], []
    for X, y in tqdm(loader, desc="eval", leave=False, disable=not progress):
        X, y = to_device(X, y, device)
        with env.autocast(device):
            all_logits.append(model(X).float().cpu())
        all_y.append(y.cpu())
    return torch.cat(all_logits), torch.cat(all_y)


def evaluate(model, loader, loss_fn=None, progress=False):
    """``(mean loss, accuracy)`` of ``model`` on ``loader``, in eval mode, without gradients (07)."""
    logits, y = predict(model, loader, progress=progress)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    return loss_fn(logits, y).item(), accuracy(logits, y)


# ----- the loop and its history --------------------------------------------------------------

class History:
    """Per-epoch metrics of one or more ``fit`` calls; ``cu.plot.history`` draws it (07).

    ``history["val_acc"]`` is a column; ``history.rows`` the raw list of dicts.
    """

    columns = ("epoch", "stage", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")

    def __init__(self):
        self.rows = []

    def add(self, **row):
        self.rows.append(row)

    def __getitem__(self, column):
        return [row.get(column) for row in self.rows]

    def __len__(self):
        return len(self.rows)

    @property
    def last(self):
        return self.rows[-1] if self.rows else {}

    def best(self, column="val_acc"):
        """The row with the highest ``column``."""
        return max(self.rows, key=lambda row: row[column])

    @staticmethod
    def format_row(row):
        cells = [f"epoch {row['epoch']:>2}", f"{row.get('stage', ''):<9}"]
        cells += [f"{k} {row[k]:.4f}" for k in ("train_loss", "train_acc", "val_loss", "val_acc")
                  if row.get(k) is not None]
        return "  ".join(cells + [f"{row['seconds']:.1f} s"])

    def __str__(self):
        return "\n".join(self.format_row(row) for row in self.rows)

    __repr__ = __str__


def fit(model, train_loader, val_loader, optimizer, num_epochs, loss_fn=None, scheduler=None,
        history=None, stage="train", progress=True, log=print, log_every=1):
    """Train for ``num_epochs``, evaluating after each; returns the ``History`` (07).

    Pass the ``history`` of an earlier stage (say, head only) to continue its epoch numbers.
    ``log`` gets one line every ``log_every`` epochs and after the last (``None``: silent).
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = history if history is not None else History()
    scaler = env.grad_scaler(_device_of(model))
    for epoch in range(1, num_epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, train_loader, loss_fn, optimizer, scaler,
                                            scheduler, progress)
        val_loss, val_acc = evaluate(model, val_loader, loss_fn) if val_loader else (None, None)
        history.add(epoch=len(history) + 1, stage=stage, train_loss=train_loss,
                    train_acc=train_acc, val_loss=val_loss, val_acc=val_acc,
                    seconds=time.perf_counter() - start)
        if log and (epoch % log_every == 0 or epoch == num_epochs):
            log(History.format_row(history.last))
    return history


# ----- save, reload, predict one image -------------------------------------------------------

def save_model(model, path, classes, image_size=None, **extra):
    """Save weights plus what it takes to rebuild and use them: backbone, classes, size (07)."""
    from course_utils import models

    name = getattr(model, "backbone_name", None)
    if name is None:
        raise ValueError("save_model needs a model made by cu.models.create (it names its backbone)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "backbone": name,
        "classes": list(classes),
        "image_size": int(image_size or models.spec(name).input_size),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    torch.save(checkpoint, path)
    return path


def load_model(path, device=None):
    """Rebuild a model saved by ``save_model``, in eval mode; ``.classes`` and ``.image_size`` set (07)."""
    from course_utils import models

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = models.create(checkpoint["backbone"], num_classes=len(checkpoint["classes"]),
                          pretrained=False)  # the saved weights replace the pretrained ones
    # A model saved while frozen has FrozenBatchNorm layers, which keep no batch counter.
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise ValueError(f"{path} does not match {checkpoint['backbone']}: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    model.classes, model.image_size = checkpoint["classes"], checkpoint["image_size"]
    return prepare(model, device).eval()


def predict_image(model, image, transform=None):
    """``(class name, probability)`` for one image (a path or a PIL image) (07)."""
    from PIL import Image

    from course_utils import data

    if not isinstance(image, Image.Image):
        with Image.open(image) as f:
            image = f.convert("RGB")
    if transform is None:
        transform = data.make_transform(model.backbone_name, train=False, size=model.image_size)
    X = transform(image.convert("RGB")).unsqueeze(0)
    logits, _ = predict(model, [(X, torch.zeros(1, dtype=torch.long))])
    probs = logits.softmax(dim=1)[0]
    index = int(probs.argmax())
    return model.classes[index], float(probs[index])
