#!/usr/bin/env python3
"""The peers of bench/gpu_bench.cpp on the same GPU (bench/gpu_check.sh runs both).

  gpu_torch_bench.py     prints, one line each: device-to-device copy GB/s (the bound of a fused
                         elementwise kernel), relu(2x+1) in PyTorch eager, GEMM 4096^3 through
                         torch.mm (cuBLAS), and the MLP and CNN SGD steps of gpu_bench in PyTorch
                         eager (ms/step). Exit 3 when torch or a CUDA device is missing.
Shapes, timing (warm-up, then the mean over at least 1 s, synchronized) as gpu_bench.
"""
import sys
import time


def timed(f, sync, seconds=1.0):
    f()
    sync()
    n = 0
    start = time.perf_counter()
    while True:
        f()
        n += 1
        if n % 16 == 0:
            sync()
        if time.perf_counter() - start >= seconds:
            break
    sync()
    return (time.perf_counter() - start) / n


def main():
    try:
        import torch
        import torch.nn as nn
    except ImportError:
        print("gpu_torch_bench: no torch here: the PyTorch and cuBLAS peers are not measured")
        return 3
    if not torch.cuda.is_available():
        print("gpu_torch_bench: torch sees no CUDA device")
        return 3
    dev = torch.device("cuda:0")
    sync = torch.cuda.synchronize
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    n = 1 << 26
    x = torch.randn(n, device=dev)
    y = torch.empty_like(x)
    t = timed(lambda: y.copy_(x), sync)
    print(f"device copy {n} f32: {8.0 * n / t / 1e9:.1f} GB/s")
    t = timed(lambda: torch.relu(x * 2.0 + 1.0), sync)
    print(f"torch eager relu(2x+1) {n} f32: {8.0 * n / t / 1e9:.1f} GB/s (3 kernels)")
    m = 4096
    a, b = torch.randn(m, m, device=dev), torch.randn(m, m, device=dev)
    t = timed(lambda: torch.mm(a, b), sync)
    print(f"cuBLAS GEMM {m}^3 f32 (torch.mm, TF32 {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}): "
          f"{2.0 * m ** 3 / t / 1e9:.1f} GFLOP/s")
    models = {
        "MLP 784-1000-1000-10 b128": (nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
                                                    nn.Linear(1000, 10)), (128, 784)),
        "CNN b64 3x32x32": (nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Flatten(), nn.Linear(64 * 8 * 8, 10)), (64, 3, 32, 32)),
    }
    for name, (model, shape) in models.items():
        model = model.to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        xb = torch.randn(*shape, device=dev)
        tb = torch.tensor([i % 10 for i in range(shape[0])], device=dev)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss_fn(model(xb), tb).backward()
            opt.step()

        print(f"torch eager {name} SGD step: {timed(step, sync) * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
