// RUN: kiln-opt %s -kiln-lower-to-linalg \
// RUN: | mlir-opt --one-shot-bufferize="bufferize-function-boundaries" --convert-linalg-to-loops --lower-affine \
// RUN:     --convert-scf-to-cf --convert-math-to-libm --convert-math-to-llvm \
// RUN:     --expand-strided-metadata --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=/usr/lib/llvm-22/lib/libmlir_runner_utils.so,/usr/lib/llvm-22/lib/libmlir_c_runner_utils.so \
// RUN: | FileCheck %s
// Runs lowered kiln ops through upstream MLIR and checks the values every backend
// defines alike: integer division by 0 and MIN / -1 (no trap), NaN through relu and
// argmax, kiln.check_range's status, and Philox against Random123's first vector.

func.func private @printMemrefI32(tensor<*xi32>)
func.func private @printMemrefI64(tensor<*xi64>)
func.func private @printMemrefF32(tensor<*xf32>)

func.func @main() {
  // 7/2, -7/2, x/0, MIN/-1, MIN/0, 9/-1: truncation, 0, wrap to MIN, 0, -9.
  // CHECK: [3,  -3,  0,  -2147483648,  0,  -9]
  %a = kiln.constant dense<[7, -7, 5, -2147483648, -2147483648, 9]> : tensor<6xi32>
  %b = kiln.constant dense<[2, 2, 0, -1, 0, -1]> : tensor<6xi32>
  %q = kiln.div %a, %b : tensor<6xi32>
  %q_u = tensor.cast %q : tensor<6xi32> to tensor<*xi32>
  call @printMemrefI32(%q_u) : (tensor<*xi32>) -> ()

  // relu(NaN) = NaN, relu(-1) = 0, relu(2) = 2.
  // CHECK: [nan,  0,  2]
  %x = kiln.constant dense<[0x7FC00000, -1.0, 2.0]> : tensor<3xf32>
  %r = kiln.relu %x : tensor<3xf32>
  %r_u = tensor.cast %r : tensor<3xf32> to tensor<*xf32>
  call @printMemrefF32(%r_u) : (tensor<*xf32>) -> ()

  // argmax: the first NaN of a row wins; without NaN the first maximum.
  // CHECK: [2,  1,  1]
  %m = kiln.constant dense<[[1.0, 5.0, 0x7FC00000, 3.0], [2.0, 0x7FC00000, 9.0, 0x7FC00000], [4.0, 7.0, 7.0, 1.0]]> : tensor<3x4xf32>
  %am = kiln.argmax %m, 1 : tensor<3x4xf32> -> tensor<3xi32>
  %am_u = tensor.cast %am : tensor<3xi32> to tensor<*xi32>
  call @printMemrefI32(%am_u) : (tensor<*xi32>) -> ()

  // check_range: the first element outside [0, 10) that is not -1 (flat index 4: 12), or [-1, 0].
  // CHECK: [4,  12]
  // CHECK: [-1,  0]
  %t = kiln.constant dense<[[3, -1, 9, 0], [12, -5, 1, 10]]> : tensor<2x4xi32>
  %t1, %s1 = kiln.check_range %t, limit = 10, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<2x4xi32>
  %s1_u = tensor.cast %s1 : tensor<2xi64> to tensor<*xi64>
  call @printMemrefI64(%s1_u) : (tensor<*xi64>) -> ()
  %ok = kiln.constant dense<[0, 2, 1]> : tensor<3xi64>
  %ok1, %s2 = kiln.check_range %ok, limit = 3 {function = "embed_id", operand = "x"} : tensor<3xi64>
  %s2_u = tensor.cast %s2 : tensor<2xi64> to tensor<*xi64>
  call @printMemrefI64(%s2_u) : (tensor<*xi64>) -> ()

  // Philox-4x32-10, key (0, 0), counter 0: Random123's 0x6627e8d5, so u = 0x6627e8 / 2^24 = 0.399046.
  // CHECK: [0.399046
  %key = kiln.constant dense<[0, 0]> : tensor<2xi64>
  %u = kiln.rng_uniform %key : tensor<2xi64> -> tensor<1xf32>
  %u_u = tensor.cast %u : tensor<1xf32> to tensor<*xf32>
  call @printMemrefF32(%u_u) : (tensor<*xf32>) -> ()
  return
}
