#!/usr/bin/env python3
"""Side-by-side throughput: lernmi's `throughput` example against the PyTorch harness in
../shared/bench, alternating the two several times in one run. Prints one JSON line per run to
stdout and a median table (Markdown) at the end.

    cargo build --release --example throughput
    python3 benches/compare.py --data ../shared/data/mnist --torch ~/.venvs/torch/bin/python \
        --configs small,wide,lernmi --threads 1,2 --rounds 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--torch", default=os.path.expanduser("~/.venvs/torch/bin/python"))
ap.add_argument("--harness", default=os.path.join(os.path.dirname(__file__), "../../shared/bench/torch_mlp.py"))
ap.add_argument("--configs", default="small,wide,lernmi")
ap.add_argument("--threads", default="1,2")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--lernmi-torch-samples", type=int, default=5000)
args = ap.parse_args()

ours = os.path.join(os.path.dirname(__file__), "../target/release/examples/throughput")
results = {}  # (impl, config, threads) -> [samples_per_s of each timed epoch]


def run(cmd, key):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        rec = json.loads(line)
        if rec.get("phase") == "inference" or rec.get("meta"):
            continue
        print(json.dumps(rec), flush=True)
        # The first epoch carries one-off warm-up costs in both harnesses.
        if rec["epoch"] > 1 or args.epochs == 1:
            results.setdefault(key, []).append(rec["samples_per_s"])


for config in args.configs.split(","):
    for threads in [int(t) for t in args.threads.split(",")]:
        if config == "lernmi" and threads != 1:
            continue
        for _ in range(args.rounds):
            torch_cmd = [args.torch, args.harness, "--data", args.data, "--config", config,
                         "--threads", str(threads), "--epochs", str(args.epochs), "--infer-repeats", "1"]
            if config == "lernmi":
                torch_cmd += ["--samples", str(args.lernmi_torch_samples)]
            run(torch_cmd, ("torch", config, threads))
            run([ours, "--data", args.data, "--config", config, "--threads", str(threads),
                 "--epochs", str(args.epochs), "--infer-repeats", "1"], ("lernmi", config, threads))

print("\n| config | threads | PyTorch samples/s (median) | lernmi samples/s (median) | ratio |", file=sys.stderr)
print("|---|---|---|---|---|", file=sys.stderr)
for (impl, config, threads), v in sorted(results.items()):
    if impl != "lernmi":
        continue
    t = statistics.median(results.get(("torch", config, threads), [float("nan")]))
    o = statistics.median(v)
    print(f"| {config} | {threads} | {t:,.0f} | {o:,.0f} | {o / t:.2f}x |", file=sys.stderr)
