"""The package's tables against the C++ headers they mirror, so the two
cannot drift: the stage table (names, order, categories), the category
names, the record id stride (runtime/include/greta/rt/Stages.h), the DType
and Payload enums (DType.h), the format constants (Trace.h), and the version
(CMakeLists.txt GRETA_VERSION, python/pyproject.toml).

  check_tables.py GRETA_SRC

Prints what it compared and `tables agree`; exits 1 naming the first
difference.
"""
import os
import re
import sys

import greta_trace
from greta_trace import format as fmt

src = sys.argv[1]


def read(*path):
    with open(os.path.join(src, *path)) as f:
        return f.read()


def expect(what, cpp, py):
    if cpp != py:
        sys.exit(f"{what} differ:\n  C++:    {cpp}\n  Python: {py}")
    print(f"{what}: {len(cpp) if isinstance(cpp, list) else cpp} agree")


def enum_body(text, name):
    m = re.search(r"enum class " + name + r"\s*:\s*\w+\s*\{(.*?)\};", text,
                  re.S)
    if not m:
        sys.exit(f"enum class {name} not found")
    return m.group(1)


def enum_names(text, name):
    """Enumerators in order; explicit values must be the running index."""
    names = []
    for item in enum_body(text, name).split(","):
        item = re.sub(r"//.*", "", item).strip()
        if not item:
            continue
        ident, _, value = (s.strip() for s in item.partition("="))
        if value and int(value) != len(names):
            sys.exit(f"{name}::{ident} = {value} is not its index")
        names.append(ident)
    return names


def camel_to_snake(s):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", s).lower()


stages_h = read("runtime", "include", "greta", "rt", "Stages.h")
table = re.search(r"kStageTable\[kNumStages\]\s*=\s*\{(.*?)\};", stages_h,
                  re.S)
rows = re.findall(r'\{"(\w+)",\s*Category::(\w+)\}', table.group(1))
category_enum = enum_names(stages_h, "Category")
names = re.search(r"kCategoryNames\[kNumCategories\]\s*=\s*\{(.*?)\};",
                  stages_h, re.S)
category_names = re.findall(r'"([^"]+)"', names.group(1))
expect("category names", category_names, greta_trace.CATEGORIES)
cpp_table = [(name, category_names[category_enum.index(cat)])
             for name, cat in rows]
expect("stage table (name, category)", cpp_table, fmt.STAGE_TABLE)
expect("stage enum", [camel_to_snake(s) for s in
                      enum_names(stages_h, "Stage")], greta_trace.STAGES)
count = int(re.search(r"kNumStages\s*=\s*(\d+)", stages_h).group(1))
expect("kNumStages", count, len(greta_trace.STAGES))
order = re.search(r"kExecutionOrder\[kNumStages\]\s*=\s*\{(.*?)\};",
                  stages_h, re.S)
expect("execution order", [camel_to_snake(s) for s in
                           re.findall(r"Stage::(\w+)", order.group(1))],
       fmt.EXECUTION_ORDER)
stride = int(re.search(r"return layer \* (\d+) \+", stages_h).group(1))
expect("record id stride", stride, fmt.RECORD_ID_STRIDE)
for name, value in (("kRecordIdPageShift", fmt.RECORD_ID_PAGE_SHIFT),
                    ("kExecutionOrderStride", fmt.EXECUTION_ORDER_STRIDE)):
    expect(name, int(re.search(name + r"\s*=\s*(\d+)", stages_h).group(1)),
           value)

dtype_h = read("runtime", "include", "greta", "rt", "DType.h")
expect("dtypes", [s.lower() for s in enum_names(dtype_h, "DType")],
       greta_trace.DTYPES)
expect("payloads", [s.lower() for s in enum_names(dtype_h, "Payload")],
       greta_trace.PAYLOADS)
trace_h = read("runtime", "include", "greta", "rt", "Trace.h")


def constant(name):
    m = re.search(name + r"\s*=\s*([^;]+);", trace_h)
    if not m:
        sys.exit(f"{name} not found in Trace.h")
    return eval(re.sub(r"size_t\((\d+)\)", r"\1", m.group(1)).split("//")[0])


expect("format version", constant("kTraceFormatVersion"), fmt.FORMAT_VERSION)
expect("oldest format version", constant("kOldestTraceFormatVersion"),
       fmt.OLDEST_FORMAT_VERSION)
expect("record magic", constant("kRecordMagic"), fmt.RECORD_MAGIC)
expect("block magic", constant("kBlockMagic"), fmt.BLOCK_MAGIC)
expect("file header size", constant("kTraceFileHeaderSize"),
       fmt.FILE_HEADER_SIZE)
expect("block body limit", constant("kMaxBlockBodyBytes"),
       fmt.MAX_BLOCK_BODY_BYTES)
magic = re.search(r"kTraceFileMagic\[8\]\s*=\s*\{(.*?)\};", trace_h, re.S)
expect("file magic", "".join(re.findall(r"'(.)'", magic.group(1))).encode(),
       fmt.FILE_MAGIC)

# The writer's limits that decide how a block is cut into frames (Writer.cpp,
# TraceInternal.h).
trace_cpp = (read("runtime", "lib", "Writer.cpp") +
             read("runtime", "lib", "TraceInternal.h"))
for name, value in (("kBufferBytes", fmt.WRITE_BUFFER_BYTES),
                    ("kMaxBodyBytes", fmt.MAX_BODY_BYTES),
                    ("kFlushEveryRecords", None)):
    m = re.search(r"constexpr \w+ " + name + r"\s*=\s*([^;]+);", trace_cpp)
    if not m:
        sys.exit(f"{name} not found in runtime/lib/Writer.cpp or "
                 "TraceInternal.h")
    if value is not None:
        expect(name, eval(m.group(1).replace("1u", "1")), value)

version = re.search(r'set\(GRETA_VERSION "([^"]+)"\)',
                    read("CMakeLists.txt")).group(1)
pyproject = re.search(r'^version = "([^"]+)"',
                      read("python", "pyproject.toml"), re.M).group(1)
expect("version (CMake, package)", version, greta_trace.__version__)
expect("version (CMake, pyproject)", version, pyproject)
print("tables agree")
