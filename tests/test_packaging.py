"""The set-up a learner relies on: one list of versions, two make commands, JupyterLab."""

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def requirement_lines():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_requirements_pin_every_package_and_keep_torch_on_the_local_build():
    reqs = requirement_lines()
    loose = [r for r in reqs if "==" not in r and not r.startswith("numpy")]
    assert not loose, f"unpinned requirements: {loose}"
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs


def test_environment_yml_installs_the_same_requirements():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip_section and "-e ." in pip_section
    conda_pkgs = [d for d in deps if isinstance(d, str)]
    # Conda may bring Python and pip only; a package listed here too could take another version.
    assert {re.split(r"[=<>]", d)[0] for d in conda_pkgs} <= {"python", "pip"}, conda_pkgs
    python = next(d for d in conda_pkgs if d.startswith("python"))
    assert python == f"python={sys.version_info.major}.{sys.version_info.minor}", (
        "environment.yml's Python differs from the one the tests run on")


def test_installed_package_depends_on_exactly_requirements_txt():
    declared = importlib.metadata.requires("course-utils") or []
    normalise = lambda r: re.sub(r"\s+", "", r).lower().replace("_", "-")  # noqa: E731
    assert sorted(map(normalise, declared)) == sorted(map(normalise, requirement_lines()))


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_second_make_run_reuses_the_venv():
    stamp = REPO / ".venv" / ".installed"
    if not stamp.exists():
        pytest.skip("not run from make's .venv")
    result = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO)
    assert result.returncode == 0, "make would reinstall although requirements did not change"
    dry = subprocess.run(["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True).stdout
    assert "pip install" not in dry and "jupyter lab --notebook-dir=notebooks" in dry
    if os.geteuid() == 0:
        assert "--allow-root" in dry


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_starts_and_serves_lab(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={REPO / 'notebooks'}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        status = None
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as resp:
                    status = resp.status
                    page = resp.read().decode()
                break
            except OSError:
                time.sleep(1)
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        assert status == 200 and "JupyterLab" in page
    finally:
        server.terminate()
        server.wait(timeout=30)
