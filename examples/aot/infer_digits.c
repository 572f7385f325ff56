/* Classifies the digits test split with the model kilnc compiled (digits.o, digits.h), linked
 * with nothing but libc and libm, and checks it against the JIT's logits and accuracy.
 *   infer_digits DIR   (DIR: what export_digits wrote)
 * Built with -DKILNC_THREADS (kilnc --threads=pthread|openmp), it also checks that
 * digits_forward_threads gives the same logits, bit for bit, on 1, 2 and 3 threads.
 * Built with -DKILNC_CUDA (kilnc --target=cuda), a failure prints digits_last_error(), and
 *   infer_digits DIR --expect-code N
 * checks instead that digits_forward returns N (3: no driver or GPU, 4: a CUDA error) with a
 * message, and prints it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"

static void* readFile(const char* dir, const char* name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "rb");
  void* data = malloc(bytes ? bytes : 1);
  if (!f || !data || fread(data, 1, bytes, f) != bytes) {
    fprintf(stderr, "infer_digits: cannot read %zu bytes of %s\n", bytes, path);
    exit(1);
  }
  fclose(f);
  return data;
}

static long metaValue(const char* dir, const char* key, double* real) {
  char path[4096], k[256];
  snprintf(path, sizeof path, "%s/meta.txt", dir);
  FILE* f = fopen(path, "r");
  double v;
  if (!f) {
    fprintf(stderr, "infer_digits: cannot open %s\n", path);
    exit(1);
  }
  while (fscanf(f, "%255s %lf", k, &v) == 2)
    if (strcmp(k, key) == 0) {
      fclose(f);
      if (real) *real = v;
      return (long)v;
    }
  fprintf(stderr, "infer_digits: %s has no %s\n", path, key);
  exit(1);
}

/* Why digits_forward failed, where the object says. */
static const char* lastError(void) {
#ifdef KILNC_CUDA
  return digits_last_error();
#else
  return "";
#endif
}

int main(int argc, char** argv) {
  int expectCode = 0;
  if (argc == 4 && strcmp(argv[2], "--expect-code") == 0) expectCode = atoi(argv[3]);
  if (argc != 2 && !expectCode) {
    fprintf(stderr, "usage: %s DIR [--expect-code N]\n", argv[0]);
    return 2;
  }
  const char* dir = argv[1];
  int64_t n = metaValue(dir, "test_examples", NULL), features = metaValue(dir, "features", NULL);
  int64_t classes = metaValue(dir, "classes", NULL);
  double jitAccuracy = 0;
  metaValue(dir, "accuracy", &jitAccuracy);

  /* The interface the header describes. */
  int64_t dims[8], rank = 0;
  if (digits_num_inputs() != 1 || digits_num_outputs() != 1 || digits_input_shape(0, dims, &rank) != 0 || rank != 2 ||
      dims[0] != -1 || dims[1] != features || digits_output_shape(0, dims, &rank) != 0 || rank != 2 ||
      dims[0] != -1 || dims[1] != classes || digits_input_shape(1, dims, &rank) == 0) {
    fprintf(stderr, "infer_digits: unexpected interface\n");
    return 1;
  }

  float* x = readFile(dir, "test_x.f32", (size_t)(n * features) * sizeof(float));
  int32_t* t = readFile(dir, "test_t.i32", (size_t)n * sizeof(int32_t));
  float* expected = readFile(dir, "test_logits.f32", (size_t)(n * classes) * sizeof(float));
  float* y = calloc((size_t)(n * classes), sizeof(float));
  if (expectCode) {
    int code = digits_forward(x, n, y);
    printf("digits_forward: %d: %s\n", code, lastError());
    return code == expectCode && *lastError() ? 0 : 1;
  }
  int code = digits_forward(x, n, y);
  if (code != 0) {
    fprintf(stderr, "infer_digits: digits_forward failed (%d): %s\n", code, lastError());
    return 1;
  }
  double maxDiff = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t c = 0; c < classes; ++c) {
      /* 1e-5, relative to logits larger than 1 */
      double e = (double)expected[i * classes + c];
      double d = fabs((double)y[i * classes + c] - e) / (fabs(e) > 1 ? fabs(e) : 1);
      if (d > maxDiff) maxDiff = d;
      if (y[i * classes + c] > y[i * classes + best]) best = c;
    }
    correct += best == t[i];
  }
  double accuracy = (double)correct / (double)n;
  printf("AOT test accuracy: %.4f (%lld of %lld), JIT %.4f; largest logit difference from the JIT %.3g (relative above 1)\n", accuracy,
         (long long)correct, (long long)n, jitAccuracy, maxDiff);

  /* One example at a time gives the same logits (another batch size, same code). */
  float one[64];
  if (classes > 64 || digits_forward(x + 5 * features, 1, one) != 0) return 1;
  for (int64_t c = 0; c < classes; ++c)
    if (fabs((double)one[c] - (double)y[5 * classes + c]) > 1e-5) {
      fprintf(stderr, "infer_digits: batch 1 differs from the whole batch\n");
      return 1;
    }
  /* Bad batches are refused with a code, not a crash. */
  if (digits_forward(x, 0, y) == 0 || digits_forward(x, -3, y) == 0 || digits_forward(NULL, 1, y) == 0) {
    fprintf(stderr, "infer_digits: a bad batch was accepted\n");
    return 1;
  }
#ifdef KILNC_THREADS
  float* threaded = calloc((size_t)(n * classes), sizeof(float));
  for (int threads = 1; threads <= 3; ++threads)
    if (digits_forward_threads(threads, x, n, threaded) != 0 ||
        memcmp(threaded, y, (size_t)(n * classes) * sizeof(float)) != 0) {
      fprintf(stderr, "infer_digits: %d threads give other logits than digits_forward\n", threads);
      return 1;
    }
  if (digits_forward_threads(0, x, n, threaded) == 0 || digits_forward_threads(-2, x, n, threaded) == 0) {
    fprintf(stderr, "infer_digits: a thread count <= 0 was accepted\n");
    return 1;
  }
  free(threaded);
  printf("digits_forward_threads: 1, 2 and 3 threads give the same logits\n");
#endif
  if (maxDiff > 1e-5 || fabs(accuracy - jitAccuracy) > 1e-6) {
    fprintf(stderr, "infer_digits: the AOT model differs from the JIT\n");
    return 1;
  }
  free(x);
  free(t);
  free(expected);
  free(y);
  return 0;
}
