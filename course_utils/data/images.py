"""Reading a folder of images, one subfolder per class, the same way in every loader (00, 07).

* Folders are walked with :func:`course_utils.data.walk.walk`: each real folder once, so a link
  to ``.`` or ``..`` neither hangs the loader nor relabels another class's images.
* Hidden files and folders (``.DS_Store``, ``._photo.jpg``, ``.ipynb_checkpoints``) are not
  images: left out and listed.
* :func:`load_rgb` scales 16-bit grayscale images (medical and industrial PNG, TIFF) to 8 bits;
  Pillow's ``convert("RGB")`` clips them, and a 16-bit photo then looks almost white.
* An image that cannot be read while training (truncated after the folder was read) stops the
  run with :class:`UnreadableImage`, a sentence that names the file.

Imports torchvision (seconds): ``course_utils.data`` imports this module only when it reads images.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from torchvision import datasets
from torchvision.datasets.folder import IMG_EXTENSIONS

from course_utils.data.walk import walk

SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}


class UnreadableImage(RuntimeError):
    """An image file that could be read before cannot be read now (changed or truncated)."""


def to_rgb(image):
    """A PIL image as 8-bit RGB; 16- and 32-bit grayscale scaled to 0-255 instead of clipped."""
    if image.mode in SIXTEEN_BIT or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode in SIXTEEN_BIT or (values.max(initial=0) > 255 and values.max() <= 65535):
            values = values / 257  # the full 16-bit range onto 0-255
        elif values.max(initial=0) > 255:
            values = values * 255 / values.max()
        image = Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), mode="L")
    return image.convert("RGB")


def load_rgb(path):
    """The image at ``path`` as 8-bit RGB (the loader of every image folder in the course)."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except (OSError, ValueError, SyntaxError) as err:  # PIL's ways of saying "broken file"
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:120]
        raise UnreadableImage(f"cannot read the image {path} ({reason}); it was readable when the "
                              "folder was read, so it changed since: restore or remove it and run "
                              "again") from err


def has_image_extension(path):
    return str(path).lower().endswith(IMG_EXTENSIONS)


class ClassFolders(datasets.ImageFolder):
    """torchvision's ImageFolder over ``root/<class>/`` for the given ``classes``, in their order.

    A class without a folder simply has no images (``val/`` may lack one). ``.links`` and
    ``.hidden`` list what the walk left out, and why."""

    def __init__(self, root, classes, is_valid_file=None):
        self._wanted = list(classes)
        self.links, self.hidden = [], []
        super().__init__(root, loader=load_rgb, is_valid_file=is_valid_file, allow_empty=True)

    def find_classes(self, directory):
        return list(self._wanted), {name: i for i, name in enumerate(self._wanted)}

    def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None,
                     allow_empty=False):
        valid = is_valid_file or has_image_extension
        roots = {name: Path(directory) / name for name in class_to_idx}
        present = {name: root for name, root in roots.items() if root.is_dir()}
        seen, samples = set(), []
        for name, root in present.items():
            others = [r for other, r in present.items() if other != name]
            tree = walk(root, hidden=False, apart=others, seen=seen)
            self.links += tree.links
            self.hidden += tree.hidden
            samples += [(str(p), class_to_idx[name]) for p in tree.files if valid(str(p))]
        return samples
