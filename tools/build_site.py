"""Build the course website from the stored notebooks, without running them (``make site``).

    python tools/build_site.py [OUT_DIR]      default: site/_build/html

Sphinx with MyST-NB (``site/conf.py``) renders ``site/index.md``, ``GLOSSARY.md`` and every
notebook in ``notebooks/``; the solutions are left out. The sources are staged in ``site/_build/src``
(a copy), so the notebooks' folder holds nothing Sphinx made. Any Sphinx warning fails the build.
"""

import shutil
import sys
from pathlib import Path

from sphinx.cmd.build import build_main

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "site"


def stage(src):
    """site/, the glossary and the learners' notebooks (not the solutions) in a fresh ``src``."""
    shutil.rmtree(src, ignore_errors=True)
    (src / "notebooks").mkdir(parents=True)
    for name in ("conf.py", "index.md"):
        shutil.copyfile(SITE / name, src / name)
    shutil.copyfile(REPO / "GLOSSARY.md", src / "GLOSSARY.md")  # every notebook links it
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        shutil.copyfile(notebook, src / "notebooks" / notebook.name)
    return src


def build(out=SITE / "_build" / "html"):
    """Build the HTML site into ``out``; returns ``out/index.html``."""
    src = stage(Path(out).parent / "src")
    status = build_main(["-b", "html", "-W", "--keep-going", "-q", str(src), str(out)])
    if status != 0:
        raise SystemExit(f"build_site.py: Sphinx failed (status {status}); see the warnings above")
    return Path(out) / "index.html"


if __name__ == "__main__":
    index = build(*(Path(a) for a in sys.argv[1:2]))
    print(f"built {index}")
