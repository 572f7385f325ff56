// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// Every op prints and parses back to itself.

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // CHECK: kiln.add %{{.*}}, %{{.*}} : tensor<2x3xf32>
  %0 = kiln.add %a, %b : tensor<2x3xf32>
  // CHECK: kiln.sub
  %1 = kiln.sub %0, %b : tensor<2x3xf32>
  // CHECK: kiln.mul
  %2 = kiln.mul %1, %b : tensor<2x3xf32>
  // CHECK: kiln.div
  %3 = kiln.div %2, %b : tensor<2x3xf32>
  // CHECK: kiln.max
  %4 = kiln.max %3, %b : tensor<2x3xf32>
  // CHECK: kiln.min
  %5 = kiln.min %4, %b : tensor<2x3xf32>
  // CHECK: kiln.pow
  %6 = kiln.pow %5, %b : tensor<2x3xf32>
  // CHECK: kiln.neg %{{.*}} : tensor<2x3xf32>
  %7 = kiln.neg %6 : tensor<2x3xf32>
  // CHECK: kiln.exp
  %8 = kiln.exp %7 : tensor<2x3xf32>
  // CHECK: kiln.log
  %9 = kiln.log %8 : tensor<2x3xf32>
  // CHECK: kiln.relu
  %10 = kiln.relu %9 : tensor<2x3xf32>
  // CHECK: kiln.sqrt
  %11 = kiln.sqrt %10 : tensor<2x3xf32>
  // CHECK: kiln.tanh
  %12 = kiln.tanh %11 : tensor<2x3xf32>
  // CHECK: kiln.sigmoid
  %13 = kiln.sigmoid %12 : tensor<2x3xf32>
  // CHECK: kiln.abs
  %14 = kiln.abs %13 : tensor<2x3xf32>
  // CHECK: kiln.sign
  %15 = kiln.sign %14 : tensor<2x3xf32>
  // CHECK: kiln.log1p
  %16 = kiln.log1p %15 : tensor<2x3xf32>
  // CHECK: kiln.expm1
  %17 = kiln.expm1 %16 : tensor<2x3xf32>
  // CHECK: kiln.erf
  %18 = kiln.erf %17 : tensor<2x3xf32>
  // CHECK: kiln.compare "lt", %{{.*}}, %{{.*}} : tensor<2x3xf32>
  %19 = kiln.compare "lt", %18, %a : tensor<2x3xf32>
  // CHECK: kiln.select %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x3xi1>, tensor<2x3xf32>
  %20 = kiln.select %19, %18, %a : tensor<2x3xi1>, tensor<2x3xf32>
  return %20 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<3xf64>, %m: tensor<2x3xi32>) -> (tensor<2x3xf64>, tensor<3x2xf64>, tensor<6xi32>, tensor<2x3xf32>) {
  // CHECK: kiln.constant dense<1.000000e+00> : tensor<2x3xf64>
  %c = kiln.constant dense<1.0> : tensor<2x3xf64>
  // CHECK: kiln.broadcast_to %{{.*}} : tensor<3xf64> -> tensor<2x3xf64>
  %b = kiln.broadcast_to %x : tensor<3xf64> -> tensor<2x3xf64>
  %s = kiln.add %b, %c : tensor<2x3xf64>
  // CHECK: kiln.transpose %{{.*}}, [1, 0] : tensor<2x3xf64> -> tensor<3x2xf64>
  %t = kiln.transpose %s, [1, 0] : tensor<2x3xf64> -> tensor<3x2xf64>
  // CHECK: kiln.reshape %{{.*}} : tensor<2x3xi32> -> tensor<6xi32>
  %r = kiln.reshape %m : tensor<2x3xi32> -> tensor<6xi32>
  // CHECK: kiln.cast %{{.*}} : tensor<2x3xi32> -> tensor<2x3xf32>
  %f = kiln.cast %m : tensor<2x3xi32> -> tensor<2x3xf32>
  return %s, %t, %r, %f : tensor<2x3xf64>, tensor<3x2xf64>, tensor<6xi32>, tensor<2x3xf32>
}

// CHECK-LABEL: func.func @reductions_and_matmul
func.func @reductions_and_matmul(%a: tensor<4x2x3xf32>, %b: tensor<4x3x5xf32>) -> (tensor<4x2x5xf32>, tensor<4x1x5xf32>, tensor<f32>, tensor<4x5xi32>) {
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<4x2x3xf32>, tensor<4x3x5xf32> -> tensor<4x2x5xf32>
  %m = kiln.matmul %a, %b : tensor<4x2x3xf32>, tensor<4x3x5xf32> -> tensor<4x2x5xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} {transpose_a} : tensor<4x3x2xf32>
  %at = kiln.transpose %a, [0, 2, 1] : tensor<4x2x3xf32> -> tensor<4x3x2xf32>
  %m2 = kiln.matmul %at, %b {transpose_a} : tensor<4x3x2xf32>, tensor<4x3x5xf32> -> tensor<4x2x5xf32>
  // CHECK: kiln.reduce_sum %{{.*}}, [1] keepdims : tensor<4x2x5xf32> -> tensor<4x1x5xf32>
  %s = kiln.reduce_sum %m2, [1] keepdims : tensor<4x2x5xf32> -> tensor<4x1x5xf32>
  // CHECK: kiln.reduce_max %{{.*}}, [0, 1, 2] : tensor<4x2x5xf32> -> tensor<f32>
  %x = kiln.reduce_max %m, [0, 1, 2] : tensor<4x2x5xf32> -> tensor<f32>
  // CHECK: kiln.argmax %{{.*}}, 1 : tensor<4x2x5xf32> -> tensor<4x5xi32>
  %i = kiln.argmax %m, 1 : tensor<4x2x5xf32> -> tensor<4x5xi32>
  return %m, %s, %x, %i : tensor<4x2x5xf32>, tensor<4x1x5xf32>, tensor<f32>, tensor<4x5xi32>
}

// CHECK-LABEL: func.func @data_movement
func.func @data_movement(%x: tensor<4x6xf32>, %ids: tensor<3xi32>) -> (tensor<2x2xf32>, tensor<9x6xf32>, tensor<4x6xf32>, tensor<8x6xf32>, tensor<3x6xf32>, tensor<4x6xf32>) {
  // CHECK: kiln.slice %{{.*}} {limit = array<i64: 4, 6>, start = array<i64: 1, 0>, step = array<i64: 2, 3>}
  %s = kiln.slice %x {start = array<i64: 1, 0>, limit = array<i64: 4, 6>, step = array<i64: 2, 3>} : tensor<4x6xf32> -> tensor<2x2xf32>
  // CHECK: kiln.pad
  %p = kiln.pad %x {low = array<i64: 1, 0>, high = array<i64: 1, 0>, interior = array<i64: 1, 0>, value = 0.0 : f64} : tensor<4x6xf32> -> tensor<9x6xf32>
  // CHECK: kiln.reverse %{{.*}}, [0] : tensor<4x6xf32>
  %r = kiln.reverse %x, [0] : tensor<4x6xf32>
  // CHECK: kiln.concat %{{.*}}, %{{.*}} {axis = 0 : i64} : tensor<4x6xf32>, tensor<4x6xf32> -> tensor<8x6xf32>
  %c = kiln.concat %x, %r {axis = 0 : i64} : tensor<4x6xf32>, tensor<4x6xf32> -> tensor<8x6xf32>
  // CHECK: kiln.gather %{{.*}}, %{{.*}} : tensor<4x6xf32>, tensor<3xi32> -> tensor<3x6xf32>
  %g = kiln.gather %x, %ids : tensor<4x6xf32>, tensor<3xi32> -> tensor<3x6xf32>
  // CHECK: kiln.scatter_add %{{.*}}, %{{.*}} : tensor<3xi32>, tensor<3x6xf32> -> tensor<4x6xf32>
  %sa = kiln.scatter_add %ids, %g : tensor<3xi32>, tensor<3x6xf32> -> tensor<4x6xf32>
  // CHECK: kiln.scatter_add %{{.*}}, %{{.*}} base(%{{.*}}) : tensor<3xi32>, tensor<3x6xf32>, tensor<4x6xf32> -> tensor<4x6xf32>
  %sb = kiln.scatter_add %ids, %g base(%sa) : tensor<3xi32>, tensor<3x6xf32>, tensor<4x6xf32> -> tensor<4x6xf32>
  return %s, %p, %r, %c, %g, %sb : tensor<2x2xf32>, tensor<9x6xf32>, tensor<4x6xf32>, tensor<8x6xf32>, tensor<3x6xf32>, tensor<4x6xf32>
}

// CHECK-LABEL: func.func @cnn
func.func @cnn(%x: tensor<2x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> (tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<2x4x4x4xf32>) {
  // CHECK: kiln.conv2d %{{.*}}, %{{.*}} {pad = array<i64: 1, 1>, stride = array<i64: 1, 1>}
  %y = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x4x8x8xf32>
  // CHECK: kiln.conv2d_grad_input
  %gx = kiln.conv2d_grad_input %y, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<2x4x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x3x8x8xf32>
  // CHECK: kiln.conv2d_grad_filter
  %gw = kiln.conv2d_grad_filter %x, %y {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<2x3x8x8xf32>, tensor<2x4x8x8xf32> -> tensor<4x3x3x3xf32>
  // CHECK: kiln.pool2d "max", %{{.*}} {ksize = array<i64: 2, 2>, pad = array<i64: 0, 0>, stride = array<i64: 2, 2>}
  %p = kiln.pool2d "max", %y {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<2x4x8x8xf32> -> tensor<2x4x4x4xf32>
  // CHECK: kiln.pool2d_grad "avg"
  %pg = kiln.pool2d_grad "avg", %y, %p {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<2x4x8x8xf32>, tensor<2x4x4x4xf32> -> tensor<2x4x8x8xf32>
  return %gx, %gw, %p : tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<2x4x4x4xf32>
}

// CHECK-LABEL: func.func @generators_and_grad
func.func @generators_and_grad(%x: tensor<3xf32>, %key: tensor<2xi64>) -> (tensor<2x3xi32>, tensor<4xf32>, tensor<3xf32>) {
  // CHECK: kiln.iota dim = 1 : tensor<2x3xi32>
  %i = kiln.iota dim = 1 : tensor<2x3xi32>
  // CHECK: kiln.rng_uniform %{{.*}} : tensor<2xi64> -> tensor<4xf32>
  %r = kiln.rng_uniform %key : tensor<2xi64> -> tensor<4xf32>
  %y = kiln.reduce_sum %x, [0] : tensor<3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  // CHECK: kiln.grad %{{.*}}, %{{.*}}, %{{.*}} : tensor<f32>, tensor<3xf32>
  %g = kiln.grad %y, %one, %x : tensor<f32>, tensor<3xf32>
  return %i, %r, %g : tensor<2x3xi32>, tensor<4xf32>, tensor<3xf32>
}

// A symbolic batch dimension (`?`): type inference keeps it through the ops.
// CHECK-LABEL: func.func @symbolic_batch
func.func @symbolic_batch(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>) -> (tensor<?x3xf32>, tensor<f32>, tensor<?x2xf32>) {
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} {transpose_b} : tensor<?x4xf32>, tensor<3x4xf32> -> tensor<?x3xf32>
  %y = kiln.matmul %x, %w {transpose_b} : tensor<?x4xf32>, tensor<3x4xf32> -> tensor<?x3xf32>
  // CHECK: kiln.dim_size %{{.*}}, [0, 1] : tensor<?x3xf32> -> tensor<f32>
  %n = kiln.dim_size %y, [0, 1] : tensor<?x3xf32> -> tensor<f32>
  // CHECK: kiln.reshape %{{.*}} : tensor<?x4xf32> -> tensor<?x2x2xf32>
  %r = kiln.reshape %x : tensor<?x4xf32> -> tensor<?x2x2xf32>
  // A dynamic dimension is sliced whole: limit ? (-9223372036854775808).
  %s = kiln.slice %x {start = array<i64: 0, 1>, limit = array<i64: -9223372036854775808, 3>, step = array<i64: 1, 1>} : tensor<?x4xf32> -> tensor<?x2xf32>
  return %y, %n, %s : tensor<?x3xf32>, tensor<f32>, tensor<?x2xf32>
}

// CHECK-LABEL: func.func @check_range
func.func @check_range(%t: tensor<?xi32>, %x: tensor<2x3xi64>) -> (tensor<?xi32>, tensor<2xi64>, tensor<2x3xi64>, tensor<2xi64>) {
  // CHECK: %{{.*}}, %{{.*}} = kiln.check_range %{{.*}}, limit = 10, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<?xi32>
  %r, %s = kiln.check_range %t, limit = 10, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<?xi32>
  // CHECK: kiln.check_range %{{.*}}, limit = 4 {function = "embed_id", operand = "x"} : tensor<2x3xi64>
  %r2, %s2 = kiln.check_range %x, limit = 4 {function = "embed_id", operand = "x"} : tensor<2x3xi64>
  return %r, %s, %r2, %s2 : tensor<?xi32>, tensor<2xi64>, tensor<2x3xi64>, tensor<2xi64>
}
