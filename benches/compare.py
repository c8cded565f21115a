#!/usr/bin/env python3
"""Side-by-side throughput: lernmi's `throughput` example against the numpy (OpenBLAS) and
PyTorch harnesses (shared/bench in this project's workspace; any copy of them works), alternated
config by config in each round of one run, with the core's FMA peak measured at the start and the
end of every round. Prints one JSON line per epoch to stdout and, at the end, a Markdown table of
medians with each figure as GFLOP/s and as a fraction of the same run's peak (× threads).

    cargo build --release --example throughput
    python3 benches/compare.py --harnesses DIR --data MNIST_DIR --numpy PYTHON [--torch PYTHON] \
        --configs small,wide,lernmi --threads 1,2 --rounds 3

A harness whose Python is not given (or cannot import its library) is left out and said so.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

# Floating-point work per trained sample: forward, weight gradients, and the sensitivities of
# every layer but the input (shared/bench/README.md).
MFLOP_PER_SAMPLE = {"small": 0.41, "wide": 9.56, "lernmi": 0.048}

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True, help="directory with the four MNIST IDX files")
ap.add_argument("--harnesses", required=True, help="directory with numpy_mlp.py and torch_mlp.py")
ap.add_argument("--numpy", default=sys.executable, help="a Python that has numpy")
ap.add_argument("--torch", default=None, help="a Python that has torch (optional)")
ap.add_argument("--configs", default="small,wide,lernmi")
ap.add_argument("--threads", default="1,2")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--lernmi", action="append", default=[], metavar="NAME=PATH",
                help="another build of the throughput example to run beside this one (e.g. "
                     "the previous commit's), repeatable; this checkout's build is `lernmi`")
ap.add_argument("--lernmi-samples", type=int, default=5000,
                help="lernmi config: samples per epoch for the Python harnesses (they are slow)")
args = ap.parse_args()

target = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "../target"))
ours = os.path.join(target, "release/examples/throughput")
builds = [("lernmi", ours)] + [tuple(spec.split("=", 1)) for spec in args.lernmi]
results = {}  # (impl, config, threads) -> [samples/s of each timed epoch]
peaks = []    # GFLOP/s of the widest f32 FMA loop, each time it was measured


def usable(python, module):
    if python is None:
        return False
    try:
        ok = subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    if not ok:
        print(f"# {python} cannot import {module}: that harness is left out", file=sys.stderr)
    return ok


def run(cmd, key):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        rec = json.loads(line)
        if rec.get("phase") == "inference" or rec.get("meta"):
            continue
        rec["run_as"] = key[0]
        print(json.dumps(rec), flush=True)
        # The first epoch carries one-off warm-up costs in every harness.
        if rec["epoch"] > 1 or args.epochs == 1:
            results.setdefault(key, []).append(rec["samples_per_s"])


def measure_peak():
    out = subprocess.run([ours, "--fma-peak"], capture_output=True, text=True, check=True).stdout
    rec = json.loads(out)
    print(json.dumps(rec), flush=True)
    f32 = [v for k, v in rec["fma_peak_gflops"].items() if k.endswith("_f32")]
    if f32:
        peaks.append(f32[0])


peers = []
if usable(args.numpy, "numpy"):
    peers.append(("numpy", args.numpy, "numpy_mlp.py"))
if usable(args.torch, "torch"):
    peers.append(("torch", args.torch, "torch_mlp.py"))

for _ in range(args.rounds):
    measure_peak()
    for config in args.configs.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            if config == "lernmi" and threads != 1:
                continue
            common = ["--data", args.data, "--config", config, "--threads", str(threads),
                      "--epochs", str(args.epochs), "--infer-repeats", "1"]
            for name, python, script in peers:
                extra = ["--samples", str(args.lernmi_samples)] if config == "lernmi" else []
                run([python, os.path.join(args.harnesses, script)] + common + extra,
                    (name, config, threads))
            for name, binary in builds:
                run([binary] + common, (name, config, threads))
    measure_peak()

peak = statistics.median(peaks) if peaks else float("nan")
names = [name for name, _, _ in peers] + [name for name, _ in builds]
lernmi_builds = {name for name, _ in builds}
print(f"\nFMA peak (f32, one core): median {peak:.1f} GFLOP/s, range {min(peaks, default=0):.1f}"
      f"–{max(peaks, default=0):.1f} over {len(peaks)} measurements", file=sys.stderr)
print("\n| config | threads | " + " | ".join(f"{n} samples/s (GFLOP/s, % of peak)" for n in names)
      + " | lernmi / best peer |", file=sys.stderr)
print("|---|---|" + "---|" * (len(names) + 1), file=sys.stderr)
configs = sorted({(c, t) for (_, c, t) in results})
for config, threads in configs:
    cells, medians = [], {}
    for name in names:
        v = results.get((name, config, threads))
        if not v:
            cells.append("—")
            continue
        m = statistics.median(v)
        medians[name] = m
        gflops = m * MFLOP_PER_SAMPLE[config] / 1e3
        cells.append(f"{m:,.0f} ({gflops:.1f}, {100 * gflops / (peak * threads):.0f} %)")
    best = max((medians[n] for n in medians if n not in lernmi_builds), default=float("nan"))
    ratio = medians.get("lernmi", float("nan")) / best
    print(f"| {config} | {threads} | " + " | ".join(cells) + f" | {ratio:.2f}× |", file=sys.stderr)
