// Trains an MLP on scikit-learn's digits with the JIT, exports its forward and its training
// step for kilnc (kiln/export.h), and writes what the C programs of this folder compare with:
//   <out>/digits.mlir, digits.npz              the trained predictor (kiln::export_model)
//   <out>/digits_train.mlir, digits_train.npz  one optimizer step (kiln::export_training_step):
//                                              MomentumSGD, or --optimizer adam / adamw (AdamW with
//                                              weight decay; Adam's t is state of the step) / sgd
//                                              (plain SGD: no optimizer state)
//   <out>/test_x.f32 test_t.i32 test_logits.f32  the test split and the JIT's logits on it
//   <out>/train_x.f32 train_t.i32              the batches of the training run below
//   <out>/train_params.f32                     the parameters after the JIT's `--steps` steps
//   <out>/meta.txt                             sizes, the JIT's test accuracy and last loss
//   <out>/jit_times.txt                        with --time S: the JIT's ms per training step and per
//                                              forward on one batch (bench/aot_bench.sh), each timed S s
//   export_digits --out DIR [--epochs 2] [--steps 10] [--batch 32] [--optimizer momentum|adam|adamw|sgd]
//                 [--time SECONDS]
#include <kiln/export.h>
#include <kiln/kiln.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <fstream>

using namespace kiln;

struct MLP : Chain {
  L::Linear l1{64, 100}, l2{100, 100}, l3{100, 10};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) { return l3(F::relu(l2(F::relu(l1(x))))); }
};

template <class T>
void writeRaw(const std::string& path, const std::vector<T>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(T)));
  if (!out) throw Error("export_digits: cannot write " + path);
}

// The examples [begin, begin + n) of `data` as (x, t) batch arrays.
std::vector<Array> batchOf(const datasets::Dataset& data, size_t begin, size_t n) {
  std::vector<std::vector<Array>> examples;
  for (size_t i = 0; i < n; ++i) examples.push_back(data.get_example((begin + i) % data.size()));
  return concat_examples(examples);
}

int main(int argc, char** argv) {
  std::string out;
  int epochs = 2, steps = 10, batch = 32;
  std::string optimizer = "momentum";
  double timeSeconds = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--epochs" && i + 1 < argc) epochs = std::stoi(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::stoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
    else if (a == "--optimizer" && i + 1 < argc) optimizer = argv[++i];
    else if (a == "--time" && i + 1 < argc) timeSeconds = std::stod(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s --out DIR [--epochs N] [--steps N] [--batch B] [--optimizer momentum|adam|adamw|sgd]\n",
                   argv[0]);
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "export_digits: --out DIR is required\n");
    return 2;
  }
  try {
    auto digits = datasets::load_digits();
    auto [train, test] = datasets::split_dataset_random(digits, digits->size() * 4 / 5, /*seed=*/0);
    L::Classifier<MLP> model;
    std::unique_ptr<optimizers::Optimizer> chosen;
    if (optimizer == "momentum")
      chosen = std::make_unique<optimizers::MomentumSGD>(0.05, 0.9);
    else if (optimizer == "adam")
      chosen = std::make_unique<optimizers::Adam>(0.005);
    else if (optimizer == "adamw")
      chosen = std::make_unique<optimizers::AdamW>(0.005, 0.9, 0.999, 1e-8, 1.0, 1e-3);
    else if (optimizer == "sgd")
      chosen = std::make_unique<optimizers::SGD>(0.1);
    else
      throw Error("export_digits: --optimizer must be momentum, adam, adamw or sgd, not '" + optimizer + "'");
    optimizers::Optimizer& opt = *chosen;
    opt.setup(model);
    // A short JIT training run.
    for (int e = 0; e < epochs; ++e)
      for (size_t b = 0; b + batch <= train->size(); b += batch) {
        std::vector<Array> xt = batchOf(*train, b, batch);
        opt.update([&](const Variable& x, const Variable& t) { return model(x, t); }, Variable(xt[0], false),
                   Variable(xt[1], false));
      }

    // Export; the model and optimizer are left as they were.
    std::vector<Array> example = batchOf(*train, 0, batch);
    export_model(model.predictor, {example[0]}, out + "/digits");
    export_training_step(model, opt, {example[0]}, example[1], out + "/digits_train");

    // The JIT's logits on the test split.
    std::vector<Array> whole = batchOf(*test, 0, test->size());
    Array logits;
    {
      auto no_train = using_config("train", false);
      auto no_backprop = no_backprop_mode();
      Variable y = model.predictor(Variable(whole[0], false));
      logits = y.array();
    }
    std::vector<float> lv = logits.to_vector<float>();
    std::vector<int32_t> tv = whole[1].to_vector<int32_t>();
    size_t correct = 0, classes = logits.shape()[1];
    for (size_t i = 0; i < tv.size(); ++i) {
      size_t best = 0;
      for (size_t c = 1; c < classes; ++c)
        if (lv[i * classes + c] > lv[i * classes + best]) best = c;
      correct += static_cast<int32_t>(best) == tv[i];
    }
    double accuracy = static_cast<double>(correct) / static_cast<double>(tv.size());
    writeRaw(out + "/test_x.f32", whole[0].to_vector<float>());
    writeRaw(out + "/test_t.i32", tv);
    writeRaw(out + "/test_logits.f32", lv);

    // `steps` more JIT steps, from the exported state, on batches the C program reads too.
    std::vector<float> trainX;
    std::vector<int32_t> trainT;
    float loss = 0;
    for (int s = 0; s < steps; ++s) {
      std::vector<Array> xt = batchOf(*train, static_cast<size_t>(s) * batch, batch);
      for (float v : xt[0].to_vector<float>()) trainX.push_back(v);
      for (int32_t v : xt[1].to_vector<int32_t>()) trainT.push_back(v);
      model.cleargrads();
      Variable l = model(Variable(xt[0], false), Variable(xt[1], false));
      l.backward();
      opt.update();
      loss = l.array().item<float>();
    }
    std::vector<float> params;
    for (const auto& [name, p] : model.namedparams())
      for (float v : p.array().to_vector<float>()) params.push_back(v);
    writeRaw(out + "/train_x.f32", trainX);
    writeRaw(out + "/train_t.i32", trainT);
    writeRaw(out + "/train_params.f32", params);
    std::ofstream meta(out + "/meta.txt");
    meta << "test_examples " << tv.size() << "\nfeatures 64\nclasses " << classes << "\naccuracy "
         << fmt::format("{:.6f}", accuracy) << "\nsteps " << steps << "\nbatch " << batch << "\nloss "
         << fmt::format("{:.9g}", loss) << "\n";
    for (const auto& [name, p] : model.namedparams()) meta << "param " << name.substr(1) << " " << p.array().size() << "\n";
    fmt::print("JIT test accuracy: {:.4f} ({} of {}); loss after {} more steps: {:.6f}\n", accuracy, correct,
               tv.size(), steps, loss);
    if (timeSeconds > 0) {
      // The JIT's compiled step and forward on the first training batch, after a warm-up call.
      std::vector<Array> xt = batchOf(*train, 0, batch);
      Variable x(xt[0], false), t(xt[1], false);
      auto perCall = [&](const std::function<void()>& f) {
        f();
        int64_t n = 0;
        auto start = std::chrono::steady_clock::now();
        double elapsed = 0;
        do {
          f();
          ++n;
          elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } while (elapsed < timeSeconds);
        return elapsed / static_cast<double>(n) * 1e3;
      };
      double stepMs = perCall([&] { opt.update([&](const Variable& a, const Variable& b) { return model(a, b); }, x, t); });
      double forwardMs = perCall([&] {
        auto no_train = using_config("train", false);
        auto no_backprop = no_backprop_mode();
        model.predictor(x).array();
      });
      std::ofstream times(out + "/jit_times.txt");
      times << fmt::format("jit_step_ms {:.6f}\njit_forward_ms {:.6f}\n", stepMs, forwardMs);
      fmt::print("JIT: {:.4f} ms per training step, {:.4f} ms per forward (batch {})\n", stepMs, forwardMs, batch);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "export_digits: %s\n", e.what());
    return 1;
  }
  return 0;
}
