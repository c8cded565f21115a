"""A model trained on a CSV table by `own_data --save-onnx` classifies the test table in ONNX
Runtime as it did in lernmi, from the raw features: the file standardises them itself.

    python tests/python/onnx_csv.py MODEL.onnx TEST.csv LABEL LERNMI_TEST_ACC

TEST.csv has a header row, the label column LABEL and numeric feature columns, in the order
the model was trained on; labels are class numbers or, as own_data maps text labels, names
numbered in sorted order. LERNMI_TEST_ACC is own_data's `test_acc`. The correct counts must
agree to within 2 rows (the runtimes round differently in the last bits, which can only flip
a row whose two largest outputs nearly tie).

Prints one line and exits non-zero on disagreement.
"""

import csv
import sys

import numpy as np
import onnxruntime as ort

ALLOWED = 2


def main():
    model, table, label, accuracy = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    with open(table, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], [r for r in rows[1:] if r]
    column = header.index(label)
    raw_labels = [r[column] for r in rows]
    try:
        labels = np.array([int(v) for v in raw_labels])
    except ValueError:
        names = sorted(set(raw_labels))
        labels = np.array([names.index(v) for v in raw_labels])
    features = np.array([[float(v) for i, v in enumerate(r) if i != column] for r in rows])
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0].type
    dtype = np.float64 if declared == "tensor(double)" else np.float32
    outputs = session.run(["output"], {"input": features.astype(dtype)})[0]
    correct = int((outputs.argmax(axis=1) == labels).sum())
    expected = round(accuracy * len(rows))
    ok = abs(correct - expected) <= ALLOWED
    print(
        f"{'ok' if ok else 'FAIL'}: ONNX Runtime {ort.__version__} classifies {correct} / "
        f"{len(rows)} test rows correctly from raw features; lernmi {expected} "
        f"(allowed difference {ALLOWED})"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
