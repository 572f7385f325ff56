/* Runs the model of test/kilnc/cuda-run.mlir (m.h: p = softmax(x * s) by rows, q = tanh(z), s =
 * 0.5) through its --target=cuda object and compares with the same computed here, at batch 2,
 * then 7 (the executor's buffers grow), then 3 (they are reused). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "m.h"

int main(void) {
  enum { kMax = 7, kCols = 5 };
  float x[kMax * kCols], z[kMax * kCols], p[kMax * kCols], q[kMax * kCols];
  for (int i = 0; i < kMax * kCols; ++i) {
    x[i] = (float)((i * 37) % 11) - 4.5f;
    z[i] = (float)(i % 7) * 0.5f - 1.5f;
  }
  const int64_t batches[] = {2, kMax, 3};
  double worst = 0;
  for (int b = 0; b < 3; ++b) {
    int64_t n = batches[b];
    int code = m_forward(x, z, n, p, q);
    if (code != 0) {
      printf("m_forward(batch %lld) failed (%d): %s\n", (long long)n, code, m_last_error());
      return 1;
    }
    for (int64_t r = 0; r < n; ++r) {
      double top = -INFINITY, sum = 0;
      for (int c = 0; c < kCols; ++c) top = fmax(top, 0.5 * x[r * kCols + c]);
      for (int c = 0; c < kCols; ++c) sum += exp(0.5 * x[r * kCols + c] - top);
      for (int c = 0; c < kCols; ++c) {
        double want = exp(0.5 * x[r * kCols + c] - top) / sum;
        worst = fmax(worst, fabs(p[r * kCols + c] - want));
        worst = fmax(worst, fabs(q[r * kCols + c] - tanh(z[r * kCols + c])));
      }
    }
  }
  printf("m_forward: batches 2, 7, 3: largest difference %s 1e-6\n", worst <= 1e-6 ? "within" : "NOT within");
  printf("m_forward(batch 0): %d\n", m_forward(x, z, 0, p, q));
  return worst <= 1e-6 ? 0 : 1;
}
