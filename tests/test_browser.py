"""A learner's first minutes, in a real browser: `make lab`, notebook 00, run all, upload a photo.

`make lab` starts on a loopback port and headless Chromium opens the address it prints.
Chromium is Debian's (`apt-get install chromium`), driven by Playwright through its executable
path: Playwright's own browser download is not needed (and fails offline). The test installs
Chromium where it can (root and apt-get) and skips, saying why, only where it cannot.
Screenshots are kept in runs/test-artifacts/.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from PIL import Image
from skimage import data as skdata

import course_utils as cu

REPO = cu.env.REPO_ROOT
ARTIFACTS = REPO / "runs" / "test-artifacts"
NOTEBOOK = "00_setup_and_tour.ipynb"
IDLE = ("document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, shared_mirror):
    """`make lab` as a learner starts it (fast mode, so that running all cells takes seconds)."""
    if not (REPO / ".venv" / ".installed").exists():
        pytest.skip("not run from make's .venv")
    pytest.importorskip("playwright", reason="Playwright is in requirements-dev.txt")
    home = tmp_path_factory.mktemp("lab")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = "course-browser-test"
    args = (f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token}" + (" --allow-root" if os.geteuid() == 0 else ""))
    env = dict(os.environ, COURSE_FAST="1", COURSE_DATA_MIRROR=str(shared_mirror),
               COURSE_RUNS_DIR=str(home / "runs"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_CONFIG_DIR=str(home / "config"))
    server = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and server.poll() is None:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(1)
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        yield f"{base}/?token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_notebook_00_opens_unmodified_runs_all_cells_and_its_upload_widget_works(lab, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "chelsea.jpg"  # the cat of notebook 00, as a learner's own photo
    Image.fromarray(skdata.chelsea()).save(photo)
    stored = (REPO / "notebooks" / NOTEBOOK).read_bytes()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(lab)  # the server's root: make lab sends it to notebook 00
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            page.wait_for_function(IDLE, timeout=90_000)  # the kernel has started
            time.sleep(5)  # JupyterLab writes the kernel's metadata and asks about news by now
            tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")
            assert NOTEBOOK in tab.inner_text()
            # Modified before anything ran: the stored metadata differs from what Lab writes.
            assert "jp-mod-dirty" not in tab.get_attribute("class")
            toasts = page.eval_on_selector_all(".Toastify__toast", "els => els.map(e => e.innerText)")
            assert not [t for t in toasts if "news" in t.lower()], toasts
            page.screenshot(path=ARTIFACTS / "lab_00_opened.png")

            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            time.sleep(3)
            page.wait_for_function(IDLE, timeout=300_000)
            errors = page.eval_on_selector_all(
                ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']",
                "els => els.map(e => e.innerText.slice(0, 300))")
            assert errors == []
            assert page.locator(".jp-OutputArea-output img").count() >= 1  # a figure rendered
            assert page.locator(".jp-OutputArea-output table").count() >= 1  # and a table
            page.screenshot(path=ARTIFACTS / "lab_00_ran.png")

            # The upload widget rendered as a widget (not its text fallback), and works.
            upload = page.locator(".widget-upload")
            assert upload.count() == 1 and upload.is_visible()
            with page.expect_file_chooser() as chooser:  # the learner clicks, a file dialog opens
                upload.click()
            chooser.value.set_files(photo)
            try:  # the widget's own output area shows Lite0's answer for the photo
                page.wait_for_selector(".widget-output :text('tiger cat')", timeout=60_000)
                assert page.locator(".widget-output img").count() == 1
            finally:
                page.locator(".widget-output").scroll_into_view_if_needed()
                page.screenshot(path=ARTIFACTS / "lab_00_upload.png")
        finally:
            browser.close()
    assert (REPO / "notebooks" / NOTEBOOK).read_bytes() == stored  # nothing was saved
