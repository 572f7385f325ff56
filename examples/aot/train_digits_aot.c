/* Continues training the digits MLP with the training step kilnc compiled (digits_train.o,
 * digits_train.h), linked with nothing but libc and libm: the same batches as the JIT's
 * steps in export_digits, then the parameters must equal the JIT's.
 *   train_digits_aot DIR   (DIR: what export_digits wrote)
 * A second state runs the same steps at the same time on another thread (distinct states are
 * thread-safe) and must end with the same parameters, bit for bit.
 * Built with -DKILNC_THREADS (kilnc --threads=pthread|openmp), a third state runs the same
 * steps with digits_train_step_threads on 2 threads and must end with the same parameters,
 * bit for bit.
 * Built with -DKILNC_CUDA (kilnc --target=cuda: the state on the GPU), a failure prints
 * digits_train_last_error(), and
 *   train_digits_aot DIR --expect-no-state
 * checks instead that digits_train_create fails (NULL, where there is no driver or GPU) with a
 * message, and prints it. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits_train.h"

static void* readFile(const char* dir, const char* name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "rb");
  void* data = malloc(bytes ? bytes : 1);
  if (!f || !data || fread(data, 1, bytes, f) != bytes) {
    fprintf(stderr, "train_digits_aot: cannot read %zu bytes of %s\n", bytes, path);
    exit(1);
  }
  fclose(f);
  return data;
}

static FILE* openMeta(const char* dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/meta.txt", dir);
  FILE* f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "train_digits_aot: cannot open %s\n", path);
    exit(1);
  }
  return f;
}

static double metaValue(const char* dir, const char* key) {
  FILE* f = openMeta(dir);
  char k[256], v[256];
  while (fscanf(f, "%255s %255s", k, v) == 2)
    if (strcmp(k, key) == 0) {
      fclose(f);
      return atof(v);
    }
  fprintf(stderr, "train_digits_aot: meta.txt has no %s\n", key);
  exit(1);
}

/* `steps` steps of `state` over the batches from x and t; code: 0 or the first failure's. */
struct Training {
  digits_train_state* state;
  const float* x;
  const int32_t* t;
  int64_t steps, batch, features;
  float loss;
  int code;
  int64_t failed;  /* the step that failed */
  char error[512];
};
static const char* lastError(void);
static void* train(void* arg) {
  struct Training* r = arg;
  for (r->failed = 0; r->failed < r->steps; ++r->failed) {
    r->code = digits_train_step(r->state, r->x + r->failed * r->batch * r->features, r->t + r->failed * r->batch,
                                r->batch, &r->loss);
    if (r->code != 0) {
      snprintf(r->error, sizeof r->error, "%s", lastError());
      break;
    }
  }
  return NULL;
}

/* Whether states a and b hold the same parameters, bit for bit (else says which differs). */
static int sameParameters(digits_train_state* a, digits_train_state* b, const char* what) {
  for (int64_t i = 0; i < digits_train_num_params(); ++i) {
    int64_t dims[8], rank = 0, elements = 1;
    if (digits_train_param_shape(i, dims, &rank) != 0) return 0;
    for (int64_t d = 0; d < rank; ++d) elements *= dims[d];
    float* one = malloc((size_t)elements * sizeof(float));
    float* two = malloc((size_t)elements * sizeof(float));
    int same = one && two && digits_train_get_param(a, i, one) == 0 && digits_train_get_param(b, i, two) == 0 &&
               memcmp(one, two, (size_t)elements * sizeof(float)) == 0;
    free(one);
    free(two);
    if (!same) {
      fprintf(stderr, "train_digits_aot: %s differs between %s\n", digits_train_param_name(i), what);
      return 0;
    }
  }
  return 1;
}

static const char* lastError(void) {
#ifdef KILNC_CUDA
  return digits_train_last_error();
#else
  return "";
#endif
}

int main(int argc, char** argv) {
  int expectFailure = argc == 3 && strcmp(argv[2], "--expect-no-state") == 0;
  if (argc != 2 && !expectFailure) {
    fprintf(stderr, "usage: %s DIR [--expect-no-state]\n", argv[0]);
    return 2;
  }
  const char* dir = argv[1];
  int64_t steps = (int64_t)metaValue(dir, "steps"), batch = (int64_t)metaValue(dir, "batch");
  int64_t features = (int64_t)metaValue(dir, "features");
  double jitLoss = metaValue(dir, "loss");
  float* x = readFile(dir, "train_x.f32", (size_t)(steps * batch * features) * sizeof(float));
  int32_t* t = readFile(dir, "train_t.i32", (size_t)(steps * batch) * sizeof(int32_t));

  digits_train_state* state = digits_train_create();
  if (expectFailure) {
    printf("digits_train_create: %s: %s\n", state ? "a state" : "NULL", lastError());
    float none = 0;
    return !state && *lastError() && digits_train_step(NULL, x, t, batch, &none) == 1 ? 0 : 1;
  }
  digits_train_state* other = digits_train_create();
  if (!state || !other) {
    fprintf(stderr, "train_digits_aot: digits_train_create failed: %s\n", lastError());
    return 1;
  }
  struct Training mine = {state, x, t, steps, batch, features, 0, 0, 0, ""};
  struct Training theirs = {other, x, t, steps, batch, features, 0, 0, 0, ""};
  pthread_t thread;
  int started = pthread_create(&thread, NULL, train, &theirs) == 0;
  train(&mine);
  if (started) pthread_join(thread, NULL);
  else train(&theirs);
  for (int i = 0; i < 2; ++i) {
    const struct Training* r = i ? &theirs : &mine;
    if (r->code != 0) {
      fprintf(stderr, "train_digits_aot: step %lld failed (%d)%s: %s\n", (long long)r->failed, r->code,
              i ? " on the second thread" : "", r->error);
      return 1;
    }
  }
  float loss = mine.loss;
  if (theirs.loss != loss || !sameParameters(state, other, "the states trained at once")) return 1;
  printf("two states trained at once on two threads end with the same parameters\n");
  printf("AOT loss after %lld steps: %.6f (JIT %.6f)\n", (long long)steps, loss, jitLoss);
#ifdef KILNC_THREADS
  digits_train_state* threaded = digits_train_create();
  float threadedLoss = 0;
  if (!threaded) return 1;
  for (int64_t s = 0; s < steps; ++s)
    if (digits_train_step_threads(2, threaded, x + s * batch * features, t + s * batch, batch, &threadedLoss) != 0) {
      fprintf(stderr, "train_digits_aot: step %lld on 2 threads failed\n", (long long)s);
      return 1;
    }
  if (digits_train_step_threads(0, threaded, x, t, batch, &threadedLoss) == 0 || threadedLoss != loss) {
    fprintf(stderr, "train_digits_aot: 2 threads: a thread count of 0 was accepted, or another loss\n");
    return 1;
  }
  if (!sameParameters(state, threaded, "1 and 2 threads")) return 1;
  digits_train_destroy(threaded);
  printf("digits_train_step_threads: 2 threads end with the same parameters as 1\n");
#endif

  /* Bad input: a code, and the state is unchanged (checked below with the parameters). */
  int32_t badLabels[64];
  for (int64_t i = 0; i < batch && i < 64; ++i) badLabels[i] = t[i];
  badLabels[1] = 10;
  int badCode = digits_train_step(state, x, badLabels, batch < 64 ? batch : 64, &loss);
  printf("a label out of range: %d %s\n", badCode, lastError());
  if (badCode != 2 || digits_train_step(state, x, t, 0, &loss) != 1 || digits_train_step(state, x, t, -1, &loss) != 1) {
    fprintf(stderr, "train_digits_aot: bad input was accepted\n");
    return 1;
  }

  /* The parameters, by name, against the JIT's (meta.txt lists them in the JIT's order). */
  int64_t total = 0;
  FILE* meta = openMeta(dir);
  char key[256], name[256];
  long size;
  while (fscanf(meta, "%255s", key) == 1)
    if (strcmp(key, "param") == 0 && fscanf(meta, "%255s %ld", name, &size) == 2) total += size;
  fclose(meta);
  float* expected = readFile(dir, "train_params.f32", (size_t)total * sizeof(float));
  double maxDiff = 0;
  int64_t offset = 0, found = 0;
  meta = openMeta(dir);
  while (fscanf(meta, "%255s", key) == 1) {
    if (strcmp(key, "param") != 0 || fscanf(meta, "%255s %ld", name, &size) != 2) continue;
    for (int64_t i = 0; i < digits_train_num_params(); ++i) {
      if (strcmp(digits_train_param_name(i), name) != 0) continue;
      int64_t dims[8], rank = 0, elements = 1;
      if (digits_train_param_shape(i, dims, &rank) != 0) return 1;
      for (int64_t d = 0; d < rank; ++d) elements *= dims[d];
      if (elements != size) {
        fprintf(stderr, "train_digits_aot: %s has %lld elements, the JIT's %ld\n", name, (long long)elements, size);
        return 1;
      }
      float* value = malloc((size_t)size * sizeof(float));
      if (digits_train_get_param(state, i, value) != 0) return 1;
      for (long j = 0; j < size; ++j) {
        double d = fabs((double)value[j] - (double)expected[offset + j]);
        if (d > maxDiff) maxDiff = d;
      }
      /* set_param then get_param: the same values, in another state. */
      if (digits_train_set_param(other, i, value) != 0) return 1;
      float* back = malloc((size_t)size * sizeof(float));
      if (digits_train_get_param(other, i, back) != 0 || memcmp(back, value, (size_t)size * sizeof(float)) != 0) {
        fprintf(stderr, "train_digits_aot: set_param/get_param differ for %s\n", name);
        return 1;
      }
      free(back);
      free(value);
      ++found;
    }
    offset += size;
  }
  fclose(meta);
  printf("parameters: %lld of %lld compared, largest difference from the JIT %.3g\n", (long long)found,
         (long long)digits_train_num_params(), maxDiff);
  if (digits_train_param_name(digits_train_num_params()) != NULL || digits_train_param_name(-1) != NULL ||
      digits_train_get_param(state, -1, expected) == 0) {
    fprintf(stderr, "train_digits_aot: an index out of range was accepted\n");
    return 1;
  }
  /* train_forward runs the predictor on the state's parameters. */
  float y[10 * 4];
  if (digits_train_forward(state, x, 4, y) != 0 || digits_train_forward(state, x, 0, y) == 0) return 1;
  digits_train_destroy(state);
  digits_train_destroy(other);
  digits_train_destroy(NULL);
  if (found != digits_train_num_params() || maxDiff > 1e-5 || fabs(loss - jitLoss) > 1e-5 * (1 + fabs(jitLoss))) {
    fprintf(stderr, "train_digits_aot: the AOT training step differs from the JIT\n");
    return 1;
  }
  free(x);
  free(t);
  free(expected);
  return 0;
}
