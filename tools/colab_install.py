"""Install the course on Colab around what Colab already has.

Every notebook's first code cell (COLAB_CELL below) clones the course on Colab and runs
this script. A plain `pip install -e /content/course` would install the package's pinned
dependencies, and with them torch and torchvision at the course's pins over Colab's own
CUDA build (gigabytes, and maybe not for Colab's GPU driver); pip could also replace the
ipykernel that runs the notebook. So this script

1. installs requirements.txt without its torch and torchvision lines, with a constraints
   file that holds torch, torchvision and ipykernel at the versions installed now;
2. installs the course itself with --no-deps: step 1 put its dependencies in place.

The development tools (requirements-dev.txt) are not installed. Anywhere but Colab the
script prints one line and changes nothing. Standard library only: it runs before
anything is installed.

    python tools/colab_install.py [PIP_ARGS...]

PIP_ARGS go to the first pip call, e.g. `--dry-run --report report.json` (the tests do
this); with --dry-run the second call is skipped.
"""

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEFT_OUT = {"torch", "torchvision"}  # Colab's CUDA build stays
HELD = ("torch", "torchvision", "ipykernel")  # at the versions Colab has installed



def repository():
    """The course's GitHub address: ``[project.urls] Repository`` in pyproject.toml."""
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


# The notebooks' first code cell; tests/test_colab_install.py checks that they hold this, and
# tools/colab_badges.py writes it into every notebook.
COLAB_CELL = """\
# On Colab: fetch the course and install it (this cell does nothing anywhere else).
# USE_DRIVE = True keeps data sets, downloaded weights and your trained models on your Google
# Drive between sessions (Colab asks for your permission); with False, each new session
# fetches them again and forgets what you trained.
USE_DRIVE = False
import os, subprocess, sys
if "google.colab" in sys.modules:
    if USE_DRIVE:
        from google.colab import drive
        drive.mount("/content/drive")
        os.environ["COURSE_DATA_DIR"] = "/content/drive/MyDrive/transfer-learning-cv/data"
        os.environ["TORCH_HOME"] = "/content/drive/MyDrive/transfer-learning-cv/torch"
        os.environ["COURSE_RUNS_DIR"] = "/content/drive/MyDrive/transfer-learning-cv/runs"
    if not os.path.isdir("/content/course"):
        subprocess.run(["git", "clone", "--depth=1", "REPOSITORY", "/content/course"], check=True)
        # Colab's own torch, torchvision and ipykernel stay; the course's run-time packages go in around them.
        subprocess.run([sys.executable, "/content/course/tools/colab_install.py"], check=True)
        sys.path.insert(0, "/content/course")""".replace("REPOSITORY", repository())


def on_colab():
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no `google` package at all
        return False


def name_of(requirement):
    """The normalised project name a requirement line starts with ("Foo_Bar==1" -> "foo-bar")."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else None


def installed_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def pip_install(*args):
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    if subprocess.run(cmd).returncode != 0:
        sys.exit(f"colab_install.py: pip failed: {' '.join(cmd)}")


def main(pip_args):
    if not on_colab():
        print("colab_install.py: not on Colab (google.colab is not importable), nothing to do.")
        return 0
    lines = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    kept = [line for line in lines
            if line and not line.startswith("#") and name_of(line) not in LEFT_OUT]
    held = [f"{name}=={version}" for name in HELD if (version := installed_version(name))]
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp, "requirements.txt")
        requirements.write_text("\n".join(kept) + "\n")
        constraints = Path(tmp, "constraints.txt")
        constraints.write_text("".join(f"{c}\n" for c in held))
        pip_install("-r", str(requirements), "-c", str(constraints), *pip_args)
    if "--dry-run" not in pip_args:
        pip_install("--no-deps", "-e", str(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
