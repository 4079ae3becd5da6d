"""Where the course runs: device, seeds, mixed precision and the run mode (notebook 00)."""

import contextlib
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def is_fast():
    """True in fast mode (``COURSE_FAST=1``): small subsets and few steps, as in CI."""
    return os.environ.get("COURSE_FAST", "").strip().lower() not in ("", "0", "false", "no")


def fast_or_full(fast, full):
    """Pick a setting by run mode: ``num_epochs = cu.env.fast_or_full(1, 5)``."""
    return fast if is_fast() else full


def runs_dir(name):
    """The folder where notebook ``name`` writes what it makes (models, logs, fastai's files).

    ``runs/<name>/`` at the top of the course (or under ``COURSE_RUNS_DIR``), created: one
    git-ignored place, outside ``notebooks/``, so running a notebook never adds files beside it.
    """
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"runs_dir takes a plain name such as '07', not {name!r}")
    root = os.environ.get("COURSE_RUNS_DIR", "").strip()
    folder = (Path(root).expanduser() if root else REPO_ROOT / "runs") / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def in_colab():
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def get_device():
    """The best device here: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_summary(device=None):
    """One line that says what the code will run on."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        precision = str(amp_dtype(device)).removeprefix("torch.")
        return f"cuda: {props.name}, {props.total_memory / 2**30:.0f} GiB (mixed precision: {precision})"
    if device.type == "mps":
        return f"mps: Apple GPU ({platform.machine()})"
    return f"cpu: {os.cpu_count()} cores, {torch.get_num_threads()} threads (no GPU; fine for this course)"


def uses_channels_last(device):
    """True where convolutions run faster with channels_last: CUDA (tensor cores) and CPU (07)."""
    # Measured in 07 on a 2-core CPU: EfficientNet-Lite0 inference ~4x, training ~1.4x faster.
    # MPS gains little and has had layout bugs, so it keeps the default layout.
    return torch.device(device).type in ("cuda", "cpu")


def set_seed(seed=0):
    """Seed Python, NumPy and PyTorch so a CPU run gives the same numbers twice."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def seed_worker(worker_id):
    """Seed DataLoader worker processes from the loader's generator (PyTorch's recipe)."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def amp_dtype(device):
    """The mixed-precision type on ``device`` (15): bfloat16 on a CUDA GPU that has it (Ampere
    and later: float32's range, so no loss scaling), float16 on an older one, None elsewhere."""
    if torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device):
    """Mixed precision on CUDA (``amp_dtype``); a no-op context on CPU and MPS."""
    dtype = amp_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def grad_scaler(device):
    """A GradScaler where training runs in float16 (its small gradients would underflow to 0
    without it); disabled, a pass-through, elsewhere: bfloat16 and float32 need none (15)."""
    return torch.amp.GradScaler("cuda", enabled=amp_dtype(device) == torch.float16)


def versions():
    """Versions of the libraries the course uses, as a dict."""
    import importlib.metadata as md

    names = ["torch", "torchvision", "timm", "fastai", "medmnist", "numpy", "nbval", "jupyterlab"]
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "not installed"
    return found


def summary():
    """Print the run mode, device and versions: the first cell of every notebook calls it."""
    mode = "fast (COURSE_FAST=1: small subsets, few steps)" if is_fast() else "full"
    print(f"run mode : {mode}")
    print(f"device   : {device_summary()}")
    print("versions : " + ", ".join(f"{k} {v}" for k, v in versions().items()))
