// RUN: kiln-opt %s -split-input-file -kiln-fuse | FileCheck %s
// The output parses again and a second -kiln-fuse finds nothing more to do.
// RUN: kiln-opt %s -split-input-file -kiln-fuse | kiln-opt -split-input-file | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-fuse -kiln-fuse | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-fuse=max-cloned-constant-elements=2 \
// RUN:   | FileCheck %s --check-prefix=NOCLONE
//
// Fusion groups -kiln-fuse decides. Structure: contraction regions hold one
// matmul/conv2d whose operands are region inputs, plus its elementwise
// epilogue; reduction regions hold reductions of one input type and axes with
// elementwise ops over their input or result space (softmax is ONE reduction
// region); elementwise regions hold chains of one element count with
// broadcast_to/reshape. Priority: contraction epilogues, then reductions, then
// elementwise chains.

// A Linear+ReLU+Linear training step as -kiln-autodiff -canonicalize -cse
// produces it (squared-error loss, SGD update of every parameter):
// - layer 1: matmul + bias + relu, and the relu mask the backward pass needs;
// - layer 2: matmul + bias + the loss's elementwise part and its gradient;
// - dx of layer 2: matmul + relu-mask select (the mask is reused, not recomputed);
// - dW: matmul + SGD update; db: column sum + SGD update; the loss sum alone.
// The gradient of layer 2's output (%[[L2]]#1) has three consumers in three
// groups and is computed once.
// CHECK-LABEL: func.func @fuse_mlp_train_step
// CHECK: %[[L1:.*]]:2 = kiln.fusion "contraction" ins(%arg0, %arg2, %arg3 : {{.*}}) -> (tensor<4x5xf32>, tensor<4x5xi1>) {
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   %[[ZERO:.*]] = kiln.constant dense<0.000000e+00>
// CHECK-NEXT:   kiln.matmul
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.add
// CHECK-NEXT:   %[[R:.*]] = kiln.relu
// CHECK-NEXT:   %[[MASK:.*]] = kiln.compare "gt", %[[R]], %[[ZERO]]
// CHECK-NEXT:   kiln.yield %[[R]], %[[MASK]]
// CHECK-NEXT: }
// CHECK: %[[L2:.*]]:2 = kiln.fusion "contraction" ins(%[[L1]]#0, %arg4, %arg5, %arg1 : {{.*}}) -> (tensor<4x2xf32>, tensor<4x2xf32>) {
// CHECK:        kiln.matmul
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.add
// CHECK-NEXT:   %[[D:.*]] = kiln.sub
// CHECK-NEXT:   %[[SQ:.*]] = kiln.mul %[[D]], %[[D]]
// CHECK:        %[[GY:.*]] = kiln.add
// CHECK-NEXT:   kiln.yield %[[SQ]], %[[GY]]
// CHECK: %[[DX:.*]] = kiln.fusion "contraction" ins(%[[L2]]#1, %arg4, %[[L1]]#1 : {{.*}}) -> (tensor<4x5xf32>) {
// CHECK:        kiln.matmul %{{.*}} {transpose_b}
// CHECK-NEXT:   kiln.select
// CHECK-NEXT:   kiln.yield
// CHECK: %[[NW1:.*]] = kiln.fusion "contraction" ins(%arg0, %[[DX]], %arg2 : {{.*}}) -> (tensor<3x5xf32>) {
// CHECK:        kiln.matmul %{{.*}} {transpose_a}
// CHECK-NEXT:   kiln.mul
// CHECK-NEXT:   kiln.sub
// CHECK: %[[NB1:.*]] = kiln.fusion "reduction" ins(%[[DX]], %arg3 : {{.*}}) -> (tensor<5xf32>) {
// CHECK:        kiln.reduce_sum %{{.*}}, [0]
// CHECK-NEXT:   kiln.mul
// CHECK-NEXT:   kiln.sub
// CHECK: %[[NW2:.*]] = kiln.fusion "contraction" ins(%[[L1]]#0, %[[L2]]#1, %arg4 : {{.*}}) -> (tensor<5x2xf32>) {
// CHECK: %[[NB2:.*]] = kiln.fusion "reduction" ins(%[[L2]]#1, %arg5 : {{.*}}) -> (tensor<2xf32>) {
// CHECK: %[[LOSS:.*]] = kiln.fusion "reduction" ins(%[[L2]]#0 : tensor<4x2xf32>) -> (tensor<f32>) {
// CHECK-NOT: kiln.fusion
// CHECK: return %[[LOSS]], %[[NW1]], %[[NB1]], %[[NW2]], %[[NB2]]
func.func @fuse_mlp_train_step(%arg0: tensor<4x3xf32>, %arg1: tensor<4x2xf32>, %arg2: tensor<3x5xf32>, %arg3: tensor<5xf32>, %arg4: tensor<5x2xf32>, %arg5: tensor<2xf32>) -> (tensor<f32>, tensor<3x5xf32>, tensor<5xf32>, tensor<5x2xf32>, tensor<2xf32>) {
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

// Linear + bias + ReLU + scale: one contraction region with the epilogue.
// CHECK-LABEL: func.func @fuse_matmul_bias_relu
// CHECK: %[[F:.*]] = kiln.fusion "contraction" ins(%arg0, %arg1, %arg2 : tensor<2x3xf32>, tensor<3x4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>) {
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<2x3xf32>, %[[W:.*]]: tensor<3x4xf32>, %[[B:.*]]: tensor<4xf32>):
// CHECK-NEXT:   %[[TWO:.*]] = kiln.constant dense<2.000000e+00>
// CHECK-NEXT:   %[[Y:.*]] = kiln.matmul %[[X]], %[[W]]
// CHECK-NEXT:   %[[BB:.*]] = kiln.broadcast_to %[[B]]
// CHECK-NEXT:   %[[A:.*]] = kiln.add %[[Y]], %[[BB]]
// CHECK-NEXT:   %[[R:.*]] = kiln.relu %[[A]]
// CHECK-NEXT:   %[[S:.*]] = kiln.mul %[[R]], %[[TWO]]
// CHECK-NEXT:   kiln.yield %[[S]] : tensor<2x4xf32>
// CHECK-NEXT: }
// CHECK-NEXT: return %[[F]]
func.func @fuse_matmul_bias_relu(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<2x4xf32> {
  %y = kiln.matmul %x, %w : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
  %bb = kiln.broadcast_to %b : tensor<4xf32> -> tensor<2x4xf32>
  %a = kiln.add %y, %bb : tensor<2x4xf32>
  %r = kiln.relu %a : tensor<2x4xf32>
  %c = kiln.constant dense<2.0> : tensor<2x4xf32>
  %s = kiln.mul %r, %c : tensor<2x4xf32>
  return %s : tensor<2x4xf32>
}

// -----

// conv2d + per-channel bias (reshape + broadcast) + ReLU: one contraction region.
// CHECK-LABEL: func.func @fuse_conv_bias_relu
// CHECK: kiln.fusion "contraction" ins(%arg0, %arg1, %arg2 :
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.conv2d
// CHECK-NEXT:   kiln.reshape
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.add
// CHECK-NEXT:   kiln.relu
// CHECK-NEXT:   kiln.yield
// CHECK-NOT: kiln.fusion
func.func @fuse_conv_bias_relu(%x: tensor<1x2x5x5xf32>, %w: tensor<3x2x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x3x5x5xf32> {
  %c = kiln.conv2d %x, %w {pad = array<i64: 1, 1>, stride = array<i64: 1, 1>} : tensor<1x2x5x5xf32>, tensor<3x2x3x3xf32> -> tensor<1x3x5x5xf32>
  %br = kiln.reshape %b : tensor<3xf32> -> tensor<3x1x1xf32>
  %bb = kiln.broadcast_to %br : tensor<3x1x1xf32> -> tensor<1x3x5x5xf32>
  %a = kiln.add %c, %bb : tensor<1x3x5x5xf32>
  %r = kiln.relu %a : tensor<1x3x5x5xf32>
  return %r : tensor<1x3x5x5xf32>
}

// -----

// Softmax is one reduction region: max, shift, exp, sum, normalize.
// CHECK-LABEL: func.func @fuse_softmax
// CHECK: %[[F:.*]] = kiln.fusion "reduction" ins(%arg0 : tensor<2x3xf32>) -> (tensor<2x3xf32>) {
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.reduce_max
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.sub
// CHECK-NEXT:   kiln.exp
// CHECK-NEXT:   kiln.reduce_sum
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.div
// CHECK-NEXT:   kiln.yield
// CHECK-NEXT: }
// CHECK-NEXT: return %[[F]]
func.func @fuse_softmax(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %m = kiln.reduce_max %x, [1] keepdims : tensor<2x3xf32> -> tensor<2x1xf32>
  %mb = kiln.broadcast_to %m : tensor<2x1xf32> -> tensor<2x3xf32>
  %s = kiln.sub %x, %mb : tensor<2x3xf32>
  %e = kiln.exp %s : tensor<2x3xf32>
  %z = kiln.reduce_sum %e, [1] keepdims : tensor<2x3xf32> -> tensor<2x1xf32>
  %zb = kiln.broadcast_to %z : tensor<2x1xf32> -> tensor<2x3xf32>
  %y = kiln.div %e, %zb : tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

// log_softmax too, with the log in the reduced space.
// CHECK-LABEL: func.func @fuse_log_softmax
// CHECK: kiln.fusion "reduction" ins(%arg0 : tensor<2x3xf32>) -> (tensor<2x3xf32>) {
// CHECK:   kiln.reduce_max
// CHECK:   kiln.reduce_sum
// CHECK-NEXT:   kiln.log %{{.*}} : tensor<2x1xf32>
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.sub
// CHECK-NEXT:   kiln.yield
// CHECK-NOT: kiln.fusion
func.func @fuse_log_softmax(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %m = kiln.reduce_max %x, [1] keepdims : tensor<2x3xf32> -> tensor<2x1xf32>
  %mb = kiln.broadcast_to %m : tensor<2x1xf32> -> tensor<2x3xf32>
  %s = kiln.sub %x, %mb : tensor<2x3xf32>
  %e = kiln.exp %s : tensor<2x3xf32>
  %z = kiln.reduce_sum %e, [1] keepdims : tensor<2x3xf32> -> tensor<2x1xf32>
  %l = kiln.log %z : tensor<2x1xf32>
  %lb = kiln.broadcast_to %l : tensor<2x1xf32> -> tensor<2x3xf32>
  %y = kiln.sub %s, %lb : tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

// mean = sum / n: the division joins the reduction (its result space).
// CHECK-LABEL: func.func @fuse_mean
// CHECK: kiln.fusion "reduction" ins(%arg0 : tensor<4x8xf32>) -> (tensor<4xf32>) {
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   %[[N:.*]] = kiln.constant dense<8.000000e+00>
// CHECK-NEXT:   %[[S:.*]] = kiln.reduce_sum
// CHECK-NEXT:   %[[M:.*]] = kiln.div %[[S]], %[[N]]
// CHECK-NEXT:   kiln.yield %[[M]]
func.func @fuse_mean(%x: tensor<4x8xf32>) -> tensor<4xf32> {
  %s = kiln.reduce_sum %x, [1] : tensor<4x8xf32> -> tensor<4xf32>
  %n = kiln.constant dense<8.0> : tensor<4xf32>
  %m = kiln.div %s, %n : tensor<4xf32>
  return %m : tensor<4xf32>
}

// -----

// An elementwise chain through reshape and broadcast_to is one region.
// CHECK-LABEL: func.func @fuse_elementwise_chain
// CHECK: %[[F:.*]] = kiln.fusion "elementwise" ins(%arg0, %arg2, %arg1 : tensor<6xf32>, tensor<f32>, tensor<2x3xf32>) -> (tensor<2x3xf32>) {
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.reshape
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.mul
// CHECK-NEXT:   kiln.add
// CHECK-NEXT:   kiln.tanh
// CHECK-NEXT:   kiln.yield
// CHECK-NEXT: }
// CHECK-NEXT: return %[[F]]
func.func @fuse_elementwise_chain(%x: tensor<6xf32>, %y: tensor<2x3xf32>, %s: tensor<f32>) -> tensor<2x3xf32> {
  %r = kiln.reshape %x : tensor<6xf32> -> tensor<2x3xf32>
  %sb = kiln.broadcast_to %s : tensor<f32> -> tensor<2x3xf32>
  %m = kiln.mul %r, %sb : tensor<2x3xf32>
  %a = kiln.add %m, %y : tensor<2x3xf32>
  %t = kiln.tanh %a : tensor<2x3xf32>
  return %t : tensor<2x3xf32>
}

// -----

// exp(x) feeds a reduction and a matmul: it joins the reduction (a matmul's
// operands stay region inputs), becomes a second result, and is computed once.
// CHECK-LABEL: func.func @fuse_two_consumers
// CHECK: %[[R:.*]]:2 = kiln.fusion "reduction" ins(%arg0 : tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2xf32>) {
// CHECK:   %[[E:.*]] = kiln.exp
// CHECK:   %[[S:.*]] = kiln.reduce_sum %[[E]]
// CHECK:   kiln.yield %[[E]], %[[S]]
// CHECK: %[[C:.*]] = kiln.fusion "contraction" ins(%[[R]]#0, %arg1 :
// CHECK-NOT: kiln.exp
// CHECK: return %[[R]]#1, %[[C]]
func.func @fuse_two_consumers(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>) -> (tensor<2xf32>, tensor<2x4xf32>) {
  %e = kiln.exp %x : tensor<2x3xf32>
  %s = kiln.reduce_sum %e, [1] : tensor<2x3xf32> -> tensor<2xf32>
  %y = kiln.matmul %e, %w : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
  return %s, %y : tensor<2xf32>, tensor<2x4xf32>
}

// -----

// a = exp(x) reaches c = a + transpose(a) directly and through the (unfusible)
// transpose: merging a and c would make a cycle between groups.
// CHECK-LABEL: func.func @no_fuse_cycle
// CHECK: %[[A:.*]] = kiln.fusion "elementwise" ins(%arg0 : tensor<2x2xf32>)
// CHECK:   kiln.exp
// CHECK: %[[T:.*]] = kiln.transpose %[[A]]
// CHECK: kiln.fusion "elementwise" ins(%[[A]], %[[T]] :
// CHECK:   kiln.add
func.func @no_fuse_cycle(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %a = kiln.exp %x : tensor<2x2xf32>
  %t = kiln.transpose %a, [1, 0] : tensor<2x2xf32> -> tensor<2x2xf32>
  %c = kiln.add %a, %t : tensor<2x2xf32>
  return %c : tensor<2x2xf32>
}

// -----

// An elementwise op on the bias (3 elements) would run once per output element
// (6) inside the add's region: it stays apart, and so does the broadcast_to
// between them (a region input, not a region of its own: no arithmetic).
// CHECK-LABEL: func.func @no_fuse_mismatched_spaces
// CHECK: %[[N:.*]] = kiln.fusion "elementwise" ins(%arg0 : tensor<3xf32>) -> (tensor<3xf32>) {
// CHECK:   kiln.neg
// CHECK: %[[B:.*]] = kiln.broadcast_to %[[N]]
// CHECK: kiln.fusion "elementwise" ins(%arg1, %[[B]] :
// CHECK:   kiln.add
func.func @no_fuse_mismatched_spaces(%b: tensor<3xf32>, %x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %n = kiln.neg %b : tensor<3xf32>
  %bb = kiln.broadcast_to %n : tensor<3xf32> -> tensor<2x3xf32>
  %y = kiln.add %x, %bb : tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

// Reductions over different axes are different kernels.
// CHECK-LABEL: func.func @no_fuse_reduction_axes
// CHECK: %[[N:.*]] = kiln.fusion "reduction" ins(%arg0 : tensor<2x3xf32>) -> (tensor<2x3xf32>) {
// CHECK:   kiln.reduce_sum %{{.*}}, [1]
// CHECK:   kiln.div
// CHECK: kiln.fusion "reduction" ins(%[[N]] : tensor<2x3xf32>) -> (tensor<3xf32>) {
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.reduce_sum %{{.*}}, [0]
// CHECK-NEXT:   kiln.yield
func.func @no_fuse_reduction_axes(%x: tensor<2x3xf32>) -> tensor<3xf32> {
  %r = kiln.reduce_sum %x, [1] keepdims : tensor<2x3xf32> -> tensor<2x1xf32>
  %rb = kiln.broadcast_to %r : tensor<2x1xf32> -> tensor<2x3xf32>
  %y = kiln.div %x, %rb : tensor<2x3xf32>
  %s = kiln.reduce_sum %y, [0] : tensor<2x3xf32> -> tensor<3xf32>
  return %s : tensor<3xf32>
}

// -----

// No prologue in a contraction: exp stays out of the matmul's region, and the
// second matmul is a region of its own. A lone reshape stays a plain op.
// CHECK-LABEL: func.func @no_fuse_contraction_prologue
// CHECK: %[[E:.*]] = kiln.fusion "elementwise"
// CHECK:   kiln.exp
// CHECK: %[[R:.*]] = kiln.reshape %[[E]]
// CHECK: %[[M:.*]] = kiln.fusion "contraction" ins(%[[R]], %arg1 :
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.matmul
// CHECK-NEXT:   kiln.yield
// CHECK: kiln.fusion "contraction" ins(%[[M]], %arg2 :
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.matmul
// CHECK-NEXT:   kiln.yield
func.func @no_fuse_contraction_prologue(%x: tensor<6xf32>, %w: tensor<3x4xf32>, %v: tensor<4x2xf32>) -> tensor<2x2xf32> {
  %e = kiln.exp %x : tensor<6xf32>
  %r = kiln.reshape %e : tensor<6xf32> -> tensor<2x3xf32>
  %y = kiln.matmul %r, %w : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
  %z = kiln.matmul %y, %v : tensor<2x4xf32>, tensor<4x2xf32> -> tensor<2x2xf32>
  return %z : tensor<2x2xf32>
}

// -----

// A small constant is cloned into each group that uses it (and stays outside
// for its other use); above max-cloned-constant-elements it is an input.
// CHECK-LABEL: func.func @fuse_constant_cloned
// CHECK: %[[C:.*]] = kiln.constant dense<[1.0{{.*}}]> : tensor<4xf32>
// CHECK: kiln.fusion "elementwise" ins(%arg0 : tensor<4xf32>)
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.constant dense<[1.0
// CHECK: kiln.fusion "elementwise" ins(%{{.*}} : tensor<4xf32>)
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   kiln.constant dense<[1.0
// CHECK: return %{{.*}}, %{{.*}}, %[[C]]
// NOCLONE-LABEL: func.func @fuse_constant_cloned
// NOCLONE: %[[C:.*]] = kiln.constant
// NOCLONE: kiln.fusion "elementwise" ins(%arg0, %[[C]] : tensor<4xf32>, tensor<4xf32>)
// NOCLONE-NOT: kiln.constant
// NOCLONE: kiln.fusion "elementwise" ins(%{{.*}}, %[[C]] : tensor<4xf32>, tensor<4xf32>)
// NOCLONE-NOT: kiln.constant
func.func @fuse_constant_cloned(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %c = kiln.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %a = kiln.mul %x, %c : tensor<4xf32>
  %t = kiln.transpose %a, [0] : tensor<4xf32> -> tensor<4xf32>
  %b = kiln.mul %t, %c : tensor<4xf32>
  return %a, %b, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// logsumexp: the trailing reshape leaves its group while groups are being trimmed
// (a regression test: trimming used to invalidate the group list it walked).
// CHECK-LABEL: func.func @fuse_logsumexp
// CHECK: kiln.fusion "reduction"
// CHECK: kiln.reshape
func.func @fuse_logsumexp(%arg0: tensor<2x3x2xf64>) -> tensor<2x2xf64> {
  %0 = kiln.reduce_max %arg0, [1] keepdims : tensor<2x3x2xf64> -> tensor<2x1x2xf64>
  %1 = kiln.broadcast_to %0 : tensor<2x1x2xf64> -> tensor<2x3x2xf64>
  %2 = kiln.sub %arg0, %1 : tensor<2x3x2xf64>
  %3 = kiln.exp %2 : tensor<2x3x2xf64>
  %4 = kiln.reduce_sum %3, [1] keepdims : tensor<2x3x2xf64> -> tensor<2x1x2xf64>
  %5 = kiln.log %4 : tensor<2x1x2xf64>
  %6 = kiln.add %5, %0 : tensor<2x1x2xf64>
  %7 = kiln.reshape %6 : tensor<2x1x2xf64> -> tensor<2x2xf64>
  return %7 : tensor<2x2xf64>
}

// -----

// A symbolic batch dimension (`?`) fuses like a static one: one contraction
// region with its epilogue, and the softmax's reduction region.
// CHECK-LABEL: func.func @fuse_dynamic_batch
// CHECK: %[[H:.*]] = kiln.fusion "contraction" ins(%arg0, %arg1, %arg2 : {{.*}}) -> (tensor<?x3xf32>) {
// CHECK:        kiln.matmul
// CHECK-NEXT:   kiln.broadcast_to
// CHECK-NEXT:   kiln.add
// CHECK-NEXT:   kiln.tanh
// CHECK: kiln.fusion "reduction" ins(%[[H]] : tensor<?x3xf32>) -> (tensor<?x3xf32>) {
// CHECK:        kiln.reduce_max
// CHECK:        kiln.exp
// CHECK:        kiln.reduce_sum
// CHECK:        kiln.div
func.func @fuse_dynamic_batch(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>, %b: tensor<3xf32>) -> tensor<?x3xf32> {
  %0 = kiln.matmul %x, %w {transpose_b} : tensor<?x4xf32>, tensor<3x4xf32> -> tensor<?x3xf32>
  %1 = kiln.broadcast_to %b : tensor<3xf32> -> tensor<?x3xf32>
  %2 = kiln.add %0, %1 : tensor<?x3xf32>
  %3 = kiln.tanh %2 : tensor<?x3xf32>
  %4 = kiln.reduce_max %3, [1] keepdims : tensor<?x3xf32> -> tensor<?x1xf32>
  %5 = kiln.broadcast_to %4 : tensor<?x1xf32> -> tensor<?x3xf32>
  %6 = kiln.sub %3, %5 : tensor<?x3xf32>
  %7 = kiln.exp %6 : tensor<?x3xf32>
  %8 = kiln.reduce_sum %7, [1] keepdims : tensor<?x3xf32> -> tensor<?x1xf32>
  %9 = kiln.broadcast_to %8 : tensor<?x1xf32> -> tensor<?x3xf32>
  %10 = kiln.div %7, %9 : tensor<?x3xf32>
  return %10 : tensor<?x3xf32>
}

// -----

// A broadcast of a constant read by ops of two regions (after CSE, the relu mask's zeros and
// the backward select's zeros are one value) is copied into each region instead of being
// yielded as a batch-sized tensor by the first: the forward region yields y and the mask.
// CHECK-LABEL: func.func @copy_constant_broadcast_into_each_region
// NOCLONE-LABEL: func.func @copy_constant_broadcast_into_each_region
// CHECK: %[[F:.*]]:2 = kiln.fusion "contraction" ins(%arg0, %arg1 : {{.*}}) -> (tensor<?x5xf32>, tensor<?x5xi1>) {
// CHECK-NEXT: ^bb0(
// CHECK-NEXT:   %[[ZERO:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CHECK-NEXT:   kiln.matmul
// CHECK-NEXT:   %[[R:.*]] = kiln.relu
// CHECK-NEXT:   %[[ZEROS:.*]] = kiln.broadcast_to %[[ZERO]]
// CHECK-NEXT:   %[[MASK:.*]] = kiln.compare "gt", %[[R]], %[[ZEROS]]
// CHECK-NEXT:   kiln.yield %[[R]], %[[MASK]] : tensor<?x5xf32>, tensor<?x5xi1>
// CHECK: %[[G:.*]] = kiln.fusion "contraction" ins(%[[F]]#0, %arg2, %[[F]]#1 : {{.*}}) -> (tensor<?x5xf32>) {
// CHECK-NEXT: ^bb0(%{{.*}}: tensor<?x5xf32>, %{{.*}}: tensor<5x5xf32>, %[[M:.*]]: tensor<?x5xi1>):
// CHECK-NEXT:   %[[ZERO2:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CHECK-NEXT:   %[[ZEROS2:.*]] = kiln.broadcast_to %[[ZERO2]]
// CHECK-NEXT:   %[[P:.*]] = kiln.matmul
// CHECK-NEXT:   kiln.select %[[M]], %[[P]], %[[ZEROS2]]
// CHECK: kiln.fusion "reduction" ins(%[[G]] : tensor<?x5xf32>) -> (tensor<5xf32>) {
func.func @copy_constant_broadcast_into_each_region(%x: tensor<?x3xf32>, %w: tensor<3x5xf32>, %v: tensor<5x5xf32>) -> (tensor<?x5xf32>, tensor<?x5xf32>, tensor<5xf32>) {
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %0 = kiln.matmul %x, %w : tensor<?x3xf32>, tensor<3x5xf32> -> tensor<?x5xf32>
  %1 = kiln.relu %0 : tensor<?x5xf32>
  %zeros = kiln.broadcast_to %zero : tensor<f32> -> tensor<?x5xf32>
  %2 = kiln.compare "gt", %1, %zeros : tensor<?x5xf32>
  %g = kiln.matmul %1, %v : tensor<?x5xf32>, tensor<5x5xf32> -> tensor<?x5xf32>
  %3 = kiln.select %2, %g, %zeros : tensor<?x5xi1>, tensor<?x5xf32>
  %4 = kiln.reduce_sum %3, [0] : tensor<?x5xf32> -> tensor<5xf32>
  return %1, %3, %4 : tensor<?x5xf32>, tensor<?x5xf32>, tensor<5xf32>
}
