"""Shared by the golden generators (make_*_goldens.py): the tolerances of test/goldens/README.md,
the tensor encoding T, the float32-against-float64 check and the kiln-goldens/1 writer."""
import json
import os
import sys

import numpy as np

# README: elementwise and data-movement functions / accumulating ones (reductions, matmul, ...).
ELEMENTWISE = {"float32": (1e-4, 1e-5), "float64": (1e-7, 1e-9)}
ACCUMULATING = {"float32": (1e-3, 1e-4), "float64": (1e-6, 1e-8)}


def tensor(a):
    """The README's tensor encoding T of an array."""
    a = np.asarray(a)
    if a.dtype == np.float32:
        data = [json.loads(str(v)) for v in a.ravel()]  # str of a float32: the shortest round-trip decimal
        assert all(np.float32(d) == v for d, v in zip(data, a.ravel()))
    elif a.dtype == np.float64:
        data = [float(v) for v in a.ravel()]
    else:
        data = [int(v) for v in a.ravel()]
    assert all(np.isfinite(data)), "no NaN or Inf in goldens"
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": data}


def check_float32(name, pairs, rtol, atol):
    """Each (float32 result, float64 recomputation) pair must use under 2% of the tolerance."""
    for got, ref in pairs:
        used = np.max(np.abs(got - ref) / (atol + rtol * np.abs(ref))) if np.size(ref) else 0.0
        assert used < 0.02, f"{name}: float32 uses {used:.1%} of its tolerance"


def case(name, dtype, function, attrs, inputs, outputs, grad_outputs, grad_inputs, rtol, atol):
    """One case of a kiln-goldens/1 file; a None grad_input (int32 inputs) stays null."""
    return {
        "name": f"{name}_{'f32' if dtype == 'float32' else 'f64'}",
        "function": function,
        "attrs": attrs,
        "inputs": [tensor(a) for a in inputs],
        "outputs": [tensor(y) for y in outputs],
        "grad_outputs": [tensor(g) for g in grad_outputs],
        "grad_inputs": [None if g is None else tensor(g) for g in grad_inputs],
        "rtol": rtol,
        "atol": atol,
    }


def output_path(filename):
    """The file to write: argv[1], else test/goldens/<filename> of this checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    return sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "test", "goldens", filename)


def write_goldens(out, cases, seed):
    import chainer

    doc = {"format": "kiln-goldens/1",
           "generator": {"chainer": chainer.__version__, "numpy": np.__version__, "seed": seed},
           "cases": cases}
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")
