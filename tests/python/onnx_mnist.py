"""A trained MNIST network, exported by `mnist --save-onnx`, classifies the test set in ONNX
Runtime as it did in lernmi.

    python tests/python/onnx_mnist.py MODEL.onnx MNIST_DIR LERNMI_CORRECT

MNIST_DIR holds t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz; LERNMI_CORRECT is the
number of test digits lernmi classified correctly (the `test N / 10000` of the example's last
epoch). Pixels are scaled to [0, 1] as the example scales them. The counts must agree to within
2 digits: the two runtimes round differently in the last bits, which can only flip a digit
whose two largest outputs tie to about 1e-6.

Prints one line and exits non-zero on disagreement.
"""

import gzip
import pathlib
import sys

import numpy as np
import onnxruntime as ort

ALLOWED = 2


def idx(path, header_ints):
    data = gzip.decompress(path.read_bytes())
    header = np.frombuffer(data[: 4 * header_ints], dtype=">u4")
    return header, np.frombuffer(data[4 * header_ints :], dtype=np.uint8)


def main():
    model, directory, expected = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
    header, pixels = idx(directory / "t10k-images-idx3-ubyte.gz", 4)
    _, labels = idx(directory / "t10k-labels-idx1-ubyte.gz", 2)
    images = pixels.reshape(int(header[1]), int(header[2]) * int(header[3]))
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0].type
    dtype = np.float64 if declared == "tensor(double)" else np.float32
    outputs = session.run(["output"], {"input": images.astype(dtype) / dtype(255)})[0]
    correct = int((outputs.argmax(axis=1) == labels).sum())
    ok = abs(correct - expected) <= ALLOWED
    print(
        f"{'ok' if ok else 'FAIL'}: ONNX Runtime {ort.__version__} classifies test "
        f"{correct} / {len(labels)} = {100 * correct / len(labels):.2f}% correctly; "
        f"lernmi {expected} (allowed difference {ALLOWED})"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
