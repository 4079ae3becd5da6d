"""Faults and hostile input against the two commands, each bounded in time (README, "Reliability").

Seven classes, as found by trying the commands as a careful attacker and a clumsy user would:
outputs that must be whole or untouched, folder walks that must end, a checksum list that must
stay inside its data set, verification that must follow the files, downloads that must end,
results that must not be silently wrong, and failures that must read as one sentence. Every
case here failed (hung, lost data, accepted a path outside the data, gave a wrong result or a
traceback) before the fix that it tests. ``test_readme_states_this_suites_figures`` keeps the
README's count of cases equal to the number of cases below.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import leftovers, make_tree, md5, tiny_entry, zip_of

import course_utils as cu
from course_utils import files, finetune
from course_utils.catalog import DATASETS
from course_utils.data import store
from course_utils.data.__main__ import main as data_main

HANG_LIMIT_S = 90  # a command that has not ended by then hangs: the case fails


# ----- helpers -------------------------------------------------------------------------------

def copy_images(source, target, n):
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.jpg"))[:n]:
        shutil.copyfile(path, target / path.name)


@pytest.fixture(scope="module")
def images(shared_mirror, tmp_path_factory):
    """A small train/ and val/ of real ants and bees (4 and 3 per class)."""
    root = tmp_path_factory.mktemp("images")
    for split, n in (("train", 4), ("val", 3)):
        for name in ("ants", "bees"):
            copy_images(shared_mirror / "hymenoptera_data" / split / name, root / split / name, n)
    return root


@pytest.fixture
def folder(images, tmp_path):
    """A fresh copy of ``images`` that a case may damage."""
    shutil.copytree(images, tmp_path / "images")
    return tmp_path / "images"


def finetune_main(data_dir, out, *extra, monkeypatch):
    """The command in this process (small images: seconds), minus its process-wide malloc tuning."""
    monkeypatch.setattr(finetune, "_reuse_freed_memory", lambda: False)
    return finetune.main([str(data_dir), "--output", str(out), "--image-size", "64", *extra])


def previous_run(out):
    """An output folder holding an earlier run's model.pt and metrics.json."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pt").write_bytes(b"the previous, good model")
    (out / "metrics.json").write_text('{"val_accuracy": 0.9}\n')
    return {name: (out / name).read_bytes() for name in ("model.pt", "metrics.json")}


def unchanged(out, before):
    now = {p.name: p.read_bytes() for p in out.iterdir() if p.name in before}
    temporary = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    return now == before and temporary == []


def one_line_error(err):
    lines = err.strip().splitlines()
    return "Traceback" not in err and lines and lines[-1].startswith(("error: ", "interrupted"))


def make_read_only(folder, monkeypatch):
    """Creating a file in ``folder`` fails as on a read-only folder (root ignores chmod, so the
    operating system's answer is injected where cu.files asks for a temporary file)."""
    real = files.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, folder):
            raise PermissionError(errno.EACCES, "Permission denied", str(folder))
        return real(*args, dir=dir, **kwargs)
    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)


def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started before the output was checked")
    monkeypatch.setattr(finetune, "train_head", fail)


def half_then(error):
    """A torch.save that writes half a file, then fails as a full disk or a signal would."""
    def save(obj, f):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        if error == "SIGINT":
            os.kill(os.getpid(), signal.SIGINT)  # a real signal: Python raises KeyboardInterrupt
            time.sleep(1)
        raise error
    return save


# ----- 1. outputs are whole, or untouched ----------------------------------------------------

@pytest.mark.parametrize("fault", ["disk full in model.pt", "disk full in metrics.json",
                                   "SIGINT during the save"])
def test_a_failed_save_keeps_the_previous_run(fault, folder, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    before = previous_run(out)
    if fault == "disk full in model.pt":
        monkeypatch.setattr(torch, "save", half_then(OSError(errno.ENOSPC, "No space left on device")))
    elif fault == "SIGINT during the save":
        monkeypatch.setattr(torch, "save", half_then("SIGINT"))
    else:
        real = files._flush_to_disk

        def full_at_metrics(path):  # fsync is where a full disk shows up (delayed allocation)
            if "metrics.json" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            real(path)
        monkeypatch.setattr(files, "_flush_to_disk", full_at_metrics)
    status = finetune_main(folder, out, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert status == (130 if "SIGINT" in fault else 1)
    assert one_line_error(err), err
    assert ("No space left on device" in err) != ("SIGINT" in fault)
    assert unchanged(out, before)


def test_a_good_run_replaces_both_files_and_metrics_names_its_model(folder, tmp_path,
                                                                    monkeypatch, capsys):
    out = tmp_path / "out"
    previous_run(out)
    assert finetune_main(folder, out, monkeypatch=monkeypatch) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_sha256"] == store.sha256_file(out / "model.pt")
    cu.train.load_model(out / "model.pt")
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_a_second_run_on_a_folder_in_use_is_refused_at_once(folder, tmp_path, monkeypatch,
                                                           capsys):
    out = tmp_path / "out"
    before = previous_run(out)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, filelock; l = filelock.FileLock(sys.argv[1], "
         "timeout=0); l.acquire(); print('locked', flush=True); time.sleep(60)",
         str(out / files.LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        no_training(monkeypatch)
        status = finetune_main(folder, out, monkeypatch=monkeypatch)
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert status == 2 and one_line_error(err) and "in use by another run" in err
    assert unchanged(out, before)


@pytest.mark.parametrize("case", ["--output is a file", "--output is read-only",
                                  "a folder named model.pt"])
def test_an_unusable_output_is_refused_before_training(case, folder, tmp_path, monkeypatch,
                                                       capsys):
    out = tmp_path / "out"
    if case == "--output is a file":
        out.write_text("not a folder")
    elif case == "a folder named model.pt":
        (out / "model.pt").mkdir(parents=True)
    else:
        out.mkdir()
        make_read_only(out, monkeypatch)
    no_training(monkeypatch)
    status = finetune_main(folder, out, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert status == 2 and one_line_error(err), err
    assert "--output" in err


# ----- 2. folder walks end, and read each real folder once -----------------------------------

def run_command(module, *args, env=None):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, timeout=HANG_LIMIT_S, cwd=cu.env.REPO_ROOT,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("links", [{"self1": ".", "self2": "."}, {"up": ".."},
                                   {"to_bees": "../bees"}, {"up": "..", "to_root": "../.."}])
def test_links_in_a_class_folder_neither_hang_nor_relabel(links, folder):
    for name, target in links.items():
        os.symlink(target, folder / "train" / "ants" / name)
    found = cu.data.from_folder(folder)
    assert len(found.train) == 8 and sorted(found.train.targets) == [0] * 4 + [1] * 4
    assert all("ants" in p for p, t in zip(found.train.paths, found.train.targets, strict=True)
               if t == 0)
    assert sorted(os.path.basename(p) for p, _ in found.links) == sorted(links)


def test_the_command_on_a_self_linked_folder_ends_and_says_so(folder, tmp_path):
    os.symlink(".", folder / "train" / "ants" / "again")
    os.symlink(".", folder / "train" / "bees" / "again")
    result = run_command("course_utils.finetune", folder, "--output", tmp_path / "out",
                         "--image-size", "64")
    assert result.returncode == 0, result.stderr
    assert "did not follow train/ants/again" in result.stderr
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["num_train"] == 8


TINY_DATA_COMMAND = """
import sys
from course_utils.catalog import DATASETS, Dataset
DATASETS["tiny"] = Dataset(name="tiny", title="Tiny", task="2 classes", classes=["a", "b"],
                           splits=("train", "val"), split_policy="folders", folder="tiny",
                           loader="ImageFolder", reader="imagefolder", layout="tiny/")
from course_utils.data.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_verify_and_list_end_on_a_link_loop_and_name_it(empty_data):
    make_tree(empty_data / "tiny")
    store.write_manifest(empty_data / "tiny")
    os.symlink("..", empty_data / "tiny" / "train" / "a" / "up")
    os.symlink(".", empty_data / "tiny" / "train" / "b" / "self")

    def data_command(*args):
        return subprocess.run([sys.executable, "-c", TINY_DATA_COMMAND, *args], text=True,
                              capture_output=True, timeout=HANG_LIMIT_S, cwd=cu.env.REPO_ROOT,
                              env={**os.environ, "COURSE_DATA_DIR": str(empty_data)})
    listed = data_command("list")
    assert listed.returncode == 0 and "tiny" in listed.stdout, listed.stderr
    verified = data_command("verify", "tiny")
    assert verified.returncode == 1 and "Traceback" not in verified.stderr
    assert "BAD" in verified.stderr and "train/a/up" in verified.stderr
    assert "train/b/self" in verified.stderr


def test_a_catalog_loader_reads_each_image_once(empty_data, monkeypatch):
    make_tree(empty_data / "tiny")
    os.symlink("..", empty_data / "tiny" / "train" / "a" / "up")
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry("http://127.0.0.1:9/tiny.zip", None))
    ds = cu.data.load("tiny", "train")
    assert len(ds) == 4 and sorted(ds.targets) == [0, 0, 1, 1]


# ----- 3. a checksum list stays inside its data set ------------------------------------------

@pytest.mark.parametrize("line", ["../secret.txt", "/etc/hostname", "train/../../secret.txt",
                                  "C:/Windows/win.ini", "train\\..\\..\\secret.txt"])
def test_a_checksum_list_naming_a_path_outside_is_refused_unopened(line, empty_data, tmp_path,
                                                                    monkeypatch):
    mirror = tmp_path / "mirror"
    make_tree(mirror / "tiny")
    (tmp_path / "secret.txt").write_text("not part of any data set")
    store.write_manifest(mirror / "tiny")
    with open(mirror / "tiny" / "SHA256SUMS", "a") as f:
        f.write(f"{'0' * 64}  {line}\n")
    opened = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p: opened.append(p) or real(p))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry("http://127.0.0.1:9/tiny.zip", None))
    with pytest.raises(cu.data.ChecksumError, match="outside its data set"):
        cu.data.fetch("tiny")
    assert opened == [] and not (empty_data / "tiny").exists()


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8 \x80", b"abc  train/a/0.png\n"])
def test_a_broken_checksum_list_is_one_line_from_the_command(content, empty_data, tmp_path,
                                                             monkeypatch, capsys):
    make_tree(empty_data / "tiny")
    (empty_data / "tiny" / "SHA256SUMS").write_bytes(content)
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry("http://127.0.0.1:9/tiny.zip", None))
    assert data_main(["verify", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "SHA256SUMS" in err and len(err.strip().splitlines()) == 1


# ----- 4. what is verified is what is loaded, checked against current contents ---------------

def tiny_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    make_tree(mirror / "tiny")
    store.write_manifest(mirror / "tiny")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry("http://127.0.0.1:9/tiny.zip", None))
    return mirror / "tiny"


def test_a_mirror_file_changed_after_a_verified_fetch_is_caught(empty_data, tmp_path,
                                                                monkeypatch):
    mirror = tiny_mirror(tmp_path, monkeypatch)
    cu.data.fetch("tiny")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(mirror / "train" / "a" / "0.png")  # swapped later
    with pytest.raises(cu.data.ChecksumError, match="do not match"):
        cu.data.load("tiny", "train")
    assert not (empty_data / "tiny").exists()  # unlinked: the next fetch starts afresh


def test_a_hidden_image_is_checked_as_the_loader_would_read_it(empty_data, tmp_path,
                                                               monkeypatch):
    mirror = tiny_mirror(tmp_path, monkeypatch)
    Image.new("RGB", (8, 8)).save(mirror / "train" / "a" / "._0.png")  # macOS's AppleDouble
    with pytest.raises(cu.data.ChecksumError, match=r"\._0\.png"):
        cu.data.fetch("tiny")


def test_mirror_into_a_folder_with_other_files_lists_only_what_it_checked(
        empty_data, tmp_path, monkeypatch, capsys):
    tiny_mirror(tmp_path, monkeypatch)
    cu.data.fetch("tiny")
    dest = tmp_path / "usb"
    (dest / "tiny" / "train" / "a").mkdir(parents=True)
    (dest / "tiny" / "train" / "a" / "stray.png").write_bytes(b"was here before")
    assert data_main(["mirror", str(dest), "tiny"]) == 1  # not a course mirror: refused
    assert "not a course mirror" in capsys.readouterr().err
    store.write_manifest(dest / "tiny", {})  # an earlier course mirror, since changed by hand
    assert data_main(["mirror", str(dest), "tiny"]) == 0
    listed = store.read_manifest(dest / "tiny" / "SHA256SUMS")
    assert "train/a/stray.png" not in listed and len(listed) == 8
    assert not (dest / "tiny" / "train" / "a" / "stray.png").exists()
    assert store.check_files(dest / "tiny", listed, complete=True) == []
    assert [p.name for p in dest.iterdir()] == ["tiny"]  # no temporary folder left


def test_mirror_onto_its_own_source_is_refused(empty_data, tmp_path, monkeypatch, capsys):
    mirror = tiny_mirror(tmp_path, monkeypatch)
    cu.data.fetch("tiny")  # the data root now links into the mirror
    before = {p: p.read_bytes() for p in mirror.rglob("*") if p.is_file()}
    assert data_main(["mirror", str(mirror.parent), "tiny"]) == 1
    err = capsys.readouterr().err
    assert "where the data set is read from" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in mirror.rglob("*") if p.is_file()} == before


def test_ctrl_c_during_a_mirror_copy_leaves_nothing_half_copied(empty_data, tmp_path,
                                                                 monkeypatch, capsys):
    tiny_mirror(tmp_path, monkeypatch)
    cu.data.fetch("tiny")
    real, calls = shutil.copyfile, []

    def interrupted(src, dst, **kwargs):
        calls.append(src)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(src, dst, **kwargs)
    monkeypatch.setattr(store.shutil, "copyfile", interrupted)
    dest = tmp_path / "usb"
    assert data_main(["mirror", str(dest), "tiny"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(dest.iterdir()) == []


# ----- 5. downloads end: per read, per minute and in total -----------------------------------

@pytest.fixture
def slow_server(monkeypatch):
    """A local server that sends ``body`` in pieces of ``piece`` bytes every ``every`` seconds."""
    state = {"body": b"", "piece": 1, "every": 0.1}
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            for i in range(0, len(state["body"]), state["piece"]):
                if stop.is_set():
                    return
                try:
                    self.wfile.write(state["body"][i:i + state["piece"]])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                time.sleep(state["every"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state["url"] = f"http://127.0.0.1:{server.server_port}/tiny.zip"
    yield state
    stop.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("case", ["trickle", "slow past the deadline"])
def test_a_slow_download_ends_with_a_reason_and_leaves_nothing(case, empty_data, slow_server,
                                                               tmp_path, monkeypatch):
    body = zip_of(make_tree(tmp_path / "src" / "tiny"), "tiny")
    slow_server["body"] = body
    # raising=False: the same test also runs against code without these limits, and fails there.
    if case == "trickle":  # a byte every 0.1 s: no read ever times out
        slow_server.update(piece=1, every=0.1)
        monkeypatch.setattr(store, "STALL_WINDOW_S", 1, raising=False)
        monkeypatch.setattr(store, "STALL_MIN_BYTES_PER_S", 100, raising=False)
        expected = "stalled"
    else:  # fast enough per window, but the whole would take ~len(body)/1000 s
        slow_server.update(piece=100, every=0.1)
        monkeypatch.setattr(store, "STALL_MIN_BYTES_PER_S", 10, raising=False)
        monkeypatch.setattr(store, "DOWNLOAD_DEADLINE_S", 1, raising=False)
        expected = "deadline"
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(slow_server["url"], md5(body)))
    start = time.monotonic()
    with pytest.raises(cu.data.DataUnavailable, match=expected) as err:
        cu.data.fetch("tiny")
    assert time.monotonic() - start < 10
    assert slow_server["url"] in str(err.value) and "nothing was kept" in str(err.value)
    assert not (empty_data / "tiny").exists() and leftovers(empty_data) == []


def test_ctrl_c_during_a_download_leaves_nothing(empty_data, slow_server, tmp_path, monkeypatch,
                                                 capsys):
    padding = [("tiny/padding.bin", np.random.default_rng(0).bytes(60_000))]
    body = zip_of(make_tree(tmp_path / "src" / "tiny"), "tiny", padding)
    slow_server.update(body=body, piece=1000, every=0.05)  # about 3 s in all
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(slow_server["url"], md5(body)))
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    assert data_main(["fetch", "tiny"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (empty_data / "tiny").exists() and leftovers(empty_data) == []


# ----- 6. no silently wrong result -----------------------------------------------------------

def test_a_validation_folder_without_a_class_warns_and_says_so_in_metrics(folder, tmp_path,
                                                                          monkeypatch, capsys):
    bees = tmp_path / "val_bees"
    shutil.move(folder / "val" / "bees", bees)
    status = finetune_main(folder, tmp_path / "out", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    # Before: "accuracy 1.0000". A model that always says "ants" would score that too.
    assert status == 2 and "one class only (ants)" in err and one_line_error(err), err
    # Three classes in train/, two of them in val/: it runs, and says what val/ cannot tell.
    shutil.move(bees, folder / "val" / "bees")
    copy_images(folder / "train" / "bees", folder / "train" / "wasps", 4)
    assert finetune_main(folder, tmp_path / "out", monkeypatch=monkeypatch) == 0
    err = capsys.readouterr().err
    assert "warning: val/ has no images of class(es) wasps" in err
    warnings = json.loads((tmp_path / "out" / "metrics.json").read_text())["warnings"]
    assert warnings == ["val/ has no images of class(es) wasps: the validation accuracy says "
                        "nothing about them"]


def test_a_16_bit_image_loads_with_its_grey_level_not_white(tmp_path):
    values = np.array([[0, 16384], [32768, 65535]], dtype=np.uint16)
    for split in ("train", "val"):
        for name in ("scans", "photos"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.fromarray(values).save(tmp_path / split / name / "x.png")  # 16-bit grayscale
    assert Image.open(tmp_path / "train" / "scans" / "x.png").mode.startswith("I")
    image, _ = cu.data.from_folder(tmp_path).train[0]
    rgb = np.asarray(image)
    assert rgb.shape == (2, 2, 3)
    assert rgb[..., 0].tolist() == [[0, 64], [128, 255]]  # clipped, it was [[0, 255], [255, 255]]


# ----- 7. failures are one sentence ----------------------------------------------------------

@pytest.mark.parametrize("case", ["a file", "read-only"])
def test_an_unusable_data_root_is_one_sentence(case, tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    if case == "a file":
        root.write_text("not a folder")
    else:
        root.mkdir()
        make_read_only(root, monkeypatch)
    assert data_main(["fetch", "hymenoptera"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "COURSE_DATA_DIR" in err and str(root) in err


def test_an_unreadable_train_folder_is_one_sentence(folder, tmp_path, monkeypatch, capsys):
    real = os.scandir
    train = str(folder / "train")

    def denied(path="."):  # root ignores chmod 000: the OS's answer, injected
        if os.fspath(path).startswith(train):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)
    monkeypatch.setattr(os, "scandir", denied)
    status = finetune_main(folder, tmp_path / "out", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert status == 2 and one_line_error(err) and "cannot read" in err and "Permission denied" in err


@pytest.mark.parametrize("seed", ["-1", str(2**32), "99999999999999999999"])
def test_an_out_of_range_seed_is_refused_by_the_parser(seed, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        finetune.parse_args([str(tmp_path), "--output", str(tmp_path / "out"), "--seed", seed])
    assert exit_.value.code == 2 and "--seed must be between 0 and" in capsys.readouterr().err


def test_an_image_truncated_during_the_run_is_one_sentence(folder, tmp_path, monkeypatch,
                                                           capsys):
    real = cu.data.from_folder
    victim = sorted((folder / "val" / "bees").glob("*.jpg"))[0]

    def then_truncate(*args, **kwargs):  # checked as readable, then cut short before training
        found = real(*args, **kwargs)
        victim.write_bytes(victim.read_bytes()[:200])
        return found
    monkeypatch.setattr(finetune.data, "from_folder", then_truncate)
    status = finetune_main(folder, tmp_path / "out", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert status == 1 and one_line_error(err), err
    assert f"cannot read the image {victim}" in err
    assert not (tmp_path / "out" / "model.pt").exists()


class _BrokenImages(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        from course_utils.data.images import UnreadableImage

        raise UnreadableImage("cannot read the image x.jpg (OSError: image file is truncated)")


def test_an_error_in_a_dataloader_worker_is_still_one_sentence():
    # On a GPU the command reads images in worker processes; torch hands their error over
    # with the worker's traceback inside the message.
    loader = torch.utils.data.DataLoader(_BrokenImages(), num_workers=1)
    with pytest.raises(RuntimeError) as err:
        next(iter(loader))
    assert "Traceback" in str(err.value)
    assert finetune._last_line(err.value) == ("cannot read the image x.jpg (OSError: image file "
                                              "is truncated)")


# ----- the README's figures ------------------------------------------------------------------

def test_readme_states_this_suites_figures():
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", __file__],
                               capture_output=True, text=True, timeout=120, cwd=cu.env.REPO_ROOT)
    cases = [line for line in collected.stdout.splitlines() if "::" in line
             and "test_readme_states_this_suites_figures" not in line]
    assert cases, collected.stdout + collected.stderr
    readme = (cu.env.REPO_ROOT / "README.md").read_text()
    assert f"`tests/test_reliability.py` tries {len(cases)} cases" in readme
