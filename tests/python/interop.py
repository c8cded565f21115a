"""Model files cross the language boundary: lernmi <-> numpy, through safetensors.

Run by `tests/python_interop.rs` (see README.md, "Model files"), with a directory argument:

1. For every `rust-*.safetensors` model there, load it with `safetensors.numpy.load_file`,
   rebuild the forward pass in numpy from the architecture in the file's metadata, and compare
   its predictions on the inputs in `rust-*.io.safetensors` with lernmi's.
2. Write models of our own in the same layout (`python-*.safetensors`, f32 and f64, one with
   the seed's input sigmoid), with inputs and numpy's predictions beside them
   (`python-*.io.safetensors`), for the Rust side to load and check.

Prints one line per model and exits non-zero on any disagreement.
"""

import json
import pathlib
import sys

import numpy as np
import safetensors
from safetensors.numpy import load_file, save_file

TOLERANCE = {"f32": 1e-5, "f64": 1e-12}


def activate(name, z, slope=None):
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "identity":
        return z
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown activation {name}")


def max_difference(ours, theirs):
    """The largest |ours - theirs|, with a NaN on either side counted as an infinite difference
    (so a comparison never passes for NaN outputs), and arrays of different shapes too."""
    if ours.shape != theirs.shape:
        return float("inf")
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def forward(arch, tensors, x):
    if arch["input_activation"] is not None:
        spec = arch["input_activation"]
        x = activate(spec["name"], x, spec.get("slope"))
    for names, spec in zip(arch["layers"], arch["activations"]):
        w, b = tensors[names["weight"]], tensors[names["bias"]]
        x = activate(spec["name"], x @ w.T + b, spec.get("slope"))
    return x


def check_rust_models(directory):
    checked = 0
    for path in sorted(directory.glob("rust-*.safetensors")):
        if path.name.endswith(".io.safetensors"):
            continue
        with safetensors.safe_open(str(path), framework="np") as f:
            metadata = f.metadata()
        assert metadata["format"] == "lernmi", metadata
        arch = json.loads(metadata["lernmi.architecture"])
        tensors = load_file(str(path))
        io = load_file(str(path.with_suffix(".io.safetensors")))
        dtype = np.float32 if arch["dtype"] == "f32" else np.float64
        for names, (n_in, n_out) in zip(arch["layers"], zip(arch["sizes"], arch["sizes"][1:])):
            assert tensors[names["weight"]].shape == (n_out, n_in)
            assert tensors[names["weight"]].dtype == dtype
            assert tensors[names["bias"]].shape == (n_out,)
        ours = forward(arch, tensors, io["inputs"])
        diff = max_difference(ours, io["predictions"])
        ok = diff <= TOLERANCE[arch["dtype"]]
        print(f"{path.name}: sizes {arch['sizes']} {arch['dtype']}: numpy vs lernmi max |diff| {diff:.3g} {'ok' if ok else 'FAIL'}")
        if not ok:
            return False
        checked += 1
    if checked == 0:
        print("no rust-*.safetensors models found")
        return False
    return True


def write_python_models(directory):
    rng = np.random.default_rng(2026)
    specs = [
        ("python-relu-f32", "f32", [6, 9, 4], [{"name": "relu"}, {"name": "softmax"}], "cross_entropy", None),
        ("python-tanh-f64", "f64", [6, 5, 5, 2], [{"name": "tanh"}, {"name": "leaky_relu", "slope": 0.125}, {"name": "sigmoid"}], "squared_error", None),
        ("python-seed-f64", "f64", [6, 3, 2], [{"name": "sigmoid"}, {"name": "sigmoid"}], "squared_error", {"name": "sigmoid"}),
    ]
    for name, dtype_name, sizes, activations, loss, input_activation in specs:
        dtype = np.float32 if dtype_name == "f32" else np.float64
        first = 1 if input_activation else 0
        layers = [{"weight": f"{first + 2 * l}.weight", "bias": f"{first + 2 * l}.bias"} for l in range(len(sizes) - 1)]
        tensors = {}
        for names, n_in, n_out in zip(layers, sizes, sizes[1:]):
            tensors[names["weight"]] = rng.uniform(-1, 1, (n_out, n_in)).astype(dtype)
            tensors[names["bias"]] = rng.uniform(-0.5, 0.5, n_out).astype(dtype)
        arch = {
            "format_version": 1,
            "crate_version": "python",
            "dtype": dtype_name,
            "sizes": sizes,
            "activations": activations,
            "loss": loss,
            "input_activation": input_activation,
            "layers": layers,
        }
        save_file(tensors, str(directory / f"{name}.safetensors"), metadata={"format": "lernmi", "lernmi.architecture": json.dumps(arch)})
        inputs = rng.uniform(-2, 2, (13, sizes[0])).astype(dtype)
        predictions = forward(arch, tensors, inputs).astype(dtype)
        save_file({"inputs": inputs, "predictions": predictions}, str(directory / f"{name}.io.safetensors"))
        print(f"wrote {name}.safetensors: sizes {sizes} {dtype_name}")


def main():
    directory = pathlib.Path(sys.argv[1])
    print(f"numpy {np.__version__}, safetensors {safetensors.__version__}")
    if not check_rust_models(directory):
        sys.exit(1)
    write_python_models(directory)


if __name__ == "__main__":
    main()
