# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "GRETA"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".json"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.greta_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%greta_src", config.greta_src_root))
config.substitutions.append(("%models", os.path.join(config.greta_src_root, "models")))
config.substitutions.append(("%python", config.python_executable))
# The greta_trace package of this checkout, as a command (python3 -m).
config.substitutions.append(("%greta_trace", "env PYTHONPATH=%s %s -m greta_trace" % (
    os.path.join(config.greta_src_root, "python"), config.python_executable)))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# GPU tests say `REQUIRES: cuda`; the feature is set only where a GPU answers.
if config.greta_has_cuda:
    config.available_features.add("cuda")

# The AMD compile check (kernels/scripts/amd_compile_check.sh) says
# `REQUIRES: hip-compile`: set where Debian 12's ROCm 5.2 pieces (hipcc,
# HIP headers, device libraries) and clang-22 with lld-22 are installed.
import shutil
if (shutil.which("hipcc") and shutil.which("clang++-22")
        and os.path.exists("/usr/lib/llvm-22/bin/ld.lld")
        and os.path.exists("/usr/include/hip/hip_runtime.h")
        and os.path.exists("/usr/lib/x86_64-linux-gnu/amdgcn/bitcode/oclc_isa_version_940.bc")):
    config.available_features.add("hip-compile")

# The HTML reports are rendered in a real browser by tests that say
# `REQUIRES: chromium` (Debian's chromium; scripts/setup.sh installs it).
if shutil.which("chromium"):
    config.available_features.add("chromium")

config.substitutions.append(("%greta_tools", config.greta_tools_dir))
tool_dirs = [config.greta_tools_dir, config.llvm_tools_dir]
tools = [
    ToolSubst("greta-opt", unresolved="ignore"),
    ToolSubst("greta-translate", unresolved="ignore"),
    ToolSubst("greta-run", unresolved="ignore"),
    ToolSubst("greta-diff", unresolved="ignore"),
    ToolSubst("greta-bisect", unresolved="ignore"),
    ToolSubst("greta-trace-gen", unresolved="ignore"),
]
llvm_config.add_tool_substitutions(tools, tool_dirs)
llvm_config.with_environment("PATH", config.greta_tools_dir, append_path=True)
# `not`, `count` and FileCheck live with Debian's LLVM tools, not on PATH.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
