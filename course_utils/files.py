"""Writing results safely: whole files or none, pairs that agree, one writer per folder (07).

    cu.files.write_text(path, text)            # readers see the old text or the new, never half
    cu.files.write_together([(model_path, save_model), (metrics_path, save_metrics)])
    with cu.files.lock_folder(out):            # a second run on the same folder is refused
        ...

Every file is first written to a temporary name in its own folder, flushed to disk, then
renamed over the old one (a rename within one folder is atomic on Linux, macOS and Windows).
A failure at any point (a full disk, Ctrl-C, a crash) leaves the previous file as it was and
no temporary file behind. Used by the fine-tune command and ``cu.train.save_model``.
"""

import contextlib
import os
import tempfile
from pathlib import Path

import filelock

LOCK_NAME = ".course-utils.lock"


class FolderBusy(RuntimeError):
    """Another process is writing into the same output folder."""


@contextlib.contextmanager
def temporary_beside(path):
    """A new temporary file name in ``path``'s folder (hidden); removed unless renamed away."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _flush_to_disk(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sync_folder(folder):
    """Make renames in ``folder`` durable (POSIX); Windows cannot open a folder and needs none."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, write):
    """Replace ``path`` by what ``write(tmp_path)`` writes, all or nothing; returns ``path``."""
    path = Path(path)
    with temporary_beside(path) as tmp:
        write(tmp)
        _flush_to_disk(tmp)
        os.replace(tmp, path)
    _sync_folder(path.parent)
    return path


def write_text(path, text):
    """Replace ``path``'s content by ``text`` (UTF-8), all or nothing."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_together(writers):
    """Write several files of one result, so that the last one vouches for the others.

    ``writers`` is ``[(path, write), ...]``; each ``write(tmp_path)`` writes one file. All are
    written to temporary names first: a failure there changes nothing. Then the last file (the
    fine-tune command's ``metrics.json``) is removed, the others renamed into place, and the last
    renamed last. So whenever the last file exists, every file beside it comes from the same run;
    an interruption between the renames leaves the last file missing, never stale.
    """
    paths = [Path(p) for p, _ in writers]
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(temporary_beside(p)) for p in paths]
        for tmp, (_, write) in zip(tmps, writers, strict=True):
            write(tmp)
            _flush_to_disk(tmp)
        paths[-1].unlink(missing_ok=True)
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)
    for folder in {p.parent for p in paths}:
        _sync_folder(folder)
    return paths


def check_writable(folder):
    """Create ``folder`` if needed and write a test file in it: fail now, not after training."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    with temporary_beside(folder / "write-test"):
        pass


@contextlib.contextmanager
def lock_folder(folder):
    """Hold ``folder``'s lock while writing into it; :class:`FolderBusy` if another process has it.

    The lock is the operating system's (``filelock``): it is released when the process ends,
    however it ends, so a crashed run never leaves the folder locked. The empty lock file stays."""
    folder = Path(folder)
    lock = filelock.FileLock(folder / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout as err:
        raise FolderBusy(f"{folder} is in use by another run, which is still writing into it: "
                         "wait for it to finish, or choose another folder") from err
    try:
        yield folder
    finally:
        lock.release()
