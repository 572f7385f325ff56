// Serializers: npz round trips, Chainer-written snapshots, numpy interop,
// failed loads that leave the target unchanged, and saves that only ever
// replace regular files (through symlinks; no temporary files left by kill -9).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/files.h>
#include <kiln/kiln.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

using namespace kiln;
namespace fs = std::filesystem;
namespace O = kiln::optimizers;

namespace {

struct MLP : Chain {
  L::Linear l1{5, 8}, l2{8, 8}, l3{8, 3};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) { return l3(F::relu(l2(F::relu(l1(x))))); }
};

Array to_array(const nlohmann::json& t) {
  Shape shape;
  for (auto& d : t["shape"]) shape.push_back(d.get<int64_t>());
  std::string dtype = t["dtype"];
  std::vector<double> data;
  for (auto& v : t["data"]) data.push_back(v.get<double>());
  if (dtype == "int32") return Array::from(std::vector<int32_t>(data.begin(), data.end()), shape);
  Array a = Array::from(data, shape);
  return dtype == "float32" ? a.astype(DType::f32) : a;
}

nlohmann::json goldens() {
  std::ifstream in(std::string(KILN_GOLDENS_DIR) + "/npz.json");
  return nlohmann::json::parse(in);
}

void expect_equal(const Array& a, const Array& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  for (int64_t i = 0; i < a.size(); ++i) ASSERT_EQ(a.at(i), b.at(i)) << "element " << i;
}

std::map<std::string, Array> snapshot(const Link& link) {
  std::map<std::string, Array> out;
  for (auto& [name, p] : link.namedparams()) out[name] = p.array().copy();
  return out;
}

void expect_unchanged(const Link& link, const std::map<std::string, Array>& before) {
  for (auto& [name, p] : link.namedparams()) {
    SCOPED_TRACE(name);
    expect_equal(p.array(), before.at(name));
  }
}

class Serializers : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kiln_serializers_XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    ASSERT_NE(mkdtemp(buf.data()), nullptr);
    dir = buf.data();
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (fs::path(dir) / name).string(); }
  std::string dir;
};

// Checks `message` names the file and the key.
template <class Fn>
void expect_error(Fn fn, const std::string& file, const std::string& key = "") {
  try {
    fn();
    ADD_FAILURE() << "expected kiln::Error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    if (!key.empty()) EXPECT_NE(msg.find(key), std::string::npos) << msg;
  }
}

std::string read_all(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The names in `dir`, sorted.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The message of the kiln::Error `fn` throws ("" and a failure when none).
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected kiln::Error";
  return "";
}

// A pid that no process has: a child that has exited and been reaped.
pid_t dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST_F(Serializers, LoadsChainerSnapshots) {
  nlohmann::json g = goldens();
  Array x = to_array(g["x"]);
  Array expected = to_array(g["expected"]);
  double rtol = g["rtol"], atol = g["atol"];
  for (std::string key : {"file", "file_uncompressed"}) {
    SCOPED_TRACE(key);
    L::Classifier<MLP> model;
    serializers::load_npz(std::string(KILN_GOLDENS_DIR) + "/" + g[key].get<std::string>(), model);
    Array y = model.predictor(Variable(x, false)).array();
    ASSERT_EQ(y.shape(), expected.shape());
    for (int64_t i = 0; i < y.size(); ++i)
      EXPECT_NEAR(y.at(i), expected.at(i), atol + rtol * std::fabs(expected.at(i))) << i;
    Variable loss = model(Variable(x, false), Variable(to_array(g["t"]), false));
    double l = g["loss"];
    EXPECT_NEAR(loss.item<double>(), l, 1e-5 * std::fabs(l) + 1e-6);
    EXPECT_NEAR(model.accuracy.item<double>(), g["accuracy"].get<double>(), 1e-6);
  }
}

TEST_F(Serializers, ReadsChainerKeys) {
  nlohmann::json g = goldens();
  auto arrays = npz::read(std::string(KILN_GOLDENS_DIR) + "/model.npz");
  ASSERT_EQ(arrays.size(), g["keys"].size());
  for (const auto& k : g["keys"]) {
    const Array& a = arrays.at(k["key"].get<std::string>());
    EXPECT_EQ(dtype_name(a.dtype()), k["dtype"].get<std::string>());
    EXPECT_EQ(a.shape(), k["shape"].get<Shape>());
  }
}

TEST_F(Serializers, PathPrefix) {
  MLP mlp;
  serializers::load_npz(std::string(KILN_GOLDENS_DIR) + "/model.npz", mlp, "predictor/");
  auto arrays = npz::read(std::string(KILN_GOLDENS_DIR) + "/model.npz");
  expect_equal(mlp.l2.W.array(), arrays.at("predictor/l2/W"));
  // Without the prefix every key is missing.
  MLP other;
  expect_error([&] { serializers::load_npz(std::string(KILN_GOLDENS_DIR) + "/model.npz", other); },
               "model.npz", "l1/W");
}

TEST_F(Serializers, RoundTripLink) {
  for (bool compression : {true, false}) {
    SCOPED_TRACE(compression);
    set_random_seed(1);
    L::Classifier<MLP> a;
    set_random_seed(2);
    L::Classifier<MLP> b;
    ASSERT_NE(a.predictor.l1.W.array().at(0), b.predictor.l1.W.array().at(0));
    std::string file = path(compression ? "c.npz" : "u.npz");
    serializers::save_npz(file, a, compression);
    auto keys = npz::read(file);
    EXPECT_EQ(keys.size(), 6u);
    EXPECT_TRUE(keys.count("predictor/l1/W"));
    serializers::load_npz(file, b);
    expect_unchanged(b, snapshot(a));
    // No temporary file is left behind.
    int files = 0;
    for (auto& e : fs::directory_iterator(dir)) { (void)e; ++files; }
    EXPECT_EQ(files, compression ? 1 : 2);
  }
}

TEST_F(Serializers, LazyParametersTakeTheFileShape) {
  MLP src;
  std::string file = path("m.npz");
  serializers::save_npz(file, src);
  struct Lazy : Chain {
    L::Linear l1{8}, l2{8}, l3{3};
    Lazy() { add_link("l1", l1); add_link("l2", l2); add_link("l3", l3); }
  } lazy;
  EXPECT_FALSE(lazy.l1.W.is_initialized());
  serializers::load_npz(file, lazy);
  ASSERT_TRUE(lazy.l1.W.is_initialized());
  expect_equal(lazy.l1.W.array(), src.l1.W.array());
}

TEST_F(Serializers, NpzHelpersRoundTripDtypesAndShapes) {
  std::map<std::string, Array> m;
  m["scalar"] = Array::scalar<int64_t>(42);
  m["f64"] = Array::from(std::vector<double>{1.5, -2.25, 3e300}, {3});
  m["i32"] = Array::from(std::vector<int32_t>{1, -2, 3, 4, 5, 6}, {2, 1, 3});
  m["b"] = Array::from(std::vector<bool>{true, false}, {2});
  m["empty"] = Array::zeros({0, 4});
  m["a/b/c"] = Array::randn({3, 7}, 5);
  std::string file = path("h.npz");
  npz::write(file, m, true);
  auto r = npz::read(file);
  ASSERT_EQ(r.size(), m.size());
  for (auto& [k, a] : m) {
    SCOPED_TRACE(k);
    expect_equal(r.at(k), a);
  }
  // An empty archive.
  npz::write(path("empty.npz"), {}, true);
  EXPECT_TRUE(npz::read(path("empty.npz")).empty());
  // NPY v1.0 header padded to a multiple of 64 bytes.
  std::string npy = npz::encode_npy(m["f64"]);
  EXPECT_EQ(npy.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t hl = static_cast<uint8_t>(npy[8]) | (static_cast<uint8_t>(npy[9]) << 8);
  EXPECT_EQ((10 + hl) % 64, 0u);
  EXPECT_NE(npy.find("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"), std::string::npos);
}

TEST_F(Serializers, NumpyInterop) {
  // The first Python with numpy (a pyenv python3 first on PATH may lack Debian's python3-numpy).
  std::string python;
  for (std::string candidate : {"python3", "/usr/bin/python3"})
    if (std::system((candidate + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) {
      python = candidate;
      break;
    }
  if (python.empty()) GTEST_SKIP() << "no python3 with numpy";
  MLP model;
  std::string file = path("k.npz"), back = path("n.npz");
  serializers::save_npz(file, model);
  // numpy reads kiln's archive and checks it; then writes it back with its own writer.
  std::string script = path("check.py");
  {
    std::ofstream py(script);
    py << "import sys, numpy\n"
          "d = numpy.load(sys.argv[1])\n"
          "assert sorted(d.files) == sorted(['l1/W','l1/b','l2/W','l2/b','l3/W','l3/b']), d.files\n"
          "assert d['l1/W'].dtype == numpy.float32 and d['l1/W'].shape == (8, 5)\n"
          "assert d['l3/b'].shape == (3,)\n"
          "numpy.savez_compressed(sys.argv[2], **{k: d[k] for k in d.files},\n"
          "                       extra_f64=numpy.arange(6.0).reshape(2, 3),\n"
          "                       extra_fortran=numpy.asfortranarray(numpy.arange(6, dtype=numpy.int32).reshape(2, 3)),\n"
          "                       extra_be=numpy.arange(3, dtype='>f4'),\n"
          "                       extra_u8=numpy.array([255, 1], dtype=numpy.uint8),\n"
          "                       extra_i16=numpy.array([-300, 7], dtype=numpy.int16),\n"
          "                       skipped_str=numpy.array('log text'),\n"
          "                       skipped_none=numpy.array(None))\n";
  }
  int rc = std::system((python + " " + script + " " + file + " " + back).c_str());
  ASSERT_EQ(rc, 0);
  auto r = npz::read(back);
  for (auto& [name, p] : model.namedparams()) expect_equal(r.at(name.substr(1)), p.array());
  expect_equal(r.at("extra_f64"), Array::from(std::vector<double>{0, 1, 2, 3, 4, 5}, {2, 3}));
  expect_equal(r.at("extra_fortran"), Array::from(std::vector<int32_t>{0, 1, 2, 3, 4, 5}, {2, 3}));
  expect_equal(r.at("extra_be"), Array::from(std::vector<float>{0, 1, 2}, {3}));
  expect_equal(r.at("extra_u8"), Array::from(std::vector<int32_t>{255, 1}, {2}));
  expect_equal(r.at("extra_i16"), Array::from(std::vector<int32_t>{-300, 7}, {2}));
  EXPECT_EQ(r.count("skipped_str"), 0u);
  EXPECT_EQ(r.count("skipped_none"), 0u);
  // Non-strict load ignores the extra keys; strict load rejects them.
  MLP other;
  serializers::load_npz(back, other, "", /*strict=*/false);
  expect_unchanged(other, snapshot(model));
  MLP third;
  auto before = snapshot(third);
  expect_error([&] { serializers::load_npz(back, third); }, "n.npz", "extra_");
  expect_unchanged(third, before);
}

TEST_F(Serializers, FailedLoadsLeaveTheLinkUnchanged) {
  MLP src;
  auto arrays = serializers::to_arrays(src);
  MLP dst;
  auto before = snapshot(dst);

  // Missing key.
  auto missing = arrays;
  missing.erase("l2/b");
  npz::write(path("missing.npz"), missing);
  expect_error([&] { serializers::load_npz(path("missing.npz"), dst); }, "missing.npz", "l2/b");
  expect_unchanged(dst, before);
  serializers::load_npz(path("missing.npz"), dst, "", /*strict=*/false);  // non-strict: skipped
  expect_equal(dst.l1.W.array(), src.l1.W.array());
  expect_equal(dst.l2.b.array(), before.at("/l2/b"));
  for (auto& [name, p] : dst.namedparams()) p.set_array(before.at(name));

  // Unexpected key (strict).
  auto extra = arrays;
  extra["l4/W"] = Array::zeros({2, 2});
  npz::write(path("extra.npz"), extra);
  expect_error([&] { serializers::load_npz(path("extra.npz"), dst); }, "extra.npz", "l4/W");
  expect_unchanged(dst, before);

  // Shape mismatch.
  auto shape = arrays;
  shape["l3/W"] = Array::zeros({8, 3});
  npz::write(path("shape.npz"), shape);
  expect_error([&] { serializers::load_npz(path("shape.npz"), dst); }, "shape.npz", "l3/W");
  expect_unchanged(dst, before);

  // Dtype mismatch.
  auto dtype = arrays;
  dtype["l1/b"] = Array::zeros({8}, DType::f64);
  npz::write(path("dtype.npz"), dtype);
  expect_error([&] { serializers::load_npz(path("dtype.npz"), dst); }, "dtype.npz", "l1/b");
  expect_unchanged(dst, before);

  // Truncated and corrupt files, compressed and stored.
  for (bool compression : {true, false}) {
    std::string good = path(compression ? "good_c.npz" : "good_u.npz");
    npz::write(good, arrays, compression);
    std::string bytes;
    {
      std::ifstream in(good, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::string trunc = path(compression ? "trunc_c.npz" : "trunc_u.npz");
    std::ofstream(trunc, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    expect_error([&] { serializers::load_npz(trunc, dst); }, trunc);
    expect_unchanged(dst, before);

    // Flip bytes inside the first entry's data (after its local header).
    std::string bad = bytes;
    for (size_t i = 200; i < 260 && i < bad.size(); ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    std::string corrupt = path(compression ? "corrupt_c.npz" : "corrupt_u.npz");
    std::ofstream(corrupt, std::ios::binary) << bad;
    expect_error([&] { serializers::load_npz(corrupt, dst); }, corrupt);
    expect_unchanged(dst, before);
  }

  // Not a file.
  expect_error([&] { serializers::load_npz(path("nope.npz"), dst); }, "nope.npz");
  std::ofstream(path("text.npz")) << "hello";
  expect_error([&] { serializers::load_npz(path("text.npz"), dst); }, "text.npz");
  expect_unchanged(dst, before);
}

TEST_F(Serializers, OptimizerRoundTrip) {
  MLP model;
  O::Adam opt(0.01);
  opt.setup(model);
  Array x = Array::randn({4, 5}, 3);
  auto loss_fn = [&]() {
    Variable y = model(Variable(x, false));
    return F::sum(y * y);
  };
  for (int i = 0; i < 3; ++i) opt.update(loss_fn);
  opt.new_epoch();
  std::string mfile = path("model.npz"), ofile = path("opt.npz");
  serializers::save_npz(mfile, model);
  serializers::save_npz(ofile, opt);
  auto keys = npz::read(ofile);
  EXPECT_EQ(keys.at("t").item<int64_t>(), 3);
  EXPECT_EQ(keys.at("epoch").item<int64_t>(), 1);
  EXPECT_EQ(keys.at("l1/W/t").item<int64_t>(), 3);
  EXPECT_EQ(keys.at("l1/W/m").shape(), (Shape{8, 5}));
  EXPECT_TRUE(keys.count("l3/b/v"));
  EXPECT_EQ(keys.size(), 2u + 6u * 3u);

  // Resume into a fresh model and optimizer: both continue identically.
  MLP model2;
  O::Adam opt2(0.01);
  opt2.setup(model2);
  serializers::load_npz(mfile, model2);
  serializers::load_npz(ofile, opt2);
  EXPECT_EQ(opt2.t, 3);
  EXPECT_EQ(opt2.epoch, 1);
  EXPECT_EQ(opt2.update_rule(model2.l1.W).t, 3);
  expect_equal(opt2.update_rule(model2.l2.W).state.at("v").array(),
               opt.update_rule(model.l2.W).state.at("v").array());
  opt.update(loss_fn);
  opt2.update([&]() {
    Variable y = model2(Variable(x, false));
    return F::sum(y * y);
  });
  expect_unchanged(model2, snapshot(model));

  // Mismatches fail before anything is assigned.
  auto bad = keys;
  bad["l1/W/m"] = Array::zeros({5, 8});
  npz::write(path("bad.npz"), bad);
  O::Adam opt3;
  opt3.setup(model2);
  expect_error([&] { serializers::load_npz(path("bad.npz"), opt3); }, "bad.npz", "l1/W/m");
  EXPECT_EQ(opt3.t, 0);
  auto missing = keys;
  missing.erase("l2/b/v");
  npz::write(path("missing.npz"), missing);
  expect_error([&] { serializers::load_npz(path("missing.npz"), opt3); }, "missing.npz", "l2/b/v");
  EXPECT_EQ(opt3.t, 0);
  // An SGD snapshot has no state arrays: strict loading into Adam reports the first missing one.
  O::SGD sgd;
  sgd.setup(model2);
  serializers::save_npz(path("sgd.npz"), sgd);
  EXPECT_EQ(npz::read(path("sgd.npz")).size(), 2u + 6u);
  expect_error([&] { serializers::load_npz(path("sgd.npz"), opt3); }, "sgd.npz", "/m");
}

TEST_F(Serializers, SaveThroughASymlinkReplacesTheTargetAndKeepsTheLink) {
  set_random_seed(1);
  MLP a;
  set_random_seed(2);
  MLP b;
  fs::create_directory(path("real"));
  const std::string target = path("real/model.npz");
  serializers::save_npz(target, a);
  ASSERT_EQ(::chmod(target.c_str(), 0640), 0);
  // link.npz -> real/model.npz (relative), chain.npz -> link.npz (absolute).
  fs::create_symlink("real/model.npz", path("link.npz"));
  fs::create_symlink(path("link.npz"), path("chain.npz"));

  serializers::save_npz(path("chain.npz"), b);
  EXPECT_TRUE(fs::is_symlink(path("link.npz")));
  EXPECT_TRUE(fs::is_symlink(path("chain.npz")));
  EXPECT_EQ(fs::read_symlink(path("link.npz")), "real/model.npz");
  EXPECT_EQ(fs::read_symlink(path("chain.npz")), path("link.npz"));
  MLP loaded;
  serializers::load_npz(target, loaded);  // the target holds the new values
  expect_unchanged(loaded, snapshot(b));
  EXPECT_EQ(fs::status(target).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  // The temporary file was beside the target, and is gone.
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"chain.npz", "link.npz", "real"}));
  EXPECT_EQ(names_in(path("real")), std::vector<std::string>{"model.npz"});

  // A dangling link: the file it names is created, the link kept.
  fs::create_symlink("real/new.npz", path("dangling.npz"));
  serializers::save_npz(path("dangling.npz"), a);
  EXPECT_TRUE(fs::is_symlink(path("dangling.npz")));
  EXPECT_TRUE(fs::is_regular_file(path("real/new.npz")));
  // A loop is an error naming the path, not a hang.
  fs::create_symlink("loop2.npz", path("loop1.npz"));
  fs::create_symlink("loop1.npz", path("loop2.npz"));
  EXPECT_THAT(error_of([&] { serializers::save_npz(path("loop1.npz"), a); }),
              ::testing::AllOf(::testing::HasSubstr(path("loop1.npz")),
                               ::testing::HasSubstr("too many levels of symbolic links")));
}

TEST_F(Serializers, SaveRefusesWhatIsNotARegularFileAndLeavesIt) {
  MLP model;
  const std::string fifo = path("pipe.npz");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_THAT(error_of([&] { serializers::save_npz(fifo, model); }),
              ::testing::AllOf(::testing::HasSubstr("'" + fifo + "'"), ::testing::HasSubstr("a FIFO"),
                               ::testing::HasSubstr("not a regular file")));
  struct stat st;
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  const std::string folder = path("folder.npz");
  fs::create_directory(folder);
  std::ofstream(folder + "/inside") << "kept";
  EXPECT_THAT(error_of([&] { serializers::save_npz(folder, model); }),
              ::testing::AllOf(::testing::HasSubstr("'" + folder + "'"),
                               ::testing::HasSubstr("a directory")));
  EXPECT_TRUE(fs::is_directory(folder));
  EXPECT_EQ(read_all(folder + "/inside"), "kept");

  // Through a symlink: the message names both.
  fs::create_symlink("pipe.npz", path("to-pipe.npz"));
  EXPECT_THAT(error_of([&] { serializers::save_npz(path("to-pipe.npz"), model); }),
              ::testing::AllOf(::testing::HasSubstr(path("to-pipe.npz")),
                               ::testing::HasSubstr("a symbolic link to '" + fifo + "'"),
                               ::testing::HasSubstr("a FIFO")));
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  // A device node (what /dev/null is), made in the test's own directory: needs root.
  const std::string device = path("null.npz");
  if (::mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    EXPECT_THAT(error_of([&] { serializers::save_npz(device, model); }),
                ::testing::HasSubstr("a character device"));
    ASSERT_EQ(::lstat(device.c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
  // Nothing else was created.
  for (const std::string& name : names_in(dir))
    EXPECT_EQ(name.find("kiln-tmp"), std::string::npos) << name;
}

TEST_F(Serializers, SaveRemovesTheTemporaryFilesOfDeadSaves) {
  MLP model;
  const std::string target = path("m.npz");
  const std::string prefix = npz::temp_file_prefix(target);
  ASSERT_EQ(prefix.rfind(path(".m.npz.kiln-tmp-"), 0), 0u) << prefix;
  const pid_t dead = dead_pid();
  pid_t alive = ::fork();  // a process saving right now
  if (alive == 0) {
    ::pause();
    ::_exit(0);
  }
  const std::string dead_temp = prefix + std::to_string(dead) + "-0";
  const std::string dead_libzip_temp = prefix + std::to_string(dead) + "-3.Xy12Ab";  // libzip's own
  const std::string live_temp = prefix + std::to_string(alive) + "-0";
  const std::string other_target = npz::temp_file_prefix(path("other.npz")) + std::to_string(dead) + "-0";
  // Temporary files of another host: only removed once old.
  const std::string host_tag = prefix.substr(prefix.size() - 9, 8);
  const std::string other_host = path(".m.npz.kiln-tmp-") + (host_tag == "00000000" ? "11111111" : "00000000");
  const std::string old_remote = other_host + "-42-0", fresh_remote = other_host + "-43-0";
  for (const std::string& f : {dead_temp, dead_libzip_temp, live_temp, other_target, old_remote, fresh_remote})
    std::ofstream(f) << std::string(1000, 'x');
  struct timespec old[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, old_remote.c_str(), old, 0), 0);

  serializers::save_npz(target, model);
  ::kill(alive, SIGKILL);
  ::waitpid(alive, nullptr, 0);
  EXPECT_FALSE(fs::exists(dead_temp));
  EXPECT_FALSE(fs::exists(dead_libzip_temp));
  EXPECT_FALSE(fs::exists(old_remote));
  EXPECT_TRUE(fs::exists(live_temp));
  EXPECT_TRUE(fs::exists(other_target));  // another file's: not this save's business
  EXPECT_TRUE(fs::exists(fresh_remote));
  // The next save, now that the writer is gone, removes its file too.
  serializers::save_npz(target, model);
  EXPECT_FALSE(fs::exists(live_temp));
}

TEST_F(Serializers, SavesKilledMidwayLeaveAValidFileAndNoTemporaryFiles) {
  // 16 MB of data: a kill -9 lands inside a save most of the time.
  std::map<std::string, Array> big{{"w", Array::randn({4, 1 << 20}, 7, DType::f32)}};
  std::map<std::string, Array> small{{"w", Array::zeros({2})}};
  const std::string target = path("snapshot.npz");
  npz::write(target, small);
  for (int round = 0; round < 8; ++round) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) npz::write(target, big, /*compression=*/false);
    }
    ::usleep(static_cast<useconds_t>(30000 + 17000 * round));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    // Atomic: the target is always one complete archive, old or new.
    auto arrays = npz::read(target);
    ASSERT_EQ(arrays.count("w"), 1u) << "round " << round;
  }
  npz::write(target, small);
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"snapshot.npz"});
  expect_equal(npz::read(target).at("w"), small.at("w"));
}

// kiln::files::replace_file, which npz::write, PlotReport, LogReport and the CUDA sources use:
// a writer that fails or throws leaves the old file as it was and no temporary file; a
// successful one replaces the content and keeps the old file's permissions.
TEST_F(Serializers, ReplaceFileKeepsTheOldFileWhenTheWriterFails) {
  const std::string target = path("log.json");
  files::replace_file_contents(target, "test", "old");
  ASSERT_EQ(::chmod(target.c_str(), 0640), 0);
  auto content = [&] {
    std::ifstream f(target);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  try {
    files::replace_file(target, "kiln: test", [](const std::string& tmp) {
      std::ofstream(tmp) << "half";
      return std::string("disk full");
    });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "kiln: test: cannot write '" + target + "': disk full");
  }
  EXPECT_THROW(files::replace_file(target, "kiln: test",
                                   [](const std::string& tmp) -> std::string {
                                     std::ofstream(tmp) << "half";
                                     throw std::runtime_error("interrupted");
                                   }),
               std::runtime_error);
  EXPECT_EQ(content(), "old");
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"log.json"}));

  files::replace_file_contents(target, "test", "new");
  EXPECT_EQ(content(), "new");
  struct stat st;
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"log.json"}));
  EXPECT_THROW(files::replace_file_contents(dir, "test", "x"), Error);  // a directory
}

TEST_F(Serializers, ReadBytesReadsAnArchiveInMemoryAndRejectsGarbage) {
  std::map<std::string, Array> m{{"a", Array::from(std::vector<int32_t>{1, 2, 3}, {3})}};
  npz::write(path("a.npz"), m);
  const std::string bytes = read_all(path("a.npz"));
  auto r = npz::read_bytes(bytes.data(), bytes.size(), "in memory");
  ASSERT_EQ(r.size(), 1u);
  expect_equal(r.at("a"), m.at("a"));
  for (size_t n : {size_t{0}, size_t{1}, size_t{21}, bytes.size() / 2, bytes.size() - 1})
    EXPECT_THAT(error_of([&] { npz::read_bytes(bytes.data(), n, "in memory"); }),
                ::testing::HasSubstr("'in memory'")) << n;
  // An empty file is not an archive either (what a zip source of no bytes reads as).
  std::ofstream(path("zero.npz")).close();
  EXPECT_THAT(error_of([&] { npz::read(path("zero.npz")); }),
              ::testing::AllOf(::testing::HasSubstr(path("zero.npz")),
                               ::testing::HasSubstr("not an npz archive")));
}
