"""The fine-tune command, run as a learner runs it: a subprocess on real images (hymenoptera).

Good folders in both layouts train and write what they promise; every kind of bad input ends
with one clear message on stderr, a non-zero exit and no traceback.
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import course_utils as cu
from course_utils import finetune

PER_CLASS = {"train": 8, "val": 5}


def run_command(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "course_utils.finetune", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cu.env.REPO_ROOT)


def copy_images(source, target, n):
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.jpg"))[:n]:
        shutil.copyfile(path, target / path.name)


@pytest.fixture(scope="module")
def hymenoptera(shared_mirror):
    return shared_mirror / "hymenoptera_data"


@pytest.fixture(scope="module")
def train_val_dir(hymenoptera, tmp_path_factory):
    """train/ and val/ with a few real ants and bees, one truncated JPEG and one text file."""
    root = tmp_path_factory.mktemp("train_val")
    for split, n in PER_CLASS.items():
        for name in ("ants", "bees"):
            copy_images(hymenoptera / split / name, root / split / name, n)
    good = sorted((root / "train" / "bees").glob("*.jpg"))[0].read_bytes()
    (root / "train" / "bees" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "train" / "ants" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def probe_run(train_val_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe_out")
    result = run_command(train_val_dir, "--output", out)
    return result, out


def test_probe_on_train_val_folders_writes_metrics_and_model(probe_run):
    result, out = probe_run
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_train"] == 2 * PER_CLASS["train"] and metrics["num_val"] == 2 * PER_CLASS["val"]
    assert metrics["classes"] == ["ants", "bees"]
    assert metrics["backbone"] == "efficientnet_lite0" and metrics["mode"] == "probe"
    assert 0 < metrics["seconds"] < 300
    # 16 real training images are plenty for ants vs bees with ImageNet features; a broken
    # pipeline (wrong normalisation, labels, head) is at chance, 0.5.
    assert 0.8 <= metrics["val_accuracy"] <= 1
    epochs = finetune.head_epochs(2 * metrics["num_train"])  # the training images and mirrors
    assert epochs == 300 and len(metrics["history"]) == epochs  # one step an epoch: 300 of them
    printed = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(printed) == 10 and printed[-1].startswith("epoch 300")
    assert "final validation accuracy" in result.stdout


def test_unreadable_image_is_skipped_with_a_warning_that_names_it(probe_run):
    result, out = probe_run
    assert result.returncode == 0, result.stderr
    assert "warning: skipped unreadable image train/bees/truncated.jpg" in result.stderr
    assert "notes.txt" in result.stdout  # ignored: not an image by its extension
    assert json.loads((out / "metrics.json").read_text())["skipped"] == ["train/bees/truncated.jpg"]


def test_saved_model_reloads_and_reproduces_the_reported_accuracy(probe_run, train_val_dir):
    _, out = probe_run
    metrics = json.loads((out / "metrics.json").read_text())
    model = cu.train.load_model(out / "model.pt", device="cpu")
    info = cu.models.record(model)
    assert info.classes == ("ants", "bees") and info.image_size == metrics["image_size"] == 288
    images = sorted((train_val_dir / "val").glob("*/*.jpg"))
    predicted = [cu.train.predict_image(model, path)[0] for path in images]
    correct = sum(label == path.parent.name for label, path in zip(predicted, images, strict=True))
    assert correct / len(images) == pytest.approx(metrics["val_accuracy"])


def test_class_folders_only_get_a_seeded_stratified_split(hymenoptera, tmp_path):
    for name in ("ants", "bees"):
        copy_images(hymenoptera / "train" / name, tmp_path / "data" / name, 10)
    result = run_command(tmp_path / "data", "--output", tmp_path / "out", "--seed", "3",
                         "--epochs", "3", "--image-size", "160")
    assert result.returncode == 0, result.stderr
    assert "split by class, seeded (seed 3), 80% train / 20% val" in result.stdout
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["num_train"], metrics["num_val"]) == (16, 4)
    assert metrics["image_size"] == 160 and len(metrics["history"]) == 3
    assert 0 <= metrics["val_accuracy"] <= 1


def test_finetune_mode_trains_the_top_blocks_after_the_head(train_val_dir, tmp_path):
    result = run_command(train_val_dir, "--output", tmp_path, "--mode", "finetune",
                         "--epochs", "1", "--image-size", "128")
    assert result.returncode == 0, result.stderr
    assert "fine-tuning blocks.6, conv_head, bn2 and the head" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    stages = [row["stage"] for row in metrics["history"]]
    assert stages == ["head"] * finetune.head_epochs(2 * metrics["num_train"]) + ["finetune"]
    assert metrics["val_accuracy"] == metrics["history"][-1]["val_acc"]
    cu.train.load_model(tmp_path / "model.pt", device="cpu")  # saved while partly frozen: reloads


def _bad_inputs(root, hymenoptera):
    """name -> (DATA_DIR, words the error message must contain)."""
    cases = {"missing folder": (root / "nowhere", "DATA_DIR not found")}
    (root / "a_file.zip").write_bytes(b"PK")
    cases["a file, not a folder"] = (root / "a_file.zip", "is a file, not a folder")
    (root / "empty").mkdir()
    cases["no class folders"] = (root / "empty", "no class folders")
    copy_images(hymenoptera / "train" / "ants", root / "loose", 2)
    cases["images without class folders"] = (root / "loose", "no class folders. Put each class")
    copy_images(hymenoptera / "train" / "ants", root / "one" / "ants", 3)
    cases["a single class"] = (root / "one", "only one class folder ('ants')")
    for name in ("cats", "dogs"):
        (root / "no_images" / name).mkdir(parents=True)
        (root / "no_images" / name / "readme.txt").write_text("nothing here")
    cases["no images"] = (root / "no_images", "no images found")
    copy_images(hymenoptera / "train" / "ants", root / "broken" / "ants", 3)
    (root / "broken" / "bees").mkdir()
    (root / "broken" / "bees" / "bee.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    cases["a class whose only image is unreadable"] = (root / "broken", "no readable images for class(es) bees")
    copy_images(hymenoptera / "train" / "ants", root / "no_val" / "train" / "ants", 2)
    copy_images(hymenoptera / "train" / "bees", root / "no_val" / "train" / "bees", 2)
    cases["train/ without val/"] = (root / "no_val", "has train/ but no val/")
    return cases


def test_bad_input_gives_a_clear_error_and_no_traceback(hymenoptera, tmp_path):
    for name, (data_dir, message) in _bad_inputs(tmp_path, hymenoptera).items():
        result = run_command(data_dir, "--output", tmp_path / "out")
        assert result.returncode != 0, name
        assert "Traceback" not in result.stderr, name
        assert message in result.stderr, f"{name}: {result.stderr}"
        assert result.stderr.startswith("error: "), name
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_bad_options_are_refused_by_the_parser(tmp_path):
    result = run_command(tmp_path, "--output", tmp_path / "out", "--epochs", "0")
    assert result.returncode == 2 and "--epochs must be at least 1" in result.stderr
    result = run_command(tmp_path)  # no --output
    assert result.returncode == 2 and "--output" in result.stderr
    assert "Traceback" not in result.stderr
    if not torch.cuda.is_available():
        result = run_command(tmp_path, "--output", tmp_path / "out", "--device", "cuda")
        assert result.returncode == 2 and "--device cuda: there is none here" in result.stderr


def test_top_blocks_hold_a_quarter_of_the_weights():
    model = cu.models.create("efficientnet_lite0", num_classes=2)
    assert finetune.top_blocks(model) == ["blocks.6", "conv_head", "bn2"]
    chosen = sum(p.numel() for b in finetune.top_blocks(model)
                 for p in model.get_submodule(b).parameters())
    assert chosen >= finetune.UNFREEZE_FRACTION * cu.models.count_parameters(model)


def test_head_trains_at_least_ten_epochs_and_300_steps():
    assert finetune.head_epochs(488) == 19  # hymenoptera: 244 images and their mirror images
    assert finetune.head_epochs(32) == 300 and finetune.head_epochs(100_000) == 10


def test_default_image_size_is_larger_for_the_probe():
    assert finetune.default_image_size("efficientnet_lite0", "probe") == 288
    assert finetune.default_image_size("efficientnet_lite0", "finetune") == 224
    assert finetune.default_image_size("efficientnet_lite1", "probe") == 320


def test_embed_with_mirror_appends_the_flipped_images(hymenoptera):
    model = cu.train.prepare(cu.models.create("efficientnet_lite0", num_classes=0), "cpu")
    found = cu.data.from_folder(hymenoptera)
    tf = cu.data.make_transform("efficientnet_lite0", train=False, size=96)
    images = torch.utils.data.Subset(found.val.with_transform(tf), range(4))
    X, y = cu.features.embed(model, images, device="cpu", num_workers=0, mirror=True)
    model.eval()  # embed ran in eval mode and then restored the mode it found
    batch = torch.stack([images[i][0] for i in range(4)])
    with torch.no_grad():
        assert torch.allclose(X[:4], cu.models.forward_features(model, batch), atol=1e-4)
        assert torch.allclose(X[4:], cu.models.forward_features(model, batch.flip(3)), atol=1e-4)
    labels = found.val.targets[:4]
    assert y.tolist() == labels + labels


# ----- no side effects on the process that imports the module ---------------------------------------

def test_importing_the_module_changes_no_environment_variable():
    code = ("import os; before = dict(os.environ); import course_utils.finetune; "
            "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=120, cwd=cu.env.REPO_ROOT)
    assert result.returncode == 0, result.stderr


def test_run_in_process_changes_nothing_process_wide(train_val_dir, tmp_path, monkeypatch):
    args = finetune.parse_args([str(train_val_dir), "--output", str(tmp_path), "--epochs", "1",
                                "--image-size", "64", "--device", "cpu"])
    before = dict(os.environ)

    def no_libc(*args, **kwargs):
        raise AssertionError("run() loaded libc (mallopt is process-wide: only main() may)")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    metrics = finetune.run(args, log=lambda *a: None, start=time.perf_counter() - 1000)
    assert dict(os.environ) == before
    assert metrics["seconds"] >= 1000  # counted from the start it was given (the command's)
    assert metrics["num_train"] == 2 * PER_CLASS["train"]
    assert metrics["skipped"] == [str(Path("train", "bees", "truncated.jpg"))]
    assert finetune.run(args, log=lambda *a: None)["seconds"] < 1000  # default: from run()


def test_main_tunes_malloc_for_its_own_process_on_the_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(finetune, "_reuse_freed_memory", lambda: calls.append("mallopt"))
    monkeypatch.setattr(finetune, "run",
                        lambda args, start=None, job=None: calls.append(("run", start)))
    assert finetune.main(["some_dir", "--output", "out", "--device", "cpu"], start=1.5) == 0
    assert calls == ["mallopt", ("run", 1.5)]


def test_malloc_settings_fit_a_c_int():
    for _, value in finetune.MALLOC_SETTINGS:
        assert -2**31 <= value < 2**31 and ctypes.c_int(value).value == value
    with pytest.raises(OverflowError, match="does not fit a C int"):
        finetune._reuse_freed_memory(((finetune.M_TRIM_THRESHOLD, 2 << 30),))  # the old value


def test_the_probes_head_trains_on_features_given_to_it(capsys):
    """Notebook 08 trains the command's probe on its own features: same function, same recipe."""
    torch.manual_seed(0)
    X = torch.cat([torch.randn(40, 8) + 2, torch.randn(40, 8) - 2])
    y = torch.tensor([0] * 40 + [1] * 40)
    torch.manual_seed(0)
    head, history = finetune.train_linear_head(X, y, X[::4], y[::4], 2, seed=0, log=None)
    assert len(history) == finetune.head_epochs(80) and history.last["val_acc"] == 1.0
    assert head.weight.shape == (2, 8) and capsys.readouterr().out == ""
    torch.manual_seed(0)
    _, again = finetune.train_linear_head(X, y, X[::4], y[::4], 2, seed=0, log=None)
    assert again["val_loss"] == history["val_loss"]  # seeded by the caller: the same run twice
