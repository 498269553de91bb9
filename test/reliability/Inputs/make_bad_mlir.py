#!/usr/bin/env python3
"""Writes the malformed MLIR inputs of malformed-mlir.test into DIR."""
import os
import sys

d = sys.argv[1]
os.makedirs(d, exist_ok=True)
files = {
    # Cut off inside a function signature.
    "syntax.mlir": "func.func @forward(%a: tensor<4xf32> {\n",
    # An op of the greta dialect that does not exist.
    "unknown-op.mlir": 'func.func @forward(%a: tensor<4xf32>) {\n'
                       '  "greta.bogus"(%a) : (tensor<4xf32>) -> ()\n'
                       '  return\n}\n',
    # Parses, fails greta.add's verifier (operand types differ).
    "verifier.mlir": "func.func @forward(%a: tensor<4xf32>, %b: tensor<8xf32>)"
                     " -> tensor<4xf32> {\n"
                     '  %0 = "greta.add"(%a, %b) : (tensor<4xf32>, tensor<8xf32>)'
                     " -> tensor<4xf32>\n"
                     "  return %0 : tensor<4xf32>\n}\n",
    "empty.mlir": "",
    # Bytes that are not text (fixed, so the diagnostics are stable).
    "garbage.mlir": bytes((i * 167 + 13) % 256 for i in range(2048)),
    # An unterminated string, and an op with a region left open.
    "string.mlir": 'func.func @forward() attributes {a = "unterminated\n',
    "region.mlir": "func.func @forward() {\n  %0 = arith.constant 0 : i32\n",
}
for name, text in files.items():
    mode = "wb" if isinstance(text, bytes) else "w"
    with open(os.path.join(d, name), mode) as f:
        f.write(text)
