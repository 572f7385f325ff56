// kilnc's generated GEMM takes its register tiles from --mcpu's vector registers:
// x86-64-v4 (AVX-512, 32 zmm): 8x32 f32 tiles, 32-wide FMAs; x86-64-v3 (AVX2, 16 ymm):
// 6x16 tiles, 16-wide FMAs (an 8x32 tile would need 32 accumulator registers).
// RUN: python3 %S/Inputs/make_npz.py %t.npz W=64x32:f32:0.5
// RUN: kilnc %s --weights %t.npz --name tiles --mcpu=x86-64-v4 --emit=llvm -O0 -o - | FileCheck %s --check-prefix=AVX512
// RUN: kilnc %s --weights %t.npz --name tiles --mcpu=x86-64-v3 --emit=llvm -O0 -o - | FileCheck %s --check-prefix=AVX2

// AVX512: call <32 x float> @llvm.fmuladd.v32f32(
// AVX512-NOT: @llvm.fmuladd.v16f32(
// AVX2: call <16 x float> @llvm.fmuladd.v16f32(
// AVX2-NOT: @llvm.fmuladd.v32f32(

module {
  func.func @forward(%W: tensor<64x32xf32> {kiln.name = "W", kiln.role = "param"},
                     %x: tensor<?x32xf32> {kiln.name = "x0", kiln.role = "input"})
      -> (tensor<?x64xf32> {kiln.name = "y0", kiln.role = "output"}) {
    %0 = kiln.matmul %x, %W {transpose_b} : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
}
