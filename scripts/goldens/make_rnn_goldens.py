#!/usr/bin/env python3
"""Writes test/goldens/recurrent.json: Chainer 7.8.1 goldens (format kiln-goldens/1, see
test/goldens/README.md, "Recurrent functions and links") for lstm, slstm, the n-step
functions (n_step_lstm, n_step_bilstm, n_step_gru, n_step_bigru, n_step_rnn, n_step_birnn)
and the recurrent links (LSTM, StatelessLSTM, GRU, StatelessGRU and the NStep links),
forward and backward (gradients of every input and parameter).

Needs Chainer 7.8.1 and NumPy < 2 (never a build dependency), e.g.
    python3 -m venv /tmp/chainer-venv
    /tmp/chainer-venv/bin/pip install "setuptools<70" wheel "numpy<2"
    /tmp/chainer-venv/bin/pip install --no-build-isolation chainer==7.8.1
    /tmp/chainer-venv/bin/python scripts/goldens/make_rnn_goldens.py [OUT.json]

Each float32 case is also recomputed in float64 from the same inputs; the script fails if a
float32 value uses more than 2% of its tolerance against that recomputation.
"""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from common import ACCUMULATING, ELEMENTWISE, case, check_float32, output_path, write_goldens

SEED = 0
# Elementwise (lstm, slstm) and accumulating (everything with a matrix product) tolerances.
N_WEIGHTS = {"n_step_lstm": 8, "n_step_bilstm": 8, "n_step_gru": 6, "n_step_bigru": 6,
             "n_step_rnn": 2, "n_step_birnn": 2}
DTYPES = ["float32", "float64"]
# The unrolled n-step and link graphs are large to compile on the CPU backend: float64 for a
# few of them (one of each kind of cell, uni- and bi-directional), float32 for all.
F64_TOO = {"n_step_lstm_2layers_varlen", "n_step_bigru_2layers_varlen", "n_step_birnn_relu_2layers",
           "L.LSTM_in5_out3_shrinking_batch", "L.GRU_in3_out2_3steps", "L.StatelessLSTM_in3_out4",
           "L.StatelessGRU_in3_out4", "L.NStepBiLSTM_1layer_unsorted", "L.NStepRNNTanh_2layers_unsorted"}


# ---- calls: each takes float arrays (all of one dtype) and returns (input variables, outputs) ----

def call_function(function, attrs, arrays):
    variables = [chainer.Variable(a) for a in arrays]
    if function in ("lstm", "slstm"):
        outs = getattr(F, function)(*variables)
        return variables, list(outs)
    n_layers = attrs["n_layers"]
    directions = 2 if function in ("n_step_bilstm", "n_step_bigru", "n_step_birnn") else 1
    n_states = 2 if function in ("n_step_lstm", "n_step_bilstm") else 1
    nw = N_WEIGHTS[function]
    k = n_layers * directions
    states = variables[:n_states]
    flat_w = variables[n_states:n_states + k * nw]
    flat_b = variables[n_states + k * nw:n_states + 2 * k * nw]
    xs = variables[n_states + 2 * k * nw:]
    ws = [flat_w[i * nw:(i + 1) * nw] for i in range(k)]
    bs = [flat_b[i * nw:(i + 1) * nw] for i in range(k)]
    kwargs = {"activation": attrs["activation"]} if "activation" in attrs else {}
    out = getattr(F, function)(n_layers, attrs["dropout_ratio"], *states, ws, bs, xs, **kwargs)
    return variables, list(out[:-1]) + list(out[-1])


LINKS = {"LSTM": L.LSTM, "StatelessLSTM": L.StatelessLSTM, "GRU": L.GRU, "StatelessGRU": L.StatelessGRU,
         "NStepLSTM": L.NStepLSTM, "NStepBiLSTM": L.NStepBiLSTM, "NStepGRU": L.NStepGRU,
         "NStepBiGRU": L.NStepBiGRU, "NStepRNNTanh": L.NStepRNNTanh, "NStepRNNReLU": L.NStepRNNReLU,
         "NStepBiRNNTanh": L.NStepBiRNNTanh, "NStepBiRNNReLU": L.NStepBiRNNReLU}
CTOR_ARGS = {"LSTM": ["in_size", "out_size"], "StatelessLSTM": ["in_size", "out_size"],
             "GRU": ["in_size", "out_size"], "StatelessGRU": ["in_size", "out_size"]}


def make_link(name, attrs):
    args = CTOR_ARGS.get(name, ["n_layers", "in_size", "out_size", "dropout"])
    return LINKS[name](*[attrs[a] for a in args])


def call_link(function, attrs, arrays):
    name = function[2:]
    link = make_link(name, attrs)
    params = dict(link.namedparams())
    names = attrs["params"]
    variables = []
    for pname, a in zip(names, arrays):
        p = params["/" + pname]
        p.array = a
        variables.append(p)
    link.cleargrads()
    rest = [chainer.Variable(a) for a in arrays[len(names):]]
    variables += rest
    if name in ("LSTM", "GRU"):
        return variables, [link(x) for x in rest]
    if name == "StatelessLSTM":
        c, h, x = rest
        return variables, list(link(c, h, x))
    if name == "StatelessGRU":
        h, x = rest
        return variables, [link(h, x)]
    n_states = 2 if "LSTM" in name else 1
    if attrs.get("hx_none"):
        states, xs = [None] * n_states, rest
    else:
        states, xs = rest[:n_states], rest[n_states:]
    out = link(*states, xs)
    return variables, list(out[:-1]) + list(out[-1])


def make_case(rng, name, function, attrs, shapes, dtype, tolerances, scale=None):
    scale = scale or [1.0] * len(shapes)
    inputs = [(s_ * rng.standard_normal(s)).astype(dtype) for s, s_ in zip(shapes, scale)]
    call = call_link if function.startswith("L.") else call_function
    variables, outs = call(function, attrs, inputs)
    gys = [rng.standard_normal(y.shape).astype(dtype) for y in outs]
    loss = sum(F.sum(y * gy) for y, gy in zip(outs, gys))
    loss.backward()
    rtol, atol = tolerances[dtype]
    if dtype == "float32":
        v64, o64 = call(function, attrs, [a.astype(np.float64) for a in inputs])
        loss64 = sum(F.sum(y * gy.astype(np.float64)) for y, gy in zip(o64, gys))
        loss64.backward()
        pairs = [(y.array, w.array) for y, w in zip(outs, o64)] + [(v.grad, w.grad) for v, w in zip(variables, v64)]
        check_float32(name, pairs, rtol, atol)
    for v in variables:
        assert v.grad is not None, f"{name}: an input has no gradient"
    return case(name, dtype, function, attrs, inputs, [y.array for y in outs], gys, [v.grad for v in variables],
                rtol, atol)


def n_step_shapes(function, n_layers, in_size, n_units, batches):
    directions = 2 if function in ("n_step_bilstm", "n_step_bigru", "n_step_birnn") else 1
    n_states = 2 if function in ("n_step_lstm", "n_step_bilstm") else 1
    nw = N_WEIGHTS[function]
    shapes = [(n_layers * directions, batches[0], n_units)] * n_states
    ws, bs = [], []
    for layer in range(n_layers):
        for _ in range(directions):
            w_in = in_size if layer == 0 else n_units * directions
            ws += [(n_units, w_in if j < nw // 2 else n_units) for j in range(nw)]
            bs += [(n_units,)] * nw
    weight_scale = [0.5] * (len(ws) + len(bs))
    return shapes + ws + bs + [(b, in_size) for b in batches], [1.0] * n_states + weight_scale + [1.0] * len(batches)


def link_param_shapes(name, attrs):
    link = make_link(name, attrs)
    if name in ("LSTM", "StatelessLSTM"):
        link.upward._initialize_params(attrs["in_size"]) if link.upward.W.array is None else None
    named = [(n[1:], p.shape) for n, p in link.namedparams()]
    return named


def main():
    out = output_path("recurrent.json")
    rng = np.random.default_rng(SEED)
    cases = []

    # lstm (inputs [c_prev, x], outputs [c, h]) and slstm ([c_prev1, c_prev2, x1, x2] -> [c, h]).
    for name, c_shape, x_shape in [("lstm_b3_u5", (3, 5), (3, 20)), ("lstm_b1_u1", (1, 1), (1, 4)),
                                   ("lstm_c4_x2_u3", (4, 3), (2, 12)), ("lstm_3d_b2_u2", (2, 2, 3), (2, 8, 3))]:
        for dtype in DTYPES:
            cases.append(make_case(rng, name, "lstm", {}, [c_shape, x_shape], dtype, ELEMENTWISE))
    for name, c_shape in [("slstm_b3_u4", (3, 4)), ("slstm_b1_u3", (1, 3))]:
        x_shape = (c_shape[0], 4 * c_shape[1])
        for dtype in DTYPES:
            cases.append(make_case(rng, name, "slstm", {}, [c_shape, c_shape, x_shape, x_shape], dtype, ELEMENTWISE))

    # n-step functions: inputs [hx, (cx,) ws..., bs..., xs[0], ..., xs[T-1]] (time-major,
    # decreasing batch sizes), outputs [hy, (cy,) ys[0], ..., ys[T-1]].
    n_step_cases = [
        ("n_step_lstm", "1layer_b3_equal", 1, 4, 3, [3, 3, 3]),
        ("n_step_lstm", "2layers_varlen", 2, 3, 5, [4, 3, 3, 1]),
        ("n_step_bilstm", "1layer_varlen", 1, 3, 2, [3, 2, 1]),
        ("n_step_bilstm", "2layers_varlen", 2, 2, 3, [2, 2, 1]),
        ("n_step_gru", "1layer_b2", 1, 3, 4, [2, 2, 1]),
        ("n_step_gru", "2layers_varlen", 2, 5, 3, [3, 2, 2, 1]),
        ("n_step_bigru", "2layers_varlen", 2, 3, 3, [3, 1]),
        ("n_step_rnn", "tanh_2layers", 2, 3, 4, [3, 2, 1]),
        ("n_step_rnn", "relu_1layer", 1, 4, 3, [2, 2, 2]),
        ("n_step_birnn", "tanh_1layer", 1, 3, 2, [3, 3, 1]),
        ("n_step_birnn", "relu_2layers", 2, 2, 3, [2, 1, 1]),
    ]
    for function, suffix, n_layers, in_size, n_units, batches in n_step_cases:
        attrs = {"n_layers": n_layers, "dropout_ratio": 0.0}
        if function in ("n_step_rnn", "n_step_birnn"):
            attrs["activation"] = "relu" if suffix.startswith("relu") else "tanh"
        shapes, scale = n_step_shapes(function, n_layers, in_size, n_units, batches)
        for dtype in (DTYPES if f"{function}_{suffix}" in F64_TOO else ["float32"]):
            cases.append(make_case(rng, f"{function}_{suffix}", function, attrs, shapes, dtype, ACCUMULATING, scale))

    # Links: "function" "L.<Link>", attrs the constructor's arguments plus "params" (the
    # parameter names, namedparams without the leading "/"); inputs: the parameters in that
    # order, then the call's arguments.
    link_cases = [
        # Stateful LSTM: one call per x (batches may shrink); outputs [y_0, ..., y_{T-1}].
        ("LSTM", "in3_out4_3steps", {"in_size": 3, "out_size": 4}, [(2, 3), (2, 3), (2, 3)]),
        ("LSTM", "in5_out3_shrinking_batch", {"in_size": 5, "out_size": 3}, [(3, 5), (2, 5), (1, 5)]),
        ("GRU", "in3_out2_3steps", {"in_size": 3, "out_size": 2}, [(2, 3), (2, 3), (2, 3)]),
        ("GRU", "in4_out5_2steps", {"in_size": 4, "out_size": 5}, [(3, 4), (3, 4)]),
        # StatelessLSTM (c, h, x) -> [c_new, h_new]; StatelessGRU (h, x) -> [h_new].
        ("StatelessLSTM", "in3_out4", {"in_size": 3, "out_size": 4}, [(2, 4), (2, 4), (2, 3)]),
        ("StatelessGRU", "in3_out4", {"in_size": 3, "out_size": 4}, [(2, 4), (2, 3)]),
    ]
    # NStep links: (hx, (cx,) xs) with sequences xs[i] (L_i, in_size) in the caller's order
    # (unsorted); "hx_none": true passes None for the states. Outputs [hy, (cy,) ys...].
    nstep_links = [
        ("NStepLSTM", "1layer_unsorted", 1, 3, 4, [2, 4, 3], False),
        ("NStepLSTM", "2layers_hx_none", 2, 4, 3, [3, 1, 3, 2], True),
        ("NStepBiLSTM", "1layer_unsorted", 1, 3, 2, [1, 3, 2], False),
        ("NStepBiLSTM", "2layers_hx_none", 2, 2, 3, [2, 3], True),
        ("NStepGRU", "2layers_unsorted", 2, 3, 3, [2, 3, 1], False),
        ("NStepBiGRU", "1layer_hx_none", 1, 2, 3, [3, 2, 2], True),
        ("NStepRNNTanh", "2layers_unsorted", 2, 3, 2, [1, 2, 3], False),
        ("NStepRNNReLU", "1layer_hx_none", 1, 4, 3, [2, 2, 3], True),
        ("NStepBiRNNTanh", "1layer_unsorted", 1, 2, 3, [2, 3, 1], False),
        ("NStepBiRNNReLU", "2layers_hx_none", 2, 3, 2, [3, 1, 2], True),
    ]
    for name, suffix, n_layers, in_size, out_size, lengths, hx_none in nstep_links:
        attrs = {"n_layers": n_layers, "in_size": in_size, "out_size": out_size, "dropout": 0.0}
        directions = 2 if "Bi" in name else 1
        n_states = 2 if "LSTM" in name else 1
        state = (n_layers * directions, len(lengths), out_size)
        call_shapes = ([] if hx_none else [state] * n_states) + [(n, in_size) for n in lengths]
        if hx_none:
            attrs["hx_none"] = True
        link_cases.append((name, suffix, attrs, call_shapes))
    for name, suffix, attrs, call_shapes in link_cases:
        params = link_param_shapes(name, attrs)
        attrs = dict(attrs, params=[n for n, _ in params])
        shapes = [s for _, s in params] + call_shapes
        scale = [0.5] * len(params) + [1.0] * len(call_shapes)
        for dtype in (DTYPES if f"L.{name}_{suffix}" in F64_TOO else ["float32"]):
            cases.append(make_case(rng, f"L.{name}_{suffix}", f"L.{name}", attrs, shapes, dtype, ACCUMULATING, scale))

    write_goldens(out, cases, SEED)


if __name__ == "__main__":
    main()
