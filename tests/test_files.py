"""cu.files: whole-or-nothing writes, result pairs that agree, one writer per folder."""

import errno
import os
import subprocess
import sys
import time

import pytest
import torch

import course_utils as cu
from course_utils import files


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def failing_writer(error):
    """A writer that writes half a file, then fails as a full disk or a signal would."""
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a file")
        raise error
    return write


def test_write_text_replaces_the_whole_file(tmp_path):
    path = tmp_path / "a.txt"
    files.write_text(path, "one")
    files.write_text(path, "two")
    assert path.read_text() == "two" and leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "model.pt"
    path.write_bytes(b"the previous good model")
    with pytest.raises(type(error)):
        files.write_atomic(path, failing_writer(error))
    assert path.read_bytes() == b"the previous good model" and leftovers(tmp_path) == []


def test_a_pair_is_all_old_or_all_new(tmp_path):
    model, metrics = tmp_path / "model.pt", tmp_path / "metrics.json"
    model.write_bytes(b"old model")
    metrics.write_text("old metrics")
    # The second file fails: the first must not be replaced either.
    with pytest.raises(OSError):
        files.write_together([(model, lambda t: t.write_bytes(b"new model")),
                              (metrics, failing_writer(OSError(errno.ENOSPC, "full")))])
    assert model.read_bytes() == b"old model" and metrics.read_text() == "old metrics"
    files.write_together([(model, lambda t: t.write_bytes(b"new model")),
                          (metrics, lambda t: t.write_text("new metrics"))])
    assert model.read_bytes() == b"new model" and metrics.read_text() == "new metrics"
    assert leftovers(tmp_path) == []


def test_between_the_renames_the_last_file_is_missing_not_stale(tmp_path, monkeypatch):
    model, metrics = tmp_path / "model.pt", tmp_path / "metrics.json"
    model.write_bytes(b"old model")
    metrics.write_text("old metrics")
    real_replace, calls = os.replace, []

    def crash_after_first_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", crash_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        files.write_together([(model, lambda t: t.write_bytes(b"new model")),
                              (metrics, lambda t: t.write_text("new metrics"))])
    # New model, and no metrics.json that would describe the old one.
    assert model.read_bytes() == b"new model" and not metrics.exists()
    assert leftovers(tmp_path) == []


def test_save_model_is_atomic(tmp_path, monkeypatch):
    model = cu.models.create("efficientnet_lite0", num_classes=2, pretrained=False)
    path = cu.train.save_model(model, tmp_path / "model.pt", ["a", "b"])
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", lambda obj, f: failing_writer(
        OSError(errno.ENOSPC, "No space left on device"))(f))
    with pytest.raises(OSError, match="No space"):
        cu.train.save_model(model, path, ["a", "b"])
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    cu.train.load_model(path)  # still the good one


def test_check_writable_refuses_a_file_and_creates_a_folder(tmp_path):
    files.check_writable(tmp_path / "new" / "out")
    assert (tmp_path / "new" / "out").is_dir() and leftovers(tmp_path / "new" / "out") == []
    (tmp_path / "plain").write_text("x")
    with pytest.raises(NotADirectoryError):
        files.check_writable(tmp_path / "plain")


HOLD_LOCK = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1], timeout=0)
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_folder_locked_by_another_process_is_refused_until_it_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / files.LOCK_NAME)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(files.FolderBusy, match="in use by another run"):
            with files.lock_folder(tmp_path):
                pass
        assert time.monotonic() - start < 5  # refused at once, not after a wait
    finally:
        holder.kill()  # SIGKILL: no chance to release; the OS frees the lock anyway
        holder.wait()
    with files.lock_folder(tmp_path):
        pass


def test_the_lock_also_holds_within_one_process(tmp_path):
    with files.lock_folder(tmp_path):
        with pytest.raises(files.FolderBusy):
            with files.lock_folder(tmp_path):
                pass
