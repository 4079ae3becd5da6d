"""The set-up a learner relies on: pinned versions in two files, two make commands, JupyterLab."""

import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parent.parent
RUNTIME, DEV = "requirements.txt", "requirements-dev.txt"
DEV_TOOLS = {"jupyterlab", "ipywidgets", "ipykernel", "nbval", "pytest", "ruff"}


def requirement_lines(name=RUNTIME):
    lines = (REPO / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def project_name(requirement):
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def normalise(requirement):
    return re.sub(r"\s+", "", requirement).lower().replace("_", "-")


def test_requirements_pin_every_package_and_keep_torch_on_the_local_build():
    reqs = requirement_lines(RUNTIME) + requirement_lines(DEV)
    loose = [r for r in reqs if "==" not in r and r != "numpy<3"]
    assert not loose, f"unpinned requirements: {loose}"
    assert "torch==2.14.1" in requirement_lines(RUNTIME)
    assert "torchvision==0.29.1" in requirement_lines(RUNTIME)


def test_every_pin_lives_in_exactly_one_file():
    names = [project_name(r) for r in requirement_lines(RUNTIME) + requirement_lines(DEV)]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"pinned in both files or twice in one: {twice}"


def test_run_time_requirements_bring_no_development_tools():
    # The package depends on requirements.txt, so `pip install -e` (Colab) installs all of it.
    runtime = {project_name(r) for r in requirement_lines(RUNTIME)}
    assert not runtime & DEV_TOOLS, f"development tools in {RUNTIME}: {runtime & DEV_TOOLS}"
    assert DEV_TOOLS <= {project_name(r) for r in requirement_lines(DEV)}


def test_environment_yml_installs_both_requirement_files():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert {f"-r {RUNTIME}", f"-r {DEV}", "-e ."} <= set(pip_section), pip_section
    conda_pkgs = [d for d in deps if isinstance(d, str)]
    # Conda may bring Python and pip only; a package listed here too could take another version.
    assert {re.split(r"[=<>]", d)[0] for d in conda_pkgs} <= {"python", "pip"}, conda_pkgs
    python = next(d for d in conda_pkgs if d.startswith("python"))
    assert python == f"python={sys.version_info.major}.{sys.version_info.minor}", (
        "environment.yml's Python differs from the one the tests run on")


def test_installed_package_depends_on_run_time_requirements_and_extra_dev():
    declared = importlib.metadata.requires("course-utils") or []
    expected = requirement_lines(RUNTIME) + [f'{r}; extra == "dev"' for r in requirement_lines(DEV)]
    assert sorted(map(normalise, declared)) == sorted(map(normalise, expected)), (
        "reinstall the course (pip install --no-deps -e .) after changing the requirements")


def test_requires_python_says_where_the_pins_install_and_tarfile_has_the_data_filter():
    # The pinned numpy/pandas/scipy need 3.11; course_utils/data/store.py extracts with
    # filter="data", which 3.11 gained in 3.11.4.
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    spec = SpecifierSet(pyproject["project"]["requires-python"])
    for version in ("3.10.12", "3.11.0", "3.11.3"):
        assert version not in spec, version
    running = ".".join(map(str, sys.version_info[:3]))
    for version in ("3.11.4", "3.12.0", "3.13.1", running):
        assert version in spec, version
    assert hasattr(tarfile, "data_filter")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_installs_both_requirement_files():
    dry = subprocess.run(["make", "-n", "-B", ".venv/.installed"], cwd=REPO,
                         capture_output=True, text=True).stdout
    assert f"-r {RUNTIME} -r {DEV}" in dry and "--no-deps -e ." in dry


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


def _get(url, follow=True):
    """(status, Location header, body) of a GET; redirects are followed only if asked."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(*([] if follow else [NoRedirect]))
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Location"), resp.read().decode()
    except urllib.error.HTTPError as err:  # a 302 without following lands here
        return err.code, err.headers.get("Location"), ""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_opens_notebook_00_without_the_news_prompt(tmp_path):
    if not (REPO / ".venv" / ".installed").exists():
        pytest.skip("not run from make's .venv")
    port, token = free_port(), "course-test"
    args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 " \
           f"--IdentityProvider.token={token}" + (" --allow-root" if os.geteuid() == 0 else "")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    server = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)  # make and jupyter: one process group
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and server.poll() is None:
            try:
                status, _, page = _get(f"{base}/lab?token={token}")
                break
            except OSError:
                time.sleep(1)
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        assert status == 200 and "JupyterLab" in page
        # The address it prints and the server's root both open notebook 00.
        status, location, _ = _get(f"{base}/?token={token}", follow=False)
        assert status == 302 and location.split("?")[0].endswith("/lab/tree/00_setup_and_tour.ipynb")
        # The news question is answered ("Never") by tools/lab/overrides.json, so it is not asked.
        _, _, body = _get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification"
                          f"?token={token}")
        defaults = {k: v.get("default") for k, v in json.loads(body)["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
