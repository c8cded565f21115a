"""ONNX files lernmi wrote, checked by the ONNX project's own tools.

Run by `tests/onnx.rs` (see README.md, "Deploying"), with a directory argument holding, for
every case NAME, `NAME.onnx` (written by `Network::save_onnx`) and `NAME.io.safetensors` (the
inputs and lernmi's predictions for them). For each case:

1. `onnx.checker.check_model(full_check=True)`: the model is valid ONNX, and shape inference
   agrees with the declared input and output;
2. the interface: input `input` and output `output`, both (batch, width) with the symbolic
   `batch`, the default-domain opset, and lernmi's architecture in `metadata_props`;
3. ONNX Runtime (CPU) runs it on the inputs, at the full batch and one row at a time, and its
   outputs must match lernmi's within a relative difference of 1e-6 (f32) or 1e-12 (f64). A
   NaN or an infinity on either side is a failure.

   In f32, long sums (the 784-input MNIST network) round by more than 1e-6 in any order of
   summation: there the limit is twice lernmi's own distance from the exact result, the same
   network evaluated in f64 by numpy from the weights in the file and the architecture in its
   metadata. That is, ONNX Runtime agrees with lernmi to 1e-6, or as closely as float32 allows.
   lernmi's own distance must stay within rounding (1e-4 in f32, 1e-10 in f64), which also
   checks the file's weights and metadata against the network.

Prints one line per case and exits non-zero on any failure.
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from safetensors.numpy import load_file

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}
# lernmi's own distance from the numpy f64 evaluation: rounding stays far below these, a file
# whose weights or architecture do not match the network does not.
OWN_ERROR = {np.float32: 1e-4, np.float64: 1e-10}
ELEM_TYPE = {np.float32: onnx.TensorProto.FLOAT, np.float64: onnx.TensorProto.DOUBLE}


def relative_difference(ours, theirs):
    """The largest relative difference of a sample's outputs, max |theirs - ours| / max |ours|
    over its row (the normwise relative error in the max norm); inf for any non-finite value
    on either side.

    Each row is measured against its own largest output rather than element by element: an
    output that cancels to nearly zero keeps the absolute rounding of the terms it sums, which
    two runtimes that sum in different orders do not share."""
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))):
        return float("inf")
    scale = np.abs(ours).max(axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    return float((np.abs(theirs - ours).max(axis=1) / scale).max())


def activate(spec, z):
    name = spec["name"]
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, spec["slope"] * z)
    if name == "identity":
        return z
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown activation {name}")


def exact(model, architecture, inputs):
    """The network in f64 (numpy), from the file's initializers and its architecture JSON,
    after the standardizer in the metadata if there is one."""
    tensors = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    a = inputs.astype(np.float64)
    metadata = {p.key: p.value for p in model.metadata_props}
    if "lernmi.standardize" in metadata:
        standardizer = json.loads(metadata["lernmi.standardize"])
        std = np.array(standardizer["std"])
        a = (a - np.array(standardizer["mean"])) / np.where(std > 0, std, 1.0)
        # lernmi rounds the standardised features once to the network's type.
        a = a.astype(inputs.dtype).astype(np.float64)
    if architecture["input_activation"] is not None:
        a = activate(architecture["input_activation"], a)
    for names, spec in zip(architecture["layers"], architecture["activations"]):
        a = activate(spec, a @ tensors[names["weight"]].T + tensors[names["bias"]])
    return a


def check_interface(model, dtype, n_in, n_out):
    graph = model.graph
    assert [i.name for i in graph.input] == ["input"], graph.input
    assert [o.name for o in graph.output] == ["output"], graph.output
    for value, width in ((graph.input[0], n_in), (graph.output[0], n_out)):
        tensor = value.type.tensor_type
        assert tensor.elem_type == ELEM_TYPE[dtype], tensor.elem_type
        dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        assert dims == ["batch", width], dims
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 16)], model.opset_import
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["format"] == "lernmi", metadata
    architecture = json.loads(metadata["lernmi.architecture"])
    assert architecture["sizes"][0] == n_in and architecture["sizes"][-1] == n_out, architecture
    return architecture


def check_case(directory, name):
    path = directory / f"{name}.onnx"
    io = load_file(str(directory / f"{name}.io.safetensors"))
    inputs, ours = io["inputs"], io["predictions"]
    dtype = inputs.dtype.type
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    architecture = check_interface(model, dtype, inputs.shape[1], ours.shape[1])

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(["output"], {"input": inputs})[0]
    assert theirs.dtype == dtype and theirs.shape == ours.shape, (theirs.dtype, theirs.shape)
    one_by_one = np.concatenate([session.run(["output"], {"input": row[None]})[0] for row in inputs])
    diff = max(relative_difference(ours, theirs), relative_difference(ours, one_by_one))
    own = relative_difference(exact(model, architecture, inputs), ours)
    limit = TOLERANCE[dtype]
    if dtype == np.float32:
        limit = max(limit, 2 * own)
    ops = " ".join(node.op_type for node in model.graph.node)
    ok = diff <= limit and own <= OWN_ERROR[dtype]
    print(
        f"{'ok  ' if ok else 'FAIL'} {name + '.onnx':<23} {architecture['sizes']}: "
        f"ORT vs lernmi {diff:.1e} (limit {limit:.1e}); lernmi vs numpy f64 {own:.1e} [{ops}]"
    )
    return ok


def main():
    directory = pathlib.Path(sys.argv[1])
    names = sorted(p.name[: -len(".onnx")] for p in directory.glob("*.onnx"))
    if not names:
        sys.exit(f"no .onnx files in {directory}")
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, {len(names)} models")
    failed = [name for name in names if not check_case(directory, name)]
    print(f"{len(names) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
