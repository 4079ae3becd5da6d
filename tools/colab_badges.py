"""Open-in-Colab badges and Colab's GPU runtime hint, built from one repository address.

The address is ``[project.urls] Repository`` in pyproject.toml (read by
``tools/colab_install.py``). This script writes, for every notebook (solutions included):

* the badge on the line under its title, opening that notebook from GitHub in Colab;
* the Colab cell (``COLAB_CELL``) as its first code cell;
* the notebook metadata that makes Colab start a GPU runtime (``accelerator``, ``gpuType``);

and a badge after the name of each notebook that exists in the README's syllabus table.

    python tools/colab_badges.py           # write them
    python tools/colab_badges.py --check   # exit 1 and name what is missing or stale (tests)
"""

import importlib.util
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
BRANCH = "main"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n*", re.M)
# Colab reads these when it opens a notebook: a GPU runtime (a T4 on the free tier).
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}


def _installer():
    spec = importlib.util.spec_from_file_location("colab_install", REPO / "tools" / "colab_install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INSTALLER = _installer()


def colab_url(relpath):
    """Colab's address for a file of the repository (``notebooks/00_setup_and_tour.ipynb``)."""
    github = INSTALLER.repository().removeprefix("https://github.com/").rstrip("/")
    return f"https://colab.research.google.com/github/{github}/blob/{BRANCH}/{relpath}"


def badge(relpath):
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(relpath)})"


def notebooks():
    return sorted(REPO.glob("notebooks/*.ipynb")) + sorted(REPO.glob("notebooks/solutions/*.ipynb"))


def with_badges(nb, relpath):
    """``nb`` with its badge under the title, the Colab cell first and the GPU hint (a copy)."""
    nb = nbformat.from_dict(nb)
    title = nb.cells[0]
    heading, _, body = BADGE_LINE.sub("", title.source).partition("\n")
    title.source = f"{heading}\n\n{badge(relpath)}\n\n{body.lstrip()}".rstrip("\n")
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    first_code.source = INSTALLER.COLAB_CELL
    nb.metadata.update(COLAB_METADATA)
    return nb


def readme_with_badges(text):
    """The README with a badge after each existing notebook's link in the syllabus table."""
    def row(match):
        link, relpath = match.group(1), match.group(2)
        return f"{link} ✅ {badge(relpath)}"
    text = re.sub(r" \[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)", "", text)
    return re.sub(r"(\[[^\]]+\]\((notebooks/[^)]+\.ipynb)\)) ✅", row, text)


def main(argv):
    check = "--check" in argv
    stale = []
    for path in notebooks():
        relpath = path.relative_to(REPO).as_posix()
        nb = nbformat.read(path, as_version=4)
        new = with_badges(nb, relpath)
        if new != nb:
            stale.append(relpath)
            if not check:
                nbformat.write(new, path)
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    if readme_with_badges(text) != text:
        stale.append("README.md")
        if not check:
            readme.write_text(readme_with_badges(text), encoding="utf-8")
    if check and stale:
        print(f"Colab badges missing or stale in: {', '.join(stale)}; run python tools/colab_badges.py")
        return 1
    print(f"{'checked' if check else 'wrote'} Colab badges: {len(notebooks())} notebooks and README.md"
          + ("" if check else f" ({len(stale)} changed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
