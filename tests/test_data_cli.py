"""python -m course_utils.data: list, fetch, verify, mirror; clear errors and exit codes."""

import os
import subprocess
import sys

import pytest

import course_utils as cu
from course_utils.data.__main__ import main


@pytest.fixture
def with_mirror(empty_data, shared_mirror, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(shared_mirror))
    return empty_data


def run_cli(*args, env_changes):
    """The real command in a fresh interpreter, as a learner types it."""
    env = {**os.environ, **env_changes}
    return subprocess.run([sys.executable, "-m", "course_utils.data", *args], env=env,
                          cwd=cu.env.REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_list_shows_each_data_set_size_license_and_presence(with_mirror, capsys):
    assert main(["fetch", "breastmnist"]) == 0
    capsys.readouterr()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[4:]}
    assert set(rows) == set(cu.catalog.DATASETS)
    assert "present" in rows["breastmnist"] and "0.6 MB" in rows["breastmnist"]
    assert "in mirror" in rows["eurosat"] and "~92 MB" in rows["eurosat"]
    for name, entry in cu.catalog.DATASETS.items():
        assert entry.license in rows[name]


def test_list_says_missing_without_a_mirror(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    assert main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[4:]}
    assert all("missing" in row for row in rows.values())
    assert [r["status"] for r in cu.data.status()] == ["missing"] * len(cu.catalog.DATASETS)


def test_fetch_all_from_the_mirror_then_verify(with_mirror, capsys):
    assert main(["fetch", "all"]) == 0
    assert all(cu.data.is_present(n) for n in cu.catalog.DATASETS)
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}: ok" in out for name in cu.catalog.DATASETS)


def test_fetch_that_cannot_succeed_exits_1_with_the_clear_error(empty_data):
    # NEU has no direct download: without a mirror it fails online and offline alike.
    result = run_cli("fetch", "neu", env_changes={"COURSE_DATA_DIR": str(empty_data),
                                                  "COURSE_DATA_MIRROR": ""})
    assert result.returncode == 1
    assert "neu: FAILED" in result.stderr and cu.catalog.DATASETS["neu"].homepage in result.stderr
    assert str(empty_data / "neu-surface-defects") in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_real_command_lists_everything(empty_data):
    result = run_cli("list", env_changes={"COURSE_DATA_DIR": str(empty_data)})
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in cu.catalog.DATASETS)
    assert str(empty_data) in result.stdout


def test_verify_says_when_hand_placed_data_has_no_checksums(empty_data, capsys):
    (empty_data / "neu-surface-defects" / "crazing").mkdir(parents=True)
    (empty_data / "neu-surface-defects" / "crazing" / "crazing_1.jpg").write_bytes(b"jpeg")
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "neu: present, but has no checksum list" in out and "neu: ok" not in out


def test_unknown_name_is_a_one_line_error(empty_data, capsys):
    assert main(["fetch", "imagenet"]) == 1
    assert "unknown data set 'imagenet'" in capsys.readouterr().err


def test_verify_exits_1_and_names_the_corrupted_file(empty_data, shared_mirror, tmp_path,
                                                     monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    cu.data.store.copy_tree(shared_mirror / "imagenette2-160", mirror / "imagenette2-160")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    assert main(["fetch", "imagenette"]) == 0
    assert main(["verify", "imagenette"]) == 0
    bad = mirror / "imagenette2-160" / "val" / "n03888257" / sorted(
        os.listdir(mirror / "imagenette2-160" / "val" / "n03888257"))[0]
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    capsys.readouterr()
    assert main(["verify"]) == 1
    err = capsys.readouterr().err
    assert f"imagenette: BAD {empty_data / 'imagenette2-160' / bad.relative_to(mirror / 'imagenette2-160')}" in err
    assert str(bad) in err  # and where the real file is
    assert main(["mirror", str(tmp_path / "usb")]) == 1  # corruption is never passed on
    assert "not exported" in capsys.readouterr().err


def test_mirror_command_makes_a_mirror_another_machine_can_use(with_mirror, tmp_path, monkeypatch,
                                                              capsys):
    assert main(["fetch", "breastmnist", "imagenette"]) == 0
    usb = tmp_path / "usb"
    assert main(["mirror", str(usb)]) == 0
    assert (usb / "imagenette2-160" / "SHA256SUMS").is_file()
    assert (usb / "medmnist" / "SHA256SUMS").read_text().endswith("  breastmnist.npz\n")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "classroom"))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(usb))
    assert main(["fetch", "breastmnist", "imagenette"]) == 0
    assert len(cu.data.load("imagenette", "val")) == 200
    capsys.readouterr()
    assert main(["fetch", "neu"]) == 1  # not in this mirror, and no download exists
    assert "neu: FAILED" in capsys.readouterr().err
