import subprocess

import pytest
import torch

import course_utils as cu


def test_fast_mode_follows_the_environment(monkeypatch):
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert not cu.env.is_fast()
    assert cu.env.fast_or_full(1, 5) == 5
    for value in ("1", "true", "yes"):
        monkeypatch.setenv("COURSE_FAST", value)
        assert cu.env.is_fast()
        assert cu.env.fast_or_full(1, 5) == 1
    monkeypatch.setenv("COURSE_FAST", "0")
    assert not cu.env.is_fast()


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert cu.env.get_device().type == "cpu"
    assert cu.env.device_summary(torch.device("cpu")).startswith("cpu:")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert cu.env.get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cu.env.get_device().type == "cuda"


def test_autocast_is_a_no_op_on_cpu():
    x = torch.randn(4, 8)
    layer = torch.nn.Linear(8, 2)
    with cu.env.autocast("cpu"):
        y = layer(x)
    assert y.dtype == torch.float32
    assert not cu.env.grad_scaler("cpu").is_enabled()


def test_mixed_precision_is_bfloat16_where_the_gpu_has_it_else_float16_with_a_scaler(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert cu.env.amp_dtype("cuda") == torch.bfloat16
    assert not cu.env.grad_scaler("cuda").is_enabled()  # float32's range: nothing to scale
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert cu.env.amp_dtype("cuda") == torch.float16
    assert cu.env.amp_dtype("cpu") is None and cu.env.amp_dtype("mps") is None


def test_seed_makes_runs_repeat():
    cu.env.set_seed(3)
    a = torch.randn(5)
    cu.env.set_seed(3)
    assert torch.equal(a, torch.randn(5))


def test_summary_names_mode_device_and_versions(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    cu.env.summary()
    out = capsys.readouterr().out
    assert "fast" in out and "device" in out and "torch 2." in out


def test_runs_dir_is_one_folder_outside_the_notebooks(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_RUNS_DIR", raising=False)
    folder = cu.env.runs_dir("07")
    assert folder == cu.env.REPO_ROOT / "runs" / "07" and folder.is_dir()
    assert not folder.is_relative_to(cu.env.REPO_ROOT / "notebooks")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(folder / "model.pt")],
                             cwd=cu.env.REPO_ROOT)
    assert ignored.returncode == 0, "runs/ must be git-ignored"
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path))
    assert cu.env.runs_dir("08") == tmp_path / "08"
    for bad in ("", "../x", "/tmp/x"):
        with pytest.raises(ValueError):
            cu.env.runs_dir(bad)
