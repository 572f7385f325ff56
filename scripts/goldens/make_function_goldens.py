#!/usr/bin/env python3
"""Writes test/goldens/functions_extra.json: Chainer 7.8.1 goldens (format kiln-goldens/1, see
test/goldens/README.md, "Conventions for further functions") for more of chainer.functions:
elementwise math, scans and products, activations, stacking/tiling/axis moves, tensordot,
einsum, padding modes, losses and metrics, normalizations, depthwise convolution,
unpooling/upsampling and resize_images; forward and backward, f32 and f64.

Needs Chainer 7.8.1 and NumPy < 2 (never a build dependency), e.g.
    python3 -m venv /tmp/chainer-venv
    /tmp/chainer-venv/bin/pip install "setuptools<70" wheel "numpy<2"
    /tmp/chainer-venv/bin/pip install --no-build-isolation chainer==7.8.1
    /tmp/chainer-venv/bin/python scripts/goldens/make_function_goldens.py [OUT.json]

Each float32 case is also recomputed in float64 from the same inputs; the script fails if a
float32 value uses more than 2% of its tolerance against that recomputation.
"""
import numpy as np

if not hasattr(np, "float"):  # chainer.functions.resize_images still spells numpy.float (NumPy >= 1.24 lacks it)
    np.float = float

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402

from common import ACCUMULATING, ELEMENTWISE, case, check_float32, output_path, write_goldens  # noqa: E402

SEED = 0
# README: elementwise and data movement / accumulating functions.
TOL_ELEM = ELEMENTWISE
TOL_ACC = ACCUMULATING

# Input specs: (kind, shape, *args). Float inputs take the case's dtype; "int" inputs are int32.
def N(*shape, s=1.0):
    return ("normal", shape, s)


def U(lo, hi, *shape):
    return ("uniform", shape, lo, hi)


def SU(lo, hi, *shape):  # uniform magnitude in [lo, hi), random sign
    return ("signed_uniform", shape, lo, hi)


def I(lo, hi, *shape):
    return ("int", shape, lo, hi)


def P(*shape):  # a permutation of distinct values: no ties for max-like functions
    return ("distinct", shape)


E, A = "elem", "acc"
FWD = "forward_only"
F32 = "float32_only"  # Chainer accepts float32 only: no f64 case, no f64 recomputation

# (name, function, attrs, inputs, tolerance kind, options)
CASES = [
    # elementwise math
    ("sin", "sin", {}, [N(3, 4, s=2)], E, ()),
    ("cos", "cos", {}, [N(2, 5, s=2)], E, ()),
    ("tan", "tan", {}, [U(-1.2, 1.2, 4, 3)], E, ()),
    ("arcsin", "arcsin", {}, [U(-0.9, 0.9, 3, 4)], E, ()),
    ("arccos", "arccos", {}, [U(-0.9, 0.9, 2, 3, 2)], E, ()),
    ("arctan", "arctan", {}, [N(3, 4, s=2)], E, ()),
    ("arctan2", "arctan2", {}, [N(3, 4), N(3, 4)], E, ()),
    ("sinh", "sinh", {}, [N(3, 4, s=1.5)], E, ()),
    ("cosh", "cosh", {}, [N(4, 3, s=1.5)], E, ()),
    ("log1p", "log1p", {}, [U(-0.5, 3, 3, 4)], E, ()),
    ("expm1", "expm1", {}, [N(3, 4)], E, ()),
    ("log2", "log2", {}, [U(0.2, 5, 3, 4)], E, ()),
    ("log10", "log10", {}, [U(0.2, 5, 2, 6)], E, ()),
    ("erf", "erf", {}, [N(3, 4)], E, ()),
    ("erfc", "erfc", {}, [N(3, 4)], E, ()),
    ("floor", "floor", {}, [N(3, 5, s=3)], E, (FWD,)),
    ("ceil", "ceil", {}, [N(3, 5, s=3)], E, (FWD,)),
    ("fix", "fix", {}, [N(4, 4, s=3)], E, (FWD,)),
    ("sign", "sign", {}, [N(3, 4)], E, (FWD,)),
    ("fmod", "fmod", {}, [N(3, 4, s=3), SU(0.7, 2, 3, 4)], E, ()),
    ("squared_difference", "squared_difference", {}, [N(3, 4), N(3, 4)], E, ()),
    ("linear_interpolate", "linear_interpolate", {}, [U(0, 1, 3, 4), N(3, 4), N(3, 4)], E, ()),
    # scans and products
    ("cumsum_axis_none", "cumsum", {}, [N(3, 4)], A, ()),
    ("cumsum_axis1", "cumsum", {"axis": 1}, [N(2, 7, 3)], A, ()),
    ("cumsum_axis_neg1", "cumsum", {"axis": -1}, [N(3, 5)], A, ()),
    ("cumprod_axis0", "cumprod", {"axis": 0}, [SU(0.5, 1.5, 5, 3)], A, ()),
    ("cumprod_axis_none", "cumprod", {}, [SU(0.5, 1.5, 2, 3)], A, ()),
    ("prod_all", "prod", {}, [SU(0.6, 1.4, 3, 4)], A, ()),
    ("prod_axis1", "prod", {"axis": 1}, [SU(0.5, 1.5, 2, 5, 3)], A, ()),
    ("prod_axes_keepdims", "prod", {"axis": [0, 2], "keepdims": True}, [SU(0.5, 1.5, 3, 2, 3)], A, ()),
    ("average_all", "average", {}, [N(3, 4)], A, ()),
    ("average_weights_all", "average", {}, [N(3, 4), U(0.1, 1, 3, 4)], A, ()),
    ("average_weights_axis1", "average", {"axis": 1}, [N(2, 3, 4), U(0.1, 1, 3)], A, ()),
    ("average_axes_keepdims", "average", {"axis": [0, 2], "keepdims": True}, [N(2, 3, 4)], A, ()),
    ("average_weights_axis_neg1_keepdims", "average", {"axis": -1, "keepdims": True}, [N(3, 5), U(0.1, 1, 5)], A, ()),
    ("batch_l2_norm_squared", "batch_l2_norm_squared", {}, [N(3, 2, 4)], A, ()),
    # activations
    ("selu", "selu", {}, [N(3, 4, s=2)], E, ()),
    ("selu_attrs", "selu", {"alpha": 1.2, "scale": 0.9}, [N(3, 4, s=2)], E, ()),
    ("hard_sigmoid", "hard_sigmoid", {}, [N(4, 5, s=3)], E, ()),
    ("relu6", "relu6", {}, [N(4, 5, s=5)], E, ()),
    ("clipped_relu", "clipped_relu", {}, [N(3, 4, s=15)], E, ()),
    ("clipped_relu_z", "clipped_relu", {"z": 1.5}, [N(3, 4, s=2)], E, ()),
    ("crelu", "crelu", {}, [N(2, 3, 2)], E, ()),
    ("crelu_axis0", "crelu", {"axis": 0}, [N(2, 3)], E, ()),
    ("maxout", "maxout", {"pool_size": 2}, [P(3, 6)], E, ()),
    ("maxout_axis2", "maxout", {"pool_size": 3, "axis": 2}, [P(2, 2, 6)], E, ()),
    ("prelu", "prelu", {}, [N(3, 4, 2), U(0.1, 0.5, 4)], A, ()),
    # stacking, tiling, axis moves
    ("hstack_2d", "hstack", {}, [N(2, 3), N(2, 1), N(2, 2)], E, ()),
    ("hstack_1d", "hstack", {}, [N(3), N(2)], E, ()),
    ("vstack_1d", "vstack", {}, [N(3), N(3)], E, ()),
    ("vstack_2d", "vstack", {}, [N(2, 3), N(1, 3)], E, ()),
    ("dstack_2d", "dstack", {}, [N(2, 3), N(2, 3)], E, ()),
    ("dstack_3d", "dstack", {}, [N(2, 2, 1), N(2, 2, 3)], E, ()),
    ("tile_int", "tile", {"reps": 2}, [N(2, 3)], E, ()),
    ("tile_longer", "tile", {"reps": [2, 1, 3]}, [N(2, 3)], E, ()),
    ("tile_shorter", "tile", {"reps": [2]}, [N(2, 2, 3)], E, ()),
    ("repeat_flat", "repeat", {"repeats": 2}, [N(2, 3)], E, ()),
    ("repeat_axis1", "repeat", {"repeats": 3, "axis": 1}, [N(2, 3)], E, ()),
    ("repeat_per_element", "repeat", {"repeats": [1, 0, 2], "axis": 0}, [N(3, 2)], E, ()),
    ("flip_axis1", "flip", {"axis": 1}, [N(2, 3, 4)], E, ()),
    ("fliplr", "fliplr", {}, [N(3, 4)], E, ()),
    ("flipud", "flipud", {}, [N(3, 2, 2)], E, ()),
    ("moveaxis_int", "moveaxis", {"source": 0, "destination": 2}, [N(2, 3, 4)], E, ()),
    ("moveaxis_tuple", "moveaxis", {"source": [0, 1], "destination": [-1, 0]}, [N(2, 3, 4, 5)], E, ()),
    ("rollaxis", "rollaxis", {"axis": 2}, [N(2, 3, 4)], E, ()),
    ("rollaxis_start", "rollaxis", {"axis": 0, "start": 3}, [N(2, 3, 4)], E, ()),
    ("rollaxis_negative", "rollaxis", {"axis": -1, "start": 1}, [N(2, 3, 4, 2)], E, ()),
    ("swapaxes", "swapaxes", {"axis1": 0, "axis2": 2}, [N(2, 3, 4)], E, ()),
    ("separate_axis0", "separate", {}, [N(3, 2)], E, ()),
    ("separate_axis1", "separate", {"axis": 1}, [N(2, 3, 2)], E, ()),
    ("broadcast", "broadcast", {}, [N(3, 1), N(1, 4), N(4)], E, ()),
    ("diagonal", "diagonal", {}, [N(3, 4)], E, ()),
    ("diagonal_offset_axes", "diagonal", {"offset": 1, "axis1": 1, "axis2": 2}, [N(2, 3, 4)], E, ()),
    ("diagonal_negative_offset", "diagonal", {"offset": -1, "axis1": 2, "axis2": 0}, [N(4, 2, 3)], E, ()),
    ("space2depth", "space2depth", {"r": 2}, [N(1, 2, 4, 6)], E, ()),
    ("depth2space", "depth2space", {"r": 2}, [N(2, 8, 2, 3)], E, ()),
    ("scale_axis1", "scale", {}, [N(2, 3, 4), N(3)], E, ()),
    ("scale_2d", "scale", {"axis": 1}, [N(2, 3, 4), N(3, 4)], E, ()),
    ("bias_axis2", "bias", {"axis": 2}, [N(2, 3, 4), N(4)], E, ()),
    ("bilinear", "bilinear", {}, [N(3, 2), N(3, 4), N(2, 4, 5)], A, (F32,)),
    ("bilinear_linear_terms", "bilinear", {}, [N(3, 2), N(3, 4), N(2, 4, 5), N(2, 5), N(4, 5), N(5)], A, (F32,)),
    ("select_item", "select_item", {}, [N(4, 3), I(0, 3, 4)], E, ()),
    # tensordot, einsum
    ("tensordot_default", "tensordot", {}, [N(3, 4, 5), N(4, 5, 2)], A, ()),
    ("tensordot_axes1", "tensordot", {"axes": 1}, [N(2, 3, 4), N(4, 5)], A, ()),
    ("tensordot_axes_pairs", "tensordot", {"axes": [[0, 2], [2, 0]]}, [N(3, 4, 5), N(5, 2, 3)], A, ()),
    ("tensordot_axes_ints", "tensordot", {"axes": [1, 0]}, [N(2, 3), N(3, 4)], A, ()),
    ("einsum_matmul", "einsum", {"subscripts": "ij,jk->ik"}, [N(2, 3), N(3, 4)], A, ()),
    ("einsum_batch_matmul", "einsum", {"subscripts": "bij,bjk->bik"}, [N(2, 2, 3), N(2, 3, 4)], A, ()),
    ("einsum_diag", "einsum", {"subscripts": "ii->i"}, [N(3, 3)], A, ()),
    ("einsum_trace", "einsum", {"subscripts": "ii"}, [N(4, 4)], A, ()),
    ("einsum_transpose", "einsum", {"subscripts": "ij->ji"}, [N(2, 3)], A, ()),
    ("einsum_sum", "einsum", {"subscripts": "ij->"}, [N(2, 3)], A, ()),
    ("einsum_outer", "einsum", {"subscripts": "i,j->ij"}, [N(3), N(4)], A, ()),
    ("einsum_ellipsis", "einsum", {"subscripts": "...i,i->..."}, [N(2, 3, 4), N(4)], A, ()),
    ("einsum_implicit", "einsum", {"subscripts": "ijk,kj"}, [N(2, 3, 4), N(4, 3)], A, ()),
    ("einsum_three", "einsum", {"subscripts": "ij,jk,kl->il"}, [N(2, 3), N(3, 4), N(4, 2)], A, ()),
    ("einsum_hadamard_sum", "einsum", {"subscripts": "ij,ij->i"}, [N(3, 4), N(3, 4)], A, ()),
    # padding
    ("pad_constant_int", "pad", {"pad_width": 1, "mode": "constant"}, [N(2, 3)], E, ()),
    ("pad_constant_values", "pad", {"pad_width": [[0, 1], [2, 1]], "mode": "constant", "constant_values": 1.5},
     [N(2, 3)], E, ()),
    ("pad_edge", "pad", {"pad_width": [[1, 2], [2, 0]], "mode": "edge"}, [N(3, 3)], E, ()),
    ("pad_reflect", "pad", {"pad_width": [[2, 1], [1, 3]], "mode": "reflect"}, [N(3, 4)], E, ()),
    ("pad_symmetric", "pad", {"pad_width": [1, 2], "mode": "symmetric"}, [N(3, 4)], E, ()),
    ("pad_wrap", "pad", {"pad_width": [[0, 0], [2, 3]], "mode": "wrap"}, [N(2, 3)], E, ()),
    # losses and metrics
    ("squared_error", "squared_error", {}, [N(3, 4), N(3, 4)], E, ()),
    ("absolute_error", "absolute_error", {}, [N(3, 4), N(3, 4)], E, ()),
    ("mean_absolute_error", "mean_absolute_error", {}, [N(3, 4), N(3, 4)], A, ()),
    ("hinge", "hinge", {}, [N(4, 3), I(0, 3, 4)], A, ()),
    ("hinge_l2_no", "hinge", {"norm": "L2", "reduce": "no"}, [N(4, 3), I(0, 3, 4)], A, ()),
    ("contrastive", "contrastive", {}, [N(5, 3, s=0.4), N(5, 3, s=0.4), I(0, 2, 5)], A, ()),
    ("contrastive_margin_no", "contrastive", {"margin": 2.0, "reduce": "no"},
     [N(4, 3), N(4, 3), I(0, 2, 4)], A, ()),
    ("triplet", "triplet", {}, [N(5, 3, s=0.5), N(5, 3, s=0.5), N(5, 3, s=0.5)], A, ()),
    ("triplet_margin_no", "triplet", {"margin": 1.0, "reduce": "no"}, [N(4, 2), N(4, 2), N(4, 2)], A, ()),
    ("gaussian_kl_divergence", "gaussian_kl_divergence", {}, [N(3, 4), N(3, 4)], A, ()),
    ("gaussian_kl_divergence_mean", "gaussian_kl_divergence", {"reduce": "mean"}, [N(3, 4), N(3, 4)], A, ()),
    ("gaussian_kl_divergence_no", "gaussian_kl_divergence", {"reduce": "no"}, [N(3, 4), N(3, 4)], A, ()),
    ("bernoulli_nll", "bernoulli_nll", {}, [U(0, 1, 3, 4), N(3, 4, s=2)], A, ()),
    ("bernoulli_nll_no", "bernoulli_nll", {"reduce": "no"}, [U(0, 1, 3, 4), N(3, 4, s=2)], A, ()),
    ("gaussian_nll", "gaussian_nll", {}, [N(3, 4), N(3, 4), N(3, 4, s=0.5)], A, ()),
    ("gaussian_nll_mean", "gaussian_nll", {"reduce": "mean"}, [N(3, 4), N(3, 4), N(3, 4, s=0.5)], A, ()),
    ("binary_accuracy", "binary_accuracy", {}, [N(4, 3), I(-1, 2, 4, 3)], A, (FWD,)),
    ("r2_score", "r2_score", {}, [N(6, 3), N(6, 3)], A, (FWD,)),
    ("r2_score_raw", "r2_score", {"multioutput": "raw_values"}, [N(5, 2), N(5, 2)], A, (FWD,)),
    ("r2_score_1d", "r2_score", {}, [N(7), N(7)], A, (FWD,)),
    ("ctc", "connectionist_temporal_classification", {"blank_symbol": 0}, [N(5, 2, 4), I(1, 4, 2, 2)], A, ()),
    ("ctc_repeated_labels_no", "connectionist_temporal_classification", {"blank_symbol": 3, "reduce": "no"},
     [N(6, 3, 4), ("array", np.array([[0, 0, 1], [2, 1, 1], [1, 2, 0]], np.int32))], A, ()),
    ("ctc_lengths", "connectionist_temporal_classification", {"blank_symbol": 0},
     [N(6, 3, 5), I(1, 5, 3, 3), ("array", np.array([6, 4, 5], np.int32)), ("array", np.array([3, 1, 2], np.int32))],
     A, ()),
    # normalization
    ("normalize", "normalize", {}, [N(3, 4)], A, ()),
    ("normalize_axis_eps", "normalize", {"eps": 0.1, "axis": 2}, [N(2, 3, 4)], A, ()),
    ("local_response_normalization", "local_response_normalization", {}, [N(2, 7, 3, 3)], A, ()),
    ("local_response_normalization_attrs", "local_response_normalization",
     {"n": 3, "k": 1.0, "alpha": 0.5, "beta": 0.6}, [N(2, 4, 2, 3)], A, ()),
    ("group_normalization", "group_normalization", {"groups": 3}, [N(2, 6, 3, 4), N(6), N(6)], A, ()),
    ("group_normalization_3d_eps", "group_normalization", {"groups": 2, "eps": 0.01},
     [N(3, 4, 5), N(4), N(4)], A, ()),
    # CNN
    ("depthwise_convolution_2d", "depthwise_convolution_2d", {}, [N(2, 3, 5, 5), N(2, 3, 3, 3), N(6)], A, ()),
    ("depthwise_convolution_2d_s2p1_nobias", "depthwise_convolution_2d", {"stride": 2, "pad": 1},
     [N(1, 2, 6, 5), N(3, 2, 3, 2)], A, ()),
    ("unpooling_2d", "unpooling_2d", {"ksize": 2}, [N(2, 2, 3, 3)], A, ()),
    ("unpooling_2d_s2p1_no_cover_all", "unpooling_2d", {"ksize": 3, "stride": 2, "pad": 1, "cover_all": False},
     [N(1, 2, 3, 4)], A, ()),
    ("unpooling_2d_outsize", "unpooling_2d", {"ksize": [2, 3], "stride": [2, 1], "outsize": [7, 5]},
     [N(1, 1, 4, 3)], A, ()),
    ("upsampling_2d", "upsampling_2d", {"ksize": 2, "cover_all": False}, [("pool", (2, 2, 4, 4))], A, ()),
    ("upsampling_2d_s2p1_outsize", "upsampling_2d",
     {"ksize": 3, "stride": 2, "pad": 1, "outsize": [5, 6], "cover_all": False}, [("pool", (1, 2, 5, 6))], A, ()),
    ("resize_images_bilinear", "resize_images", {"output_shape": [5, 7]}, [N(1, 2, 3, 4)], A, (F32,)),
    ("resize_images_down", "resize_images", {"output_shape": [2, 3]}, [N(2, 1, 4, 5)], A, (F32,)),
    ("resize_images_nearest", "resize_images", {"output_shape": [5, 3], "mode": "nearest"}, [N(1, 2, 3, 4)], A, (F32,)),
    ("resize_images_no_align", "resize_images", {"output_shape": [5, 6], "align_corners": False},
     [N(1, 1, 3, 4)], A, (F32,)),
]


def as_chainer(v):
    # JSON lists are tuples, recursively (README).
    if isinstance(v, list):
        return tuple(as_chainer(x) for x in v)
    return v


def make_inputs(rng, specs, attrs, dtype):
    out = []
    for spec in specs:
        kind, shape = spec[0], spec[1] if spec[0] != "array" else None
        if kind == "normal":
            out.append((rng.standard_normal(shape) * spec[2]).astype(dtype))
        elif kind == "uniform":
            out.append(rng.uniform(spec[2], spec[3], shape).astype(dtype))
        elif kind == "signed_uniform":
            sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
            out.append((sign * rng.uniform(spec[2], spec[3], shape)).astype(dtype))
        elif kind == "int":
            out.append(rng.integers(spec[2], spec[3], shape).astype(np.int32))
        elif kind == "distinct":
            n = int(np.prod(shape))
            out.append((rng.permutation(n).reshape(shape) * 0.25 - n / 8.0).astype(dtype))
        elif kind == "array":
            out.append(spec[1])
        elif kind == "pool":
            # x of the pooled shape and the indexes of max_pooling_2d(..., return_indices=True).
            x0 = rng.standard_normal(shape).astype(dtype)
            _, idx = F.max_pooling_2d(x0, attrs["ksize"], stride=as_chainer(attrs.get("stride")),
                                      pad=attrs.get("pad", 0), cover_all=False, return_indices=True)
            out.append(rng.standard_normal(idx.shape).astype(dtype))
            out.append(idx.astype(np.int32))
        else:
            raise ValueError(kind)
    return out


def call(function, attrs, variables):
    kw = {k: as_chainer(v) for k, v in attrs.items()}
    if function in ("hstack", "vstack", "dstack"):
        y = getattr(F, function)(variables)
    elif function == "einsum":
        y = F.einsum(kw.pop("subscripts"), *variables)
    elif function == "average":
        y = F.average(variables[0], weights=variables[1] if len(variables) > 1 else None, **kw)
    elif function == "connectionist_temporal_classification":
        lengths = {"input_length": variables[2], "label_length": variables[3]} if len(variables) == 4 else {}
        y = F.connectionist_temporal_classification(list(F.separate(variables[0], 0)), variables[1], **kw, **lengths)
    elif function == "group_normalization":
        y = F.group_normalization(variables[0], kw.pop("groups"), variables[1], variables[2], **kw)
    else:
        y = getattr(F, function)(*variables, **kw)
    return list(y) if isinstance(y, (tuple, list)) else [y]


def run(function, attrs, arrays):
    variables = [chainer.Variable(a) if a.dtype.kind == "f" else a for a in arrays]
    return variables, call(function, attrs, variables)


def backward(outputs, gys):
    # Gradients of sum_j <outputs[j], gys[j]>; copies, as some backwards scale gy in place (hinge).
    if len(outputs) == 1:
        outputs[0].grad = gys[0].copy()
        outputs[0].backward()
    else:
        sum(F.sum(y * gy.copy()) for y, gy in zip(outputs, gys)).backward()


def make_case(rng, name, function, attrs, specs, tol_kind, options, dtype):
    inputs = make_inputs(rng, specs, attrs, dtype)
    variables, outputs = run(function, attrs, inputs)
    forward_only = FWD in options
    gys = [] if forward_only else [rng.standard_normal(y.shape).astype(dtype) for y in outputs]
    if not forward_only:
        backward(outputs, gys)
    rtol, atol = (TOL_ELEM if tol_kind == E else TOL_ACC)[dtype]
    grads = [v.grad if isinstance(v, chainer.Variable) and not forward_only else None for v in variables]
    if dtype == "float32" and F32 not in options:
        # The same inputs (float32 values) in float64: the float32 results must be well within tolerance.
        v64, y64 = run(function, attrs, [a.astype(np.float64) if a.dtype.kind == "f" else a for a in inputs])
        if not forward_only:
            backward(y64, [g.astype(np.float64) for g in gys])
        pairs = [(y.array, w.array) for y, w in zip(outputs, y64)]
        if not forward_only:
            pairs += [(g, w.grad) for g, w in zip(grads, v64) if g is not None]
        check_float32(name, pairs, rtol, atol)
    for g, v in zip(grads, variables):
        assert g is not None or not isinstance(v, chainer.Variable) or forward_only, f"{name}: no gradient"
    return case(name, dtype, function, attrs, inputs, [y.array for y in outputs], gys, grads, rtol, atol)


def main():
    out = output_path("functions_extra.json")
    rng = np.random.default_rng(SEED)
    cases = []
    for name, function, attrs, specs, tol_kind, options in CASES:
        for dtype in ["float32"] if F32 in options else ["float32", "float64"]:
            cases.append(make_case(rng, name, function, attrs, specs, tol_kind, options, dtype))
    write_goldens(out, cases, SEED)


if __name__ == "__main__":
    main()
