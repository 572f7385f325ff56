// RUN: kiln-opt %s -split-input-file -kiln-fuse -kiln-lower-to-linalg | FileCheck %s
// Each kiln.fusion region -kiln-fuse decides is one kernel after lowering: its
// matmul/conv (or reduction) and ONE linalg.generic for everything elementwise
// in it, named after the region ("<index>:<kind>:<ops> (<call site>)"). The
// region's intermediates live in that generic's body only.

// An MLP training step (Linear+ReLU+Linear, squared error, SGD), as in
// test/passes/fuse.mlir: seven kernels with an epilogue, and the loss (a
// reduction over a computed input space: lowered op by op, its ops named
// after their region).
// CHECK-LABEL: func.func @mlp_train_step
// CHECK:      linalg.matmul ins(%arg0, %arg2
// CHECK-NEXT: tensor.empty() : tensor<4x5xf32>
// CHECK-NEXT: tensor.empty() : tensor<4x5xi1>
// CHECK-NEXT: %[[L1:.*]]:2 = linalg.generic {{.*}} ins(%{{.*}}, %arg3 : tensor<4x5xf32>, tensor<5xf32>) outs({{.*}} : tensor<4x5xf32>, tensor<4x5xi1>)
// CHECK-SAME:   kiln.kernel = "0:contraction:matmul+add+relu+compare
// CHECK:        arith.addf
// CHECK:        arith.cmpf ugt
// CHECK:        arith.select
// CHECK:        arith.cmpf ogt
// CHECK-NEXT:   linalg.yield %{{.*}}, %{{.*}} : f32, i1
// CHECK:      linalg.matmul ins(%[[L1]]#0, %arg4
// CHECK:      %[[L2:.*]]:2 = linalg.generic {{.*}} ins(%{{.*}}, %arg5, %arg1 : tensor<4x2xf32>, tensor<2xf32>, tensor<4x2xf32>)
// CHECK-SAME:   kiln.kernel = "1:contraction:matmul+add+sub+mul
// CHECK:      linalg.matmul {{.*}} ins(%[[L2]]#1, %arg4
// CHECK:      linalg.generic {{.*}} ins(%[[L1]]#1, %{{.*}} : tensor<4x5xi1>, tensor<4x5xf32>)
// CHECK-SAME:   kiln.kernel = "2:contraction:matmul+select
// CHECK:      linalg.matmul
// CHECK:      linalg.generic {{.*}}kiln.kernel = "3:contraction:matmul+mul+sub
// CHECK:      linalg.reduce
// CHECK:      linalg.generic {{.*}}kiln.kernel = "4:reduction:reduce_sum+mul+sub
// CHECK:      linalg.matmul
// CHECK:      linalg.generic {{.*}}kiln.kernel = "5:contraction:matmul+mul+sub
// CHECK:      linalg.reduce
// CHECK:      linalg.generic {{.*}}kiln.kernel = "6:reduction:reduce_sum+mul+sub
// CHECK:      linalg.reduce
// CHECK-NOT:  linalg.generic
// CHECK:      return
func.func @mlp_train_step(%arg0: tensor<4x3xf32>, %arg1: tensor<4x2xf32>, %arg2: tensor<3x5xf32>, %arg3: tensor<5xf32>, %arg4: tensor<5x2xf32>, %arg5: tensor<2xf32>) -> (tensor<f32>, tensor<3x5xf32>, tensor<5xf32>, tensor<5x2xf32>, tensor<2xf32>) {
  %0 = kiln.constant dense<1.000000e-01> : tensor<2xf32>
  %1 = kiln.constant dense<1.000000e-01> : tensor<5x2xf32>
  %2 = kiln.constant dense<1.000000e-01> : tensor<5xf32>
  %3 = kiln.constant dense<1.000000e-01> : tensor<3x5xf32>
  %4 = kiln.constant dense<0.000000e+00> : tensor<4x5xf32>
  %5 = kiln.constant dense<1.000000e+00> : tensor<f32>
  %6 = kiln.matmul %arg0, %arg2 : tensor<4x3xf32>, tensor<3x5xf32> -> tensor<4x5xf32>
  %7 = kiln.broadcast_to %arg3 : tensor<5xf32> -> tensor<4x5xf32>
  %8 = kiln.add %6, %7 : tensor<4x5xf32>
  %9 = kiln.relu %8 : tensor<4x5xf32>
  %10 = kiln.matmul %9, %arg4 : tensor<4x5xf32>, tensor<5x2xf32> -> tensor<4x2xf32>
  %11 = kiln.broadcast_to %arg5 : tensor<2xf32> -> tensor<4x2xf32>
  %12 = kiln.add %10, %11 : tensor<4x2xf32>
  %13 = kiln.sub %12, %arg1 : tensor<4x2xf32>
  %14 = kiln.mul %13, %13 : tensor<4x2xf32>
  %15 = kiln.reduce_sum %14, [0, 1] : tensor<4x2xf32> -> tensor<f32>
  %16 = kiln.reshape %5 : tensor<f32> -> tensor<1x1xf32>
  %17 = kiln.broadcast_to %16 : tensor<1x1xf32> -> tensor<4x2xf32>
  %18 = kiln.mul %17, %13 : tensor<4x2xf32>
  %19 = kiln.add %18, %18 : tensor<4x2xf32>
  %20 = kiln.reduce_sum %19, [0] : tensor<4x2xf32> -> tensor<2xf32>
  %21 = kiln.matmul %19, %arg4 {transpose_b} : tensor<4x2xf32>, tensor<5x2xf32> -> tensor<4x5xf32>
  %22 = kiln.matmul %9, %19 {transpose_a} : tensor<4x5xf32>, tensor<4x2xf32> -> tensor<5x2xf32>
  %23 = kiln.compare "gt", %9, %4 : tensor<4x5xf32>
  %24 = kiln.select %23, %21, %4 : tensor<4x5xi1>, tensor<4x5xf32>
  %25 = kiln.reduce_sum %24, [0] : tensor<4x5xf32> -> tensor<5xf32>
  %26 = kiln.matmul %arg0, %24 {transpose_a} : tensor<4x3xf32>, tensor<4x5xf32> -> tensor<3x5xf32>
  %27 = kiln.mul %26, %3 : tensor<3x5xf32>
  %28 = kiln.sub %arg2, %27 : tensor<3x5xf32>
  %29 = kiln.mul %25, %2 : tensor<5xf32>
  %30 = kiln.sub %arg3, %29 : tensor<5xf32>
  %31 = kiln.mul %22, %1 : tensor<5x2xf32>
  %32 = kiln.sub %arg4, %31 : tensor<5x2xf32>
  %33 = kiln.mul %20, %0 : tensor<2xf32>
  %34 = kiln.sub %arg5, %33 : tensor<2xf32>
  return %15, %28, %30, %32, %34 : tensor<f32>, tensor<3x5xf32>, tensor<5xf32>, tensor<5x2xf32>, tensor<2xf32>
}

// -----

// A conv block: conv2d (im2col + a GEMM per image) and its bias + relu epilogue as
// one generic reading the bias through the reshape's unit dimensions; max pooling
// after it is a kernel of its own.
// CHECK-LABEL: func.func @conv_block
// CHECK:      linalg.batch_matmul
// CHECK:      %[[Y:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %arg2 : tensor<2x3x6x6xf32>, tensor<3xf32>)
// CHECK-SAME:   kiln.kernel = "0:contraction:conv2d+add+relu
// CHECK:        arith.addf
// CHECK:        arith.cmpf ugt
// CHECK:        arith.select
// CHECK-NEXT:   linalg.yield
// CHECK-NOT:  kiln.
// CHECK:      return
func.func @conv_block(%x: tensor<2x2x6x6xf32>, %w: tensor<3x2x3x3xf32>, %b: tensor<3xf32>) -> tensor<2x3x3x3xf32> {
  %c = kiln.conv2d %x, %w {pad = array<i64: 1, 1>, stride = array<i64: 1, 1>} : tensor<2x2x6x6xf32>, tensor<3x2x3x3xf32> -> tensor<2x3x6x6xf32>
  %br = kiln.reshape %b : tensor<3xf32> -> tensor<3x1x1xf32>
  %bb = kiln.broadcast_to %br : tensor<3x1x1xf32> -> tensor<2x3x6x6xf32>
  %a = kiln.add %c, %bb : tensor<2x3x6x6xf32>
  %r = kiln.relu %a : tensor<2x3x6x6xf32>
  %p = kiln.pool2d "max", %r {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<2x3x6x6xf32> -> tensor<2x3x3x3xf32>
  return %p : tensor<2x3x3x3xf32>
}
