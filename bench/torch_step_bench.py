#!/usr/bin/env python3
"""Python peers of kiln_bench's training steps: PyTorch 2.x eager, torch.compile of the whole step, JAX jit.

  torch_step_bench.py one WORKLOAD PEER THREADS      prints ms/step (one process, one measurement)
  torch_step_bench.py all KILN_JSON [THREADS]       every workload x peer, each in its own process with
                                                    its best settings; prints a table next to kiln's figures
                                                    (from kiln_bench's JSON) and adds a "peers" list to it

WORKLOAD: mlp (784-1000-1000-10, b128), digits (64-256-256-10, b64, always 1 thread), cnn (b64 3x32x32:
conv3x3 32 + relu + maxpool2, conv3x3 64 + relu + maxpool2, linear 10). f32, SGD lr 0.01, softmax
cross entropy, labels i % 10, as in kiln_bench.cpp. PEER: eager, compile (torch.compile of forward, loss,
backward and SGD update as one function: torch.func.grad_and_value over functional_call; its compile is
a warm-up, not timed), compile-module (torch.compile of the usual module + optimizer step, graph breaks
at backward: tried, slower, kept for comparison), jax (jax.jit of the same step).
Timing as kiln_bench: warm-up steps, then the mean over a loop of at least 2 s, in ms per step.
A peer that is not installed prints a line saying so and is skipped (exit 3 from `one`).
"""
import json
import os
import subprocess
import sys
import time

WORKLOADS = ("mlp", "digits", "cnn")
PEERS = ("eager", "compile", "jax")
# kiln_bench's row names, for the ratios (a workload kiln_bench has no row for shows kiln n/a).
KILN_ROWS = {"mlp": "MLP 784-1000-1000-10 b128 SGD step", "digits": "MLP 64-256-256-10 b64 SGD step",
             "cnn": "CNN b64 3x32x32 SGD step"}
DESC = {"mlp": "MLP 784-1000-1000-10 b128", "digits": "MLP 64-256-256-10 b64", "cnn": "CNN b64 3x32x32"}
LR = 0.01
MIN_SECONDS = 2.0
WARMUP = 3
SKIP = 3


def workload_threads(workload, threads):
    return 1 if workload == "digits" else threads


def time_step(step, sync=lambda: None):
    for _ in range(WARMUP):
        step()
    sync()
    n = 0
    start = time.perf_counter()
    while True:
        step()
        n += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return elapsed / n * 1e3


def batch(workload):
    return 128 if workload == "mlp" else 64


def labels(workload):
    return [i % 10 for i in range(batch(workload))]


# ---- PyTorch --------------------------------------------------------------------------------------

def torch_model(workload):
    import torch.nn as nn
    if workload == "mlp":
        return nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 10))
    if workload == "digits":
        return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


def torch_input(workload):
    import torch
    shape = {"mlp": (128, 784), "digits": (64, 64), "cnn": (64, 3, 32, 32)}[workload]
    return torch.randn(*shape), torch.tensor(labels(workload), dtype=torch.long)


def run_torch(workload, peer, threads):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model(workload)
    x, t = torch_input(workload)
    if workload == "cnn" and os.environ.get("KILN_BENCH_TORCH_CHANNELS_LAST", "1") != "0":
        # PyTorch's best CNN setting here: channels-last (NHWC) oneDNN convolutions, 1.7x faster
        # eager than NCHW on the AVX2 VM; the shapes are the same.
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if peer == "eager" or peer == "compile-module":
        opt = torch.optim.SGD(model.parameters(), lr=LR)

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), t)
            loss.backward()
            opt.step()
            return loss

        return time_step(torch.compile(step) if peer == "compile-module" else step)
    # compile: the whole step as one function of the parameters, forward + backward + update in one graph.
    from torch.func import functional_call, grad_and_value
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_fn(p, x, t):
        return F.cross_entropy(functional_call(model, p, (x,)), t)

    def train_step(p, x, t):
        g, loss = grad_and_value(loss_fn)(p, x, t)
        return {k: p[k] - LR * g[k] for k in p}, loss

    mode = os.environ.get("KILN_BENCH_TORCH_COMPILE_MODE") or None  # default: Inductor's default mode
    compiled = torch.compile(train_step, fullgraph=True, mode=mode)
    state = [params]

    def step():
        state[0], loss = compiled(state[0], x, t)
        return loss

    t0 = time.perf_counter()
    step()  # compile, not timed
    print(f"torch.compile warm-up {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return time_step(step)


# ---- JAX ------------------------------------------------------------------------------------------

def run_jax(workload, threads):
    import jax
    import jax.numpy as jnp
    key = jax.random.PRNGKey(0)

    def dense(key, n_in, n_out):
        k1, k2 = jax.random.split(key)
        bound = 1.0 / n_in ** 0.5
        return {"w": jax.random.uniform(k1, (n_in, n_out), jnp.float32, -bound, bound),
                "b": jax.random.uniform(k2, (n_out,), jnp.float32, -bound, bound)}

    def conv(key, c_in, c_out):
        k1, k2 = jax.random.split(key)
        bound = 1.0 / (c_in * 9) ** 0.5
        return {"w": jax.random.uniform(k1, (c_out, c_in, 3, 3), jnp.float32, -bound, bound),
                "b": jax.random.uniform(k2, (c_out,), jnp.float32, -bound, bound)}

    keys = jax.random.split(key, 4)
    if workload == "cnn":
        params = {"c1": conv(keys[0], 3, 32), "c2": conv(keys[1], 32, 64), "fc": dense(keys[2], 64 * 8 * 8, 10)}
        x = jax.random.normal(keys[3], (64, 3, 32, 32), jnp.float32)

        def conv2d(p, h):
            y = jax.lax.conv_general_dilated(h, p["w"], (1, 1), ((1, 1), (1, 1)),
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
            return y + p["b"][None, :, None, None]

        def pool(h):
            return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

        def forward(p, x):
            h = pool(jax.nn.relu(conv2d(p["c1"], x)))
            h = pool(jax.nn.relu(conv2d(p["c2"], h)))
            h = h.reshape(h.shape[0], -1)
            return h @ p["fc"]["w"] + p["fc"]["b"]
    else:
        sizes = (784, 1000, 1000, 10) if workload == "mlp" else (64, 256, 256, 10)
        params = {f"l{i}": dense(keys[i], sizes[i], sizes[i + 1]) for i in range(3)}
        x = jax.random.normal(keys[3], (batch(workload), sizes[0]), jnp.float32)

        def forward(p, x):
            h = jax.nn.relu(x @ p["l0"]["w"] + p["l0"]["b"])
            h = jax.nn.relu(h @ p["l1"]["w"] + p["l1"]["b"])
            return h @ p["l2"]["w"] + p["l2"]["b"]

    t = jnp.array(labels(workload), jnp.int32)

    def loss_fn(p, x, t):
        logp = jax.nn.log_softmax(forward(p, x))
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))

    @jax.jit
    def train_step(p, x, t):
        loss, g = jax.value_and_grad(loss_fn)(p, x, t)
        return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g), loss

    state = [params]

    def step():
        state[0], _ = train_step(state[0], x, t)

    step()  # compile, not timed
    return time_step(step, lambda: jax.block_until_ready(state[0]))


# ---- one measurement per process --------------------------------------------------------------------

def one(workload, peer, threads):
    try:
        if peer == "jax":
            import jax  # noqa: F401
        else:
            import torch  # noqa: F401
    except ImportError:
        print(f"{'JAX' if peer == 'jax' else 'PyTorch'} not installed: peer {peer} skipped", file=sys.stderr)
        return SKIP
    ms = run_jax(workload, threads) if peer == "jax" else run_torch(workload, peer, threads)
    print(f"{ms:.4f}")
    return 0


def peer_env(peer, threads):
    """Each peer's best setting on the 2-core AMD VM (see RESULTS.md for what was tried)."""
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    if peer == "jax":
        # XLA's CPU client: one intra-op thread for the 1-thread workload; its own default otherwise
        # (all cores, which is 2 here).
        if threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=1").strip()
    else:
        # PyTorch's wheel ships libgomp: a passive wait is at least as fast on 2 busy cores.
        env.setdefault("OMP_WAIT_POLICY", "passive")
    return env


def measure(workload, peer, threads):
    """(ms or None, note)."""
    cmd = [sys.executable, os.path.abspath(__file__), "one", workload, peer, str(threads)]
    try:
        r = subprocess.run(cmd, env=peer_env(peer, threads), capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    if r.returncode == 0 and r.stdout.strip():
        return float(r.stdout.strip().splitlines()[-1]), ""
    lines = (r.stderr or r.stdout).strip().splitlines()
    return None, lines[-1] if lines else f"exit {r.returncode}"


def all_peers(kiln_json, threads):
    try:
        with open(kiln_json) as f:
            report = json.load(f)
    except (OSError, ValueError):
        report = {"results": []}
    by_name = {r["name"]: r for r in report.get("results", [])}
    versions = []
    for mod in ("torch", "jax"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            versions.append(f"{mod}: not installed")
    print(f"Python peers ({', '.join(versions)}); ms per step, lower is better; ratio = kiln/peer")
    print(f"{'workload':<28} {'thr':>3} {'kiln':>9} {'LibTorch':>9} {'eager':>9} {'compile':>9} {'jax':>9}"
          f"  {'kiln/LibT':>9} {'kiln/eager':>10} {'kiln/comp':>9} {'kiln/jax':>9}")
    rows = []
    notes = []
    for w in WORKLOADS:
        thr = workload_threads(w, threads)
        row = by_name.get(KILN_ROWS[w], {})
        kiln = row.get("kiln")
        libtorch = row.get("peer") if row.get("peer_name") == "LibTorch" else None
        ms = {}
        for p in PEERS:
            v, note = measure(w, p, thr)
            ms[p] = v
            if v is None:
                notes.append(f"{DESC[w]} {p}: {note}")
            rows.append({"workload": w, "name": DESC[w], "threads": thr, "peer": p, "ms": v,
                         "kiln_ms": kiln, "ratio": kiln / v if kiln and v else None})
        if libtorch:
            rows.append({"workload": w, "name": DESC[w], "threads": thr, "peer": "libtorch", "ms": libtorch,
                         "kiln_ms": kiln, "ratio": kiln / libtorch if kiln else None})
        f = lambda v: f"{v:.3f}" if v else "n/a"
        r = lambda a, b: f"{a / b:.3f}" if a and b else "n/a"
        print(f"{DESC[w]:<28} {thr:>3} {f(kiln):>9} {f(libtorch):>9} {f(ms['eager']):>9} {f(ms['compile']):>9}"
              f" {f(ms['jax']):>9}  {r(kiln, libtorch):>9} {r(kiln, ms['eager']):>10} {r(kiln, ms['compile']):>9}"
              f" {r(kiln, ms['jax']):>9}", flush=True)
    for n in notes:
        print(f"  skipped: {n}")
    if kiln_json and os.path.exists(kiln_json):
        report["peers"] = rows
        with open(kiln_json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"added the peers to {kiln_json}")
    return 0


def main(argv):
    if len(argv) >= 5 and argv[1] == "one":
        return one(argv[2], argv[3], int(argv[4]))
    if len(argv) >= 3 and argv[1] == "all":
        return all_peers(argv[2], int(argv[3]) if len(argv) > 3 else (os.cpu_count() or 1))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
