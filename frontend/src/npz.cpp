// kiln::npz: NumPy .npz archives (libzip) and the NPY arrays in them.
#include "kiln/npz.h"

#include <zip.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kiln/files.h"

namespace kiln::npz {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

[[noreturn]] void fail(const std::string& msg) { throw Error(msg); }

const char* descr_of(DType t) {
  switch (t) {
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i32: return "<i4";
    case DType::i64: return "<i8";
    case DType::b8: return "|b1";
  }
  return "?";
}

bool host_little_endian() {
  uint16_t x = 1;
  unsigned char c;
  std::memcpy(&c, &x, 1);
  return c == 1;
}

void byteswap(uint8_t* data, size_t count, size_t width) {
  if (width <= 1) return;
  for (size_t i = 0; i < count; ++i) {
    uint8_t* p = data + i * width;
    for (size_t a = 0, b = width - 1; a < b; ++a, --b) std::swap(p[a], p[b]);
  }
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\n\r");
  return s.substr(b, e - b + 1);
}

// The text after "'key':" in a header dict, up to the value's end.
std::string dict_value(const std::string& header, const std::string& key, const std::string& what) {
  for (const char* q : {"'", "\""}) {
    std::string k = std::string(q) + key + q;
    size_t pos = header.find(k);
    if (pos == std::string::npos) continue;
    pos = header.find(':', pos + k.size());
    if (pos == std::string::npos) break;
    ++pos;
    while (pos < header.size() && header[pos] == ' ') ++pos;
    if (pos >= header.size()) break;
    if (header[pos] == '(') {
      size_t end = header.find(')', pos);
      if (end == std::string::npos) break;
      return header.substr(pos, end - pos + 1);
    }
    if (header[pos] == '\'' || header[pos] == '"') {
      size_t end = header.find(header[pos], pos + 1);
      if (end == std::string::npos) break;
      return header.substr(pos + 1, end - pos - 1);
    }
    size_t end = header.find_first_of(",}", pos);
    if (end == std::string::npos) break;
    return trim(header.substr(pos, end - pos));
  }
  fail(fmt::format("{}: malformed NPY header (no '{}'): {}", what, key, header));
}

}  // namespace

std::string encode_npy(const Array& a) {
  std::string shape = "(";
  for (size_t i = 0; i < a.shape().size(); ++i) {
    shape += std::to_string(a.shape()[i]);
    shape += (a.shape().size() == 1 || i + 1 < a.shape().size()) ? ", " : "";
  }
  if (a.shape().size() == 1) shape.pop_back();  // "(8,)"
  shape += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   descr_of(a.dtype()), shape);
  // Pad with spaces so that magic + version + length + header is a multiple of 64, ending in '\n'.
  size_t total = 6 + 2 + 2 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) fail("kiln: npz: NPY header too long");
  std::string out(kMagic, 6);
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  size_t start = out.size();
  const Array host = a.to(Device::cpu());  // an array on a device is written through a copy
  out.append(static_cast<const char*>(host.raw_data()), host.nbytes());
  if (!host_little_endian())
    byteswap(reinterpret_cast<uint8_t*>(&out[start]), static_cast<size_t>(a.size()), dtype_size(a.dtype()));
  return out;
}

Array decode_npy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0)
    fail(fmt::format("{}: not an NPY array (bad magic)", what));
  int major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, offset;
  auto byte = [&](size_t i) { return static_cast<size_t>(static_cast<uint8_t>(bytes[i])); };
  if (major == 1) {
    header_len = byte(8) | (byte(9) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(fmt::format("{}: truncated NPY header", what));
    header_len = byte(8) | (byte(9) << 8) | (byte(10) << 16) | (byte(11) << 24);
    offset = 12;
  } else {
    fail(fmt::format("{}: unsupported NPY version {}", what, major));
  }
  if (bytes.size() < offset + header_len) fail(fmt::format("{}: truncated NPY header", what));
  std::string header = bytes.substr(offset, header_len);
  offset += header_len;

  std::string descr = dict_value(header, "descr", what);
  std::string fortran = dict_value(header, "fortran_order", what);
  std::string shape_text = dict_value(header, "shape", what);

  if (descr.size() < 3) fail(fmt::format("{}: unsupported dtype '{}'", what, descr));
  char order = descr[0];
  std::string kind = descr.substr(1);
  DType dtype;
  if (kind == "f4") dtype = DType::f32;
  else if (kind == "f8") dtype = DType::f64;
  else if (kind == "i4") dtype = DType::i32;
  else if (kind == "i8") dtype = DType::i64;
  else if (kind == "b1") dtype = DType::b8;
  // Smaller or unsigned integers are widened to kiln's integer dtypes.
  else if (kind == "i1" || kind == "u1" || kind == "i2" || kind == "u2") dtype = DType::i32;
  else if (kind == "u4") dtype = DType::i64;
  else fail(fmt::format("{}: unsupported dtype '{}' (kiln reads float32, float64, int32, int64, bool)", what, descr));
  if (order != '<' && order != '>' && order != '|' && order != '=')
    fail(fmt::format("{}: unsupported dtype '{}'", what, descr));

  Shape shape;
  if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')')
    fail(fmt::format("{}: malformed shape {}", what, shape_text));
  std::string inner = shape_text.substr(1, shape_text.size() - 2);
  size_t pos = 0;
  while (pos < inner.size()) {
    size_t comma = inner.find(',', pos);
    std::string item = trim(inner.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (!item.empty()) {
      if (item.find_first_not_of("0123456789") != std::string::npos || item.size() > 15)
        fail(fmt::format("{}: malformed shape {}", what, shape_text));
      shape.push_back(std::stoll(item));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  bool fortran_order = fortran == "True";
  if (!fortran_order && fortran != "False")
    fail(fmt::format("{}: malformed fortran_order '{}'", what, fortran));

  size_t width = static_cast<size_t>(std::stoul(kind.substr(1)));
  // The element count, checked against the data before allocating (a corrupt
  // header must not ask for a huge array).
  size_t count = 1;
  size_t avail = bytes.size() - offset;
  for (int64_t d : shape) {
    if (d != 0 && count > avail / static_cast<size_t>(d)) { count = avail + 1; break; }
    count *= static_cast<size_t>(d);
  }
  size_t need = count * width;
  if (count > avail || avail != need)
    fail(fmt::format("{}: data size {} bytes does not match shape {} of {} ({} bytes); the file is "
                     "truncated or corrupt", what, bytes.size() - offset, shape_str(shape),
                     descr, need));
  Array a(shape, dtype);
  bool little = host_little_endian();
  bool swap = (order == '<' && !little) || (order == '>' && little);
  if (width == dtype_size(dtype)) {
    if (need) std::memcpy(a.raw_data(), bytes.data() + offset, need);
    if (swap) byteswap(static_cast<uint8_t*>(a.raw_data()), count, width);
  } else {
    std::vector<uint8_t> raw(bytes.begin() + static_cast<std::ptrdiff_t>(offset), bytes.end());
    if (swap) byteswap(raw.data(), count, width);
    for (size_t i = 0; i < count; ++i) {
      const uint8_t* q = raw.data() + i * width;
      int64_t v = 0;
      if (kind == "i1") { int8_t x; std::memcpy(&x, q, 1); v = x; }
      else if (kind == "u1") { v = q[0]; }
      else if (kind == "i2") { int16_t x; std::memcpy(&x, q, 2); v = x; }
      else if (kind == "u2") { uint16_t x; std::memcpy(&x, q, 2); v = x; }
      else { uint32_t x; std::memcpy(&x, q, 4); v = x; }
      if (dtype == DType::i32) a.data<int32_t>()[i] = static_cast<int32_t>(v);
      else a.data<int64_t>()[i] = v;
    }
  }
  if (fortran_order && shape.size() > 1) {
    // Reverse-axes (column-major) storage: transpose into C order.
    Array c(shape, dtype);
    size_t w = dtype_size(dtype);
    size_t nd = shape.size();
    std::vector<int64_t> idx(nd, 0);
    const uint8_t* src = static_cast<const uint8_t*>(a.raw_data());
    uint8_t* dst = static_cast<uint8_t*>(c.raw_data());
    for (int64_t flat = 0; flat < a.size(); ++flat) {
      // idx is the C-order multi-index of `flat`; its Fortran offset:
      int64_t f = 0, stride = 1;
      for (size_t d = 0; d < nd; ++d) { f += idx[d] * stride; stride *= shape[d]; }
      std::memcpy(dst + flat * w, src + f * w, w);
      for (size_t d = nd; d-- > 0;) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    a = c;
  }
  return a;
}

namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { if (z) zip_discard(z); }
};

std::string zip_error_text(int code) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string s = zip_error_strerror(&e);
  zip_error_fini(&e);
  return s;
}

// True for entries that hold no numbers (Python objects such as Chainer's None,
// strings, records, dates): read() leaves them out.
bool is_non_numeric(const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) return false;
  size_t hl = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
  size_t off = 10;
  if (static_cast<uint8_t>(bytes[6]) != 1) {
    if (bytes.size() < 12) return false;
    hl |= (static_cast<size_t>(static_cast<uint8_t>(bytes[10])) << 16) |
          (static_cast<size_t>(static_cast<uint8_t>(bytes[11])) << 24);
    off = 12;
  }
  std::string header = bytes.substr(off, std::min(hl, bytes.size() - off));
  size_t pos = header.find("descr");
  if (pos == std::string::npos) return false;
  pos = header.find(':', pos);
  if (pos == std::string::npos) return false;
  pos = header.find_first_not_of(" ", pos + 1);
  if (pos == std::string::npos) return false;
  if (header[pos] == '[') return true;  // a structured (record) dtype
  if (header[pos] != '\'' && header[pos] != '"') return false;
  if (pos + 2 >= header.size()) return false;
  char kind = header[pos + 2];  // '<f4': order then kind
  return std::string("OUSVMm").find(kind) != std::string::npos;
}

}  // namespace

namespace {

// Every entry of an opened archive; `name` is the file in messages.
std::map<std::string, Array> read_entries(zip_t* za, const std::string& name) {
  std::map<std::string, Array> out;
  zip_int64_t n = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) != 0)
      fail(fmt::format("kiln: npz: '{}': entry {}: {}", name, i, zip_strerror(za)));
    std::string entry = st.name ? st.name : "";
    if (!entry.empty() && entry.back() == '/') continue;  // a directory entry
    std::string key = entry;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    std::string what = fmt::format("kiln: npz: '{}': key '{}'", name, key);
    zip_file_t* zf = zip_fopen_index(za, static_cast<zip_uint64_t>(i), 0);
    if (!zf) fail(fmt::format("{}: cannot open the entry: {}", what, zip_strerror(za)));
    std::string bytes;
    // The declared size is only a hint (a corrupt archive may claim terabytes).
    if (st.valid & ZIP_STAT_SIZE) bytes.reserve(static_cast<size_t>(std::min<zip_uint64_t>(st.size, 1 << 24)));
    char buf[1 << 16];
    while (true) {
      zip_int64_t r = zip_fread(zf, buf, sizeof buf);
      if (r < 0) {
        std::string msg = zip_file_strerror(zf);
        zip_fclose(zf);
        fail(fmt::format("{}: {} (the file is truncated or corrupt)", what, msg));
      }
      if (r == 0) break;
      bytes.append(buf, static_cast<size_t>(r));
    }
    int rc = zip_fclose(zf);
    if (rc != 0)
      fail(fmt::format("{}: {} (the file is truncated or corrupt)", what, zip_error_text(rc)));
    if ((st.valid & ZIP_STAT_SIZE) && bytes.size() != st.size)
      fail(fmt::format("{}: read {} bytes, expected {} (the file is truncated or corrupt)", what,
                       bytes.size(), st.size));
    if (is_non_numeric(bytes)) continue;  // Chainer's None, strings, ...: not arrays
    if (out.count(key)) fail(fmt::format("{}: duplicate entry", what));
    out.emplace(key, decode_npy(bytes, what));
  }
  return out;
}

std::string zip_error_text(zip_error_t* error) {
  std::string s = zip_error_strerror(error);
  zip_error_fini(error);
  return s;
}

}  // namespace

std::map<std::string, Array> read(const std::string& path) {
  int err = 0;
  std::unique_ptr<zip_t, ZipCloser> za(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err));
  if (!za)
    fail(fmt::format("kiln: npz: cannot read '{}': {}", path,
                     err == ZIP_ER_NOENT ? std::string("no such file") : zip_error_text(err) +
                     " (not an npz archive, or truncated or corrupt)"));
  return read_entries(za.get(), path);
}

std::map<std::string, Array> read_bytes(const void* data, size_t size, const std::string& name) {
  // libzip reads no bytes as an archive without entries; a file of no bytes is not one.
  if (size == 0) fail(fmt::format("kiln: npz: cannot read '{}': no bytes (not an npz archive)", name));
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(data, size, 0, &error);
  if (!source) fail(fmt::format("kiln: npz: cannot read '{}': {}", name, zip_error_text(&error)));
  std::unique_ptr<zip_t, ZipCloser> za(zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (!za) {
    zip_source_free(source);
    fail(fmt::format("kiln: npz: cannot read '{}': {} (not an npz archive, or truncated or corrupt)",
                     name, zip_error_text(&error)));
  }
  zip_error_fini(&error);
  return read_entries(za.get(), name);
}

std::string temp_file_prefix(const std::string& target) { return files::temp_file_prefix(target); }

void write(const std::string& path, const std::map<std::string, Array>& arrays, bool compression) {
  files::replace_file(path, "kiln: npz", [&](const std::string& tmp) -> std::string {
    int err = 0;
    zip_t* za = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_EXCL, &err);
    if (!za) return zip_error_text(err);
    auto discard = [&](const std::string& msg) {
      zip_discard(za);
      return msg;
    };
    std::vector<std::string> buffers;  // must live until zip_close
    buffers.reserve(arrays.size());
    for (const auto& [key, a] : arrays) {
      buffers.push_back(encode_npy(a));
      const std::string& b = buffers.back();
      zip_source_t* src = zip_source_buffer(za, b.data(), b.size(), 0);
      if (!src) return discard(zip_strerror(za));
      zip_int64_t idx = zip_file_add(za, (key + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
      if (idx < 0) {
        std::string m = zip_strerror(za);
        zip_source_free(src);
        return discard(fmt::format("key '{}': {}", key, m));
      }
      if (zip_set_file_compression(za, static_cast<zip_uint64_t>(idx),
                                   compression ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0)
        return discard(fmt::format("key '{}': {}", key, zip_strerror(za)));
    }
    if (zip_close(za) != 0) return discard(zip_strerror(za));
    if (arrays.empty()) {
      // libzip writes nothing for an empty archive; write an empty zip (end of central directory).
      static const char eocd[22] = {'P', 'K', 5, 6};
      std::FILE* f = std::fopen(tmp.c_str(), "wbx");
      if (!f) return std::string("cannot write an empty archive");
      bool ok = std::fwrite(eocd, 1, sizeof eocd, f) == sizeof eocd;
      ok = std::fclose(f) == 0 && ok;
      if (!ok) return std::string("cannot write an empty archive");
    }
    return std::string();
  });
}

}  // namespace kiln::npz
