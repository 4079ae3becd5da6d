"""Benchmark: the fine-tune command on hymenoptera (ants vs bees), as a learner runs it.

Each run is a fresh process, ``python -m course_utils.finetune DATA --output OUT [options]``,
timed from its start to its end (imports, weights, data checks, embedding, training, saving).
Alongside each run we measure how busy the machine's other processes kept the CPU, so a slow
number can be told apart from a slow machine. ``--with-load N`` adds N busy-looping processes
for a second set of runs: the target (val_accuracy >= 0.95 within 120 s) must hold on a shared CPU.

    python benchmarks/finetune_hymenoptera.py                # defaults: 3 runs of the default
    python benchmarks/finetune_hymenoptera.py --with-load 1 --finetune

Writes benchmarks/results.json (every run) and benchmarks/results.md (the table for the README).
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGET_ACCURACY, TARGET_SECONDS = 0.95, 120


def default_data():
    mirror = os.environ.get("COURSE_DATA_MIRROR") or REPO.parent / "shared" / "datasets"
    return Path(mirror) / "hymenoptera_data"


def cpu_jiffies():
    """(busy, total) CPU seconds of the whole machine since boot (Linux), else None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def busy_loop(stop):
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def run_once(data_dir, options):
    """One timed run of the command; returns its metrics plus the machine's load meanwhile."""
    with tempfile.TemporaryDirectory() as out:
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        before_cpu, start = cpu_jiffies(), time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "course_utils.finetune", str(data_dir),
                                 "--output", out, *options], capture_output=True, text=True,
                                cwd=REPO)
        wall = time.perf_counter() - start
        after_cpu, after_children = cpu_jiffies(), resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            sys.exit(f"the command failed:\n{result.stderr}")
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    own = (after_children.ru_utime + after_children.ru_stime
           - before_children.ru_utime - before_children.ru_stime)
    others = None
    if before_cpu and after_cpu:  # CPU time the rest of the machine used, in cores
        others = max(0.0, (after_cpu[0] - before_cpu[0]) - own) / wall
    return {
        "options": " ".join(options) or "(defaults)", "val_accuracy": metrics["val_accuracy"],
        "num_val": metrics["num_val"], "wall_seconds": round(wall, 1),
        "reported_seconds": metrics["seconds"], "cpu_seconds": round(own, 1),
        "other_processes_cores": None if others is None else round(others, 2),
        "load_average_1min": round(os.getloadavg()[0], 2), "backbone": metrics["backbone"],
        "mode": metrics["mode"], "image_size": metrics["image_size"],
    }


def run_series(data_dir, options, runs, label, extra_load=0):
    stop, workers = mp.Event(), []
    for _ in range(extra_load):
        workers.append(mp.Process(target=busy_loop, args=(stop,), daemon=True))
        workers[-1].start()
    try:
        rows = []
        for i in range(runs):
            row = {"setting": label, "extra_busy_processes": extra_load, **run_once(data_dir, options)}
            print(f"{label} run {i + 1}/{runs}: accuracy {row['val_accuracy']:.4f}, "
                  f"{row['wall_seconds']} s wall, other processes {row['other_processes_cores']} "
                  f"cores", flush=True)
            rows.append(row)
        return rows
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def machine():
    import torch

    return {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available()}


def markdown(rows, info):
    lines = [
        f"Fine-tune command on hymenoptera (244 train / 153 val images), {info['cpu_cores']} CPU "
        f"cores, torch {info['torch']}, CUDA {'yes' if info['cuda'] else 'no'}; measured "
        f"{info['date']}. Wall = process start to end. Target: val accuracy >= "
        f"{TARGET_ACCURACY} within {TARGET_SECONDS} s.",
        "",
        "| setting | options | val accuracy | wall s | CPU s | other processes (cores busy) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        correct = round(row["val_accuracy"] * row["num_val"])
        lines.append(f"| {row['setting']} | `{row['options']}` | {row['val_accuracy']:.3f} "
                     f"({correct}/{row['num_val']}) | {row['wall_seconds']} | {row['cpu_seconds']} "
                     f"| {row['other_processes_cores']} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--with-load", type=int, default=0, metavar="N",
                        help="also run with N extra busy processes on the CPU")
    parser.add_argument("--finetune", action="store_true",
                        help="also run --mode finetune once (slower; for comparison)")
    args = parser.parse_args()
    rows = run_series(args.data, [], args.runs, "default (probe)")
    if args.with_load:
        rows += run_series(args.data, [], args.runs, f"default, +{args.with_load} busy",
                           args.with_load)
    if args.finetune:
        rows += run_series(args.data, ["--mode", "finetune"], 1, "fine-tune top blocks")
        rows += run_series(args.data, ["--backbone", "efficientnet_lite1"], 1, "probe, Lite1")
    info = {**machine(), "date": time.strftime("%Y-%m-%d")}
    (HERE / "results.json").write_text(json.dumps({"machine": info, "runs": rows}, indent=2) + "\n")
    (HERE / "results.md").write_text(markdown(rows, info))
    print(markdown(rows, info))
    default = [r for r in rows if r["options"] == "(defaults)"]
    ok = all(r["val_accuracy"] >= TARGET_ACCURACY and r["wall_seconds"] <= TARGET_SECONDS
             for r in default)
    print("target met in every default run" if ok else "TARGET MISSED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
