# lit configuration for kiln: finds kiln-opt in the build and FileCheck in LLVM 22.
import os
import lit.formats

config.name = "kiln"
config.test_format = lit.formats.ShTest(not lit_config.isWindows)
config.suffixes = [".mlir"]
config.test_source_root = config.kiln_source_test_dir
config.test_exec_root = config.kiln_binary_test_dir
config.excludes = ["unit", "goldens", "fuzz", "CMakeLists.txt", "lit.cfg.py"]
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"
path = os.pathsep.join([config.kiln_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
config.environment["PATH"] = path
# `REQUIRES: cuda`: tests that need NVRTC (kiln built with the CUDA toolkit: KILN_HAVE_CUDA).
if getattr(config, "kiln_have_cuda", "OFF").upper() in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("cuda")
