"""Shared fixtures: data roots for the data tests (one temporary root per test, or per session),
and a Chromium for the tests that open pages in a real browser."""

import os
import shutil
import subprocess

import pytest

import course_utils as cu

# The read-only course mirror (CI, tests): next to the repository, never written to.
SHARED_DATASETS = cu.env.REPO_ROOT.parent / "shared" / "datasets"


def _use(monkeypatch, root, mirror):
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    if mirror is None:
        monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    else:
        monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.delenv("COURSE_FAST", raising=False)
    return root


@pytest.fixture(scope="session")
def shared_mirror():
    """../shared/datasets, the course mirror that CI uses."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"the course mirror {SHARED_DATASETS} is not here")
    return SHARED_DATASETS


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    """An empty data root and no mirror: a learner before the first fetch."""
    return _use(monkeypatch, tmp_path / "data", None)


@pytest.fixture(scope="session")
def _session_data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("mirrored-data")


@pytest.fixture
def mirrored_data(shared_mirror, _session_data_root, monkeypatch):
    """A data root fed from ../shared/datasets, shared by the session (each set checked once)."""
    return _use(monkeypatch, _session_data_root, shared_mirror)


@pytest.fixture(scope="session")
def chromium():
    """Chromium's executable (Debian's ``chromium``), installed with apt-get if missing.

    Playwright drives it through this path: its own browser download is not needed (and fails
    offline). Skips, saying why, only where no browser can be installed."""
    pytest.importorskip("playwright", reason="Playwright is in requirements-dev.txt")
    names = ("chromium", "chromium-browser", "google-chrome")
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no Chromium here, and installing it needs root and apt-get "
                    "(install Debian's `chromium` package to run this test)")
    result = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True,
                            text=True, timeout=900,
                            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not shutil.which("chromium"):
        pytest.skip(f"Chromium could not be installed: {result.stderr.strip()[-300:]}")
    return shutil.which("chromium")
