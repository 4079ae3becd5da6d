"""cu.data: loading from the mirror, splits, fast mode, checksums, downloads, safe extraction."""

import dataclasses
import hashlib
import io
import os
import shutil
import socket
import sys
import tarfile
import threading
import time
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

import course_utils as cu
from course_utils.catalog import DATASETS, Archive, Dataset

# Expected sizes and class counts of the course mirror (from each SOURCE.md).
EXPECTED = {
    ("hymenoptera", "train"): {0: 123, 1: 121},
    ("hymenoptera", "val"): {0: 70, 1: 83},
    ("imagenette", "train"): dict.fromkeys(range(10), 60),
    ("imagenette", "val"): dict.fromkeys(range(10), 20),
    ("eurosat", "train"): dict.fromkeys(range(10), 800),
    ("eurosat", "test"): dict.fromkeys(range(10), 200),
    ("pneumoniamnist", "train"): {0: 1214, 1: 3494},
    ("pneumoniamnist", "val"): {0: 135, 1: 389},
    ("pneumoniamnist", "test"): {0: 234, 1: 390},
    ("breastmnist", "train"): {0: 147, 1: 399},
    ("breastmnist", "val"): {0: 21, 1: 57},
    ("breastmnist", "test"): {0: 42, 1: 114},
    ("retinamnist", "train"): {0: 486, 1: 128, 2: 206, 3: 194, 4: 66},
    ("retinamnist", "val"): {0: 54, 1: 12, 2: 28, 3: 20, 4: 6},
    ("retinamnist", "test"): {0: 174, 1: 46, 2: 92, 3: 68, 4: 20},
    ("neu", "train"): dict.fromkeys(range(6), 240),
    ("neu", "test"): dict.fromkeys(range(6), 60),
    ("gtsrb", "train"): dict.fromkeys(range(43), 40),
    ("gtsrb", "test"): dict.fromkeys(range(43), 15),
}


def test_every_split_of_every_data_set_is_covered():
    assert {(n, s) for n, e in DATASETS.items() for s in e.splits} == set(EXPECTED)


@pytest.mark.parametrize("name,split", sorted(EXPECTED))
def test_loads_from_the_mirror_with_expected_counts_and_classes(name, split, mirrored_data):
    ds = cu.data.load(name, split)
    assert Counter(ds.targets) == EXPECTED[name, split]
    assert len(ds) == sum(EXPECTED[name, split].values())
    assert ds.classes == DATASETS[name].classes
    image, label = ds[len(ds) // 2]
    assert isinstance(image, Image.Image) and image.mode == "RGB"  # grayscale sets come as RGB too
    assert label == ds.targets[len(ds) // 2]
    if ds.paths is not None:  # file-based sets also say where each image is (for plots, fastai)
        assert len(ds.paths) == len(ds) and Path(ds.paths[0]).is_file()
    # The data root links into the mirror; nothing was copied.
    entry = DATASETS[name]
    linked = mirrored_data / entry.folder / (entry.members[0] if entry.members else "")
    assert linked.is_symlink()


def test_a_transform_gives_backbone_ready_tensors(mirrored_data):
    for name in ("pneumoniamnist", "gtsrb", "hymenoptera"):
        tf = cu.data.make_transform("efficientnet_lite0", train=False, dataset=name)
        x, y = cu.data.load(name, "train", transform=tf)[0]
        assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and isinstance(y, int)


@pytest.mark.parametrize("name", ["eurosat", "neu"])
def test_seeded_split_is_stratified_disjoint_and_reproducible(name, mirrored_data):
    train, test = cu.data.load(name, "train"), cu.data.load(name, "test")
    assert not set(train.indices) & set(test.indices)
    assert len(train.indices) + len(test.indices) == len(train.base)
    all_targets = train.base.targets
    assert (train.indices, test.indices) == cu.data.stratified_split(all_targets, 0.2, seed=0)
    for c, n in Counter(all_targets).items():
        assert Counter(test.targets)[c] == round(0.2 * n)
    assert cu.data.load(name, "test").indices == test.indices


def test_fast_mode_takes_a_small_stratified_subset(mirrored_data, monkeypatch):
    full = cu.data.load("retinamnist", "val")
    monkeypatch.setenv("COURSE_FAST", "1")
    fast_train, fast_val = cu.data.load("retinamnist", "train"), cu.data.load("retinamnist", "val")
    per_train, per_eval = DATASETS["retinamnist"].fast_per_class
    assert Counter(fast_train.targets) == dict.fromkeys(range(5), per_train)
    # class 4 has only 6 validation images: all of them, and per_eval of the others
    assert Counter(fast_val.targets) == {0: per_eval, 1: per_eval, 2: per_eval, 3: per_eval, 4: 6}
    assert set(fast_val.indices) <= set(full.indices)
    assert cu.data.load("retinamnist", "val").indices == fast_val.indices  # seeded
    assert len(cu.data.load("retinamnist", "val", fast=False)) == len(full)  # explicit wins
    monkeypatch.delenv("COURSE_FAST")
    assert len(cu.data.load("gtsrb", "test", fast=True)) == 43 * DATASETS["gtsrb"].fast_per_class[1]


def test_unknown_split_is_a_clear_error(mirrored_data):
    with pytest.raises(ValueError, match="splits"):
        cu.data.load("eurosat", "val")


# ----- splits ----------------------------------------------------------------------------------

def test_stratified_split_keeps_class_shares_and_is_seeded():
    targets = [0] * 50 + [1] * 30 + [2] * 20
    train, val = cu.data.stratified_split(targets, 0.2, seed=3)
    assert sorted(train + val) == list(range(100)) and not set(train) & set(val)
    assert Counter(targets[i] for i in val) == {0: 10, 1: 6, 2: 4}
    assert cu.data.stratified_split(targets, 0.2, seed=3) == (train, val)
    assert cu.data.stratified_split(targets, 0.2, seed=4)[1] != val


def test_stratified_subset_caps_each_class():
    targets = np.array([0] * 50 + [1] * 3 + [2] * 20)
    idx = cu.data.stratified_subset(targets, per_class=5, seed=0)
    assert Counter(targets[idx].tolist()) == {0: 5, 1: 3, 2: 5}
    assert idx == sorted(set(idx)) == cu.data.stratified_subset(targets, 5, seed=0)
    assert idx != cu.data.stratified_subset(targets, 5, seed=1)


# ----- errors when data is missing --------------------------------------------------------------

def test_offline_and_absent_names_the_data_set_url_and_folder(empty_data, monkeypatch):
    entry = tiny_entry(f"http://127.0.0.1:{free_port()}/tiny.zip", "0" * 32)
    monkeypatch.setitem(DATASETS, "tiny", entry)
    with pytest.raises(cu.data.DataUnavailable) as err:
        cu.data.load("tiny", "train")
    message = str(err.value)
    assert "'tiny'" in message and entry.archives[0].url in message
    assert str(empty_data / "tiny") in message and "COURSE_DATA_MIRROR" in message
    assert not cu.data.is_present("tiny") and leftovers(empty_data) == []


def test_neu_without_a_mirror_asks_for_a_download_by_hand(empty_data):
    with pytest.raises(cu.data.DataUnavailable) as err:
        cu.data.fetch("neu")
    message = str(err.value)
    assert "by hand" in message and DATASETS["neu"].homepage in message
    assert str(empty_data / "neu-surface-defects") in message


def test_a_folder_with_the_wrong_layout_is_a_clear_error(empty_data):
    (empty_data / "neu-surface-defects" / "crazing").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(empty_data / "neu-surface-defects" / "crazing" / "a.png")
    with pytest.raises(cu.data.DataUnavailable, match="found 1 classes.*lists 6"):
        cu.data.load("neu", "train")


# ----- the mirror ------------------------------------------------------------------------------

def snapshot(folder):
    """Every file under `folder` with its bytes' hash and mtime: to prove nothing changed."""
    return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def make_mirror(tmp_path, shared_mirror, corrupt=False):
    """A small mirror: breastmnist.npz and its SHA256SUMS line, optionally with one flipped byte."""
    folder = tmp_path / "mirror" / "medmnist"
    folder.mkdir(parents=True)
    payload = bytearray((shared_mirror / "medmnist" / "breastmnist.npz").read_bytes())
    digest = hashlib.sha256(payload).hexdigest()
    if corrupt:
        payload[1000] ^= 0xFF
    (folder / "breastmnist.npz").write_bytes(payload)
    (folder / "SHA256SUMS").write_text(f"{digest}  breastmnist.npz\n")
    return tmp_path / "mirror"


def test_mirror_is_checked_once_then_linked_and_never_written(
        empty_data, shared_mirror, tmp_path, monkeypatch):
    mirror = make_mirror(tmp_path, shared_mirror)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    before = snapshot(mirror)
    path = cu.data.fetch("breastmnist")
    link = path / "breastmnist.npz"
    assert link.is_symlink() and link.resolve() == (mirror / "medmnist" / "breastmnist.npz").resolve()
    assert list((empty_data / ".verified").iterdir())  # the marker that makes later runs instant

    def no_hashing(*args):
        raise AssertionError("the mirror was checked a second time")

    check_files = cu.data.store.check_files
    monkeypatch.setattr(cu.data.store, "check_files", no_hashing)
    assert cu.data.fetch("breastmnist") == path
    assert len(cu.data.load("breastmnist", "test")) == 156
    assert snapshot(mirror) == before
    monkeypatch.setattr(cu.data.store, "check_files", check_files)
    # An instructor updates the mirror: a changed manifest is checked again.
    (mirror / "medmnist" / "SHA256SUMS").write_text(f"{'0' * 64}  breastmnist.npz\n")
    with pytest.raises(cu.data.ChecksumError, match="breastmnist.npz"):
        cu.data.fetch("breastmnist")


def test_corrupted_mirror_file_is_refused_and_not_linked(empty_data, shared_mirror, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(make_mirror(tmp_path, shared_mirror, corrupt=True)))
    with pytest.raises(cu.data.ChecksumError, match="breastmnist.npz"):
        cu.data.fetch("breastmnist")
    assert not cu.data.is_present("breastmnist")
    assert not (empty_data / "medmnist" / "breastmnist.npz").exists()


def test_without_symlinks_the_mirror_is_copied_and_the_copy_checked(
        empty_data, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    make_tree(mirror / "tiny")
    cu.data.store.write_manifest(mirror / "tiny")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry("http://127.0.0.1:9/tiny.zip", None))

    def no_symlinks(*args, **kwargs):
        raise OSError("symbolic links need developer mode")  # Windows without rights

    monkeypatch.setattr(os, "symlink", no_symlinks)
    real_copyfile = shutil.copyfile

    def flaky_copy(src, dst, **kwargs):  # the first image copies with a flipped byte
        real_copyfile(src, dst)
        if Path(src).name == "0.png" and "train/a" in Path(src).as_posix():
            data = bytearray(Path(dst).read_bytes())
            data[-1] ^= 0xFF
            Path(dst).write_bytes(data)
        return dst

    monkeypatch.setattr(shutil, "copyfile", flaky_copy)
    with pytest.raises(cu.data.ChecksumError, match="0.png"):
        cu.data.fetch("tiny")
    assert not (empty_data / "tiny").exists() and leftovers(empty_data) == []

    monkeypatch.setattr(shutil, "copyfile", real_copyfile)
    folder = cu.data.fetch("tiny")
    assert folder.is_dir() and not folder.is_symlink()
    assert cu.data.verify("tiny") == [] and len(cu.data.load("tiny", "train")) == 4


def test_files_the_manifest_does_not_list_are_not_let_in(empty_data, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    make_tree(mirror / "tiny")
    cu.data.store.write_manifest(mirror / "tiny")
    extra = mirror / "tiny" / "train" / "a" / "extra.png"
    Image.new("RGB", (8, 8)).save(extra)
    (mirror / "tiny" / ".DS_Store").write_bytes(b"finder junk")  # no loader opens it: not data
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry("http://127.0.0.1:9/tiny.zip", None))
    with pytest.raises(cu.data.ChecksumError, match="extra.png"):
        cu.data.fetch("tiny")
    extra.unlink()
    cu.data.fetch("tiny")
    assert cu.data.verify("tiny") == []
    extra.write_bytes(b"slipped in later")
    assert cu.data.verify("tiny") == [empty_data / "tiny" / "train" / "a" / "extra.png"]
    (mirror / "tiny" / "SHA256SUMS").write_text("")
    (empty_data / "tiny").unlink()
    with pytest.raises(cu.data.ChecksumError, match="lists no files"):
        cu.data.fetch("tiny")


def test_verify_names_a_file_corrupted_after_fetch(empty_data, shared_mirror, tmp_path,
                                                   monkeypatch):
    mirror = make_mirror(tmp_path, shared_mirror)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    cu.data.fetch("breastmnist")
    assert cu.data.verify("breastmnist") == []
    target = mirror / "medmnist" / "breastmnist.npz"
    target.write_bytes(target.read_bytes()[:-10])  # truncated behind our back
    assert cu.data.verify("breastmnist") == [empty_data / "medmnist" / "breastmnist.npz"]
    with pytest.raises(cu.data.DataUnavailable, match="not in"):
        cu.data.verify("pneumoniamnist")


# ----- downloads over HTTP (a real server on 127.0.0.1) ------------------------------------------

def make_tree(folder):
    """A tiny ImageFolder data set: {train,val}/{a,b}/{0,1}.png with real PNG images."""
    for split in ("train", "val"):
        for label, color in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
            (folder / split / label).mkdir(parents=True, exist_ok=True)
            for i in range(2):
                Image.new("RGB", (8, 8), color).save(folder / split / label / f"{i}.png")
    return folder


def zip_of(folder, arcroot, extra=()):
    """Zip bytes of `folder` under `arcroot/`, plus (name, bytes) members as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{arcroot}/{path.relative_to(folder).as_posix()}")
        for name, data in extra:
            zf.writestr(name, data)
    return buffer.getvalue()


def tiny_entry(url, md5, **changes):
    entry = Dataset(
        name="tiny", title="Tiny test set", task="2 classes", classes=["a", "b"],
        splits=("train", "val"), split_policy="the train/val folders", folder="tiny",
        loader="ImageFolder", reader="imagefolder", layout="tiny/{train,val}/{a,b}/*.png",
        archives=(Archive(url, "tiny.zip", md5),), archive_root="tiny",
    )
    return dataclasses.replace(entry, **changes)


def leftovers(root):
    """Half-finished things in the data root: partial folders, .part files, kept archives."""
    found = [p.name for p in root.glob(".partial-*")] if root.is_dir() else []
    downloads = root / "downloads"
    return found + ([p.name for p in downloads.iterdir()] if downloads.is_dir() else [])


def free_port():
    """A local port that nothing listens on: the fastest way to be 'offline'."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """Routes of a local HTTP server; each download takes the next payload (the last repeats)."""

    def __init__(self):
        self.routes, self.downloads, self.url = {}, Counter(), ""
        self.stalled, self.release = set(), threading.Event()
        self.default_timeouts = []  # socket.getdefaulttimeout() while each request was served

    def serve(self, path, *payloads):
        self.routes[path] = list(payloads)
        return self.url + path

    def stall(self, path):
        """A route that sends its headers, then nothing: a connection that hangs mid-download."""
        self.stalled.add(path)
        return self.url + path


@pytest.fixture
def http_server(monkeypatch):
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            # The server runs in the test's process: it sees what a download does to it.
            state.default_timeouts.append(socket.getdefaulttimeout())
            if self.path in state.stalled:
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.flush()
                state.release.wait(timeout=60)
                return
            payloads = state.routes.get(self.path)
            if not payloads:
                self.send_error(404)
                return
            state.downloads[self.path] += 1
            body = payloads[0] if len(payloads) == 1 else payloads.pop(0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def tiny_zip(tmp_path):
    return zip_of(make_tree(tmp_path / "src" / "tiny"), "tiny")


def md5(data):
    return hashlib.md5(data).hexdigest()


def flipped(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def test_download_shows_progress_checks_md5_and_extracts(empty_data, http_server, tiny_zip,
                                                         monkeypatch, capfd):
    url = http_server.serve("/tiny.zip", tiny_zip)
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(url, md5(tiny_zip)))
    ds = cu.data.load("tiny", "train")  # the same path a learner's notebook takes
    err = capfd.readouterr().err
    assert f"Downloading tiny: {url}" in err and "100%" in err  # the progress bar
    assert http_server.downloads["/tiny.zip"] == 1
    assert len(ds) == 4 and ds.classes == ["a", "b"] and Counter(ds.targets) == {0: 2, 1: 2}
    assert (empty_data / "tiny" / "SHA256SUMS").is_file() and cu.data.verify("tiny") == []
    assert leftovers(empty_data) == []  # no partial folder, archive removed after unpacking
    cu.data.fetch("tiny")
    assert http_server.downloads["/tiny.zip"] == 1  # present: no second download


def test_a_download_leaves_the_process_wide_socket_timeout_alone(empty_data, http_server,
                                                                 tiny_zip, monkeypatch):
    url = http_server.serve("/tiny.zip", tiny_zip)
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(url, md5(tiny_zip)))
    before = socket.getdefaulttimeout()
    cu.data.fetch("tiny")
    # Every other thread (this server included) would wait on its sockets with our timeout.
    assert http_server.default_timeouts == [before] and socket.getdefaulttimeout() == before


def test_a_stalled_download_fails_within_the_timeout_and_leaves_nothing(empty_data, http_server,
                                                                       monkeypatch):
    url = http_server.stall("/tiny.zip")
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(url, "0" * 32))
    monkeypatch.setattr(cu.data.store, "DOWNLOAD_TIMEOUT_S", 0.5)
    start = time.monotonic()
    with pytest.raises(cu.data.DataUnavailable) as err:
        cu.data.fetch("tiny")
    assert time.monotonic() - start < 5
    assert not isinstance(err.value, cu.data.ChecksumError)  # a stall is not retried
    assert "timed out" in str(err.value) and url in str(err.value)
    assert not (empty_data / "tiny").exists() and leftovers(empty_data) == []


def test_corrupted_download_is_retried_once_and_then_succeeds(empty_data, http_server, tiny_zip,
                                                             monkeypatch, capfd):
    url = http_server.serve("/tiny.zip", flipped(tiny_zip), tiny_zip)
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(url, md5(tiny_zip)))
    cu.data.fetch("tiny")
    assert http_server.downloads["/tiny.zip"] == 2
    assert "Retrying the download once" in capfd.readouterr().err
    assert cu.data.verify("tiny") == [] and leftovers(empty_data) == []


def test_a_failing_second_archive_leaves_no_half_folder(empty_data, http_server, tiny_zip,
                                                       monkeypatch):
    # GTSRB-style: several archives unpack into one folder; the last one is corrupted.
    extra = zip_of(make_tree(empty_data.parent / "more" / "tiny"), "tiny")
    first = http_server.serve("/tiny.zip", tiny_zip)
    second = http_server.serve("/more.zip", flipped(extra))
    archives = (Archive(first, "tiny.zip", md5(tiny_zip)), Archive(second, "more.zip", md5(extra)))
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(first, None, archives=archives))
    with pytest.raises(cu.data.ChecksumError, match="more.zip"):
        cu.data.fetch("tiny")
    assert not (empty_data / "tiny").exists() and not cu.data.is_present("tiny")
    assert leftovers(empty_data) == []


@pytest.mark.parametrize("bad", ["corrupted", "truncated"])
def test_download_that_stays_bad_fails_cleanly_after_one_retry(empty_data, http_server, tiny_zip,
                                                               monkeypatch, bad):
    payload = flipped(tiny_zip) if bad == "corrupted" else tiny_zip[: len(tiny_zip) // 2]
    url = http_server.serve("/tiny.zip", payload)
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(url, md5(tiny_zip)))
    with pytest.raises(cu.data.ChecksumError) as err:
        cu.data.fetch("tiny")
    assert http_server.downloads["/tiny.zip"] == 2
    assert "md5" in str(err.value) and "twice" in str(err.value) and url in str(err.value)
    assert not (empty_data / "tiny").exists() and leftovers(empty_data) == []


def test_download_without_md5_is_checked_against_the_pinned_manifest(
        empty_data, http_server, tmp_path, monkeypatch):
    source = make_tree(tmp_path / "src" / "tiny")
    manifest = cu.data.store.write_manifest(source)  # pinned like hymenoptera_data.sha256
    good = zip_of(source, "tiny")
    (source / "train" / "a" / "0.png").write_bytes(b"not the pinned image")
    tampered = zip_of(source, "tiny")
    url = http_server.serve("/tiny.zip", tampered)
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(url, None, manifest=str(manifest)))
    with pytest.raises(cu.data.ChecksumError, match="train/a/0.png"):
        cu.data.fetch("tiny")
    assert not (empty_data / "tiny").exists() and leftovers(empty_data) == []
    # a truncated zip cannot be unpacked: the same clean failure
    http_server.serve("/tiny.zip", good[:-100])
    with pytest.raises(cu.data.ChecksumError, match="truncated or corrupted"):
        cu.data.fetch("tiny")
    http_server.serve("/tiny.zip", good)
    cu.data.fetch("tiny")
    assert cu.data.verify("tiny") == []


def test_tar_gz_download(empty_data, http_server, tmp_path, monkeypatch):
    source = make_tree(tmp_path / "src" / "tiny")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        tf.add(source, arcname="tiny")
    tgz = buffer.getvalue()
    url = http_server.serve("/tiny.tgz", tgz)
    entry = tiny_entry(url, None, archives=(Archive(url, "tiny.tgz", md5(tgz)),))
    monkeypatch.setitem(DATASETS, "tiny", entry)
    assert len(cu.data.load("tiny", "val")) == 4
    assert leftovers(empty_data) == []


def test_plain_file_download_lands_in_a_shared_folder(empty_data, http_server, shared_mirror,
                                                      monkeypatch):
    # MedMNIST-style: the .npz is used as is, next to the other MedMNIST sets' files
    body = (shared_mirror / "medmnist" / "breastmnist.npz").read_bytes()
    url = http_server.serve("/breastmnist.npz?download=1", body)
    archive = Archive(url, "breastmnist.npz", md5(body), extract=False)
    monkeypatch.setitem(DATASETS, "breastmnist",
                        dataclasses.replace(DATASETS["breastmnist"], archives=(archive,)))
    assert len(cu.data.load("breastmnist", "val")) == 78
    assert cu.data.verify("breastmnist") == [] and leftovers(empty_data) == []


# ----- safe extraction -------------------------------------------------------------------------

def evil_zip(name):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("tiny/train/a/ok.txt", b"fine")
        zf.writestr(name, b"owned")
    return buffer.getvalue()


def evil_tar(kind):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        if kind == "symlink":  # a link out of the folder, then a file written through it
            link = tarfile.TarInfo("tiny/escape")
            link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
            tf.addfile(link)
            name = "tiny/escape/evil.txt"
        else:
            name = {"dotdot": "../evil.txt", "absolute": "/tmp/course-evil.txt"}[kind]
        info = tarfile.TarInfo(name)
        info.size = 5
        tf.addfile(info, io.BytesIO(b"owned"))
    return buffer.getvalue()


@pytest.mark.parametrize("archive", [
    ("zip", "../evil.txt"), ("zip", "/tmp/course-evil.txt"), ("zip", "tiny/../../evil.txt"),
    ("tar", "dotdot"), ("tar", "absolute"), ("tar", "symlink"),
])
def test_safe_extraction_refuses_malicious_archives(tmp_path, archive):
    kind, detail = archive
    path = tmp_path / "work" / f"evil.{kind}"
    path.parent.mkdir()
    path.write_bytes(evil_zip(detail) if kind == "zip" else evil_tar(detail))
    dest = tmp_path / "work" / "a" / "b"
    with pytest.raises(cu.data.UnsafeArchive):
        cu.data.extract_safely(path, dest)
    names = {p.name for p in tmp_path.rglob("*")}
    assert not names & {"evil.txt", "course-evil.txt", "outside", "escape"}
    assert not Path("/tmp/course-evil.txt").exists()


def test_malicious_download_is_refused_even_with_a_good_md5(empty_data, http_server, monkeypatch):
    body = evil_zip("../../evil.txt")
    url = http_server.serve("/tiny.zip", body)
    monkeypatch.setitem(DATASETS, "tiny", tiny_entry(url, md5(body)))
    with pytest.raises(cu.data.UnsafeArchive):
        cu.data.fetch("tiny")
    assert http_server.downloads["/tiny.zip"] == 1  # not retried: it would not become safe
    assert not list(empty_data.parent.rglob("evil.txt"))
    assert not (empty_data / "tiny").exists() and leftovers(empty_data) == []


# ----- transforms and loaders --------------------------------------------------------------------

def normalize_of(tf):
    return next(t for t in tf.transforms if isinstance(t, T.Normalize))


def test_transform_normalizes_with_the_backbones_statistics():
    lite = cu.data.make_transform("efficientnet_lite0", train=False)
    assert tuple(normalize_of(lite).mean) == (0.5, 0.5, 0.5) == tuple(normalize_of(lite).std)
    resnet = cu.data.make_transform("resnet18", train=False)
    assert tuple(normalize_of(resnet).mean) == cu.models.IMAGENET_MEAN
    gray = Image.new("RGB", (300, 200), (128, 64, 255))
    x = lite(gray)
    assert x.shape == (3, 224, 224)
    expected = (torch.tensor([128, 64, 255]) / 255 - 0.5) / 0.5  # by hand: (v - mean) / std
    assert torch.allclose(x[:, 100, 100], expected, atol=1e-6)
    assert cu.data.make_transform("resnet18", train=True, size=96)(gray).shape == (3, 96, 96)


def test_transform_follows_each_domains_augmentation_policy():
    def kinds(name, train):
        return [type(t) for t in cu.data.make_transform("resnet18", train, dataset=name).transforms]

    assert T.RandomHorizontalFlip in kinds("hymenoptera", True)
    assert T.RandomHorizontalFlip not in kinds("gtsrb", True)  # signs must not be mirrored
    assert T.RandomVerticalFlip in kinds("eurosat", True)
    assert T.CenterCrop in kinds("hymenoptera", False)
    assert T.CenterCrop not in kinds("gtsrb", False)  # a crop would cut off the sign
    assert not any(k.__name__.startswith("Random") for k in kinds("eurosat", False))
    tf = cu.data.make_transform("efficientnet_lite0", train=True, dataset="pneumoniamnist")
    x = tf(Image.new("RGB", (28, 28), (200, 10, 90)))  # a color cast on a grayscale set
    assert x.shape == (3, 224, 224) and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_make_transform_accepts_a_spec_object():
    from types import SimpleNamespace

    spec = SimpleNamespace(mean=(0.1, 0.2, 0.3), std=(1, 1, 1), input_size=32, resize_size=36,
                           interpolation="bilinear")
    tf = cu.data.make_transform(spec, train=False)
    assert tf(Image.new("RGB", (40, 40))).shape == (3, 32, 32)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
                                  "convnext_tiny"])
def test_evaluation_preprocessing_is_the_weights_own(name):
    """What torchvision's weights.transforms() does (resize 232 for ResNet-50's V2 weights, 256
    for ResNet-18's), the course does too, to the last bit."""
    from skimage import data as skdata
    from torchvision import models as tvm

    photo = Image.fromarray(skdata.chelsea())
    preset = tvm.get_model_weights(name).DEFAULT.transforms()
    assert torch.equal(cu.data.make_transform(name, train=False)(photo), preset(photo))


def test_lite_preprocessing_is_timms_evaluation_setting():
    import timm

    cfg = timm.models.get_pretrained_cfg("tf_efficientnet_lite0")
    resize, crop = cu.data.make_transform("efficientnet_lite0", train=False).transforms[:2]
    assert resize.size == round(224 / cfg.crop_pct) and crop.size == (224, 224)
    assert resize.interpolation.value == cfg.interpolation == "bicubic"


def test_make_loader_is_safe_on_every_platform_and_seeded(monkeypatch):
    monkeypatch.delenv("COURSE_FAST", raising=False)
    ds = torch.utils.data.TensorDataset(torch.arange(40))
    loader = cu.data.make_loader(ds, batch_size=8, shuffle=True, device="cpu", seed=1)
    assert not loader.pin_memory and loader.worker_init_fn is cu.env.seed_worker
    assert cu.data.make_loader(ds, 8, False, device=torch.device("cuda")).pin_memory

    def order(seed):
        return torch.cat([b for (b,) in cu.data.make_loader(ds, 8, True, "cpu", seed, 0)]).tolist()

    assert order(1) == order(1) and order(1) != order(2) and sorted(order(1)) == list(range(40))
    for platform in ("win32", "darwin"):
        monkeypatch.setattr(sys, "platform", platform)
        assert cu.data.safe_num_workers() == 0
    monkeypatch.setattr(sys, "platform", "linux")
    assert 0 <= cu.data.safe_num_workers() <= 4
    monkeypatch.setenv("COURSE_FAST", "1")
    assert cu.data.safe_num_workers() == 0


# ----- a learner's own folder of images ---------------------------------------------------------

def image_files(folder, n, color=(200, 30, 30), ext="png"):
    """`n` small real images in `folder` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (12, 10), color).save(folder / f"{i}.{ext}")


def test_from_folder_reads_hymenoptera_like_the_catalog_loader(shared_mirror):
    found = cu.data.from_folder(shared_mirror / "hymenoptera_data")
    assert found.layout == "train/ and val/ folders" and found.classes == ["ants", "bees"]
    for split, ds in (("train", found.train), ("val", found.val)):
        assert isinstance(ds, cu.data.CourseDataset) and ds.classes == found.classes
        assert Counter(ds.targets) == EXPECTED["hymenoptera", split]  # 244 and 153 images
        assert all(Path(p).parent.name == ds.classes[t] for p, t in zip(ds.paths, ds.targets,
                                                                       strict=True))
    # torchvision reads no .gif: the placeholder imageNotFound.gif is ignored, not an image
    assert [Path(p).name for p in found.ignored] == ["imageNotFound.gif"] and not found.skipped
    assert found.relative(found.ignored[0]) == str(Path("train", "ants", "imageNotFound.gif"))
    image, label = found.val[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and label == found.val.targets[0]


def test_from_folder_splits_class_folders_seeded_and_stratified(tmp_path):
    image_files(tmp_path / "cats", 10)
    image_files(tmp_path / "dogs", 5, ext="jpg")
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    image_files(tmp_path / ".ipynb_checkpoints", 3)  # hidden: not a class
    found = cu.data.from_folder(tmp_path, val_fraction=0.2, seed=3)
    assert found.classes == ["cats", "dogs"] and found.layout.startswith("class folders only")
    assert "seed 3" in found.layout and "80% train / 20% val" in found.layout
    train, val = found.train, found.val
    assert train.base is val.base and len(train.base) == 15  # the hidden folder's images: not read
    assert (train.indices, val.indices) == cu.data.stratified_split(train.base.targets, 0.2, 3)
    assert Counter(val.targets) == {0: 2, 1: 1} and Counter(train.targets) == {0: 8, 1: 4}
    assert cu.data.from_folder(tmp_path, 0.2, seed=3).val.indices == val.indices
    assert any(cu.data.from_folder(tmp_path, 0.2, seed=s).val.indices != val.indices
               for s in range(4, 8))
    assert [found.relative(p) for p, _ in found.skipped] == [str(Path("dogs", "broken.jpg"))]
    assert [found.relative(p) for p in found.ignored] == [str(Path("cats", "notes.txt"))]


def test_from_folder_numbers_val_classes_as_train_does(tmp_path):
    for name in ("ants", "bees", "wasps"):
        image_files(tmp_path / "train" / name, 2)
    image_files(tmp_path / "valid" / "ants", 1)
    image_files(tmp_path / "valid" / "wasps", 2)  # no bees in val: wasps are still class 2
    found = cu.data.from_folder(tmp_path)
    assert found.layout == "train/ and valid/ folders"
    assert found.val.classes == ["ants", "bees", "wasps"] and found.val.targets == [0, 2, 2]
    assert [Path(p).parent.name for p in found.val.paths] == ["ants", "wasps", "wasps"]


def test_with_transform_gives_a_copy_that_shares_the_images(tmp_path):
    for name in ("a", "b"):
        image_files(tmp_path / name, 5)
    found = cu.data.from_folder(tmp_path)
    tf = cu.data.make_transform("efficientnet_lite0", train=True, size=32)
    train = found.train.with_transform(tf)
    assert train.base is found.train.base and train.indices == found.train.indices
    assert found.train.transform is None and isinstance(found.train[0][0], Image.Image)
    x, y = train[0]
    assert x.shape == (3, 32, 32) and y == found.train.targets[0]


def _bad_folders(root):
    """name -> (folder, words the FolderError must contain)."""
    cases = {"missing": (root / "nowhere", "DATA_DIR not found")}
    (root / "a_file.zip").write_bytes(b"PK")
    cases["a file"] = (root / "a_file.zip", "is a file, not a folder")
    (root / "empty").mkdir()
    cases["no class folders"] = (root / "empty", "no class folders in")
    image_files(root / "loose", 2)
    cases["loose images"] = (root / "loose", "holds images (2) but no class folders")
    image_files(root / "one" / "ants", 2)
    cases["one class"] = (root / "one", "only one class folder ('ants')")
    for name in ("cats", "dogs"):
        (root / "no_images" / name).mkdir(parents=True)
        (root / "no_images" / name / "readme.txt").write_text("nothing here")
    cases["no images"] = (root / "no_images", "no images found in")
    image_files(root / "broken" / "ants", 2)
    (root / "broken" / "bees").mkdir()
    (root / "broken" / "bees" / "bee.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    cases["all unreadable"] = (root / "broken",
                               "no readable images for class(es) bees in")
    for name in ("a", "b"):
        image_files(root / "no_val" / "train" / name, 2)
        image_files(root / "no_train" / "val" / name, 2)
        image_files(root / "extra" / "train" / name, 2)
        image_files(root / "extra" / "val" / name, 2)
        image_files(root / "empty_val" / "train" / name, 2)
        image_files(root / "few" / name, 1)
    image_files(root / "extra" / "val" / "c", 1)
    (root / "empty_val" / "val").mkdir()
    cases["train/ without val/"] = (root / "no_val", "has train/ but no val/")
    cases["val/ without train/"] = (root / "no_train", "has val/ but no train/")
    cases["val/ with an extra class"] = (root / "extra", "has class folder(s) that train/ lacks: c")
    cases["empty val/"] = (root / "empty_val", "no images found in")
    cases["too few to split"] = (root / "few", "too few images")
    return cases


def test_from_folder_refuses_bad_folders_with_one_line(tmp_path):
    for name, (folder, words) in _bad_folders(tmp_path).items():
        with pytest.raises(cu.data.FolderError) as err:
            cu.data.from_folder(folder)
        assert words in str(err.value) and "\n" not in str(err.value), name
        assert isinstance(err.value, ValueError), name
    with pytest.raises(cu.data.FolderError) as err:
        cu.data.from_folder(tmp_path / "broken")
    assert f"(unreadable: {Path('bees', 'bee.jpg')})" in str(err.value)  # named, relative
