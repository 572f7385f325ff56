// More of chainer.functions: stacking, tiling, flips and axis moves, tensordot and einsum,
// padding modes, and the CNN functions built from them (depthwise convolution,
// unpooling/upsampling, resize_images).
#include <map>
#include <numeric>

#include "ops.h"

namespace kiln::functions {

using namespace detail;

namespace {

Variable atleast(const Variable& x, int64_t n, const std::string& kind) {
  // numpy's atleast_2d / atleast_3d: (n,) -> (1, n) / (1, n, 1); (m, n) -> (m, n, 1).
  if (x.ndim() >= n) return x;
  if (x.ndim() == 0) return reshape(x, Shape(static_cast<size_t>(n), 1));
  Shape s = x.shape();
  if (kind == "2d") {
    s.insert(s.begin(), 1);
  } else if (x.ndim() == 1) {
    s = {1, x.shape()[0], 1};
  } else {
    s.push_back(1);
  }
  return reshape(x, s);
}

void check_xs(const std::string& fn, const std::vector<Variable>& xs) {
  if (xs.empty()) type_error(fn, "len(xs) >= 1", "0");
}

// The slices [lo, hi) of axis a.
Variable slice_of(const Variable& x, int64_t a, int64_t lo, int64_t hi) {
  std::vector<Index> items(static_cast<size_t>(x.ndim()), Slice{});
  items[a] = Slice{lo, hi, std::nullopt};
  return get_item(x, items);
}

std::vector<int64_t> normalize_distinct(const std::string& fn, const char* what, const std::vector<int64_t>& axes,
                                        int64_t ndim) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    int64_t n = normalize_axis(fn, a, ndim);
    if (std::find(out.begin(), out.end(), n) != out.end())
      type_error(fn, fmt::format("no repeated axis in {}", what), fmt::format("{} repeats {}", what, a));
    out.push_back(n);
  }
  return out;
}

Variable stop_gradient(const Variable& x) { return record_like("kiln.stop_gradient", {x}); }

}  // namespace

// ---- stacking -----------------------------------------------------------------------

Variable hstack(const std::vector<Variable>& xs, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_xs("hstack", xs);
  std::vector<Variable> v;
  for (const Variable& x : xs) v.push_back(x.ndim() == 0 ? reshape(x, {1}) : x);
  return concat(v, v[0].ndim() == 1 ? 0 : 1);
}

Variable vstack(const std::vector<Variable>& xs, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_xs("vstack", xs);
  std::vector<Variable> v;
  for (const Variable& x : xs) v.push_back(atleast(x, 2, "2d"));
  return concat(v, 0);
}

Variable dstack(const std::vector<Variable>& xs, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_xs("dstack", xs);
  std::vector<Variable> v;
  for (const Variable& x : xs) v.push_back(atleast(x, 3, "3d"));
  return concat(v, 2);
}

std::vector<Variable> separate(const Variable& x, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (x.ndim() < 1) type_error("Separate", "x.ndim >= 1", "x.ndim = 0");
  int64_t a = normalize_axis("Separate", axis, x.ndim());
  std::vector<Variable> out;
  for (int64_t i = 0; i < x.shape()[a]; ++i) {
    std::vector<Index> items(static_cast<size_t>(x.ndim()), Slice{});
    items[a] = i;
    out.push_back(get_item(x, items));
  }
  return out;
}

std::vector<Variable> broadcast(const std::vector<Variable>& xs, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_xs("broadcast", xs);
  Shape shape = xs[0].shape();
  for (const Variable& x : xs) shape = broadcast_shapes("broadcast", shape, x.shape());
  std::vector<Variable> out;
  for (const Variable& x : xs) out.push_back(broadcast_as(x, shape));
  return out;
}

// ---- tiling and repeating -----------------------------------------------------------

Variable tile(const Variable& x, const std::vector<int64_t>& reps, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  for (int64_t r : reps)
    if (r < 0) type_error("Tile", "reps >= 0", fmt::format("reps contains {}", r));
  int64_t n = std::max<int64_t>(x.ndim(), static_cast<int64_t>(reps.size()));
  std::vector<int64_t> r(static_cast<size_t>(n - reps.size()), 1);
  r.insert(r.end(), reps.begin(), reps.end());
  Shape s(static_cast<size_t>(n - x.ndim()), 1);
  s.insert(s.end(), x.shape().begin(), x.shape().end());
  // (1, s0, 1, s1, ...) broadcast to (r0, s0, r1, s1, ...), then merged pairwise.
  Shape inter, target, out;
  for (int64_t d = 0; d < n; ++d) {
    inter.push_back(1);
    inter.push_back(s[d]);
    target.push_back(r[d]);
    target.push_back(s[d]);
    out.push_back(r[d] * s[d]);
  }
  return reshape(broadcast_to(reshape(x, inter), target), out);
}

Variable repeat(const Variable& x, const std::vector<int64_t>& repeats, std::optional<int64_t> axis,
                SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (repeats.empty()) type_error("Repeat", "len(repeats) >= 1", "0");
  for (int64_t r : repeats)
    if (r < 0) type_error("Repeat", "repeats >= 0", fmt::format("repeats contains {}", r));
  Variable v = axis ? x : reshape(x, {x.size()});
  int64_t a = axis ? normalize_axis("Repeat", *axis, x.ndim()) : 0;
  int64_t n = v.shape()[a];
  if (repeats.size() == 1) {
    // (..., n, 1, ...) broadcast to (..., n, r, ...), merged.
    Shape s = v.shape(), b = v.shape(), out = v.shape();
    s.insert(s.begin() + a + 1, 1);
    b.insert(b.begin() + a + 1, repeats[0]);
    out[a] = n * repeats[0];
    return reshape(broadcast_to(reshape(v, s), b), out);
  }
  if (static_cast<int64_t>(repeats.size()) != n)
    type_error("Repeat", fmt::format("len(repeats) == 1 or x.shape[axis] = {}", n),
               fmt::format("len(repeats) = {}", repeats.size()));
  std::vector<Variable> parts;
  for (int64_t i = 0; i < n; ++i) {
    if (repeats[i] == 0) continue;
    Variable one = slice_of(v, a, i, i + 1);
    Shape b = one.shape();
    b[a] = repeats[i];
    parts.push_back(broadcast_to(one, b));
  }
  if (parts.empty()) return slice_of(v, a, 0, 0);
  return concat(parts, a);
}

// ---- flips and axis moves ---------------------------------------------------------------

Variable flip(const Variable& x, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (x.ndim() < 1) type_error("Flip", "x.ndim >= 1", "x.ndim = 0");
  int64_t a = normalize_axis("Flip", axis, x.ndim());
  return record_like("kiln.reverse", {x}, {ints_attr("dimensions", {a})});
}

Variable fliplr(const Variable& a, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (a.ndim() < 2) type_error("FlipLR", "a.ndim >= 2", fmt::format("a.ndim = {}", a.ndim()));
  return record_like("kiln.reverse", {a}, {ints_attr("dimensions", {1})});
}

Variable flipud(const Variable& a, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (a.ndim() < 1) type_error("FlipUD", "a.ndim >= 1", "a.ndim = 0");
  return record_like("kiln.reverse", {a}, {ints_attr("dimensions", {0})});
}

Variable moveaxis(const Variable& x, const std::vector<int64_t>& source, const std::vector<int64_t>& destination,
                  SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Moveaxis";
  if (source.size() != destination.size())
    type_error(fn, "len(source) == len(destination)", fmt::format("{} != {}", source.size(), destination.size()));
  std::vector<int64_t> src = normalize_distinct(fn, "source", source, x.ndim());
  std::vector<int64_t> dst = normalize_distinct(fn, "destination", destination, x.ndim());
  std::vector<int64_t> order;
  for (int64_t d = 0; d < x.ndim(); ++d)
    if (std::find(src.begin(), src.end(), d) == src.end()) order.push_back(d);
  std::vector<std::pair<int64_t, int64_t>> moves;
  for (size_t i = 0; i < src.size(); ++i) moves.push_back({dst[i], src[i]});
  std::sort(moves.begin(), moves.end());
  for (auto [d, s] : moves) order.insert(order.begin() + d, s);
  return transpose(x, order);
}

Variable rollaxis(const Variable& x, int64_t axis, int64_t start, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Rollaxis";
  int64_t n = x.ndim();
  int64_t a = normalize_axis(fn, axis, n);
  if (start < -n || start > n)
    type_error(fn, fmt::format("-{} <= start <= {}", n, n), fmt::format("start = {}", start));
  int64_t s = start < 0 ? start + n : start;
  if (a < s) --s;
  std::vector<int64_t> order;
  for (int64_t d = 0; d < n; ++d)
    if (d != a) order.push_back(d);
  order.insert(order.begin() + s, a);
  return transpose(x, order);
}

Variable swapaxes(const Variable& x, int64_t axis1, int64_t axis2, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  int64_t a = normalize_axis("Swapaxes", axis1, x.ndim()), b = normalize_axis("Swapaxes", axis2, x.ndim());
  std::vector<int64_t> order(static_cast<size_t>(x.ndim()));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[a], order[b]);
  return transpose(x, order);
}

Variable diagonal(const Variable& x, int64_t offset, int64_t axis1, int64_t axis2, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Diagonal";
  if (x.ndim() < 2) type_error(fn, "x.ndim >= 2", fmt::format("x.ndim = {}", x.ndim()));
  int64_t a = normalize_axis(fn, axis1, x.ndim()), b = normalize_axis(fn, axis2, x.ndim());
  if (a == b) type_error(fn, "axis1 != axis2", fmt::format("both are {}", a));
  std::vector<int64_t> order;
  for (int64_t d = 0; d < x.ndim(); ++d)
    if (d != a && d != b) order.push_back(d);
  order.push_back(a);
  order.push_back(b);
  Variable t = transpose(x, order);
  Shape lead(t.shape().begin(), t.shape().end() - 2);
  int64_t n1 = x.shape()[a], n2 = x.shape()[b];
  int64_t r0 = std::max<int64_t>(0, -offset), c0 = std::max<int64_t>(0, offset);
  int64_t k = std::max<int64_t>(0, std::min(n1 - r0, n2 - c0));
  // The diagonal of the row-major (n1, n2) block: every (n2 + 1)-th element from (r0, c0).
  Shape flat = lead;
  flat.push_back(n1 * n2);
  Variable f = reshape(t, flat);
  std::vector<Index> items(lead.size(), Slice{});
  int64_t start = r0 * n2 + c0;
  items.push_back(k > 0 ? Slice{start, start + (k - 1) * (n2 + 1) + 1, n2 + 1} : Slice{0, 0, std::nullopt});
  return get_item(f, items);
}

Variable space2depth(const Variable& X, int64_t r, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Space2Depth";
  check_ndim(fn, "X", X, 4);
  if (r <= 0) type_error(fn, "r > 0", fmt::format("r = {}", r));
  int64_t n = X.shape()[0], c = X.shape()[1], h = X.shape()[2], w = X.shape()[3];
  if (h % r != 0 || w % r != 0)
    type_error(fn, "X.shape[2] % r == 0 and X.shape[3] % r == 0", fmt::format("{} and r = {}", shape_str(X.shape()), r));
  Variable y = reshape(X, {n, c, h / r, r, w / r, r});
  y = transpose(y, {0, 3, 5, 1, 2, 4});
  return reshape(y, {n, r * r * c, h / r, w / r});
}

Variable depth2space(const Variable& X, int64_t r, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Depth2Space";
  check_ndim(fn, "X", X, 4);
  if (r <= 0) type_error(fn, "r > 0", fmt::format("r = {}", r));
  int64_t n = X.shape()[0], c = X.shape()[1], h = X.shape()[2], w = X.shape()[3];
  if (c % (r * r) != 0) type_error(fn, "X.shape[1] % (r * r) == 0", fmt::format("{} % {}", c, r * r));
  Variable y = reshape(X, {n, r, r, c / (r * r), h, w});
  y = transpose(y, {0, 3, 4, 1, 5, 2});
  return reshape(y, {n, c / (r * r), h * r, w * r});
}

// ---- scale, bias, bilinear, select_item -------------------------------------------

static Variable axis_view(const std::string& fn, const Variable& x, const Variable& y, int64_t axis) {
  check_same_dtype(fn, "x", x, "y", y);
  int64_t a = axis < 0 ? axis + x.ndim() : axis;
  if (a < 0 || a + y.ndim() > x.ndim())
    type_error(fn, "0 <= axis and axis + y.ndim <= x.ndim", fmt::format("axis = {}, y.ndim = {}, x.ndim = {}", axis, y.ndim(), x.ndim()));
  Shape key(x.shape().begin() + a, x.shape().begin() + a + y.ndim());
  if (key != y.shape())
    type_error(fn, fmt::format("x.shape[{}:{}] == y.shape", a, a + y.ndim()),
               fmt::format("{} != {}", shape_str(key), shape_str(y.shape())));
  Shape s(static_cast<size_t>(x.ndim()), 1);
  for (int64_t i = 0; i < y.ndim(); ++i) s[a + i] = y.shape()[i];
  return broadcast_to(reshape(y, s), x.shape());
}

Variable scale(const Variable& x, const Variable& y, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("scale", "x", x);
  return x * axis_view("scale", x, y, axis);
}

Variable bias(const Variable& x, const Variable& y, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("bias", "x", x);
  return x + axis_view("bias", x, y, axis);
}

Variable bilinear(const Variable& e1, const Variable& e2, const Variable& W, const Variable& V1, const Variable& V2,
                  const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "BilinearFunction";
  check_float(fn, "e1", e1);
  check_same_dtype(fn, "e1", e1, "e2", e2);
  check_same_dtype(fn, "e1", e1, "W", W);
  check_ndim(fn, "W", W, 3);
  bool linear_terms = !V1.is_null() || !V2.is_null() || !b.is_null();
  if (linear_terms && (V1.is_null() || V2.is_null() || b.is_null()))
    throw Error("bilinear: V1, V2 and b must be all None or all given");
  if (e1.ndim() < 1 || e2.ndim() < 1 || e1.shape()[0] != e2.shape()[0])
    type_error(fn, "e1.shape[0] == e2.shape[0]", fmt::format("{} vs {}", shape_str(e1.shape()), shape_str(e2.shape())));
  int64_t n = e1.shape()[0];
  Variable a = reshape(e1, {n, -1}), c = reshape(e2, {n, -1});
  int64_t j = a.shape()[1], k = c.shape()[1], l = W.shape()[2];
  if (W.shape()[0] != j || W.shape()[1] != k)
    type_error(fn, "W.shape[:2] == (e1.size / N, e2.size / N)",
               fmt::format("W.shape = {}, ({}, {})", shape_str(W.shape()), j, k));
  Variable outer = reshape(reshape(a, {n, j, 1}) * reshape(c, {n, 1, k}), {n, j * k});
  Variable y = matmul(outer, reshape(W, {j * k, l}));
  if (!linear_terms) return y;
  if (V1.shape() != Shape{j, l} || V2.shape() != Shape{k, l} || b.shape() != Shape{l})
    type_error(fn, fmt::format("V1.shape == ({}, {}), V2.shape == ({}, {}), b.shape == ({},)", j, l, k, l, l),
               fmt::format("{}, {}, {}", shape_str(V1.shape()), shape_str(V2.shape()), shape_str(b.shape())));
  return y + matmul(a, V1) + matmul(c, V2) + b;
}

Variable select_item(const Variable& x, const Variable& t, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "SelectItem";
  check_float(fn, "x", x);
  check_int(fn, "t", t);
  check_ndim(fn, "x", x, 2);
  check_ndim(fn, "t", t, 1);
  if (x.shape()[0] != t.shape()[0])
    type_error(fn, "x.shape[0] == t.shape[0]", fmt::format("{} != {}", x.shape()[0], t.shape()[0]));
  Variable labels = record("kiln.check_range", {t},
                           {int_attr("limit", x.shape()[1]), str_attr("function", "select_item"), str_attr("operand", "t")},
                           t.shape(), t.dtype());
  Variable classes = record("kiln.iota", {}, {int_attr("dimension", 1)}, x.shape(), t.dtype());
  Variable onehot = equal(classes, reshape(labels, {t.shape()[0], 1}));
  return sum(where(onehot, x, constant_like(0.0, x)), std::vector<int64_t>{1});
}

// ---- tensordot and einsum -------------------------------------------------------------

Variable tensordot(const Variable& a, const Variable& b, int64_t axes, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (axes < 0 || axes > a.ndim() || axes > b.ndim())
    type_error("tensordot", "0 <= axes <= min(a.ndim, b.ndim)",
               fmt::format("axes = {}, a.ndim = {}, b.ndim = {}", axes, a.ndim(), b.ndim()));
  std::vector<int64_t> aa, ba;
  for (int64_t i = 0; i < axes; ++i) {
    aa.push_back(a.ndim() - axes + i);
    ba.push_back(i);
  }
  return tensordot(a, b, {aa, ba});
}

Variable tensordot(const Variable& a, const Variable& b,
                   const std::pair<std::vector<int64_t>, std::vector<int64_t>>& axes, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "tensordot";
  check_float(fn, "a", a);
  check_same_dtype(fn, "a", a, "b", b);
  if (axes.first.size() != axes.second.size())
    type_error(fn, "len(a_axes) == len(b_axes)", fmt::format("{} != {}", axes.first.size(), axes.second.size()));
  std::vector<int64_t> aa = normalize_distinct(fn, "a_axes", axes.first, a.ndim());
  std::vector<int64_t> ba = normalize_distinct(fn, "b_axes", axes.second, b.ndim());
  int64_t k = 1;
  for (size_t i = 0; i < aa.size(); ++i) {
    if (a.shape()[aa[i]] != b.shape()[ba[i]])
      type_error(fn, fmt::format("a.shape[{}] == b.shape[{}]", aa[i], ba[i]),
                 fmt::format("{} != {}", a.shape()[aa[i]], b.shape()[ba[i]]));
    k *= a.shape()[aa[i]];
  }
  std::vector<int64_t> ao, bo;
  Shape out;
  int64_t m = 1, n = 1;
  for (int64_t d = 0; d < a.ndim(); ++d)
    if (std::find(aa.begin(), aa.end(), d) == aa.end()) { ao.push_back(d); out.push_back(a.shape()[d]); m *= a.shape()[d]; }
  ao.insert(ao.end(), aa.begin(), aa.end());
  bo = ba;
  for (int64_t d = 0; d < b.ndim(); ++d)
    if (std::find(ba.begin(), ba.end(), d) == ba.end()) { bo.push_back(d); out.push_back(b.shape()[d]); n *= b.shape()[d]; }
  Variable am = reshape(transpose(a, ao), {m, k}), bm = reshape(transpose(b, bo), {k, n});
  return reshape(matmul(am, bm), out);
}

namespace {

// An einsum operand: its value and one label per axis. The ellipsis' axes get the labels
// '0', '1', ... counted so that they align from the right across operands.
struct Labeled {
  Variable v;
  std::string labels;
};

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

// The named letters of a term and whether it has an ellipsis (throws on other characters).
std::pair<std::string, std::string> split_term(const std::string& term, bool& has_ellipsis) {
  size_t dots = term.find("...");
  has_ellipsis = dots != std::string::npos;
  std::string left = has_ellipsis ? term.substr(0, dots) : term;
  std::string right = has_ellipsis ? term.substr(dots + 3) : "";
  for (const std::string* part : {&left, &right})
    for (char c : *part)
      if (!is_letter(c)) throw Error(fmt::format("einsum: invalid character '{}' in subscripts term '{}'", c, term));
  return {left, right};
}

std::string ellipsis_labels(int64_t total, int64_t count) {
  std::string s;
  for (int64_t i = total - count; i < total; ++i) s.push_back(static_cast<char>('0' + i));
  return s;
}

Variable sum_labels(Labeled& x, const std::string& drop) {
  std::vector<int64_t> axes;
  std::string kept;
  for (size_t i = 0; i < x.labels.size(); ++i) {
    if (drop.find(x.labels[i]) != std::string::npos) axes.push_back(static_cast<int64_t>(i));
    else kept.push_back(x.labels[i]);
  }
  if (!axes.empty()) x.v = sum(x.v, axes);
  x.labels = kept;
  return x.v;
}

Variable permute_to(const Labeled& x, const std::string& order) {
  std::vector<int64_t> perm;
  for (char c : order) perm.push_back(static_cast<int64_t>(x.labels.find(c)));
  return transpose(x.v, perm);
}

// Contracts a and b, keeping the labels in `keep` (and summing the others).
Labeled contract(Labeled a, Labeled b, const std::string& keep, const std::map<char, int64_t>& size) {
  auto in = [](const std::string& s, char c) { return s.find(c) != std::string::npos; };
  std::string drop_a, drop_b;
  for (char c : a.labels) if (!in(b.labels, c) && !in(keep, c)) drop_a.push_back(c);
  for (char c : b.labels) if (!in(a.labels, c) && !in(keep, c)) drop_b.push_back(c);
  sum_labels(a, drop_a);
  sum_labels(b, drop_b);
  std::string batch, contracted, fa, fb;
  for (char c : a.labels) {
    if (in(b.labels, c)) (in(keep, c) ? batch : contracted).push_back(c);
    else fa.push_back(c);
  }
  for (char c : b.labels) if (!in(a.labels, c)) fb.push_back(c);
  auto prod_of = [&](const std::string& ls) {
    int64_t p = 1;
    for (char c : ls) p *= size.at(c);
    return p;
  };
  Variable am = reshape(permute_to(a, batch + fa + contracted), {prod_of(batch), prod_of(fa), prod_of(contracted)});
  Variable bm = reshape(permute_to(b, batch + contracted + fb), {prod_of(batch), prod_of(contracted), prod_of(fb)});
  Shape out;
  for (char c : batch + fa + fb) out.push_back(size.at(c));
  return {reshape(matmul(am, bm), out), batch + fa + fb};
}

}  // namespace

Variable einsum(const std::string& subscripts, const std::vector<Variable>& operands, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "einsum";
  if (operands.empty()) throw Error("einsum: at least one operand is needed");
  for (size_t i = 0; i < operands.size(); ++i) {
    check_float(fn, fmt::format("operands[{}]", i).c_str(), operands[i]);
    check_same_dtype(fn, "operands[0]", operands[0], fmt::format("operands[{}]", i).c_str(), operands[i]);
  }
  std::string spec;
  for (char c : subscripts)
    if (c != ' ') spec.push_back(c);
  size_t arrow = spec.find("->");
  std::string lhs = arrow == std::string::npos ? spec : spec.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != operands.size())
    throw Error(fmt::format("einsum: subscripts '{}' name {} operands, {} are given", subscripts, terms.size(),
                            operands.size()));
  // Labels of every operand; the ellipsis' axes aligned from the right.
  std::vector<std::pair<std::string, std::string>> named;
  std::vector<int64_t> ell(terms.size(), -1);
  int64_t total_ellipsis = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    bool has = false;
    named.push_back(split_term(terms[i], has));
    int64_t letters = static_cast<int64_t>(named[i].first.size() + named[i].second.size());
    if (!has && letters != operands[i].ndim())
      throw Error(fmt::format("einsum: operand {} has {} dimensions, but term '{}' names {}", i, operands[i].ndim(),
                              terms[i], letters));
    if (has) {
      ell[i] = operands[i].ndim() - letters;
      if (ell[i] < 0)
        throw Error(fmt::format("einsum: operand {} has {} dimensions, fewer than term '{}' names", i,
                                operands[i].ndim(), terms[i]));
      total_ellipsis = std::max(total_ellipsis, ell[i]);
    }
  }
  if (total_ellipsis > 10) throw Error("einsum: at most 10 dimensions under an ellipsis");
  std::vector<Labeled> ops;
  std::map<char, int64_t> size;
  std::map<char, int> count;
  for (size_t i = 0; i < terms.size(); ++i) {
    std::string labels = named[i].first + (ell[i] >= 0 ? ellipsis_labels(total_ellipsis, ell[i]) : "") + named[i].second;
    for (size_t d = 0; d < labels.size(); ++d) {
      char c = labels[d];
      int64_t n = operands[i].shape()[d];
      auto it = size.find(c);
      if (it == size.end() || it->second == 1) {
        size[c] = n;
      } else if (n != it->second && !(n == 1 && !is_letter(c))) {
        throw Error(fmt::format("einsum: label '{}' has size {} in operand {}, {} elsewhere", c, n, i, it->second));
      }
      if (is_letter(c)) ++count[c];
    }
    ops.push_back({operands[i], labels});
  }
  // The output labels: given, or NumPy's implicit output (ellipsis, then letters seen once, sorted).
  std::string output;
  if (arrow != std::string::npos) {
    bool has = false;
    auto [l, r] = split_term(spec.substr(arrow + 2), has);
    output = l + (has ? ellipsis_labels(total_ellipsis, total_ellipsis) : "") + r;
    for (size_t i = 0; i < output.size(); ++i) {
      if (is_letter(output[i]) && !count.count(output[i]))
        throw Error(fmt::format("einsum: output label '{}' is not in any operand", output[i]));
      if (output.find(output[i]) != i) throw Error(fmt::format("einsum: output label '{}' repeats", output[i]));
    }
  } else {
    output = ellipsis_labels(total_ellipsis, total_ellipsis);
    for (auto& [c, k] : count)
      if (k == 1) output.push_back(c);
  }
  for (Labeled& x : ops) {
    // Repeated labels within one operand: its diagonal.
    for (bool again = true; again;) {
      again = false;
      for (size_t p = 0; p < x.labels.size() && !again; ++p) {
        size_t q = x.labels.find(x.labels[p], p + 1);
        if (q == std::string::npos) continue;
        char c = x.labels[p];
        x.v = diagonal(x.v, 0, static_cast<int64_t>(p), static_cast<int64_t>(q));
        x.labels.erase(q, 1);
        x.labels.erase(p, 1);
        x.labels.push_back(c);
        again = true;
      }
    }
    // Ellipsis axes of size 1 broadcast to the others' size.
    Shape full;
    for (char c : x.labels) full.push_back(size.at(c));
    if (full != x.v.shape()) x.v = broadcast_to(x.v, full);
  }
  Labeled cur = ops[0];
  for (size_t i = 1; i < ops.size(); ++i) {
    std::string keep = output;
    for (size_t j = i + 1; j < ops.size(); ++j) keep += ops[j].labels;
    cur = contract(cur, ops[i], keep, size);
  }
  std::string drop;
  for (char c : cur.labels)
    if (output.find(c) == std::string::npos) drop.push_back(c);
  sum_labels(cur, drop);
  return permute_to(cur, output);
}

// ---- padding ----------------------------------------------------------------------------

Variable pad(const Variable& x, const std::vector<std::pair<int64_t, int64_t>>& pad_width, const std::string& mode,
             double constant_values, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Pad";
  check_float(fn, "x", x);
  if (mode == "constant") return pad(x, pad_width, constant_values);
  if (mode != "edge" && mode != "reflect" && mode != "symmetric" && mode != "wrap")
    throw Error(fmt::format("pad: mode must be 'constant', 'edge', 'reflect', 'symmetric' or 'wrap', but '{}' is given",
                            mode));
  std::vector<std::pair<int64_t, int64_t>> widths = pad_width;
  if (widths.size() == 1) widths.assign(static_cast<size_t>(x.ndim()), pad_width[0]);
  if (static_cast<int64_t>(widths.size()) != x.ndim())
    type_error(fn, fmt::format("len(pad_width) == x.ndim = {}", x.ndim()), fmt::format("{}", widths.size()));
  // The border is built from a copy that passes no gradient (Chainer's backward crops gy).
  Variable y = x, border = stop_gradient(x);
  for (int64_t d = 0; d < x.ndim(); ++d) {
    auto [before, after] = widths[d];
    if (before < 0 || after < 0) type_error(fn, "pad_width >= 0", fmt::format("({}, {})", before, after));
    if (before == 0 && after == 0) continue;
    int64_t n = border.shape()[d];
    if (n == 0) throw Error(fmt::format("pad: mode '{}' cannot pad an empty axis {}", mode, d));
    if (mode == "reflect" && n == 1 && (before > 0 || after > 0)) {
      // numpy: reflecting one element repeats it.
    }
    // Index of padded position i (-before <= i < n + after) in the source axis.
    auto source = [&](int64_t i) -> int64_t {
      if (mode == "edge") return std::min(std::max<int64_t>(i, 0), n - 1);
      if (mode == "wrap") return ((i % n) + n) % n;
      if (mode == "symmetric") {
        int64_t period = 2 * n, k = ((i % period) + period) % period;
        return k < n ? k : period - 1 - k;
      }
      if (n == 1) return 0;  // reflect
      int64_t period = 2 * (n - 1), k = ((i % period) + period) % period;
      return k < n ? k : period - k;
    };
    std::vector<Variable> parts;
    auto take = [&](int64_t lo, int64_t hi) {
      // positions lo..hi-1 as runs of consecutive source indices (increasing or decreasing).
      for (int64_t i = lo; i < hi;) {
        int64_t s = source(i), j = i + 1;
        int64_t dir = j < hi ? source(j) - s : 1;
        if (dir != 1 && dir != -1) dir = 1;
        while (j < hi && source(j) - source(j - 1) == dir) ++j;
        int64_t e = source(j - 1);
        Variable run = slice_of(border, d, std::min(s, e), std::max(s, e) + 1);
        if (dir == -1 && j - i > 1) run = record_like("kiln.reverse", {run}, {ints_attr("dimensions", {d})});
        parts.push_back(run);
        i = j;
      }
    };
    std::vector<Variable> pieces;
    take(-before, 0);
    pieces = parts;
    parts.clear();
    Variable mid = y;
    take(n, n + after);
    std::vector<Variable> all = pieces;
    all.push_back(mid);
    all.insert(all.end(), parts.begin(), parts.end());
    y = concat(all, d);
    // Later axes pad the padded array (numpy pads axis by axis).
    std::vector<Variable> ball = pieces;
    ball.push_back(border);
    ball.insert(ball.end(), parts.begin(), parts.end());
    border = concat(ball, d);
  }
  return y;
}

// ---- CNN --------------------------------------------------------------------------------

Variable depthwise_convolution_2d(const Variable& x, const Variable& W, const Variable& b, Pair stride, Pair pad_,
                                  SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "DepthwiseConvolution2D";
  check_float(fn, "x", x);
  check_same_dtype(fn, "x", x, "W", W);
  check_ndim(fn, "x", x, 4);
  check_ndim(fn, "W", W, 4);
  if (x.shape()[1] != W.shape()[1])
    type_error(fn, "x.shape[1] == W.shape[1]", fmt::format("{} != {}", x.shape()[1], W.shape()[1]));
  int64_t m = W.shape()[0], c = W.shape()[1];
  if (!b.is_null() && (b.ndim() != 1 || b.shape()[0] != m * c))
    type_error(fn, "b.shape == (W.shape[0] * W.shape[1],)",
               fmt::format("{} vs {}", shape_str(b.shape()), shape_str(W.shape())));
  // Output channel c * M + m filters channel c with W[m, c]: a grouped convolution.
  Variable Wg = reshape(transpose(W, {1, 0, 2, 3}), {c * m, 1, W.shape()[2], W.shape()[3]});
  return convolution_2d(x, Wg, b, stride, pad_, false, 1, c);
}

namespace {

// Chainer's get_deconv_outsize.
int64_t deconv_outsize(int64_t size, int64_t k, int64_t s, int64_t p, bool cover_all) {
  return cover_all ? s * (size - 1) + k - s + 1 - 2 * p : s * (size - 1) + k - 2 * p;
}

// Chainer's col2im of a column whose every window position (ky, kx) holds part(ky, kx):
// the values of window (i, j) go to (i*sy - ph + ky, j*sx - pw + kx), overlaps add.
Variable col2im(const std::string& fn, const Variable& x, Pair ksize, Pair stride, Pair pad_, Pair out,
                const std::function<Variable(int64_t, int64_t)>& part) {
  int64_t h = x.shape()[2], w = x.shape()[3];
  int64_t full_h = std::max((h - 1) * stride.h + ksize.h, pad_.h + out.h);
  int64_t full_w = std::max((w - 1) * stride.w + ksize.w, pad_.w + out.w);
  Variable y;
  for (int64_t ky = 0; ky < ksize.h; ++ky)
    for (int64_t kx = 0; kx < ksize.w; ++kx) {
      Variable v = part(ky, kx);
      int64_t hi_h = full_h - ky - ((h - 1) * stride.h + 1), hi_w = full_w - kx - ((w - 1) * stride.w + 1);
      Variable p = record("kiln.pad", {v},
                          {ints_attr("low", {0, 0, ky, kx}), ints_attr("high", {0, 0, hi_h, hi_w}),
                           ints_attr("interior", {0, 0, stride.h - 1, stride.w - 1}), float_attr("value", 0.0)},
                          {x.shape()[0], x.shape()[1], full_h, full_w}, x.dtype());
      y = y.is_null() ? p : y + p;
    }
  (void)fn;
  return get_item(y, {Slice{}, Slice{}, Slice{pad_.h, pad_.h + out.h, std::nullopt},
                      Slice{pad_.w, pad_.w + out.w, std::nullopt}});
}

Pair pooling_outsize(const std::string& fn, const Variable& x, Pair ksize, Pair stride, Pair pad_,
                     std::optional<Pair> outsize, bool cover_all) {
  check_float(fn, "x", x);
  check_ndim(fn, "x", x, 4);
  if (ksize.h < 1 || ksize.w < 1) type_error(fn, "ksize >= 1", fmt::format("ksize = ({}, {})", ksize.h, ksize.w));
  if (stride.h < 1 || stride.w < 1) type_error(fn, "stride >= 1", fmt::format("stride = ({}, {})", stride.h, stride.w));
  if (pad_.h < 0 || pad_.w < 0) type_error(fn, "pad >= 0", fmt::format("pad = ({}, {})", pad_.h, pad_.w));
  Pair out = outsize.value_or(Pair(deconv_outsize(x.shape()[2], ksize.h, stride.h, pad_.h, cover_all),
                                   deconv_outsize(x.shape()[3], ksize.w, stride.w, pad_.w, cover_all)));
  if (out.h <= 0 || out.w <= 0) type_error(fn, "output size > 0", fmt::format("outsize = ({}, {})", out.h, out.w));
  // Chainer: the pooling of the output gives back x's size.
  auto conv_out = [&](int64_t size, int64_t k, int64_t s, int64_t p) {
    int64_t span = size + 2 * p - k + (cover_all ? s - 1 : 0);
    return span < 0 ? 0 : span / s + 1;
  };
  if (conv_out(out.h, ksize.h, stride.h, pad_.h) != x.shape()[2] ||
      conv_out(out.w, ksize.w, stride.w, pad_.w) != x.shape()[3])
    type_error(fn, "x.shape[2:] == get_conv_outsize(outsize, ksize, stride, pad, cover_all)",
               fmt::format("x.shape = {}, outsize = ({}, {})", shape_str(x.shape()), out.h, out.w));
  return out;
}

}  // namespace

Variable unpooling_2d(const Variable& x, Pair ksize, std::optional<Pair> stride, Pair pad_,
                      std::optional<Pair> outsize, bool cover_all, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Unpooling2D";
  Pair s = stride.value_or(ksize);
  Pair out = pooling_outsize(fn, x, ksize, s, pad_, outsize, cover_all);
  return col2im(fn, x, ksize, s, pad_, out, [&](int64_t, int64_t) { return x; });
}

Variable upsampling_2d(const Variable& x, const Variable& indexes, Pair ksize, std::optional<Pair> stride, Pair pad_,
                       std::optional<Pair> outsize, bool cover_all, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Upsampling2D";
  check_int(fn, "indexes", indexes);
  if (indexes.shape() != x.shape())
    type_error(fn, "indexes.shape == x.shape", fmt::format("{} != {}", shape_str(indexes.shape()), shape_str(x.shape())));
  Pair s = stride.value_or(ksize);
  Pair out = pooling_outsize(fn, x, ksize, s, pad_, outsize, cover_all);
  Variable zero = constant_like(0.0, x);
  return col2im(fn, x, ksize, s, pad_, out, [&](int64_t ky, int64_t kx) {
    return where(equal(indexes, constant_like(static_cast<double>(ky * ksize.w + kx), indexes)), x, zero);
  });
}

namespace {

// The (out, in) interpolation matrix of resize_images along one axis (Chainer 7's rule).
Array resize_matrix(int64_t out, int64_t in, const std::string& mode, bool align_corners, DType dtype) {
  std::vector<double> m(static_cast<size_t>(out * in), 0.0);
  for (int64_t i = 0; i < out; ++i) {
    if (mode == "nearest") {
      int64_t v = std::min<int64_t>(static_cast<int64_t>(std::floor(i * (static_cast<double>(in) / out))), in - 1);
      m[i * in + v] = 1.0;
      continue;
    }
    double v;
    if (align_corners) v = out > 1 ? i * (static_cast<double>(in - 1) / (out - 1)) : 0.0;
    else v = std::max(0.0, (i + 0.5) * (static_cast<double>(in) / out) - 0.5);
    double lo = std::floor(v), wgt = v - lo;
    int64_t v0 = std::min<int64_t>(static_cast<int64_t>(lo), in - 1), v1 = std::min<int64_t>(v0 + 1, in - 1);
    m[i * in + v0] += 1.0 - wgt;
    m[i * in + v1] += wgt;
  }
  Array a = Array::from(m, {out, in});
  return dtype == DType::f64 ? a : a.astype(dtype);
}

}  // namespace

Variable resize_images(const Variable& x, Pair output_shape, const std::string& mode, bool align_corners,
                       SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "ResizeImages";
  check_float(fn, "x", x);
  check_ndim(fn, "x", x, 4);
  if (mode != "bilinear" && mode != "nearest")
    throw Error(fmt::format("resize_images: mode must be 'bilinear' or 'nearest', but '{}' is given", mode));
  if (output_shape.h < 1 || output_shape.w < 1)
    type_error(fn, "output_shape >= 1", fmt::format("({}, {})", output_shape.h, output_shape.w));
  int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  Variable ry(detail::on_device_of(resize_matrix(output_shape.h, h, mode, align_corners, x.dtype()), x), false);
  Variable rx(detail::on_device_of(resize_matrix(output_shape.w, w, mode, align_corners, x.dtype()), x), false);
  // y = Ry x Rx^T per image: two matmuls over the flattened batch.
  Variable t = matmul(reshape(x, {n * c * h, w}), rx, false, true);                 // (NCH, W')
  t = reshape(transpose(reshape(t, {n * c, h, output_shape.w}), {1, 0, 2}), {h, -1});  // (H, NC W')
  Variable u = matmul(ry, t);                                                        // (H', NC W')
  u = transpose(reshape(u, {output_shape.h, n * c, output_shape.w}), {1, 0, 2});
  return reshape(u, {n, c, output_shape.h, output_shape.w});
}

}  // namespace kiln::functions
