# The self-contained test bundle for a lent GPU machine (issue 13 item 7), which has no
# LLVM/MLIR and receives a copy of the tree under 64 MiB:
#   cmake -G Ninja -S . -B build-gpu -DKILN_GPU_CHECK=ON && cmake --build build-gpu --target gpu-check
# writes build-gpu/kiln-gpu-check.run (an xz tarball behind a small sh extractor) holding
# kiln-goldens, the gradient checks, the cuda unit tests and gpu_bench, stripped, with
# libkiln.so linked against the static MLIR/LLVM archives (.a) and the shared libraries they
# need that a bare machine may lack (ldd, minus glibc and the CUDA driver). bench/gpu_check.sh
# unpacks and runs it.
#
# Without KILN_GPU_CHECK, KILN_MLIR_LIBS is the shared libMLIR.so and libLLVM.so (the normal
# build); with it, an interface target that links every libMLIR*.a and libLLVM*.a with lld
# (whose archive lookup ignores order) and --gc-sections (see ../shared/NOTES-MLIR.md,
# "Linking": Debian's imported targets of the archives carry the shared libraries).
option(KILN_GPU_CHECK "Link MLIR/LLVM statically and build the gpu-check bundle (build-gpu/)" OFF)
if(NOT KILN_GPU_CHECK)
  set(KILN_MLIR_LIBS MLIR LLVM)
  return()
endif()

find_program(KILN_LLD ld.lld HINTS ${LLVM_TOOLS_BINARY_DIR})
if(NOT KILN_LLD)
  message(FATAL_ERROR "KILN_GPU_CHECK=ON needs lld (ld.lld) to link the MLIR/LLVM archives")
endif()
file(GLOB KILN_MLIR_ARCHIVES ${LLVM_LIBRARY_DIR}/libMLIR*.a ${LLVM_LIBRARY_DIR}/libLLVM*.a)
if(NOT KILN_MLIR_ARCHIVES)
  message(FATAL_ERROR "KILN_GPU_CHECK=ON: no libMLIR*.a / libLLVM*.a in ${LLVM_LIBRARY_DIR}")
endif()
# Debian ships libzstd.so.1 without the -lzstd development link.
find_library(KILN_ZSTD NAMES zstd libzstd.so.1 REQUIRED)
find_package(ZLIB REQUIRED)
add_library(kiln_mlir_static INTERFACE)
target_link_libraries(kiln_mlir_static INTERFACE -Wl,--start-group ${KILN_MLIR_ARCHIVES} -Wl,--end-group
  ZLIB::ZLIB ${KILN_ZSTD} ${CMAKE_DL_LIBS} Threads::Threads)
target_link_options(kiln_mlir_static INTERFACE -fuse-ld=lld -Wl,--gc-sections)
set(KILN_MLIR_LIBS kiln_mlir_static)
message(STATUS "kiln: KILN_GPU_CHECK: MLIR/LLVM linked statically (${LLVM_LIBRARY_DIR}/*.a), target gpu-check")

# Called from the top level once every target exists.
function(kiln_add_gpu_check_bundle)
  set(programs kiln-goldens gradient_check_test cuda_nvrtc_test cuda_emulator_test gpu_bench)
  set(present "")
  foreach(p ${programs})
    if(TARGET ${p})
      list(APPEND present ${p})
    endif()
  endforeach()
  set(files "")
  foreach(p ${present})
    list(APPEND files $<TARGET_FILE:${p}>)
  endforeach()
  # aot-cuda/: the digits program over a kilnc --target=cuda object (examples/aot/run_aot.sh
  # cuda, built here; the GPU machine has no kilnc) and its data, for bench/gpu_check.sh.
  set(aot "")
  if(KILN_HAVE_CUDA AND TARGET kilnc AND TARGET export_digits)
    set(aot ${CMAKE_BINARY_DIR}/aot-cuda)
    add_custom_command(OUTPUT ${aot}/infer_digits
      COMMAND env KILNC_CUDA_BUILD_ONLY=1 ${CMAKE_SOURCE_DIR}/examples/aot/run_aot.sh cuda
              $<TARGET_FILE_DIR:kilnc> ${CMAKE_SOURCE_DIR}/examples/aot ${aot} ${CMAKE_C_COMPILER}
      DEPENDS kilnc export_digits ${CMAKE_SOURCE_DIR}/examples/aot/run_aot.sh
              ${CMAKE_SOURCE_DIR}/examples/aot/infer_digits.c ${CMAKE_SOURCE_DIR}/examples/aot/train_digits_aot.c
      COMMENT "aot-cuda: kilnc --target=cuda of the digits MLP and its C program")
    add_custom_target(gpu-check-aot-cuda DEPENDS ${aot}/infer_digits)
    list(APPEND present gpu-check-aot-cuda)
  endif()
  add_custom_target(gpu-check
    COMMAND ${CMAKE_SOURCE_DIR}/bench/gpu_bundle.sh ${CMAKE_BINARY_DIR}/kiln-gpu-check.run ${files} ${aot}
    DEPENDS ${present}
    COMMENT "kiln-gpu-check.run: ${present}, stripped and xz-compressed"
    USES_TERMINAL)
endfunction()
