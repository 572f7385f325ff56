// Chainer's examples/text_classification (nets.py, train_text_classifier.py) in C++: a
// TextClassifier over an RNN encoder (EmbedID + NStepLSTM, the last layer's final state) or
// a CNN encoder (EmbedID over the padded block, convolutions of widths 3, 4 and 5, max over
// time, an MLP), trained on padded batches (concat_examples with padding -1).
//   text_classification [--model rnn|cnn] [--layer N] [--unit U] [--vocab V] [--classes C]
//                       [--examples N] [--batchsize B] [--iterations N] [--out DIR] [--min-accuracy A]
// The corpus is synthetic: sequences of 4-8 random filler words, one of them replaced by the
// keyword of the example's class. --min-accuracy makes the run fail (exit 1) unless the test
// accuracy reaches A.
#include <kiln/kiln.h>

#include <cstring>

using namespace kiln;
namespace T = kiln::training;
namespace E = kiln::training::extensions;

constexpr int32_t PAD = -1;

// The rows of a padded block (B, L) as sequences without their padding.
std::vector<Variable> unpad(const Variable& x_block) {
  const Array& block = x_block.array();
  int64_t batch = block.shape()[0], length = block.shape()[1];
  const int32_t* d = block.data<int32_t>();
  std::vector<Variable> xs;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t n = 0;
    while (n < length && d[b * length + n] != PAD) ++n;
    xs.push_back(F::get_item(x_block, {b, Slice{0, n, std::nullopt}}));
  }
  return xs;
}

// Embeds every sequence of xs with one EmbedID call, with dropout (Chainer's sequence_embed).
std::vector<Variable> sequence_embed(const L::EmbedID& embed, const std::vector<Variable>& xs, double dropout) {
  std::vector<int64_t> x_section;
  int64_t total = 0;
  for (size_t i = 0; i + 1 < xs.size(); ++i) x_section.push_back(total += xs[i].shape()[0]);
  Variable ex = F::dropout(embed(F::concat(xs, 0)), dropout);
  return F::split_axis(ex, x_section, 0);
}

// (B, L) word ids -> (B, n_units, L, 1), padding embedded as zeros (Chainer's block_embed).
Variable block_embed(const L::EmbedID& embed, const Variable& x, double dropout) {
  Variable e = F::dropout(embed(x), dropout);
  e = F::transpose(e, {0, 2, 1});
  return F::expand_dims(e, 3);
}

struct Encoder : Chain {
  int64_t output_size = 0;
  virtual Variable operator()(const Variable& x_block) = 0;
};

// A sequence encoder with an LSTM: the last layer's final hidden state.
struct RNNEncoder : Encoder {
  L::EmbedID embed;
  L::NStepLSTM encoder;
  double dropout;
  RNNEncoder(int64_t n_layers, int64_t n_vocab, int64_t n_units, double dropout = 0.1)
      : embed(n_vocab, n_units, PAD), encoder(n_layers, n_units, n_units, dropout), dropout(dropout) {
    add_link("embed", embed);
    add_link("encoder", encoder);
    output_size = n_units;
  }
  Variable operator()(const Variable& x_block) override {
    std::vector<Variable> exs = sequence_embed(embed, unpad(x_block), dropout);
    F::NStepLSTMResult r = encoder(Variable(), Variable(), exs);
    return F::get_item(r.hy, {r.hy.shape()[0] - 1});  // last_h[-1]: (B, n_units)
  }
};

// A multilayer perceptron of ReLU layers with dropout (Chainer's MLP of nets.py).
struct MLP : ChainList {
  double dropout;
  std::vector<L::Linear> layers;
  MLP(int64_t n_layers, int64_t n_units, double dropout) : dropout(dropout) {
    for (int64_t i = 0; i < n_layers; ++i) layers.emplace_back(n_units, n_units);
    for (auto& l : layers) append(l);
  }
  Variable operator()(const Variable& x) const {
    Variable h = x;
    for (const auto& l : layers) h = F::dropout(F::relu(l(h)), dropout);
    return h;
  }
};

// A CNN encoder over the padded block: convolutions of 3, 4 and 5 words, max over time.
struct CNNEncoder : Encoder {
  L::EmbedID embed;
  L::Convolution2D cnn_w3, cnn_w4, cnn_w5;
  MLP mlp;
  double dropout;
  CNNEncoder(int64_t n_layers, int64_t n_vocab, int64_t n_units, double dropout = 0.1)
      : embed(n_vocab, n_units, PAD),
        cnn_w3(n_units, n_units / 3, {3, 1}, 1, {2, 0}, true),
        cnn_w4(n_units, n_units / 3, {4, 1}, 1, {3, 0}, true),
        cnn_w5(n_units, n_units / 3, {5, 1}, 1, {4, 0}, true),
        mlp(n_layers, n_units / 3 * 3, dropout),
        dropout(dropout) {
    add_link("embed", embed);
    add_link("cnn_w3", cnn_w3);
    add_link("cnn_w4", cnn_w4);
    add_link("cnn_w5", cnn_w5);
    add_link("mlp", mlp);
    output_size = n_units / 3 * 3;
  }
  Variable operator()(const Variable& x_block) override {
    Variable ex_block = block_embed(embed, x_block, dropout);
    int64_t batch = x_block.shape()[0];
    auto pooled = [&](const L::Convolution2D& conv) {
      Variable h = F::max(conv(ex_block), std::vector<int64_t>{2});  // (B, out, 1)
      return F::reshape(h, {batch, h.shape()[1]});
    };
    Variable h = F::concat({pooled(cnn_w3), pooled(cnn_w4), pooled(cnn_w5)}, 1);
    h = F::dropout(F::relu(h), dropout);
    return mlp(h);
  }
};

// A classifier using a given encoder.
struct TextClassifier : Chain {
  Encoder& encoder;
  L::Linear output;
  double dropout;
  TextClassifier(Encoder& encoder, int64_t n_class, double dropout = 0.1)
      : encoder(encoder), output(encoder.output_size, n_class), dropout(dropout) {
    add_link("encoder", encoder);
    add_link("output", output);
  }
  Variable operator()(const Variable& xs, const Variable& ys) {
    Variable concat_outputs = predict(xs);
    Variable loss = F::softmax_cross_entropy(concat_outputs, ys);
    report("loss", loss);
    report("accuracy", F::accuracy(concat_outputs, ys));
    return loss;
  }
  Variable predict(const Variable& xs) { return output(F::dropout(encoder(xs), dropout)); }
};

// Examples {words (L,) int32, label () int32}: 4-8 fillers, one replaced by the class keyword.
class KeywordDataset : public datasets::Dataset {
 public:
  KeywordDataset(size_t n, int32_t vocab, int32_t classes, uint64_t seed) {
    uint64_t state = seed;
    auto next = [&state] {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<uint32_t>(state >> 33);
    };
    for (size_t i = 0; i < n; ++i) {
      int32_t label = static_cast<int32_t>(next() % static_cast<uint32_t>(classes));
      size_t length = 4 + next() % 5;
      std::vector<int32_t> words;  // fillers are the ids after the keywords
      for (size_t k = 0; k < length; ++k) words.push_back(classes + static_cast<int32_t>(next() % (vocab - classes)));
      words[next() % length] = label;
      examples_.emplace_back(std::move(words), label);
    }
  }
  size_t size() const override { return examples_.size(); }
  std::vector<Array> get_example(size_t i) const override {
    const auto& [words, label] = examples_.at(i);
    return {Array::from(words, {static_cast<int64_t>(words.size())}), Array::scalar<int32_t>(label)};
  }

 private:
  std::vector<std::pair<std::vector<int32_t>, int32_t>> examples_;
};

int main(int argc, char** argv) {
  int64_t layer = 1, unit = 30, vocab = 20, classes = 3, iterations = 200;
  size_t batchsize = 32, n_examples = 1000;
  double min_accuracy = 0;
  std::string model_name = "cnn", out = "result";
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return !std::strcmp(argv[i], name) && i + 1 < argc; };
    if (arg("--model")) model_name = argv[++i];
    else if (arg("--layer")) layer = std::atoll(argv[++i]);
    else if (arg("--unit")) unit = std::atoll(argv[++i]);
    else if (arg("--vocab")) vocab = std::atoll(argv[++i]);
    else if (arg("--classes")) classes = std::atoll(argv[++i]);
    else if (arg("--examples")) n_examples = std::strtoul(argv[++i], nullptr, 10);
    else if (arg("--batchsize")) batchsize = std::strtoul(argv[++i], nullptr, 10);
    else if (arg("--iterations")) iterations = std::atoll(argv[++i]);
    else if (arg("--out")) out = argv[++i];
    else if (arg("--min-accuracy")) min_accuracy = std::atof(argv[++i]);
    else {
      fmt::print(stderr,
                 "usage: {} [--model rnn|cnn] [--layer N] [--unit U] [--vocab V] [--classes C] [--examples N] "
                 "[--batchsize B] [--iterations N] [--out DIR] [--min-accuracy A]\n",
                 argv[0]);
      return 2;
    }
  }
  if ((model_name != "rnn" && model_name != "cnn") || layer <= 0 || unit < 3 || classes < 2 ||
      vocab <= classes || n_examples < 10 || batchsize == 0 || iterations <= 0) {
    fmt::print(stderr, "error: --model is rnn or cnn; sizes must be positive, --unit at least 3, "
                       "--vocab larger than --classes\n");
    return 2;
  }
  try {
    auto data = std::make_shared<KeywordDataset>(n_examples, static_cast<int32_t>(vocab),
                                                 static_cast<int32_t>(classes), 1);
    auto [train, test] = datasets::split_dataset_random(data, n_examples * 4 / 5, 0);
    fmt::print("{} encoder; {} classes, vocabulary {}: {} training, {} test texts\n", model_name, classes, vocab,
               train->size(), test->size());

    set_random_seed(0);
    F::set_dropout_seed(0);
    std::unique_ptr<Encoder> encoder;
    if (model_name == "rnn")
      encoder = std::make_unique<RNNEncoder>(layer, vocab, unit);
    else
      encoder = std::make_unique<CNNEncoder>(layer, vocab, unit);
    TextClassifier model(*encoder, classes);
    optimizers::Adam optimizer;
    optimizer.setup(model);
    optimizer.add_hook(optimizer_hooks::WeightDecay(1e-4));

    // Padded batches: words (B, Lmax) with -1 after each text, labels (B,).
    T::Converter convert = [](const iterators::Batch& batch) { return concat_examples(batch, -1, PAD); };
    iterators::SerialIterator train_iter(train, batchsize);
    iterators::SerialIterator test_iter(test, batchsize, /*repeat=*/false, /*shuffle=*/false);
    T::StandardUpdater updater(train_iter, optimizer, model, convert);
    T::Trainer trainer(updater, {iterations, "iteration"}, out);
    int64_t interval = std::max<int64_t>(1, iterations / 4);
    trainer.extend(E::Evaluator(test_iter, model, convert), {interval, "iteration"});
    trainer.extend(E::LogReport({}, {interval, "iteration"}));
    trainer.extend(E::PrintReport({"epoch", "iteration", "main/loss", "validation/main/loss", "main/accuracy",
                                   "validation/main/accuracy"}));
    trainer.run();

    // The exact fraction of correct test predictions (one batch).
    iterators::SerialIterator whole(test, test->size(), false, false);
    double accuracy = E::Evaluator(whole, model, convert).evaluate().at("validation/main/accuracy");
    fmt::print("test accuracy: {:.4f}\n", accuracy);
    fmt::print("{}\n", cache_stats().to_string());
    if (min_accuracy > 0 && !(accuracy >= min_accuracy)) {
      fmt::print(stderr, "error: the test accuracy {:.4f} is below {}\n", accuracy, min_accuracy);
      return 1;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
