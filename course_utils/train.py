"""Training loop, evaluation, history, saving and predicting (notebooks 04 and 07).

    model = cu.train.prepare(model, device)        # device, channels_last
    history = cu.train.fit(model, train_loader, val_loader, optimizer, num_epochs=3)
    cu.plot.history(history)
    cu.train.save_model(model, "runs/ants_bees/model.pt", classes=train_set.classes)

The loop is the one notebook 07 writes out by hand: ``model.train()`` and mixed precision
(CUDA only) while training; ``model.eval()`` and ``torch.no_grad()`` while evaluating; one
line per epoch with its time.
"""

import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from tqdm import tqdm  # plain text bar: no widget state stored in the notebooks

from course_utils import data, env, files, models

# ----- device and memory layout --------------------------------------------------------------


def prepare(model, device=None):
    """Move ``model`` to ``device`` (default: the best one here), channels_last where it pays (07)."""
    device = torch.device(device) if device is not None else env.get_device()
    model.to(device)
    if env.uses_channels_last(device):
        model.to(memory_format=torch.channels_last)
    return model


def to_device(X, y, device):
    """A batch on ``device``; 4-D image batches in channels_last where the model uses it (07)."""
    X = X.to(device, non_blocking=True)
    if X.dim() == 4 and env.uses_channels_last(device):
        X = X.contiguous(memory_format=torch.channels_last)
    return X, y.to(device, non_blocking=True)


def _device_of(model):
    return next(model.parameters()).device


# ----- one epoch, evaluation, prediction -----------------------------------------------------

def accuracy(logits, y):
    """Fraction of rows whose largest logit is the label (04)."""
    return (logits.argmax(dim=1) == y).float().mean().item()


def train_epoch(model, loader, loss_fn, optimizer, scaler=None, scheduler=None, progress=True,
                reduce=None):
    """One pass over ``loader`` in train mode; returns ``(mean loss, accuracy)`` (07).

    Mixed precision on CUDA (``cu.env.autocast``: bfloat16, or float16 with the GradScaler on
    older GPUs), plain float32 elsewhere;
    ``scheduler`` (e.g. OneCycleLR) steps after every batch. ``reduce`` (15): a function that
    sums the tensor ``[loss sum, correct, count]`` over the job's processes, such as
    ``cu.distributed.all_sum``, so that every process reports the whole job's figures.
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
    return _means(total_loss, correct, count, reduce)


def _means(total_loss, correct, count, reduce):
    if reduce is not None:
        total_loss, correct, count = reduce(torch.tensor([total_loss, correct, count],
                                                         dtype=torch.float64)).tolist()
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


@torch.no_grad()
def evaluate(model, loader, loss_fn=None, progress=False, reduce=None):
    """``(mean loss, accuracy)`` of ``model`` on ``loader``, in eval mode, without gradients (07).

    The loss is computed batch by batch where the model runs (a class-weighted loss keeps its
    weights on the GPU) and averaged over images, as ``train_epoch`` does. ``reduce``: as in
    ``train_epoch``; each process then evaluates its own share of the images (15).
    """
    device = _device_of(model)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.eval()  # BatchNorm uses its running statistics, dropout is off
    total_loss, correct, count = 0.0, 0, 0
    for X, y in tqdm(loader, desc="eval", leave=False, disable=not progress):
        X, y = to_device(X, y, device)
        with env.autocast(device):
            logits = model(X)
        total_loss += loss_fn(logits.float(), y).item() * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        count += len(y)
    return _means(total_loss, correct, count, reduce)


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
        history=None, stage="train", progress=True, log=print, log_every=1, reduce=None):
    """Train for ``num_epochs``, evaluating after each; returns the ``History`` (07).

    Pass the ``history`` of an earlier stage (say, head only) to continue its epoch numbers.
    ``log`` gets one line every ``log_every`` epochs and after the last (``None``: silent).
    Several processes (15): a sampler with ``set_epoch`` (``DistributedSampler``) is told the
    epoch before each, so each epoch has its own order; ``reduce`` as in ``train_epoch``.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = history if history is not None else History()
    scaler = env.grad_scaler(_device_of(model))
    for epoch in range(1, num_epochs + 1):
        start = time.perf_counter()
        if hasattr(train_loader.sampler, "set_epoch"):
            train_loader.sampler.set_epoch(epoch)
        train_loss, train_acc = train_epoch(model, train_loader, loss_fn, optimizer, scaler,
                                            scheduler, progress, reduce)
        val_loss, val_acc = (evaluate(model, val_loader, loss_fn, reduce=reduce) if val_loader
                             else (None, None))
        history.add(epoch=len(history) + 1, stage=stage, train_loss=train_loss,
                    train_acc=train_acc, val_loss=val_loss, val_acc=val_acc,
                    seconds=time.perf_counter() - start)
        if log and (epoch % log_every == 0 or epoch == num_epochs):
            log(History.format_row(history.last))
    return history


# ----- save, reload, predict one image -------------------------------------------------------

def save_model(model, path, classes=None, image_size=None, **extra):
    """Save the weights with the model's record (backbone, head, classes, image size), so that
    ``load_model`` can rebuild it; ``classes``/``image_size`` update the record first (07).

    A DataParallel/DDP-wrapped model is saved as the model inside (15)."""
    model = models.unwrap(model)
    changes = {"classes": tuple(classes)} if classes is not None else {}
    if image_size is not None:
        changes["image_size"] = int(image_size)
    info = models.update_record(model, **changes)
    if info.num_classes and len(info.classes) != info.num_classes:
        raise ValueError(f"the head has {info.num_classes} outputs but {len(info.classes)} class "
                         "names were given")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "record": info.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    # Whole or not at all: a full disk or Ctrl-C mid-save keeps the previous file (see files.py).
    return files.write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))


def load_model(path, device=None):
    """Rebuild a model saved by ``save_model``, from its record, in eval mode on ``device`` (07)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    info = models.ModelRecord.from_dict(checkpoint["record"])
    model = models.create(info.backbone, num_classes=info.num_classes, dropout=info.head_dropout,
                          pretrained=False)  # the saved weights replace the pretrained ones
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path} does not match a {info.backbone} with a {info.num_classes}-class "
                         f"head: {str(err).splitlines()[0]}") from err
    models.update_record(model, classes=info.classes, image_size=info.image_size)
    return prepare(model, device).eval()


def predict_image(model, image, transform=None):
    """``(class name, probability)`` for one image (a path or a PIL image) (07)."""
    info = models.record(model)
    if not isinstance(image, Image.Image):
        with Image.open(image) as f:
            image = f.convert("RGB")
    if transform is None:
        transform = data.make_transform(info.backbone, train=False, size=info.image_size)
    X = transform(image.convert("RGB")).unsqueeze(0)
    logits, _ = predict(model, [(X, torch.zeros(1, dtype=torch.long))])
    probs = logits.softmax(dim=1)[0]
    index = int(probs.argmax())
    return info.classes[index], float(probs[index])
