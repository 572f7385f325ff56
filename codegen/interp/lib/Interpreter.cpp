// Reference interpreter: evaluates kiln ops one by one on float64/int64 host tensors.
#include "kiln/codegen/interp.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_map>

#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ScalarExpr.h"
#include "kiln/philox.h"
#include "llvm/ADT/StringMap.h"
#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;

namespace kiln::interp {
namespace {

// Every value is held as doubles; `elem` says how results are rounded.
struct Tensor {
  Shape shape;
  std::vector<double> data;
  DType dtype = DType::f64;
  int64_t size() const { return static_cast<int64_t>(data.size()); }
};

DType dtypeOf(Type t) {
  if (t.isF32()) return DType::f32;
  if (t.isF64()) return DType::f64;
  if (t.isInteger(32)) return DType::i32;
  if (t.isInteger(64)) return DType::i64;
  if (t.isInteger(1)) return DType::b8;
  throw Error("kiln interp: unsupported element type");
}

Tensor makeTensor(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  Tensor out;
  out.shape.assign(t.getShape().begin(), t.getShape().end());
  out.dtype = dtypeOf(t.getElementType());
  out.data.assign(static_cast<size_t>(shape_size(out.shape)), 0.0);
  return out;
}

// Rounds every element to the tensor's element type (float32 rounding, integer truncation).
void roundTo(Tensor& t) {
  switch (t.dtype) {
    case DType::f32: for (double& v : t.data) v = static_cast<float>(v); break;
    case DType::i32: for (double& v : t.data) v = static_cast<double>(static_cast<int32_t>(v)); break;
    case DType::i64: for (double& v : t.data) v = static_cast<double>(static_cast<int64_t>(v)); break;
    case DType::b8: for (double& v : t.data) v = v != 0 ? 1.0 : 0.0; break;
    case DType::f64: break;
  }
}

std::vector<int64_t> stridesOf(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t d = static_cast<int64_t>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

// Calls f(index, flat) for every multi-index of `shape` in C order.
template <typename F>
void forEachIndex(const Shape& shape, F&& f) {
  int64_t n = shape_size(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t flat = 0; flat < n; ++flat) {
    f(idx, flat);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

std::vector<int64_t> i64s(Operation* op, StringRef name) {
  auto a = op->getAttrOfType<DenseI64ArrayAttr>(name);
  if (!a) throw Error(("kiln interp: " + op->getName().getStringRef() + " lacks attribute " + name).str());
  return std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end());
}

using Operands = std::vector<const Tensor*>;
using Eval = std::function<Tensor(Operation*, const Operands&)>;

ir::scalar::Type scalarTypeOf(DType t) {
  switch (t) {
    case DType::b8: return ir::scalar::Type::Bool;
    case DType::i32: return ir::scalar::Type::I32;
    case DType::i64: return ir::scalar::Type::I64;
    case DType::f32: return ir::scalar::Type::F32;
    case DType::f64: return ir::scalar::Type::F64;
  }
  return ir::scalar::Type::F64;
}

// An elementwise op: its scalar expression (declared with the op in ODS)
// evaluated at every index; the computation type is the last operand's.
Tensor evalScalarOp(Operation* op, const Operands& in) {
  FailureOr<const ir::scalar::Expr*> expr = ir::scalar::expressionOf(op);
  if (failed(expr))
    throw Error(("kiln interp: op '" + op->getName().getStringRef() + "' has no valid scalar semantics").str());
  Tensor out = makeTensor(op->getResult(0));
  ir::scalar::Type type = scalarTypeOf(in.back()->dtype);
  std::vector<double> args(in.size());
  for (int64_t i = 0; i < out.size(); ++i) {
    for (size_t k = 0; k < in.size(); ++k) args[k] = in[k]->data[i];
    out.data[i] = ir::scalar::evaluate(**expr, args, type);
  }
  return out;
}

Tensor evalMatmul(Operation* op, const Operands& in) {
  auto mm = cast<ir::MatmulOp>(op);
  Tensor out = makeTensor(mm.getResult());
  const Tensor &a = *in[0], &b = *in[1];
  size_t ra = a.shape.size(), rb = b.shape.size(), ro = out.shape.size();
  int64_t M = out.shape[ro - 2], N = out.shape[ro - 1];
  int64_t K = mm.getTransposeA() ? a.shape[ra - 2] : a.shape[ra - 1];
  int64_t sa = a.shape[ra - 2] * a.shape[ra - 1], batch = shape_size(a.shape) / std::max<int64_t>(sa, 1);
  // A 2-d b of a batch of a is shared by every matrix (stride 0).
  int64_t sb = rb == 2 && ra > 2 ? 0 : b.shape[rb - 2] * b.shape[rb - 1];
  int64_t lda = a.shape[ra - 1], ldb = b.shape[rb - 1];
  bool sum = mm.getSumBatch();  // out = sum over the batch of the products
  if (sum) std::fill(out.data.begin(), out.data.end(), 0.0);
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          double av = mm.getTransposeA() ? a.data[p * sa + k * lda + i] : a.data[p * sa + i * lda + k];
          double bv = mm.getTransposeB() ? b.data[p * sb + j * ldb + k] : b.data[p * sb + k * ldb + j];
          acc += av * bv;
        }
        if (sum) out.data[i * N + j] += acc;
        else out.data[p * M * N + i * N + j] = acc;
      }
  return out;
}

// Calls f(xi, wi, yi) for every in-bounds tap of a conv2d with x (N,C,H,W),
// w (O,C/groups,kh,kw), y (N,O,Ho,Wo): output channel o reads the input
// channels of its group, o / (O/groups).
template <typename Conv, typename F>
void forEachConvTap(Conv conv, const Shape& x, const Shape& w, const Shape& y, F&& f) {
  ArrayRef<int64_t> s = conv.getStride(), p = conv.getPad(), d = conv.getDilate();
  int64_t groupOut = y[1] / conv.getGroups(), groupIn = w[1];
  for (int64_t n = 0; n < y[0]; ++n)
    for (int64_t o = 0; o < y[1]; ++o)
      for (int64_t oy = 0; oy < y[2]; ++oy)
        for (int64_t ox = 0; ox < y[3]; ++ox)
          for (int64_t c = 0; c < groupIn; ++c)
            for (int64_t ky = 0; ky < w[2]; ++ky) {
              int64_t iy = oy * s[0] - p[0] + ky * d[0];
              if (iy < 0 || iy >= x[2]) continue;
              for (int64_t kx = 0; kx < w[3]; ++kx) {
                int64_t ix = ox * s[1] - p[1] + kx * d[1];
                if (ix < 0 || ix >= x[3]) continue;
                int64_t xi = ((n * x[1] + o / groupOut * groupIn + c) * x[2] + iy) * x[3] + ix;
                int64_t wi = ((o * w[1] + c) * w[2] + ky) * w[3] + kx;
                int64_t yi = ((n * y[1] + o) * y[2] + oy) * y[3] + ox;
                f(xi, wi, yi);
              }
            }
}

// Calls f(xi, yi) for every in-bounds window tap of a pool2d; `window(yi)` first.
template <typename F>
void forEachPoolTap(const Shape& x, const Shape& y, ArrayRef<int64_t> k, ArrayRef<int64_t> s,
                    ArrayRef<int64_t> p, F&& f) {
  for (int64_t nc = 0; nc < y[0] * y[1]; ++nc)
    for (int64_t oy = 0; oy < y[2]; ++oy)
      for (int64_t ox = 0; ox < y[3]; ++ox) {
        int64_t yi = (nc * y[2] + oy) * y[3] + ox;
        for (int64_t ky = 0; ky < k[0]; ++ky) {
          int64_t iy = oy * s[0] - p[0] + ky;
          if (iy < 0 || iy >= x[2]) continue;
          for (int64_t kx = 0; kx < k[1]; ++kx) {
            int64_t ix = ox * s[1] - p[1] + kx;
            if (ix < 0 || ix >= x[3]) continue;
            f((nc * x[2] + iy) * x[3] + ix, yi);
          }
        }
      }
}

// Index of the first maximum of each pooling window (-1 if the window is all padding).
std::vector<int64_t> poolArgmax(const Tensor& x, const Shape& y, ArrayRef<int64_t> k,
                                ArrayRef<int64_t> s, ArrayRef<int64_t> p) {
  std::vector<int64_t> arg(static_cast<size_t>(shape_size(y)), -1);
  forEachPoolTap(x.shape, y, k, s, p, [&](int64_t xi, int64_t yi) {
    if (arg[yi] < 0 || x.data[xi] > x.data[arg[yi]]) arg[yi] = xi;
  });
  return arg;
}

const llvm::StringMap<Eval>& evaluators() {
  static const llvm::StringMap<Eval> table = [] {
    llvm::StringMap<Eval> t;
    t["kiln.constant"] = [](Operation* op, const Operands&) {
      Tensor out = makeTensor(op->getResult(0));
      auto dense = cast<DenseElementsAttr>(cast<ir::ConstantOp>(op).getValue());
      bool isFloat = isa<FloatType>(dense.getElementType());
      if (dense.isSplat()) {
        double v = isFloat ? dense.getSplatValue<APFloat>().convertToDouble()
                           : static_cast<double>(dense.getSplatValue<APInt>().getSExtValue());
        if (dense.getElementType().isInteger(1)) v = dense.getSplatValue<APInt>().getBoolValue();
        std::fill(out.data.begin(), out.data.end(), v);
      } else if (isFloat) {
        int64_t i = 0;
        for (const APFloat& v : dense.getValues<APFloat>()) out.data[i++] = v.convertToDouble();
      } else {
        int64_t i = 0;
        bool boolean = dense.getElementType().isInteger(1);
        for (const APInt& v : dense.getValues<APInt>())
          out.data[i++] = boolean ? v.getBoolValue() : static_cast<double>(v.getSExtValue());
      }
      return out;
    };
    t["kiln.iota"] = [](Operation* op, const Operands&) {
      Tensor out = makeTensor(op->getResult(0));
      int64_t dim = cast<ir::IotaOp>(op).getDimension();
      forEachIndex(out.shape, [&](const std::vector<int64_t>& idx, int64_t flat) { out.data[flat] = idx[dim]; });
      return out;
    };
    t["kiln.rng_uniform"] = [](Operation* op, const Operands& in) {
      auto rng = cast<ir::RngUniformOp>(op);
      Tensor out = makeTensor(rng.getResult());
      // int64 (held as double) to uint64 through int64: a seed of -1 is 2^64 - 1.
      auto seed = static_cast<uint64_t>(static_cast<int64_t>(in[0]->data[0]));
      auto offset = static_cast<uint64_t>(static_cast<int64_t>(in[0]->data[1]));
      for (int64_t i = 0; i < out.size(); ++i) out.data[i] = philox::uniform(seed, offset + i);
      return out;
    };
    t["kiln.broadcast_to"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      const Tensor& x = *in[0];
      auto xs = stridesOf(x.shape);
      size_t offset = out.shape.size() - x.shape.size();
      forEachIndex(out.shape, [&](const std::vector<int64_t>& idx, int64_t flat) {
        int64_t src = 0;
        for (size_t d = 0; d < x.shape.size(); ++d)
          src += (x.shape[d] == 1 ? 0 : idx[d + offset]) * xs[d];
        out.data[flat] = x.data[src];
      });
      return out;
    };
    t["kiln.reshape"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      out.data = in[0]->data;
      return out;
    };
    // The identity: the interpreter's results are copies made at the return, so it starts no
    // collective; the caller starts every bucket that the graph did not.
    t["kiln.collective_start"] = [](Operation*, const Operands& in) { return *in[0]; };
    t["kiln.transpose"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      auto perm = i64s(op, "permutation");
      auto xs = stridesOf(in[0]->shape);
      forEachIndex(out.shape, [&](const std::vector<int64_t>& idx, int64_t flat) {
        int64_t src = 0;
        for (size_t d = 0; d < perm.size(); ++d) src += idx[d] * xs[perm[d]];
        out.data[flat] = in[0]->data[src];
      });
      return out;
    };
    t["kiln.slice"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      auto start = i64s(op, "start"), step = i64s(op, "step");
      auto xs = stridesOf(in[0]->shape);
      forEachIndex(out.shape, [&](const std::vector<int64_t>& idx, int64_t flat) {
        int64_t src = 0;
        for (size_t d = 0; d < idx.size(); ++d) src += (start[d] + idx[d] * step[d]) * xs[d];
        out.data[flat] = in[0]->data[src];
      });
      return out;
    };
    t["kiln.pad"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      auto low = i64s(op, "low"), interior = i64s(op, "interior");
      std::fill(out.data.begin(), out.data.end(), cast<ir::PadOp>(op).getValue().convertToDouble());
      auto os = stridesOf(out.shape);
      forEachIndex(in[0]->shape, [&](const std::vector<int64_t>& idx, int64_t flat) {
        int64_t dst = 0;
        for (size_t d = 0; d < idx.size(); ++d) dst += (low[d] + idx[d] * (interior[d] + 1)) * os[d];
        out.data[dst] = in[0]->data[flat];
      });
      return out;
    };
    t["kiln.reverse"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      auto dims = i64s(op, "dimensions");
      auto xs = stridesOf(in[0]->shape);
      forEachIndex(out.shape, [&](const std::vector<int64_t>& idx, int64_t flat) {
        int64_t src = 0;
        for (size_t d = 0; d < idx.size(); ++d) {
          bool rev = std::find(dims.begin(), dims.end(), (int64_t)d) != dims.end();
          src += (rev ? out.shape[d] - 1 - idx[d] : idx[d]) * xs[d];
        }
        out.data[flat] = in[0]->data[src];
      });
      return out;
    };
    t["kiln.concat"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      int64_t axis = cast<ir::ConcatOp>(op).getAxis();
      auto os = stridesOf(out.shape);
      int64_t offset = 0;
      for (const Tensor* x : in) {
        forEachIndex(x->shape, [&](const std::vector<int64_t>& idx, int64_t flat) {
          int64_t dst = 0;
          for (size_t d = 0; d < idx.size(); ++d) dst += (idx[d] + ((int64_t)d == axis ? offset : 0)) * os[d];
          out.data[dst] = x->data[flat];
        });
        offset += x->shape[axis];
      }
      return out;
    };
    auto reduce = [](bool isMax) {
      return [isMax](Operation* op, const Operands& in) {
        Tensor out = makeTensor(op->getResult(0));
        auto axes = i64s(op, "axes");
        const Tensor& x = *in[0];
        std::fill(out.data.begin(), out.data.end(), isMax ? -std::numeric_limits<double>::infinity() : 0.0);
        // Output index: the non-reduced dims of x in order (keepdims does not change the flat layout).
        Shape kept;
        for (size_t d = 0; d < x.shape.size(); ++d)
          kept.push_back(std::find(axes.begin(), axes.end(), (int64_t)d) != axes.end() ? 1 : x.shape[d]);
        auto ks = stridesOf(kept);
        forEachIndex(x.shape, [&](const std::vector<int64_t>& idx, int64_t flat) {
          int64_t dst = 0;
          for (size_t d = 0; d < idx.size(); ++d) dst += (kept[d] == 1 ? 0 : idx[d]) * ks[d];
          double v = x.data[flat];
          // max propagates NaN (arith.maximumf, NumPy's max).
          out.data[dst] = isMax ? (std::isnan(v) || v > out.data[dst] ? v : out.data[dst]) : out.data[dst] + v;
        });
        return out;
      };
    };
    t["kiln.reduce_sum"] = reduce(false);
    t["kiln.reduce_max"] = reduce(true);
    t["kiln.argmax"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      int64_t axis = cast<ir::ArgmaxOp>(op).getAxis();
      const Tensor& x = *in[0];
      int64_t n = x.shape[axis], inner = stridesOf(x.shape)[axis];
      for (int64_t o = 0; o < out.size(); ++o) {
        int64_t outer = o / inner, i = o % inner, base = outer * n * inner + i, best = 0;
        // The first maximum, or the first NaN (NumPy's argmax).
        for (int64_t k = 1; k < n && !std::isnan(x.data[base + best * inner]); ++k)
          if (std::isnan(x.data[base + k * inner]) || x.data[base + k * inner] > x.data[base + best * inner])
            best = k;
        out.data[o] = static_cast<double>(best);
      }
      return out;
    };
    t["kiln.dim_size"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      double product = 1;
      for (int64_t d : cast<ir::DimSizeOp>(op).getDims()) product *= static_cast<double>(in[0]->shape[d]);
      out.data[0] = product;
      return out;
    };
    t["kiln.matmul"] = evalMatmul;
    t["kiln.conv2d"] = [](Operation* op, const Operands& in) {
      auto conv = cast<ir::Conv2DOp>(op);
      Tensor out = makeTensor(conv.getResult());
      forEachConvTap(conv, in[0]->shape, in[1]->shape, out.shape,
                     [&](int64_t xi, int64_t wi, int64_t yi) { out.data[yi] += in[0]->data[xi] * in[1]->data[wi]; });
      return out;
    };
    t["kiln.conv2d_grad_input"] = [](Operation* op, const Operands& in) {
      auto conv = cast<ir::Conv2DGradInputOp>(op);
      Tensor out = makeTensor(conv.getResult());
      forEachConvTap(conv, out.shape, in[1]->shape, in[0]->shape,
                     [&](int64_t xi, int64_t wi, int64_t yi) { out.data[xi] += in[0]->data[yi] * in[1]->data[wi]; });
      return out;
    };
    t["kiln.conv2d_grad_filter"] = [](Operation* op, const Operands& in) {
      auto conv = cast<ir::Conv2DGradFilterOp>(op);
      Tensor out = makeTensor(conv.getResult());
      forEachConvTap(conv, in[0]->shape, out.shape, in[1]->shape,
                     [&](int64_t xi, int64_t wi, int64_t yi) { out.data[wi] += in[0]->data[xi] * in[1]->data[yi]; });
      return out;
    };
    t["kiln.pool2d"] = [](Operation* op, const Operands& in) {
      auto pool = cast<ir::Pool2DOp>(op);
      Tensor out = makeTensor(pool.getResult());
      auto k = pool.getKsize(), s = pool.getStride(), p = pool.getPad();
      if (pool.getKind() == "max") {
        auto arg = poolArgmax(*in[0], out.shape, k, s, p);
        for (int64_t i = 0; i < out.size(); ++i)
          out.data[i] = arg[i] < 0 ? -std::numeric_limits<double>::infinity() : in[0]->data[arg[i]];
      } else {
        forEachPoolTap(in[0]->shape, out.shape, k, s, p, [&](int64_t xi, int64_t yi) { out.data[yi] += in[0]->data[xi]; });
        for (double& v : out.data) v /= static_cast<double>(k[0] * k[1]);
      }
      return out;
    };
    t["kiln.pool2d_grad"] = [](Operation* op, const Operands& in) {
      auto pool = cast<ir::Pool2DGradOp>(op);
      Tensor out = makeTensor(pool.getResult());
      auto k = pool.getKsize(), s = pool.getStride(), p = pool.getPad();
      const Tensor& gy = *in[1];
      if (pool.getKind() == "max") {
        auto arg = poolArgmax(*in[0], gy.shape, k, s, p);
        for (int64_t i = 0; i < gy.size(); ++i)
          if (arg[i] >= 0) out.data[arg[i]] += gy.data[i];
      } else {
        double scale = 1.0 / static_cast<double>(k[0] * k[1]);
        forEachPoolTap(in[0]->shape, gy.shape, k, s, p, [&](int64_t xi, int64_t yi) { out.data[xi] += gy.data[yi] * scale; });
      }
      return out;
    };
    t["kiln.gather"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      const Tensor &table = *in[0], &ids = *in[1];
      int64_t rows = table.shape[0], width = table.shape[1];
      for (int64_t i = 0; i < ids.size(); ++i) {
        // Clamped, as compiled code does; the kiln.check_range in front reports it.
        int64_t id = std::clamp<int64_t>(static_cast<int64_t>(ids.data[i]), 0, std::max<int64_t>(rows - 1, 0));
        for (int64_t j = 0; j < width; ++j) out.data[i * width + j] = table.data[id * width + j];
      }
      return out;
    };
    t["kiln.scatter_add"] = [](Operation* op, const Operands& in) {
      Tensor out = makeTensor(op->getResult(0));
      const Tensor &ids = *in[0], &upd = *in[1];
      if (in.size() > 2) out.data = in[2]->data;  // the base
      int64_t rows = out.shape[0], width = out.shape[1];
      for (int64_t i = 0; i < ids.size(); ++i) {
        auto id = static_cast<int64_t>(ids.data[i]);
        if (id < 0 || id >= rows) continue;
        for (int64_t j = 0; j < width; ++j) out.data[id * width + j] += upd.data[i * width + j];
      }
      return out;
    };
    return t;
  }();
  return table;
}

// kiln.check_range's status: [flat index, value] of the first element of x
// outside [0, limit) and not `ignore`, or [-1, 0].
Tensor checkRangeStatus(ir::CheckRangeOp op, const Tensor& x) {
  Tensor status = makeTensor(op.getStatus());
  status.data = {-1.0, 0.0};
  auto limit = static_cast<int64_t>(op.getLimit());  // I64Attr's getters are unsigned
  std::optional<int64_t> ignore;
  if (op.getIgnore()) ignore = static_cast<int64_t>(*op.getIgnore());
  for (int64_t i = 0; i < x.size(); ++i) {
    auto v = static_cast<int64_t>(x.data[i]);
    if ((v < 0 || v >= limit) && (!ignore || v != *ignore)) {
      status.data = {static_cast<double>(i), static_cast<double>(v)};
      break;
    }
  }
  return status;
}

}  // namespace

std::vector<Array> run(func::FuncOp func, const std::vector<Array>& args) {
  Block& body = func.getBody().front();
  if (body.getNumArguments() != args.size())
    throw Error(fmt::format("kiln interp: function takes {} arguments, got {}", body.getNumArguments(), args.size()));
  std::unordered_map<void*, Tensor> values;
  for (size_t i = 0; i < args.size(); ++i) {
    Tensor t = makeTensor(body.getArgument(i));
    if (t.shape != args[i].shape())
      throw Error(fmt::format("kiln interp: argument {} has shape {}, expected {}", i,
                              shape_str(args[i].shape()), shape_str(t.shape)));
    for (int64_t j = 0; j < t.size(); ++j) t.data[j] = args[i].at(j);
    values[body.getArgument(i).getAsOpaquePointer()] = std::move(t);
  }
  const auto& table = evaluators();
  for (Operation& op : body) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      std::vector<Array> results;
      for (Value v : ret.getOperands()) {
        const Tensor& t = values.at(v.getAsOpaquePointer());
        Array a(t.shape, t.dtype);
        for (int64_t j = 0; j < t.size(); ++j) a.set(j, t.data[j]);
        results.push_back(std::move(a));
      }
      return results;
    }
    if (auto check = dyn_cast<ir::CheckRangeOp>(op)) {  // two results: x itself and the status
      const Tensor& x = values.at(check.getX().getAsOpaquePointer());
      Tensor status = checkRangeStatus(check, x);
      values[check.getResult().getAsOpaquePointer()] = x;
      values[check.getStatus().getAsOpaquePointer()] = std::move(status);
      continue;
    }
    Operands operands;
    for (Value v : op.getOperands()) operands.push_back(&values.at(v.getAsOpaquePointer()));
    auto it = table.find(op.getName().getStringRef());
    bool elementwise = isa<ir::ScalarOpInterface>(op);
    if (!elementwise && it == table.end())
      throw Error(("kiln interp: op '" + op.getName().getStringRef() + "' is not supported by the interpreter").str());
    Tensor out;
    try {
      out = elementwise ? evalScalarOp(&op, operands) : it->second(&op, operands);
    } catch (const Error& e) {
      // Name the user's call site when the op carries one.
      if (auto loc = dyn_cast<FileLineColLoc>(op.getLoc()))
        throw Error(fmt::format("{}:{}: {}", loc.getFilename().str(), loc.getLine(), e.what()));
      throw;
    }
    roundTo(out);
    values[op.getResult(0).getAsOpaquePointer()] = std::move(out);
  }
  throw Error("kiln interp: function has no return");
}

}  // namespace kiln::interp
