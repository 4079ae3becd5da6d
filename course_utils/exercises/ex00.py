"""Exercises of notebook 00 (setup and tour)."""

import torch
from PIL import Image
from skimage import data as skdata
from torchvision import transforms as T

from course_utils import checks, data, models


@checks.never_raises
def num_classes(answer, model):
    """Exercise 1: how many classes the pretrained model predicts."""
    head = models.get_head(model)
    return checks.check_value(answer, head.out_features, name="number of ImageNet classes",
                              mistakes=[(head.in_features, "that is the width of the features "
                                         "entering the head (in_features); count what comes out"),
                                        (head.out_features + 1, "class indices start at 0")])


@checks.never_raises
def batch_of_four(x4, x):
    """Exercise 2: four copies of the one-image batch ``x``, ready for the model."""
    batch, channels, height, width = x.shape
    joined = "your copies were joined along {}; join them along dimension 0, the batch"
    shape = checks.check_shape(x4, (4 * batch, channels, height, width), name="batch of four", mistakes=[
        ((4, batch, channels, height, width), "torch.stack added a new dimension, but x already "
                                              "has its batch dimension; use torch.cat (or x.repeat)"),
        ((batch, 4 * channels, height, width), joined.format("the channels (dim=1)")),
        ((batch, channels, 4 * height, width), joined.format("the height (dim=2)")),
        ((batch, channels, height, 4 * width), joined.format("the width (dim=3)")),
    ])
    if not shape:
        return shape
    if not torch.allclose(torch.as_tensor(x4).float().cpu(), x.repeat(4, 1, 1, 1).float().cpu()):
        return checks.Feedback(False, "the shape is right, but the four images are not copies of "
                                      "the cat in x.", "batch of four")
    return checks.Feedback(True, f"correct {tuple(x4.shape)}: four images, three colour "
                                 "channels, 224 x 224 pixels.", "batch of four")


@checks.never_raises
def trainable_prediction(prediction, num_outputs=10):
    """Exercise 3 (predict first): trainable parameters of Lite0 with a new head, frozen."""
    model = models.create("efficientnet_lite0", num_classes=num_outputs, pretrained=False)
    models.freeze(model)
    measured = models.count_parameters(model)
    width = models.num_features(model)
    result = checks.check_value(prediction, measured, name="your prediction", mistakes=[
        (width * num_outputs, "you counted the weights but not the biases: one per output"),
        (width + num_outputs, "each of the outputs has its own weight for every feature: "
                              "features x outputs, plus the biases"),
        (lambda a: a >= models.count_parameters(model, trainable_only=False) / 2,
         "that is about the whole model; freeze() stops the gradients of everything but the "
         "head"),
    ])
    if result:
        return checks.Feedback(True, f"right: {width} features x {num_outputs} outputs + "
                                     f"{num_outputs} biases. Training only these is what makes "
                                     "transfer cheap.", "your prediction")
    return result


@checks.never_raises
def espresso_without_normalize(answer):
    """Exercise 4 (change the code): the espresso probability when Normalize is left out."""
    model = models.create("efficientnet_lite0").eval()
    spec = models.spec("efficientnet_lite0")
    normalized = data.make_transform("efficientnet_lite0", train=False)
    plain = T.Compose([step for step in normalized.transforms if not isinstance(step, T.Normalize)])
    photo = Image.fromarray(skdata.coffee())
    espresso = 967  # the ImageNet index of "espresso"
    with torch.no_grad():
        probabilities = {name: model(tf(photo).unsqueeze(0)).softmax(dim=1)[0, espresso].item()
                         for name, tf in (("plain", plain), ("normalized", normalized))}
    result = checks.check_value(answer, probabilities["plain"], rtol=0, atol=0.01,
                                name="espresso probability without Normalize", mistakes=[
        (probabilities["normalized"], "that is the probability with Normalize: build x again "
                                      "with the transform that leaves it out"),
        (lambda a: a > 1, "a probability lies between 0 and 1 (softmax, not the raw score; "
                          "not a percentage)"),
    ])
    if result:
        return checks.Feedback(True, f"right. The network still sees an espresso, but less sure "
                                     f"of it: its weights were trained on inputs scaled to mean "
                                     f"{spec.mean[0]} and std {spec.std[0]}, and [0, 1] pixels are "
                                     "not what they expect. On harder photos the wrong scaling "
                                     "changes the answer.", result.name)
    return result
