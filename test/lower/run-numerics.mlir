// RUN: kiln-opt %s -kiln-lower-to-linalg \
// RUN: | mlir-opt --one-shot-bufferize="bufferize-function-boundaries" --convert-linalg-to-loops --lower-affine \
// RUN:     --convert-scf-to-cf --convert-math-to-libm --convert-math-to-llvm \
// RUN:     --expand-strided-metadata --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=/usr/lib/llvm-22/lib/libmlir_runner_utils.so,/usr/lib/llvm-22/lib/libmlir_c_runner_utils.so \
// RUN: | FileCheck %s
// Runs lowered kiln ops through upstream MLIR and checks hand-computed values
// (the interpreter's semantics: first max wins, -inf max padding, Philox bits).

func.func private @printMemrefF32(tensor<*xf32>)

func.func @print2(%t: tensor<?x?xf32>) {
  %u = tensor.cast %t : tensor<?x?xf32> to tensor<*xf32>
  call @printMemrefF32(%u) : (tensor<*xf32>) -> ()
  return
}

func.func @main() {
  // CHECK: [17, 23]
  // CHECK-NEXT: [39, 53]
  %a = kiln.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %b = kiln.constant dense<[[5.0, 6.0], [7.0, 8.0]]> : tensor<2x2xf32>
  %mm = kiln.matmul %a, %b {transpose_b} : tensor<2x2xf32>, tensor<2x2xf32> -> tensor<2x2xf32>
  %mm_d = tensor.cast %mm : tensor<2x2xf32> to tensor<?x?xf32>
  call @print2(%mm_d) : (tensor<?x?xf32>) -> ()

  // conv2d_grad_input, stride 2: the filter scaled by each gy value, no overlap.
  // CHECK: [1, 10, 2, 20]
  // CHECK-NEXT: [100, 1000, 200, 2000]
  // CHECK-NEXT: [3, 30, 4, 40]
  // CHECK-NEXT: [300, 3000, 400, 4000]
  %gy = kiln.constant dense<[[[[1.0, 2.0], [3.0, 4.0]]]]> : tensor<1x1x2x2xf32>
  %w = kiln.constant dense<[[[[1.0, 10.0], [100.0, 1000.0]]]]> : tensor<1x1x2x2xf32>
  %gx = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32> -> tensor<1x1x4x4xf32>
  %gx2 = kiln.reshape %gx : tensor<1x1x4x4xf32> -> tensor<4x4xf32>
  %gx_d = tensor.cast %gx2 : tensor<4x4xf32> to tensor<?x?xf32>
  call @print2(%gx_d) : (tensor<?x?xf32>) -> ()

  // conv2d_grad_filter: sums of 2x2 windows of 1..9.
  // CHECK: [12, 16]
  // CHECK-NEXT: [24, 28]
  %x9 = kiln.constant dense<[[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]]> : tensor<1x1x3x3xf32>
  %ones = kiln.constant dense<1.0> : tensor<1x1x2x2xf32>
  %gw = kiln.conv2d_grad_filter %x9, %ones {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x1x3x3xf32>, tensor<1x1x2x2xf32> -> tensor<1x1x2x2xf32>
  %gw2 = kiln.reshape %gw : tensor<1x1x2x2xf32> -> tensor<2x2xf32>
  %gw_d = tensor.cast %gw2 : tensor<2x2xf32> to tensor<?x?xf32>
  call @print2(%gw_d) : (tensor<?x?xf32>) -> ()

  // conv2d with padding 1: the 3x3 all-ones filter sums each 3x3 neighbourhood.
  // CHECK: [12, 21, 16]
  // CHECK-NEXT: [27, 45, 33]
  // CHECK-NEXT: [24, 39, 28]
  %ones3 = kiln.constant dense<1.0> : tensor<1x1x3x3xf32>
  %cv = kiln.conv2d %x9, %ones3 {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<1x1x3x3xf32>, tensor<1x1x3x3xf32> -> tensor<1x1x3x3xf32>
  %cv2 = kiln.reshape %cv : tensor<1x1x3x3xf32> -> tensor<3x3xf32>
  %cv_d = tensor.cast %cv2 : tensor<3x3xf32> to tensor<?x?xf32>
  call @print2(%cv_d) : (tensor<?x?xf32>) -> ()

  // Max pooling gradient goes to the first maximum of each window; avg pooling divides by 4.
  // CHECK: [10, 0, 0, 20]
  // CHECK-NEXT: [0, 0, 0, 0]
  // CHECK: [4.25, 3.75]
  %px = kiln.constant dense<[[[[5.0, 5.0, 1.0, 7.0], [2.0, 5.0, 7.0, 0.0]]]]> : tensor<1x1x2x4xf32>
  %pgy = kiln.constant dense<[[[[10.0, 20.0]]]]> : tensor<1x1x1x2xf32>
  %pg = kiln.pool2d_grad "max", %px, %pgy {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<1x1x2x4xf32>, tensor<1x1x1x2xf32> -> tensor<1x1x2x4xf32>
  %pg2 = kiln.reshape %pg : tensor<1x1x2x4xf32> -> tensor<2x4xf32>
  %pg_d = tensor.cast %pg2 : tensor<2x4xf32> to tensor<?x?xf32>
  call @print2(%pg_d) : (tensor<?x?xf32>) -> ()
  %avg = kiln.pool2d "avg", %px {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<1x1x2x4xf32> -> tensor<1x1x1x2xf32>
  %avg2 = kiln.reshape %avg : tensor<1x1x1x2xf32> -> tensor<1x2xf32>
  %avg_d = tensor.cast %avg2 : tensor<1x2xf32> to tensor<?x?xf32>
  call @print2(%avg_d) : (tensor<?x?xf32>) -> ()

  // Max pooling with padding 1: padded taps never win.
  // CHECK: [-1, -2]
  // CHECK-NEXT: [-3, -4]
  %nx = kiln.constant dense<[[[[-1.0, -2.0], [-3.0, -4.0]]]]> : tensor<1x1x2x2xf32>
  %mp = kiln.pool2d "max", %nx {ksize = array<i64: 2, 2>, stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<1x1x2x2xf32> -> tensor<1x1x3x3xf32>
  %mp2 = kiln.slice %mp {start = array<i64: 0, 0, 0, 0>, limit = array<i64: 1, 1, 3, 3>, step = array<i64: 1, 1, 2, 2>} : tensor<1x1x3x3xf32> -> tensor<1x1x2x2xf32>
  %mp3 = kiln.reshape %mp2 : tensor<1x1x2x2xf32> -> tensor<2x2xf32>
  %mp_d = tensor.cast %mp3 : tensor<2x2xf32> to tensor<?x?xf32>
  call @print2(%mp_d) : (tensor<?x?xf32>) -> ()

  // argmax (first maximum) and reduce_max keepdims.
  // CHECK: [1, 0]
  // CHECK: [4, 3, 4]
  %r = kiln.constant dense<[[1.0, 3.0, 3.0], [4.0, -1.0, 4.0]]> : tensor<2x3xf32>
  %am = kiln.argmax %r, 1 : tensor<2x3xf32> -> tensor<2xi32>
  %amf = kiln.cast %am : tensor<2xi32> -> tensor<2xf32>
  %am2 = kiln.reshape %amf : tensor<2xf32> -> tensor<1x2xf32>
  %am_d = tensor.cast %am2 : tensor<1x2xf32> to tensor<?x?xf32>
  call @print2(%am_d) : (tensor<?x?xf32>) -> ()
  %rm = kiln.reduce_max %r, [0] keepdims : tensor<2x3xf32> -> tensor<1x3xf32>
  %rm_d = tensor.cast %rm : tensor<1x3xf32> to tensor<?x?xf32>
  call @print2(%rm_d) : (tensor<?x?xf32>) -> ()

  // gather rows, then scatter_add them back (id -1 adds nothing).
  // CHECK: [5, 6]
  // CHECK-NEXT: [1, 2]
  // CHECK-NEXT: [5, 6]
  // CHECK: [0, 0]
  // CHECK-NEXT: [6, 8]
  // CHECK-NEXT: [0, 0]
  // CHECK-NEXT: [3, 4]
  %table = kiln.constant dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
  %ids = kiln.constant dense<[2, 0, 2]> : tensor<3xi32>
  %g = kiln.gather %table, %ids : tensor<3x2xf32>, tensor<3xi32> -> tensor<3x2xf32>
  %g_d = tensor.cast %g : tensor<3x2xf32> to tensor<?x?xf32>
  call @print2(%g_d) : (tensor<?x?xf32>) -> ()
  %sids = kiln.constant dense<[1, 3, 1, -1]> : tensor<4xi64>
  %upd = kiln.constant dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]> : tensor<4x2xf32>
  %sa = kiln.scatter_add %sids, %upd : tensor<4xi64>, tensor<4x2xf32> -> tensor<4x2xf32>
  %sa_d = tensor.cast %sa : tensor<4x2xf32> to tensor<?x?xf32>
  call @print2(%sa_d) : (tensor<?x?xf32>) -> ()

  // Interior and edge padding.
  // CHECK: [9, 1, 9, 2, 9, 3, 9]
  %v = kiln.constant dense<[[1.0, 2.0, 3.0]]> : tensor<1x3xf32>
  %pd = kiln.pad %v {low = array<i64: 0, 1>, high = array<i64: 0, 1>, interior = array<i64: 0, 1>, value = 9.0 : f64} : tensor<1x3xf32> -> tensor<1x7xf32>
  %pd_d = tensor.cast %pd : tensor<1x7xf32> to tensor<?x?xf32>
  call @print2(%pd_d) : (tensor<?x?xf32>) -> ()

  // sigmoid(0), tanh(0.5), erf(1), log1p(1e-7), expm1(1e-7).
  // CHECK: [0.5, 0.462117, 0.842701, 1e-07, 1e-07]
  %e = kiln.constant dense<[[0.0, 0.5, 1.0, 1.0e-7, 1.0e-7]]> : tensor<1x5xf32>
  %e0 = kiln.slice %e {start = array<i64: 0, 0>, limit = array<i64: 1, 1>, step = array<i64: 1, 1>} : tensor<1x5xf32> -> tensor<1x1xf32>
  %e1 = kiln.slice %e {start = array<i64: 0, 1>, limit = array<i64: 1, 2>, step = array<i64: 1, 1>} : tensor<1x5xf32> -> tensor<1x1xf32>
  %e2 = kiln.slice %e {start = array<i64: 0, 2>, limit = array<i64: 1, 3>, step = array<i64: 1, 1>} : tensor<1x5xf32> -> tensor<1x1xf32>
  %e3 = kiln.slice %e {start = array<i64: 0, 3>, limit = array<i64: 1, 4>, step = array<i64: 1, 1>} : tensor<1x5xf32> -> tensor<1x1xf32>
  %e4 = kiln.slice %e {start = array<i64: 0, 4>, limit = array<i64: 1, 5>, step = array<i64: 1, 1>} : tensor<1x5xf32> -> tensor<1x1xf32>
  %s0 = kiln.sigmoid %e0 : tensor<1x1xf32>
  %s1 = kiln.tanh %e1 : tensor<1x1xf32>
  %s2 = kiln.erf %e2 : tensor<1x1xf32>
  %s3 = kiln.log1p %e3 : tensor<1x1xf32>
  %s4 = kiln.expm1 %e4 : tensor<1x1xf32>
  %un = kiln.concat %s0, %s1, %s2, %s3, %s4 {axis = 1 : i64} : tensor<1x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<1x1xf32> -> tensor<1x5xf32>
  %un_d = tensor.cast %un : tensor<1x5xf32> to tensor<?x?xf32>
  call @print2(%un_d) : (tensor<?x?xf32>) -> ()

  // Philox-4x32-10 as runtime/include/kiln/philox.h: uniform(42, 7 + i), then a
  // 40-bit seed with a counter crossing 2^32.
  // CHECK: [0.35836, 0.548009, 0.266345, 0.524626]
  // CHECK: [0.866189, 0.123573, 0.579199, 0.36152]
  %key = kiln.constant dense<[42, 7]> : tensor<2xi64>
  %u = kiln.rng_uniform %key : tensor<2xi64> -> tensor<1x4xf32>
  %u_d = tensor.cast %u : tensor<1x4xf32> to tensor<?x?xf32>
  call @print2(%u_d) : (tensor<?x?xf32>) -> ()
  %key2 = kiln.constant dense<[1099511627781, 4294967294]> : tensor<2xi64>
  %u2 = kiln.rng_uniform %key2 : tensor<2xi64> -> tensor<1x4xf32>
  %u2_d = tensor.cast %u2 : tensor<1x4xf32> to tensor<?x?xf32>
  call @print2(%u2_d) : (tensor<?x?xf32>) -> ()
  return
}
