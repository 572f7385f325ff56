// kiln::links (L) for neural networks: convolution, deconvolution, normalization, embeddings.
#pragma once
#include <optional>

#include "kiln/functions.h"
#include "kiln/link.h"

namespace kiln::links {

// 2-d convolution. W: (out_channels, in_channels/groups, kh, kw), LeCunNormal; b: (out_channels,),
// zeros. in_channels -1 (Chainer's None) infers it from the first input. dilate and groups as
// in F::convolution_2d; both channel counts must be divisible by groups.
class Convolution2D : public Link {
 public:
  // Chainer's short form Convolution2D(out_channels, ksize): in_channels inferred.
  Convolution2D(int64_t out_channels, Pair ksize);
  Convolution2D(int64_t in_channels, int64_t out_channels, Pair ksize, Pair stride = 1, Pair pad = 0,
                bool nobias = false, Parameter::Initializer initialW = nullptr,
                Parameter::Initializer initial_bias = nullptr, Pair dilate = 1, int64_t groups = 1);
  Variable operator()(const Variable& x) const;
  Variable forward(const Variable& x) const { return (*this)(x); }

  Parameter W, b;
  int64_t in_channels = -1, out_channels = 0;
  Pair ksize = 1, stride = 1, pad = 0, dilate = 1;
  int64_t groups = 1;
  bool nobias = false;

 private:
  void init(Parameter::Initializer initialW, Parameter::Initializer initial_bias);
};

// 2-d transposed convolution. W: (in_channels, out_channels/groups, kh, kw); b: (out_channels,).
// dilate and groups as in F::deconvolution_2d.
class Deconvolution2D : public Link {
 public:
  Deconvolution2D(int64_t out_channels, Pair ksize);
  Deconvolution2D(int64_t in_channels, int64_t out_channels, Pair ksize, Pair stride = 1, Pair pad = 0,
                  bool nobias = false, std::optional<Pair> outsize = std::nullopt,
                  Parameter::Initializer initialW = nullptr, Parameter::Initializer initial_bias = nullptr,
                  Pair dilate = 1, int64_t groups = 1);
  Variable operator()(const Variable& x) const;
  Variable forward(const Variable& x) const { return (*this)(x); }

  Parameter W, b;
  int64_t in_channels = -1, out_channels = 0;
  Pair ksize = 1, stride = 1, pad = 0, dilate = 1;
  int64_t groups = 1;
  std::optional<Pair> outsize;
  bool nobias = false;

 private:
  void init(Parameter::Initializer initialW, Parameter::Initializer initial_bias);
};

// Batch normalization over every axis except 1. Parameters gamma (ones) and beta (zeros) of
// shape (size,); persistents avg_mean (zeros), avg_var (ones) and N (0). In train mode
// (config().train) it normalizes with the batch statistics and updates the running ones:
// avg = decay * avg + (1 - decay) * stat, with the unbiased variance (m / (m - 1)). Otherwise
// it uses avg_mean and avg_var.
class BatchNormalization : public Link {
 public:
  explicit BatchNormalization(int64_t size, double decay = 0.9, double eps = 2e-5, DType dtype = DType::f32);
  Variable operator()(const Variable& x) const;
  Variable forward(const Variable& x) const { return (*this)(x); }

  Parameter gamma, beta;
  Variable avg_mean, avg_var, N;
  int64_t size = 0;
  double decay = 0.9, eps = 2e-5;
};

// Word embeddings. W: (in_size, out_size), Normal(1.0). Ids equal to ignore_label give zero rows.
class EmbedID : public Link {
 public:
  EmbedID(int64_t in_size, int64_t out_size, std::optional<int64_t> ignore_label = std::nullopt,
          Parameter::Initializer initialW = nullptr);
  // Chainer's argument order: EmbedID(in_size, out_size, initialW, ignore_label).
  EmbedID(int64_t in_size, int64_t out_size, Parameter::Initializer initialW,
          std::optional<int64_t> ignore_label = std::nullopt);
  Variable operator()(const Variable& x) const;
  Variable forward(const Variable& x) const { return (*this)(x); }

  Parameter W;
  int64_t in_size = 0, out_size = 0;
  std::optional<int64_t> ignore_label;
};

// Layer normalization of (N, size) inputs. gamma: ones, beta: zeros, both (size,).
// eps defaults to Chainer's L.LayerNormalization default, 1e-6.
class LayerNormalization : public Link {
 public:
  explicit LayerNormalization(int64_t size, double eps = 1e-6);
  Variable operator()(const Variable& x) const;
  Variable forward(const Variable& x) const { return (*this)(x); }

  Parameter gamma, beta;
  int64_t size = 0;
  double eps = 1e-6;
};

}  // namespace kiln::links
