"""The application notebooks' final test figures, in files a reader can find (notebooks 09-12).

Each application notebook ends by recording its final test metrics, one entry per method and
metric, with the bootstrap interval of ``cu.stats.bootstrap_interval``:

    entry = cu.results.Entry(dataset="eurosat", method="fine-tuned", metric="accuracy",
                             value=0.981, low=0.975, high=0.986, image_size=64, epochs=5,
                             seconds=612, device="cpu")
    cu.results.record("10_remote_sensing", [entry, ...])   # results/10_remote_sensing.json

``record`` writes in full mode only (a fast run's figures come from a few images and steps and
mean nothing) and prints each entry as ``line(entry)`` shows it, so that the notebook's stored
output holds the same figures as the file. ``python tools/results_table.py`` writes the README's
results table from every file; ``tests/test_results.py`` checks that the files, the table and
the notebooks' stored outputs agree.
"""

import json
import math
from dataclasses import asdict, dataclass, fields

from course_utils import env, files

RESULTS_DIR = env.REPO_ROOT / "results"
SHARES = ("accuracy", "balanced accuracy", "AUC", "recall", "precision", "F1")  # in [0, 1]


@dataclass(frozen=True)
class Entry:
    """One final test figure: what was measured, how well, and what it cost."""

    dataset: str
    method: str
    metric: str
    value: float
    low: float  # the 95 % interval (bootstrap over the test images)
    high: float
    image_size: int  # pixels on a side, as the network saw the images
    epochs: float
    seconds: float  # training time of this method
    device: str  # "cpu", "cuda (NVIDIA H200)", ...

    def __post_init__(self):
        for name in ("dataset", "method", "metric", "device"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name}: a non-empty string, got {getattr(self, name)!r}")
        numbers = [float(getattr(self, name)) for name in
                   ("value", "low", "high", "image_size", "epochs", "seconds")]
        if not all(math.isfinite(x) for x in numbers):
            raise ValueError(f"{self.dataset}, {self.method}: every number must be finite")
        if not self.low <= self.value <= self.high:
            raise ValueError(f"{self.dataset}, {self.method}, {self.metric}: the interval "
                             f"[{self.low}, {self.high}] must hold the value {self.value}")
        if self.metric in SHARES and not 0 <= self.low <= self.high <= 1:
            raise ValueError(f"{self.metric} is a share: its interval must lie in [0, 1]")
        if self.image_size <= 0 or self.epochs < 0 or self.seconds < 0:
            raise ValueError("image_size must be positive, epochs and seconds not negative")


def path(notebook):
    """``results/<notebook>.json``, for a notebook name such as ``10_remote_sensing``."""
    if not notebook or "/" in notebook or "\\" in notebook or notebook.startswith("."):
        raise ValueError(f"a notebook name such as '10_remote_sensing', not {notebook!r}")
    return RESULTS_DIR / f"{notebook}.json"


def line(entry):
    """One entry as the notebook prints it and the test finds it in the stored output."""
    return (f"{entry.dataset} · {entry.method} · {entry.metric}: {entry.value:.3f} "
            f"(95 % interval {entry.low:.3f}-{entry.high:.3f}; {entry.image_size} px, "
            f"{entry.epochs:g} epochs, {entry.seconds:.0f} s on {entry.device})")


def record(notebook, entries, fast=None):
    """Write ``entries`` to ``results/<notebook>.json`` (full mode only) and print them.

    Returns the path written, or None in fast mode."""
    entries = list(entries)
    if not entries or not all(isinstance(e, Entry) for e in entries):
        raise ValueError("entries: a non-empty list of cu.results.Entry")
    keys = [(e.dataset, e.method, e.metric) for e in entries]
    if len(set(keys)) != len(keys):
        raise ValueError("two entries for the same data set, method and metric")
    for entry in entries:
        print(line(entry))
    if env.is_fast() if fast is None else fast:
        print("fast mode: nothing written (results/ keeps the full run's figures)")
        return None
    target = path(notebook)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([asdict(e) for e in entries], indent=1, ensure_ascii=False) + "\n"
    files.write_text(target, text)
    print(f"written to results/{target.name}")
    return target


def load(notebook):
    """The entries of ``results/<notebook>.json``."""
    data = json.loads(path(notebook).read_text(encoding="utf-8"))
    names = {f.name for f in fields(Entry)}
    if not isinstance(data, list) or not all(isinstance(d, dict) and set(d) == names
                                             for d in data):
        raise ValueError(f"{path(notebook)}: a list of entries with the fields {sorted(names)}")
    return [Entry(**d) for d in data]


def load_all():
    """``{notebook: entries}`` for every file in ``results/``, by notebook number."""
    return {p.stem: load(p.stem) for p in sorted(RESULTS_DIR.glob("*.json"))}


def markdown_table(results):
    """The README's results table from ``{notebook: entries}``."""
    rows = ["| notebook | data set | method | metric | value (95 % interval) | image size | "
            "epochs | training time | device |",
            "|---|---|---|---|---|---:|---:|---:|---|"]
    for notebook, entries in results.items():
        for e in entries:
            rows.append(f"| [{notebook[:2]}](notebooks/{notebook}.ipynb) | {e.dataset} | "
                        f"{e.method} | {e.metric} | {e.value:.3f} ({e.low:.3f}-{e.high:.3f}) | "
                        f"{e.image_size} px | {e.epochs:g} | {e.seconds:.0f} s | {e.device} |")
    if len(rows) == 2:
        rows.append("| - | no application notebook has recorded its results yet | | | | | | | |")
    return "\n".join(rows)
