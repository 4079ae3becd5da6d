"""Walking a folder of data: every real folder once, whatever links it holds (00, 07).

``os.walk(followlinks=True)`` (and torchvision's ImageFolder, which uses it) never ends on a
link to ``.`` or ``..``, and a link to ``..`` inside a class folder reads the other classes'
images again under the wrong label. :func:`walk` follows a link to a folder only when that
folder has not been read yet, does not contain the starting folder, and does not lie in a
folder the caller keeps apart (another class); every link it does not follow is reported.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Tree:
    """What :func:`walk` found: files, and what it left out and why."""

    files: list = field(default_factory=list)  # Paths under the root, as reached, sorted
    links: list = field(default_factory=list)  # (path, reason) of folder links not followed
    hidden: list = field(default_factory=list)  # hidden files and folders left out


def _key(path):
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _inside(path, folder):
    return path == folder or path.is_relative_to(folder)


def walk(root, *, hidden=True, follow_links=True, apart=(), seen=None):
    """Every file under ``root``, each real folder read once.

    ``hidden=False`` leaves out names starting with "." (``.ipynb_checkpoints``, ``.DS_Store``).
    ``follow_links=False`` follows no link to a folder (a data set's own files have none).
    ``apart``: folders (say, the other classes) that a link must not lead into.
    ``seen``: a set of folder keys shared between calls, so no folder is read twice overall.
    """
    root = Path(root)
    real_root = Path(os.path.realpath(root))
    apart = [Path(os.path.realpath(a)) for a in apart]
    seen = set() if seen is None else seen  # (device, inode) of each folder read
    tree, stack = Tree(), [root]
    while stack:
        folder = stack.pop()
        key = _key(folder)
        if key in seen:  # reached a second way (a link to it was followed first)
            if folder.is_symlink():
                tree.links.append((folder, f"a link to a folder that was already read "
                                           f"({os.path.realpath(folder)})"))
            continue
        seen.add(key)
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda e: e.name)
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if not hidden and entry.name.startswith("."):
                tree.hidden.append(path)
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append(path)
            elif entry.is_symlink() and entry.is_dir():
                reason = _why_not_follow(path, real_root, apart, follow_links)
                if reason:
                    tree.links.append((path, reason))
                else:
                    subfolders.append(path)
            elif entry.is_file():
                tree.files.append(path)
            elif entry.is_symlink():
                tree.links.append((path, "a broken link"))
        stack.extend(reversed(subfolders))
    tree.files.sort()
    return tree


def _why_not_follow(link, real_root, apart, follow_links):
    """Why the folder ``link`` leads to is not read, or None to read it."""
    target = Path(os.path.realpath(link))
    if not follow_links:
        return f"a link to a folder ({target}); a data set's files are never links to folders"
    if _inside(real_root, target):
        return f"a link back to a folder that contains it ({target}): a loop"
    for folder in apart:
        if _inside(target, folder):
            return f"a link into {folder.name}/, which is read as its own class"
    return None
