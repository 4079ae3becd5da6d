"""The model zoo, computed (notebook 13): what pretrained weights' metadata say about a backbone,
and how many images per second it runs here.

Nothing here downloads weights. torchvision describes each set of weights in its
``Weights.meta`` (parameters, ImageNet-1K top-1 and top-5, GFLOPs, file size); timm's
``pretrained_cfg`` says how the weights expect their input and under what licence, but carries
no accuracy, so a timm row counts its parameters on a randomly initialised model and leaves the
accuracy empty. Speed does not depend on the weights either: random ones run as fast.
"""

import importlib
import logging

import pandas as pd
import timm
import torch
from torchvision import models as tvm

from course_utils import models


def torchvision_models():
    """The names of torchvision's ImageNet classification models (no detection, no video)."""
    return tvm.list_models(module=tvm)


def torchvision_card(name):
    """What torchvision's metadata says about ``name``'s default ImageNet weights, as a dict."""
    weights = tvm.get_model_weights(name).DEFAULT
    meta = weights.meta
    imagenet = meta["_metrics"]["ImageNet-1K"]
    return {
        "model": name,
        "weights": f"{type(weights).__name__}.{weights.name}",
        "params (M)": meta["num_params"] / 1e6,
        "GFLOPs": meta["_ops"],
        "file (MB)": meta["_file_size"],
        "input (px)": weights.transforms().crop_size[0],
        "top-1 (%)": imagenet["acc@1"],
        "top-5 (%)": imagenet["acc@5"],
        "top-1 from": "torchvision metadata",
    }


def torchvision_cards(names=None):
    """:func:`torchvision_card` of each name (default: every classification model), one row
    per model, indexed by name."""
    names = torchvision_models() if names is None else names
    return pd.DataFrame([torchvision_card(name) for name in names]).set_index("model")


def timm_card(name):
    """What timm says about ``name``'s default pretrained weights: the preprocessing and licence
    from ``pretrained_cfg``, and the parameters counted on a model built without weights. timm's
    metadata carry no ImageNet accuracy: the top-1 entry is None."""
    cfg = timm.models.get_pretrained_cfg(name)
    built = timm.create_model(name, pretrained=False)
    return {
        "model": name,
        "weights": cfg.hf_hub_id or cfg.url,
        "params (M)": models.count_parameters(built, trainable_only=False) / 1e6,
        "input (px)": cfg.input_size[-1],
        "crop_pct": cfg.crop_pct,
        "interpolation": cfg.interpolation,
        "mean": tuple(cfg.mean),
        "std": tuple(cfg.std),
        "license": cfg.license,
        "top-1 (%)": None,
    }


def _benchmark():
    """``torch.utils.benchmark``, imported on first use. On a machine without CUDA its import
    logs a warning about CUDA_HOME (from ``torch.utils.cpp_extension``) that says nothing about
    timing; that one logger is quieted for the import and restored after it."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return importlib.import_module("torch.utils.benchmark")
    finally:
        logger.setLevel(level)


def images_per_second(model, batch_size=16, size=224, device="cpu", min_run_time=1.0):
    """Inference throughput of ``model`` on random ``batch_size x 3 x size x size`` batches.

    ``torch.utils.benchmark.Timer`` does the timing: it warms up, repeats the call for at least
    ``min_run_time`` seconds, synchronises CUDA, and runs with this process's number of threads
    (its own default is one). The median time per batch gives the rate. The model runs in eval
    mode under ``torch.inference_mode`` (channels-last on the CPU) and is left as it was found:
    same device, same mode.
    """
    device = torch.device(device)
    first = next(model.parameters(), None)
    was_on = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    x = torch.randn(batch_size, 3, size, size, device=device).contiguous(memory_format=memory_format)
    model.eval().to(device)
    try:
        with torch.inference_mode():
            timer = _benchmark().Timer(stmt="model(x)", globals={"model": model, "x": x},
                                       num_threads=torch.get_num_threads())
            seconds = timer.blocked_autorange(min_run_time=min_run_time).median
    finally:
        model.train(was_training).to(was_on)
    return batch_size / seconds
