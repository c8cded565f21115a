#!/usr/bin/env python3
"""ONNX Runtime's prediction latency on a model lernmi exported, to read beside
`cargo bench --bench inference` (see benches/inference.rs, which writes the model it times to
target/inference-bench/mnist.onnx):

    cargo bench --bench inference
    target/pyenv/bin/python benches/onnx_latency.py target/inference-bench/mnist.onnx

For each batch size (1 and 1000 by default) and each session setting it prints one line with
the median, 10th and 90th percentile and mean latency of one `session.run` call, and the
samples per second at the median:

- `single-thread`: intra- and inter-op threads 1, sequential execution, no spinning: the
  match for lernmi's `predict_into`, which runs on the calling thread;
- `default`: ONNX Runtime's own defaults (a thread per physical core): the match for
  `predict`, which uses every core.

Inputs are uniform in [0, 1), like MNIST pixels; the first calls (--warmup) are not timed.
`--json` prints one JSON object per line instead.
"""

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort

DTYPE = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def session(path, single_thread):
    options = ort.SessionOptions()
    if single_thread:
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def time_calls(sess, inputs, warmup, iterations):
    feed = {sess.get_inputs()[0].name: inputs}
    for _ in range(warmup):
        sess.run(None, feed)
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        sess.run(None, feed)
        seconds.append((time.perf_counter_ns() - start) * 1e-9)
    return seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="an .onnx file (Network::save_onnx, mnist --save-onnx)")
    ap.add_argument("--batches", default="1,1000", help="comma-separated batch sizes")
    ap.add_argument("--settings", default="single-thread,default")
    ap.add_argument("--iterations", type=int, default=2000, help="timed calls at batch 1")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(7)
    for setting in args.settings.split(","):
        sess = session(args.model, setting == "single-thread")
        declared = sess.get_inputs()[0]
        dtype, width = DTYPE[declared.type], declared.shape[1]
        for batch in (int(b) for b in args.batches.split(",")):
            inputs = rng.random((batch, width)).astype(dtype)
            # Fewer calls for big batches: about the same total work per line.
            iterations = max(20, args.iterations // batch)
            seconds = time_calls(sess, inputs, args.warmup, iterations)
            q = statistics.quantiles(seconds, n=10)
            median = statistics.median(seconds)
            record = {
                "runtime": f"onnxruntime {ort.__version__}",
                "setting": setting,
                "batch": batch,
                "calls": iterations,
                "median_us": median * 1e6,
                "p10_us": q[0] * 1e6,
                "p90_us": q[-1] * 1e6,
                "mean_us": statistics.fmean(seconds) * 1e6,
                "samples_per_s": batch / median,
            }
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                print(
                    f"onnxruntime {ort.__version__} {setting:<13} batch {batch:>5}: "
                    f"median {record['median_us']:10.1f} us (p10 {record['p10_us']:.1f}, "
                    f"p90 {record['p90_us']:.1f}, mean {record['mean_us']:.1f}), "
                    f"{record['samples_per_s']:,.0f} samples/s over {iterations} calls",
                    flush=True,
                )


if __name__ == "__main__":
    main()
