"""The course website: built from the stored notebooks without running them, solutions left
out, and the built pages opened in headless Chromium (a figure, a table, the navigation)."""

import importlib.util
import json

import pytest

import course_utils as cu

# MyST-Parser and the book theme still call Sphinx APIs that Sphinx 11 will remove: their
# deprecation notices, one per cross-reference, are not ours to fix (the build uses -W for
# Sphinx's own warnings).
pytestmark = pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")

REPO = cu.env.REPO_ROOT
LEARNER_NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def load_builder():
    spec = importlib.util.spec_from_file_location("build_site", REPO / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("myst_nb", reason="Sphinx and MyST-NB are in requirements-dev.txt")
    before = {p: p.stat().st_mtime_ns for p in (REPO / "notebooks").rglob("*")}
    index = load_builder().build(tmp_path_factory.mktemp("site") / "html")
    after = {p: p.stat().st_mtime_ns for p in (REPO / "notebooks").rglob("*")}
    assert after == before, "building the site changed or added files in notebooks/"
    return index.parent


def test_every_notebook_has_a_page_and_no_solution_does(site):
    pages = sorted(p.stem for p in (site / "notebooks").glob("*.html"))
    assert pages == [p.stem for p in LEARNER_NOTEBOOKS]
    assert not list(site.rglob("*solutions*.html"))
    text = "".join(p.read_text() for p in site.rglob("*.html"))
    assert "assert ex0" not in text  # the solutions' checks appear nowhere


def test_the_pages_show_the_stored_outputs_not_a_new_run(site):
    nb = json.loads((REPO / "notebooks" / "07_pytorch_finetune_resnet.ipynb").read_text())
    printed = [line.strip() for cell in nb["cells"] if cell["cell_type"] == "code"
               for output in cell["outputs"] for line in "".join(output.get("text", "")).splitlines()
               if "final validation accuracy" in line]
    page = (site / "notebooks" / "07_pytorch_finetune_resnet.html").read_text()
    assert printed and all(line in page for line in printed)


def test_a_figure_a_table_and_the_navigation_render_in_a_browser(site, chromium):
    from playwright.sync_api import sync_playwright

    artifacts = REPO / "runs" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto((site / "index.html").as_uri())
            nav = page.eval_on_selector_all("nav.bd-docs-nav a", "els => els.map(e => e.href)")
            assert [link.rsplit("/", 1)[-1] for link in nav] == [
                f"{p.stem}.html" for p in LEARNER_NOTEBOOKS] + ["GLOSSARY.html"]
            page.goto(next(link for link in nav if "/07_" in link))  # 07, through the navigation
            # The notebook's own figures load (width 0: a broken image). The Colab badge is an
            # image on colab.research.google.com, which this test may not be able to reach.
            widths = page.eval_on_selector_all("main img:not([src^='http'])",
                                               "els => els.map(e => e.naturalWidth)")
            assert widths and min(widths) > 0
            assert page.locator("main table").count() >= 1
            assert page.locator("nav.bd-docs-nav a", has_text="08").count() == 1
            page.screenshot(path=artifacts / "site_07.png")
        finally:
            browser.close()
