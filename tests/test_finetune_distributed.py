"""The fine-tune command under torchrun: two CPU processes (gloo) on real images (hymenoptera)
mean the same job as one process, print and write once, and end together when one fails."""

import json
import os
import re
import subprocess
import sys

import pytest
from test_distributed import SCRIPTS, torchrun
from test_finetune import copy_images

import course_utils as cu
from course_utils import finetune

PER_CLASS = {"train": 30, "val": 25}
EPOCHS = 2
# The head is trained on the same features in both jobs: it must agree to float rounding.
# Fine-tuning then sees the images in another order, and BatchNorm normalises over each
# process's 16 images instead of 32: the two jobs may differ by a couple of validation images.
HEAD_TOLERANCE, ACCURACY_TOLERANCE = 1e-5, 2 / (2 * PER_CLASS["val"])


@pytest.fixture(scope="module")
def folder(shared_mirror, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp_data")
    for split, n in PER_CLASS.items():
        for name in ("ants", "bees"):
            copy_images(shared_mirror / "hymenoptera_data" / split / name, root / split / name, n)
    return root


def finetune_args(folder, out):
    return [folder, "--output", out, "--mode", "finetune", "--epochs", EPOCHS]


@pytest.fixture(scope="module")
def one_process(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}  # as each of the two processes gets
    result = subprocess.run([sys.executable, "-m", "course_utils.finetune",
                             *map(str, finetune_args(folder, out))],
                            capture_output=True, text=True, timeout=120, env=environ)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def two_processes(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    result = torchrun("-m", "course_utils.finetune", *finetune_args(folder, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((out / "metrics.json").read_text()), out


def test_two_processes_reach_the_accuracy_of_one(one_process, two_processes):
    (_, one), (_, two, _) = one_process, two_processes
    assert (one["processes"], two["processes"]) == (1, 2)
    assert one["batch_size"] == two["batch_size"] == 32  # 16 a process: the same effective batch
    assert abs(one["val_accuracy"] - two["val_accuracy"]) <= ACCURACY_TOLERANCE
    assert two["val_accuracy"] >= 0.8  # ants vs bees with ImageNet features; chance is 0.5


def test_the_head_trains_on_the_same_features_in_both_jobs(one_process, two_processes):
    """Each process embeds half the images: gathered back in order, the head cannot tell."""
    (_, one), (_, two, _) = one_process, two_processes
    heads = [[row for row in m["history"] if row["stage"] == "head"] for m in (one, two)]
    assert len(heads[0]) == len(heads[1]) > 0
    for row_one, row_two in zip(*heads, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert row_two[key] == pytest.approx(row_one[key], abs=HEAD_TOLERANCE), (row_one, key)


def test_metrics_json_has_the_same_fields_and_counts(one_process, two_processes):
    (_, one), (_, two, _) = one_process, two_processes
    assert set(one) == set(two)
    assert (two["num_train"], two["num_val"]) == (one["num_train"], one["num_val"])
    assert len([row for row in two["history"] if row["stage"] == "finetune"]) == EPOCHS
    # That val_accuracy covers all 50 images, not one process's 25, is checked by reloading the
    # checkpoint in one process below (and cu.train's reduce in tests/test_distributed.py).


def test_each_line_is_printed_once(two_processes):
    result, _, _ = two_processes
    out = result.stdout
    assert out.count("final validation accuracy") == 1 and out.count("data: ") == 1
    epochs = re.findall(r"^epoch +(\d+)", out, flags=re.MULTILINE)
    assert len(epochs) == len(set(epochs)), "an epoch's line was printed by both processes"
    assert "each step: 16 images in each of 2 processes (32 in all)" in out
    assert result.stderr.count("embedding:   0%") <= 2  # one bar a data set, from process 0
    assert "[rank1]" not in result.stderr and "Traceback" not in result.stderr


def test_the_checkpoint_reloads_in_one_process_and_gives_the_reported_accuracy(two_processes, folder):
    _, metrics, out = two_processes
    model = cu.train.load_model(out / "model.pt", "cpu")
    found = cu.data.from_folder(folder)
    val = found.val.with_transform(cu.data.make_transform(metrics["backbone"], False,
                                                          size=metrics["image_size"]))
    loader = cu.data.make_loader(val, 32, shuffle=False, device="cpu", num_workers=0)
    _, accuracy = cu.train.evaluate(model, loader)
    assert accuracy == pytest.approx(metrics["val_accuracy"], abs=1e-9)


def test_a_failing_process_ends_the_job_with_its_message(folder, tmp_path):
    out = tmp_path / "out"
    result = torchrun(SCRIPTS / "finetune_one_process_fails.py", folder, "--output", out,
                      timeout=90)
    assert result.returncode != 0
    message = "error: process 1 of 2: cannot read train/ants/0013035.jpg: image file is truncated"
    assert result.stderr.count(message) == 1, result.stderr[-3000:]
    assert "error: process 0" not in result.stderr  # process 0 was stopped, not failed
    assert not (out / "model.pt").exists() and not (out / "metrics.json").exists()


def test_input_errors_are_said_once(tmp_path):
    result = torchrun("-m", "course_utils.finetune", tmp_path / "missing", "--output", tmp_path / "o")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing" in errors[0], result.stderr[-3000:]


def test_accelerate_launch_runs_the_same_job(folder, tmp_path):
    """``accelerate launch --multi_gpu`` starts the processes through torchrun's launcher: with
    no GPU here they run on the CPU with gloo, as under torchrun (probe mode: seconds)."""
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                             "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
                             "no", "--dynamo_backend", "no", "-m", "course_utils.finetune",
                             str(folder), "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, env=environ)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and result.stdout.count("final validation accuracy") == 1
    assert metrics["val_accuracy"] >= 0.8


def test_more_processes_than_images_is_refused_before_any_collective(folder, tmp_path):
    args = finetune.parse_args([str(folder), "--output", str(tmp_path)])
    job = cu.distributed.Job(0, 2 * PER_CLASS["val"] + 1)  # one process more than images
    with pytest.raises(finetune.UserError, match="validation images cannot be shared out"):
        finetune._train_and_write(args, tmp_path, "cpu", 0.0, print, job)
