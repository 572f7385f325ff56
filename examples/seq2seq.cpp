// Chainer's examples/seq2seq/seq2seq.py in C++: an NStepLSTM encoder-decoder with EmbedID,
// trained with teacher forcing (the decoder reads <eos> + target, predicts target + <eos>)
// and decoded greedily, on a synthetic task: reverse a sequence of random words.
//   seq2seq [--layer N] [--unit U] [--vocab V] [--min-length A] [--max-length B] [--examples N]
//           [--batchsize B] [--iterations N] [--out DIR] [--min-accuracy A]
// Prints the word accuracy and the exact-sequence accuracy of greedy translations of held-out
// examples; --min-accuracy makes the run fail (exit 1) unless the word accuracy reaches A.
// Sequences of one length compile one training graph; mixed lengths compile one per distinct
// set of lengths in a batch (see the README on recurrent compile behaviour).
#include <kiln/kiln.h>

#include <cmath>
#include <cstring>
#include <numeric>

using namespace kiln;
namespace T = kiln::training;
namespace E = kiln::training::extensions;

constexpr int32_t UNK = 0;
constexpr int32_t EOS = 1;

// Embeds every sequence of xs with one EmbedID call (Chainer's sequence_embed).
std::vector<Variable> sequence_embed(const L::EmbedID& embed, const std::vector<Variable>& xs) {
  std::vector<int64_t> x_section;
  int64_t total = 0;
  for (size_t i = 0; i + 1 < xs.size(); ++i) x_section.push_back(total += xs[i].shape()[0]);
  Variable ex = embed(F::concat(xs, 0));
  return F::split_axis(ex, x_section, 0);
}

struct Seq2seq : Chain {
  L::EmbedID embed_x, embed_y;
  L::NStepLSTM encoder, decoder;
  L::Linear W;
  int64_t n_layers, n_units;

  Seq2seq(int64_t n_layers, int64_t n_source_vocab, int64_t n_target_vocab, int64_t n_units)
      : embed_x(n_source_vocab, n_units),
        embed_y(n_target_vocab, n_units),
        encoder(n_layers, n_units, n_units, 0.1),
        decoder(n_layers, n_units, n_units, 0.1),
        W(n_units, n_target_vocab),
        n_layers(n_layers),
        n_units(n_units) {
    add_link("embed_x", embed_x);
    add_link("embed_y", embed_y);
    add_link("encoder", encoder);
    add_link("decoder", decoder);
    add_link("W", W);
  }

  // The converted batch: the source sequences xs, then the target sequences ys.
  Variable operator()(const std::vector<Variable>& xs_ys) {
    size_t batch = xs_ys.size() / 2;
    std::vector<Variable> xs(xs_ys.begin(), xs_ys.begin() + batch), ys(xs_ys.begin() + batch, xs_ys.end());
    for (Variable& x : xs) x = F::flip(x, 0);  // the source is read backwards
    Variable eos(Array::from<int32_t>({EOS}, {1}), false);
    std::vector<Variable> ys_in, ys_out;
    for (const Variable& y : ys) {
      ys_in.push_back(F::concat({eos, y}, 0));
      ys_out.push_back(F::concat({y, eos}, 0));
    }
    // Both xs and ys_in are lists of arrays.
    std::vector<Variable> exs = sequence_embed(embed_x, xs);
    std::vector<Variable> eys = sequence_embed(embed_y, ys_in);
    // A null state is a zero vector in the encoder.
    F::NStepLSTMResult enc = encoder(Variable(), Variable(), exs);
    F::NStepLSTMResult dec = decoder(enc.hy, enc.cy, eys);
    // One matrix multiplication for every step: concatenate before the loss.
    Variable concat_os = F::concat(dec.ys, 0);
    Variable concat_ys_out = F::concat(ys_out, 0);
    Variable loss = F::sum(F::softmax_cross_entropy(W(concat_os), concat_ys_out, true, -1, "no")) *
                    (1.0 / static_cast<double>(batch));
    report("loss", loss);
    double n_words = static_cast<double>(concat_ys_out.shape()[0]);
    report("perp", F::exp(loss * (static_cast<double>(batch) / n_words)));
    return loss;
  }

  // Greedy decoding: the most probable word at each step, fed back, until <eos> or max_length.
  std::vector<std::vector<int32_t>> translate(const std::vector<Array>& sources, int64_t max_length = 100) {
    auto no_backprop = using_config("enable_backprop", false);
    auto no_train = using_config("train", false);
    size_t batch = sources.size();
    std::vector<Variable> xs;
    for (const Array& x : sources) xs.push_back(F::flip(Variable(x, false), 0));
    std::vector<Variable> exs = sequence_embed(embed_x, xs);
    F::NStepLSTMResult state = encoder(Variable(), Variable(), exs);
    Variable h = state.hy, c = state.cy;
    Array ys = Array::full({static_cast<int64_t>(batch)}, EOS, DType::i32);
    std::vector<std::vector<int32_t>> result(batch);
    std::vector<bool> done(batch, false);
    for (int64_t i = 0; i < max_length; ++i) {
      Variable eys = embed_y(Variable(ys, false));
      std::vector<Variable> steps = F::split_axis(eys, static_cast<int64_t>(batch), 0);
      F::NStepLSTMResult out = decoder(h, c, steps);
      h = out.hy;
      c = out.cy;
      Variable wy = W(F::concat(out.ys, 0));
      ys = F::argmax(wy, 1).array().astype(DType::i32);
      const int32_t* y = ys.data<int32_t>();
      bool all_done = true;
      for (size_t b = 0; b < batch; ++b) {
        if (!done[b] && y[b] == EOS) done[b] = true;
        if (!done[b]) result[b].push_back(y[b]);
        all_done = all_done && done[b];
      }
      if (all_done) break;
    }
    return result;
  }
};

// Pairs (source, target) of int32 word sequences: target = reversed source.
class ReversalDataset : public datasets::Dataset {
 public:
  ReversalDataset(size_t n, int32_t vocab, int64_t min_length, int64_t max_length, uint64_t seed) {
    uint64_t state = seed;
    auto next = [&state] {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return state >> 33;
    };
    for (size_t i = 0; i < n; ++i) {
      int64_t length = min_length + static_cast<int64_t>(next() % static_cast<uint64_t>(max_length - min_length + 1));
      std::vector<int32_t> x;
      for (int64_t k = 0; k < length; ++k) x.push_back(2 + static_cast<int32_t>(next() % static_cast<uint64_t>(vocab - 2)));
      sources_.push_back(x);
    }
  }
  size_t size() const override { return sources_.size(); }
  std::vector<Array> get_example(size_t i) const override {
    const std::vector<int32_t>& x = sources_.at(i);
    std::vector<int32_t> y(x.rbegin(), x.rend());
    int64_t n = static_cast<int64_t>(x.size());
    return {Array::from(x, {n}), Array::from(y, {n})};
  }

 private:
  std::vector<std::vector<int32_t>> sources_;
};

// Chainer's convert: the sources and the targets of the batch as separate arrays.
std::vector<Array> convert(const iterators::Batch& batch) {
  std::vector<Array> xs, ys;
  for (const auto& example : batch) {
    if (example.size() != 2) throw Error("seq2seq: convert: each example must be (source, target)");
    xs.push_back(example[0]);
    ys.push_back(example[1]);
  }
  xs.insert(xs.end(), ys.begin(), ys.end());
  return xs;
}

int main(int argc, char** argv) {
  int64_t layer = 1, unit = 64, vocab = 10, min_length = 3, max_length = 6, iterations = 1000;
  size_t batchsize = 32, n_examples = 2000;
  double min_accuracy = 0;
  std::string out = "result";
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return !std::strcmp(argv[i], name) && i + 1 < argc; };
    if (arg("--layer")) layer = std::atoll(argv[++i]);
    else if (arg("--unit")) unit = std::atoll(argv[++i]);
    else if (arg("--vocab")) vocab = std::atoll(argv[++i]);
    else if (arg("--min-length")) min_length = std::atoll(argv[++i]);
    else if (arg("--max-length")) max_length = std::atoll(argv[++i]);
    else if (arg("--examples")) n_examples = std::strtoul(argv[++i], nullptr, 10);
    else if (arg("--batchsize")) batchsize = std::strtoul(argv[++i], nullptr, 10);
    else if (arg("--iterations")) iterations = std::atoll(argv[++i]);
    else if (arg("--out")) out = argv[++i];
    else if (arg("--min-accuracy")) min_accuracy = std::atof(argv[++i]);
    else {
      fmt::print(stderr,
                 "usage: {} [--layer N] [--unit U] [--vocab V] [--min-length A] [--max-length B] [--examples N] "
                 "[--batchsize B] [--iterations N] [--out DIR] [--min-accuracy A]\n",
                 argv[0]);
      return 2;
    }
  }
  if (layer <= 0 || unit <= 0 || vocab < 3 || min_length <= 0 || max_length < min_length || n_examples < 10 ||
      batchsize == 0 || iterations <= 0) {
    fmt::print(stderr, "error: sizes must be positive, --vocab at least 3, --min-length <= --max-length, "
                       "--examples at least 10\n");
    return 2;
  }
  try {
    auto data = std::make_shared<ReversalDataset>(n_examples, static_cast<int32_t>(vocab), min_length, max_length, 1);
    auto [train, test] = datasets::split_dataset_random(data, n_examples * 9 / 10, 0);
    fmt::print("reversal of {}-{} words over a vocabulary of {}: {} training, {} test pairs\n", min_length,
               max_length, vocab, train->size(), test->size());

    set_random_seed(0);
    F::set_dropout_seed(0);
    Seq2seq model(layer, vocab, vocab, unit);
    optimizers::Adam optimizer;
    optimizer.setup(model);

    iterators::SerialIterator train_iter(train, batchsize);
    T::StandardUpdater updater(train_iter, optimizer, model, convert);
    T::Trainer trainer(updater, {iterations, "iteration"}, out);
    int64_t interval = std::max<int64_t>(1, iterations / 5);
    trainer.extend(E::LogReport({}, {interval, "iteration"}));
    trainer.extend(E::PrintReport({"epoch", "iteration", "main/loss", "main/perp", "elapsed_time"}));
    trainer.run();

    // Greedy translation of the held-out pairs, in batches.
    size_t words = 0, correct = 0, exact = 0;
    for (size_t start = 0; start < test->size(); start += batchsize) {
      std::vector<Array> sources;
      std::vector<std::vector<int32_t>> targets;
      for (size_t i = start; i < std::min(test->size(), start + batchsize); ++i) {
        auto example = test->get_example(i);
        sources.push_back(example[0]);
        targets.push_back(example[1].to_vector<int32_t>());
      }
      auto outs = model.translate(sources, max_length + 5);
      for (size_t b = 0; b < outs.size(); ++b) {
        const auto& t = targets[b];
        for (size_t k = 0; k < t.size(); ++k) correct += k < outs[b].size() && outs[b][k] == t[k];
        words += t.size();
        exact += outs[b] == t;
      }
    }
    double accuracy = static_cast<double>(correct) / static_cast<double>(words);
    fmt::print("test word accuracy: {:.4f}, sequences reversed exactly: {:.4f}\n", accuracy,
               static_cast<double>(exact) / static_cast<double>(test->size()));
    fmt::print("{}\n", cache_stats().to_string());
    if (min_accuracy > 0 && !(accuracy >= min_accuracy)) {
      fmt::print(stderr, "error: the word accuracy {:.4f} is below {}\n", accuracy, min_accuracy);
      return 1;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
