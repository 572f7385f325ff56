// Shape manipulation, indexing and linear algebra of kiln::functions.
#include "ops.h"

namespace kiln::functions {

using namespace detail;

Variable reshape(const Variable& x, const Shape& shape, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) type_error("reshape", "at most one -1 in shape", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else if (out[i] < 0) {
      type_error("reshape", "shape entries >= -1", shape_str(shape));
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.size() % known != 0)
      type_error("reshape", fmt::format("x.size divisible by {}", known), fmt::format("x.size = {}", x.size()));
    out[infer] = x.size() / known;
  }
  if (shape_size(out) != x.size())
    type_error("reshape", fmt::format("x.size == prod({}) = {}", shape_str(out), shape_size(out)),
               fmt::format("x.shape = {} (size {})", shape_str(x.shape()), x.size()));
  if (out == x.shape()) return x;
  return record("kiln.reshape", {x}, {}, out, x.dtype());
}

Variable transpose(const Variable& x, const std::vector<int64_t>& axes, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  int64_t n = x.ndim();
  std::vector<int64_t> perm;
  if (axes.empty()) {
    for (int64_t i = n - 1; i >= 0; --i) perm.push_back(i);
  } else {
    if (static_cast<int64_t>(axes.size()) != n)
      type_error("transpose", fmt::format("len(axes) == x.ndim = {}", n), fmt::format("len(axes) = {}", axes.size()));
    perm = normalize_axes("transpose", axes, n);  // validates; sorted copy
    perm.clear();
    for (int64_t a : axes) perm.push_back(a < 0 ? a + n : a);
  }
  Shape shape;
  for (int64_t p : perm) shape.push_back(x.shape()[p]);
  bool identity_perm = true;
  for (int64_t i = 0; i < n; ++i) identity_perm &= perm[i] == i;
  if (identity_perm) return x;
  return record("kiln.transpose", {x}, {ints_attr("permutation", perm)}, shape, x.dtype());
}

Variable broadcast_to(const Variable& x, const Shape& shape, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return broadcast_as(x, shape);
}

Variable expand_dims(const Variable& x, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  int64_t a = normalize_axis("expand_dims", axis, x.ndim() + 1);
  Shape s = x.shape();
  s.insert(s.begin() + a, 1);
  return reshape(x, s);
}

Variable squeeze(const Variable& x, const Axes& axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  Shape s;
  if (!axis) {
    for (int64_t d : x.shape()) if (d != 1) s.push_back(d);
  } else {
    std::vector<int64_t> axes = normalize_axes("squeeze", axis, x.ndim());
    for (int64_t a : axes)
      if (x.shape()[a] != 1)
        type_error("squeeze", fmt::format("x.shape[{}] == 1", a), fmt::format("{}", x.shape()[a]));
    for (int64_t d = 0; d < x.ndim(); ++d)
      if (std::find(axes.begin(), axes.end(), d) == axes.end()) s.push_back(x.shape()[d]);
  }
  return reshape(x, s);
}

Variable flatten(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return reshape(x, {x.size()});
}

Variable concat(const std::vector<Variable>& xs, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (xs.empty()) type_error("concat", "len(xs) >= 1", "0");
  const Variable& first = xs[0];
  int64_t a = normalize_axis("concat", axis, first.ndim());
  Shape shape = first.shape();
  shape[a] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    check_same_dtype("concat", "xs[0]", first, fmt::format("xs[{}]", i).c_str(), xs[i]);
    if (xs[i].ndim() != first.ndim())
      type_error("concat", fmt::format("xs[{}].ndim == {}", i, first.ndim()), fmt::format("{}", xs[i].ndim()));
    for (int64_t d = 0; d < first.ndim(); ++d)
      if (d != a && xs[i].shape()[d] != first.shape()[d])
        type_error("concat", fmt::format("xs[{}].shape[{}] == {}", i, d, first.shape()[d]),
                   fmt::format("{}", xs[i].shape()[d]));
    shape[a] += xs[i].shape()[a];
  }
  if (xs.size() == 1) return first;
  return record("kiln.concat", xs, {int_attr("axis", a)}, shape, first.dtype());
}

// Slices [lo, hi) of `axis`.
static Variable slice_axis(const Variable& x, int64_t axis, int64_t lo, int64_t hi) {
  std::vector<int64_t> start(x.ndim(), 0), limit(x.shape()), step(x.ndim(), 1);
  start[axis] = lo;
  limit[axis] = hi;
  Shape shape = x.shape();
  shape[axis] = hi - lo;
  return record("kiln.slice", {x}, {ints_attr("start", start), ints_attr("limit", limit), ints_attr("step", step)},
                shape, x.dtype());
}

std::vector<Variable> split_axis(const Variable& x, int64_t sections, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  int64_t a = normalize_axis("split_axis", axis, x.ndim());
  if (sections <= 0 || x.shape()[a] % sections != 0)
    type_error("split_axis", fmt::format("x.shape[{}] % sections == 0", a),
               fmt::format("{} % {}", x.shape()[a], sections));
  std::vector<int64_t> indices;
  int64_t each = x.shape()[a] / sections;
  for (int64_t i = 1; i < sections; ++i) indices.push_back(i * each);
  return split_axis(x, indices, axis);
}

std::vector<Variable> split_axis(const Variable& x, const std::vector<int64_t>& indices, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  int64_t a = normalize_axis("split_axis", axis, x.ndim());
  int64_t n = x.shape()[a];
  std::vector<Variable> out;
  int64_t prev = 0;
  for (size_t i = 0; i <= indices.size(); ++i) {
    int64_t next = i < indices.size() ? indices[i] : n;
    if (next < 0) next += n;
    next = std::min(std::max<int64_t>(next, 0), n);
    int64_t lo = std::min(prev, next);
    out.push_back(slice_axis(x, a, lo, next));
    prev = std::max(prev, next);
  }
  return out;
}

Variable stack(const std::vector<Variable>& xs, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (xs.empty()) type_error("stack", "len(xs) >= 1", "0");
  int64_t a = normalize_axis("stack", axis, xs[0].ndim() + 1);
  std::vector<Variable> expanded;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].shape() != xs[0].shape())
      type_error("stack", fmt::format("xs[{}].shape == {}", i, shape_str(xs[0].shape())), shape_str(xs[i].shape()));
    expanded.push_back(expand_dims(xs[i], a));
  }
  return concat(expanded, a);
}

Variable get_item(const Variable& x, const std::vector<Index>& slices, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  // numpy basic indexing: ints drop an axis, slices keep it (any step), NewAxis inserts one.
  std::vector<int64_t> start, limit, step, reversed;
  Shape sliced, final_shape;
  int64_t dim = 0;
  int64_t consumed = 0;
  for (const Index& item : slices) consumed += std::holds_alternative<NewAxis>(item) ? 0 : 1;
  if (consumed > x.ndim())
    type_error("get_item", fmt::format("at most {} indices", x.ndim()), fmt::format("{}", consumed));
  std::vector<Index> items = slices;
  for (int64_t i = consumed; i < x.ndim(); ++i) items.push_back(Slice{});
  for (const Index& item : items) {
    if (std::holds_alternative<NewAxis>(item)) { final_shape.push_back(1); continue; }
    int64_t n = x.shape()[dim];
    if (auto* i = std::get_if<int64_t>(&item)) {
      int64_t k = *i < 0 ? *i + n : *i;
      if (k < 0 || k >= n)
        type_error("get_item", fmt::format("-{} <= index < {} on axis {}", n, n, dim), fmt::format("{}", *i));
      start.push_back(k); limit.push_back(k + 1); step.push_back(1);
      sliced.push_back(1);
    } else {
      const Slice& s = std::get<Slice>(item);
      int64_t st = s.step.value_or(1);
      if (st == 0) type_error("get_item", "slice step != 0", "0");
      // Python's slice.indices(n).
      auto clampIndex = [&](std::optional<int64_t> v, int64_t dflt, int64_t lo, int64_t hi) {
        if (!v) return dflt;
        int64_t k = *v < 0 ? *v + n : *v;
        return std::min(std::max(k, lo), hi);
      };
      int64_t b, e;
      if (st > 0) { b = clampIndex(s.start, 0, 0, n); e = clampIndex(s.stop, n, 0, n); }
      else { b = clampIndex(s.start, n - 1, -1, n - 1); e = clampIndex(s.stop, -1, -1, n - 1); }
      int64_t count = st > 0 ? std::max<int64_t>(0, (e - b + st - 1) / st)
                             : std::max<int64_t>(0, (b - e - st - 1) / -st);
      if (st > 0) {
        start.push_back(b); limit.push_back(count ? b + (count - 1) * st + 1 : b); step.push_back(st);
      } else {
        // Reverse the axis, then slice forward: index i maps to n-1-i.
        reversed.push_back(dim);
        int64_t rb = n - 1 - b;
        start.push_back(count ? rb : 0); limit.push_back(count ? rb + (count - 1) * -st + 1 : 0); step.push_back(-st);
      }
      sliced.push_back(count);
      final_shape.push_back(count);
    }
    ++dim;
  }
  Variable v = x;
  if (!reversed.empty()) v = record_like("kiln.reverse", {v}, {ints_attr("dimensions", reversed)});
  bool whole = sliced == x.shape() && reversed.empty();
  for (int64_t d = 0; d < x.ndim() && whole; ++d) whole = start[d] == 0 && step[d] == 1;
  if (!whole)
    v = record("kiln.slice", {v}, {ints_attr("start", start), ints_attr("limit", limit), ints_attr("step", step)},
               sliced, x.dtype());
  return reshape(v, final_shape);
}

Variable pad(const Variable& x, const std::vector<std::pair<int64_t, int64_t>>& pad_width,
             double constant_value, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  std::vector<std::pair<int64_t, int64_t>> widths = pad_width;
  if (widths.size() == 1) widths.assign(static_cast<size_t>(x.ndim()), pad_width[0]);
  if (static_cast<int64_t>(widths.size()) != x.ndim())
    type_error("pad", fmt::format("len(pad_width) == x.ndim = {}", x.ndim()), fmt::format("{}", widths.size()));
  std::vector<int64_t> low, high, interior(x.ndim(), 0);
  Shape shape;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    if (widths[d].first < 0 || widths[d].second < 0)
      type_error("pad", "pad_width >= 0", fmt::format("({}, {})", widths[d].first, widths[d].second));
    low.push_back(widths[d].first);
    high.push_back(widths[d].second);
    shape.push_back(x.shape()[d] + widths[d].first + widths[d].second);
  }
  return record("kiln.pad", {x}, {ints_attr("low", low), ints_attr("high", high), ints_attr("interior", interior),
                                  float_attr("value", constant_value)},
                shape, x.dtype());
}

// ---- linear algebra ---------------------------------------------------------------

Variable matmul(const Variable& a, const Variable& b, bool transa, bool transb, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("matmul", "a", a);
  check_same_dtype("matmul", "a", a, "b", b);
  if (a.ndim() < 1 || b.ndim() < 1) type_error("matmul", "a.ndim >= 1 and b.ndim >= 1", fmt::format("{} and {}", a.ndim(), b.ndim()));
  // 1-d operands become matrices like numpy (a: row vector, b: column vector).
  Variable A = a.ndim() == 1 ? reshape(a, {1, a.shape()[0]}) : a;
  Variable B = b.ndim() == 1 ? reshape(b, {b.shape()[0], 1}) : b;
  int64_t ra = A.ndim(), rb = B.ndim();
  int64_t m = transa ? A.shape()[ra - 1] : A.shape()[ra - 2];
  int64_t ka = transa ? A.shape()[ra - 2] : A.shape()[ra - 1];
  int64_t kb = transb ? B.shape()[rb - 1] : B.shape()[rb - 2];
  int64_t n = transb ? B.shape()[rb - 2] : B.shape()[rb - 1];
  if (ka != kb)
    type_error("matmul", fmt::format("a.shape[{}] == b.shape[{}]", transa ? -2 : -1, transb ? -1 : -2),
               fmt::format("{} != {}", ka, kb));
  Shape ba(A.shape().begin(), A.shape().end() - 2), bb(B.shape().begin(), B.shape().end() - 2);
  Shape batch = broadcast_shapes("matmul", ba, bb);
  Shape fa = batch, fb = batch;
  fa.insert(fa.end(), A.shape().end() - 2, A.shape().end());
  fb.insert(fb.end(), B.shape().end() - 2, B.shape().end());
  Shape out = batch;
  out.push_back(m);
  out.push_back(n);
  Attrs attrs;
  if (transa) attrs.push_back(unit_attr("transpose_a"));
  if (transb) attrs.push_back(unit_attr("transpose_b"));
  Variable y = record("kiln.matmul", {broadcast_as(A, fa), broadcast_as(B, fb)}, attrs, out, a.dtype());
  if (a.ndim() == 1 || b.ndim() == 1) {
    Shape s = batch;
    if (a.ndim() != 1) s.push_back(m);
    if (b.ndim() != 1) s.push_back(n);
    y = reshape(y, s);
  }
  return y;
}

Variable batch_matmul(const Variable& a, const Variable& b, bool transa, bool transb, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return matmul(a, b, transa, transb);
}

Variable linear(const Variable& x, const Variable& W, const Variable& b, int64_t n_batch_axes, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("linear", "x", x);
  check_same_dtype("linear", "x", x, "W", W);
  if (n_batch_axes <= 0 || n_batch_axes >= x.ndim() + 1)
    type_error("linear", "0 < n_batch_axes <= x.ndim", fmt::format("n_batch_axes = {}", n_batch_axes));
  check_ndim("linear", "W", W, 2);
  Shape batch(x.shape().begin(), x.shape().begin() + n_batch_axes);
  int64_t in = shape_size(Shape(x.shape().begin() + n_batch_axes, x.shape().end()));
  if (in != W.shape()[1])
    type_error("linear", n_batch_axes == 1 && x.ndim() == 2 ? "x.shape[1] == W.shape[1]" : "prod(x.shape[n_batch_axes:]) == W.shape[1]",
               fmt::format("{} != {}", in, W.shape()[1]));
  Variable x2 = reshape(x, {shape_size(batch), in});
  Variable y = matmul(x2, W, false, true);
  if (!b.is_null()) {
    check_same_dtype("linear", "x", x, "b", b);
    if (b.ndim() != 1 || b.shape()[0] != W.shape()[0])
      type_error("linear", "b.shape == (W.shape[0],)", fmt::format("{} vs {}", shape_str(b.shape()), shape_str(W.shape())));
    y = y + b;
  }
  Shape out = batch;
  out.push_back(W.shape()[0]);
  return reshape(y, out);
}

}  // namespace kiln::functions
