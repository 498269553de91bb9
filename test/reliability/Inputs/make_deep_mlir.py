#!/usr/bin/env python3
"""Writes deeply nested MLIR inputs into DIR.

  make_deep_mlir.py DIR DEPTH

DIR/array.mlir    an attribute: DEPTH nested arrays  [[[...]]]
DIR/region.mlir   DEPTH regions: scf.execute_region in scf.execute_region
                  (the costliest nesting for MLIR's parser, per level)
DIR/tuple.mlir    a type: DEPTH nested tuple<...>
DIR/affine.mlir   an affine_map whose expression chains DEPTH operators
                  (d0 + d1 - d0 + ...), a tree DEPTH deep with no brackets
DIR/generic.mlir  DEPTH regions in MLIR's generic form ("op"() ({ ... }))
Each holds a func.func @forward, so greta-run and greta-compile get past the
parser when DEPTH is within the limit. Depth counts what is written here;
the function itself adds one level (its body or its attribute dictionary).
"""
import os
import sys

d, depth = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)

region = "scf.execute_region {\n" * depth + "scf.yield\n"
region += "}\nscf.yield\n" * (depth - 1) + "}\n"

generic = "".join('"scf.execute_region"() ({\n' for _ in range(depth))
generic += '"scf.yield"() : () -> ()\n'
generic += '}) : () -> ()\n"scf.yield"() : () -> ()\n' * (depth - 1)
generic += "}) : () -> ()\n"

terms = ["d0", "d1"] * (depth // 2 + 1)
affine = terms[0] + "".join(
    (" + " if i % 2 else " - ") + t for i, t in enumerate(terms[1:depth + 1]))

files = {
    "array.mlir": "func.func @forward() attributes {a = " + "[" * depth +
                  "]" * depth + "} {\n  return\n}\n",
    "region.mlir": "func.func @forward() {\n" + region + "  return\n}\n",
    "tuple.mlir": "func.func @forward(%x: " + "tuple<" * depth + "i32" +
                  ">" * depth + ") {\n  return\n}\n",
    "affine.mlir": "#map = affine_map<(d0, d1) -> (" + affine + ")>\n"
                   "func.func @forward() attributes {m = #map} {\n"
                   "  return\n}\n",
    "generic.mlir": "func.func @forward() {\n" + generic + "  return\n}\n",
}
for name, text in files.items():
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
