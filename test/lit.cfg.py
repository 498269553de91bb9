# -*- Python -*-
import os
import shutil

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
# The tokenizer tests' npm data; scripts/setup.sh fetches it, and the tests
# fail (never skip) where it is missing.
config.substitutions.append(("%npm", config.greta_npm_dir))

# The greta_trace package of this checkout, as a command (python3 -m).
config.substitutions.append(("%greta_trace", "env PYTHONPATH=%s %s -m greta_trace" % (
    os.path.join(config.greta_src_root, "python"), config.python_executable)))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# GPU tests say `REQUIRES: cuda`; the feature is set only where a GPU answers.
if config.greta_has_cuda:
    config.available_features.add("cuda")

# The AMD compile check (kernels/amd-compile.test) has no feature: setup.sh
# installs its compilers, so where they are missing it fails (README.md,
# "Optional", lists what may be missing).

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
