/* The AOT digits MLP next to the JIT (bench/aot_bench.sh): ms per digits_train_step and per
 * digits_forward on the batch export_digits timed the JIT on, and the ratios to its figures.
 *   aot_bench DIR SECONDS   (DIR: export_digits --time wrote train_x.f32, meta.txt, jit_times.txt) */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digits.h"
#include "digits_train.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double value(const char* dir, const char* file, const char* key) {
  char path[4096], k[256];
  double v;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE* f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "aot_bench: cannot open %s\n", path);
    exit(1);
  }
  while (fscanf(f, "%255s %lf", k, &v) == 2)
    if (strcmp(k, key) == 0) {
      fclose(f);
      return v;
    }
  fprintf(stderr, "aot_bench: %s has no %s\n", path, key);
  exit(1);
}

static void* readFile(const char* dir, const char* name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "rb");
  void* data = malloc(bytes);
  if (!f || !data || fread(data, 1, bytes, f) != bytes) {
    fprintf(stderr, "aot_bench: cannot read %zu bytes of %s\n", bytes, path);
    exit(1);
  }
  fclose(f);
  return data;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR SECONDS\n", argv[0]);
    return 2;
  }
  const char* dir = argv[1];
  double seconds = atof(argv[2]);
  int64_t batch = (int64_t)value(dir, "meta.txt", "batch"), features = (int64_t)value(dir, "meta.txt", "features");
  float* x = readFile(dir, "train_x.f32", (size_t)(batch * features) * sizeof(float));
  int32_t* t = readFile(dir, "train_t.i32", (size_t)batch * sizeof(int32_t));
  float y[4096], loss = 0;
  digits_train_state* state = digits_train_create();
  if (!state || batch * 10 > 4096) return 1;
  double ms[2];
  for (int which = 0; which < 2; ++which) {
    int64_t n = 0;
    int rc = which == 0 ? digits_train_step(state, x, t, batch, &loss) : digits_forward(x, batch, y);
    double start = now(), elapsed = 0;
    do {
      rc |= which == 0 ? digits_train_step(state, x, t, batch, &loss) : digits_forward(x, batch, y);
      ++n;
      elapsed = now() - start;
    } while (elapsed < seconds);
    if (rc != 0) return 1;
    ms[which] = elapsed / (double)n * 1e3;
  }
  double jitStep = value(dir, "jit_times.txt", "jit_step_ms"), jitForward = value(dir, "jit_times.txt", "jit_forward_ms");
  printf("%-44s %10s %10s %8s\n", "digits MLP 64-100-100-10, batch", "AOT ms", "JIT ms", "AOT/JIT");
  printf("%-44s %10.4f %10.4f %8.3f\n", "training step (MomentumSGD)", ms[0], jitStep, ms[0] / jitStep);
  printf("%-44s %10.4f %10.4f %8.3f\n", "forward", ms[1], jitForward, ms[1] / jitForward);
  digits_train_destroy(state);
  free(x);
  free(t);
  return 0;
}
