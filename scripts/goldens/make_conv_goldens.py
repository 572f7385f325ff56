#!/usr/bin/env python3
"""Writes test/goldens/convolutions.json: Chainer 7.8.1 goldens (format kiln-goldens/1, see
test/goldens/README.md) for convolution_2d and deconvolution_2d with dilate, groups and
cover_all, forward and backward (grad_inputs for x, W and b).

Needs Chainer 7.8.1 and NumPy < 2 (never a build dependency), e.g.
    python3 -m venv /tmp/chainer-venv
    /tmp/chainer-venv/bin/pip install "setuptools<70" wheel "numpy<2"
    /tmp/chainer-venv/bin/pip install --no-build-isolation chainer==7.8.1
    /tmp/chainer-venv/bin/python scripts/goldens/make_conv_goldens.py [OUT.json]

Each float32 case is also recomputed in float64 from the same inputs; the script fails if a
float32 value uses more than 2% of its tolerance against that recomputation.
"""
import chainer
import chainer.functions as F
import numpy as np

from common import ACCUMULATING, case, check_float32, output_path, write_goldens

SEED = 0
# Accumulating functions (README): float32 rtol 1e-3, atol 1e-4; float64 rtol 1e-6, atol 1e-8.
TOL = ACCUMULATING

# (name, function, attrs, x shape, W shape, with bias)
CASES = [
    # convolution_2d: W (O, C/groups, kh, kw)
    ("convolution_2d_dilate2_s1p2", "convolution_2d", {"pad": 2, "dilate": 2}, (2, 3, 6, 6), (4, 3, 3, 3), True),
    ("convolution_2d_dilate3_s2p1", "convolution_2d", {"stride": 2, "pad": 1, "dilate": 3}, (1, 2, 9, 8), (3, 2, 3, 2), True),
    ("convolution_2d_dilate21_s12p10", "convolution_2d", {"stride": [1, 2], "pad": [1, 0], "dilate": [2, 1]},
     (2, 3, 6, 7), (2, 3, 3, 3), True),
    ("convolution_2d_groups2_s2p1", "convolution_2d", {"stride": 2, "pad": 1, "groups": 2}, (2, 4, 6, 6), (6, 2, 3, 3), True),
    ("convolution_2d_groups4_s1p1", "convolution_2d", {"pad": 1, "groups": 4}, (1, 8, 5, 5), (4, 2, 3, 3), True),
    ("convolution_2d_depthwise_groups3", "convolution_2d", {"pad": 1, "groups": 3}, (2, 3, 5, 5), (3, 1, 3, 3), True),
    ("convolution_2d_depthwise_mult2_s2", "convolution_2d", {"stride": 2, "groups": 3}, (2, 3, 7, 7), (6, 1, 3, 3), True),
    ("convolution_2d_dilate2_groups2_s2p2_nobias", "convolution_2d", {"stride": 2, "pad": 2, "dilate": 2, "groups": 2},
     (2, 4, 7, 7), (4, 2, 3, 3), False),
    ("convolution_2d_1x1", "convolution_2d", {}, (2, 6, 3, 3), (4, 6, 1, 1), True),
    ("convolution_2d_1x1_batch1", "convolution_2d", {}, (1, 6, 3, 5), (5, 6, 1, 1), True),
    ("convolution_2d_1x1_wide", "convolution_2d", {}, (2, 8, 1, 2), (12, 8, 1, 1), True),
    ("convolution_2d_1x1_groups2", "convolution_2d", {"groups": 2}, (2, 4, 3, 3), (6, 2, 1, 1), True),
    ("convolution_2d_cover_all_s2", "convolution_2d", {"stride": 2, "cover_all": True}, (1, 2, 6, 6), (3, 2, 3, 3), True),
    ("convolution_2d_cover_all_dilate2_groups2", "convolution_2d",
     {"stride": 3, "pad": 1, "cover_all": True, "dilate": 2, "groups": 2}, (2, 4, 8, 7), (2, 2, 2, 2), True),
    # deconvolution_2d: W (C, O/groups, kh, kw)
    ("deconvolution_2d_dilate2_s2p1", "deconvolution_2d", {"stride": 2, "pad": 1, "dilate": 2}, (2, 4, 3, 3), (4, 3, 3, 3), True),
    ("deconvolution_2d_dilate3", "deconvolution_2d", {"dilate": 3}, (1, 2, 4, 4), (2, 2, 2, 3), True),
    ("deconvolution_2d_groups2_s2p1", "deconvolution_2d", {"stride": 2, "pad": 1, "groups": 2}, (2, 4, 3, 3), (4, 3, 3, 3), True),
    ("deconvolution_2d_groups4", "deconvolution_2d", {"groups": 4}, (1, 8, 3, 3), (8, 1, 3, 3), True),
    ("deconvolution_2d_depthwise_groups3_s2", "deconvolution_2d", {"stride": 2, "groups": 3}, (2, 3, 3, 3), (3, 1, 3, 3), True),
    ("deconvolution_2d_dilate2_groups2_outsize", "deconvolution_2d",
     {"stride": 2, "pad": 1, "dilate": 2, "groups": 2, "outsize": [8, 9]}, (2, 4, 4, 4), (4, 1, 3, 3), True),
    ("deconvolution_2d_1x1", "deconvolution_2d", {}, (2, 6, 3, 3), (6, 4, 1, 1), True),
    ("deconvolution_2d_1x1_groups2_nobias", "deconvolution_2d", {"groups": 2}, (1, 4, 2, 3), (4, 3, 1, 1), False),
]
DTYPES = {"convolution_2d_dilate3_s2p1": ["float64"], "convolution_2d_groups4_s1p1": ["float64"]}


def as_chainer_attrs(attrs):
    # JSON lists are tuples (README).
    return {k: tuple(v) if isinstance(v, list) else v for k, v in attrs.items()}


def run(function, attrs, arrays):
    variables = [chainer.Variable(a) for a in arrays]
    y = getattr(F, function)(*variables, **as_chainer_attrs(attrs))
    return variables, y


def make_case(rng, name, function, attrs, x_shape, w_shape, bias, dtype):
    out_channels = w_shape[0] if function == "convolution_2d" else w_shape[1] * attrs.get("groups", 1)
    shapes = [x_shape, w_shape] + ([(out_channels,)] if bias else [])
    inputs64 = [rng.standard_normal(s) for s in shapes]
    inputs = [a.astype(dtype) for a in inputs64]
    variables, y = run(function, attrs, inputs)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.grad = gy
    y.backward()
    rtol, atol = TOL[dtype]
    if dtype == "float32":
        # The same inputs (float32 values) in float64: the float32 results must be well within tolerance.
        v64, y64 = run(function, attrs, [a.astype(np.float64) for a in inputs])
        y64.grad = gy.astype(np.float64)
        y64.backward()
        pairs = [(y.array, y64.array)] + [(v.grad, w.grad) for v, w in zip(variables, v64)]
        check_float32(name, pairs, rtol, atol)
    return case(name, dtype, function, attrs, inputs, [y.array], [gy], [v.grad for v in variables], rtol, atol)


def main():
    out = output_path("convolutions.json")
    rng = np.random.default_rng(SEED)
    cases = []
    for name, function, attrs, x_shape, w_shape, bias in CASES:
        for dtype in DTYPES.get(name, ["float32", "float64"]):
            cases.append(make_case(rng, name, function, attrs, x_shape, w_shape, bias, dtype))
    write_goldens(out, cases, SEED)


if __name__ == "__main__":
    main()
