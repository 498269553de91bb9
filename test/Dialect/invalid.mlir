// RUN: greta-opt %s -split-input-file -verify-diagnostics

// One case per verifier error of the greta dialect: every op's rank, shape,
// element type and attribute checks, the stage tags, greta.num_layers and
// the greta.positions argument attribute.

// expected-error @+1 {{'greta.param' op parameter name must not be empty}}
%w = greta.param "" : tensor<4x8xf32>

// -----

// expected-error @+1 {{parameter 'w' must have a static shape, got 'tensor<?x8xf32>'}}
%w = greta.param "w" : tensor<?x8xf32>

// -----

// expected-error @+1 {{parameter 'w' must have rank >= 1, got 'tensor<f32>'}}
%w = greta.param "w" : tensor<f32>

// -----

// expected-error @+1 {{'greta.param' op result #0 must be ranked tensor of 16-bit float or bfloat16 type or 32-bit float or 64-bit float values}}
%w = greta.param "w" : tensor<4xi32>

// -----

func.func @f(%t: tensor<16xf32>, %i: tensor<?xi64>) {
  // expected-error @+1 {{'greta.embedding' op table must have rank 2, got 'tensor<16xf32>'}}
  %e = greta.embedding %t, %i : (tensor<16xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%t: tensor<16x8xf32>, %i: tensor<?x1xi64>) {
  // expected-error @+1 {{ids must have rank 1, got 'tensor<?x1xi64>'}}
  %e = greta.embedding %t, %i : (tensor<16x8xf32>, tensor<?x1xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%t: tensor<16x8xf32>, %i: tensor<?xi64>) {
  // expected-error @+1 {{result must have rank 2, got 'tensor<?x1x8xf32>'}}
  %e = greta.embedding %t, %i : (tensor<16x8xf32>, tensor<?xi64>) -> tensor<?x1x8xf32>
  return
}

// -----

func.func @f(%t: tensor<16x8xf32>, %i: tensor<?xi64>) {
  // expected-error @+1 {{result element type 'f16' differs from 'f32'}}
  %e = greta.embedding %t, %i : (tensor<16x8xf32>, tensor<?xi64>) -> tensor<?x8xf16>
  return
}

// -----

func.func @f(%t: tensor<16x8xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{result dim 0 is 4, expected 3 (one row per id)}}
  %e = greta.embedding %t, %i : (tensor<16x8xf32>, tensor<3xi64>) -> tensor<4x8xf32>
  return
}

// -----

func.func @f(%t: tensor<16x8xf32>, %i: tensor<?xi64>) {
  // expected-error @+1 {{result dim 1 is 4, expected 8 (the table's hidden size)}}
  %e = greta.embedding %t, %i : (tensor<16x8xf32>, tensor<?xi64>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%t: tensor<16x8xf32>, %i: tensor<?xf32>) {
  // expected-error @+1 {{'greta.embedding' op operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %e = greta.embedding %t, %i : (tensor<16x8xf32>, tensor<?xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%t: tensor<16x8xf32>, %i: tensor<?xi16>) {
  // expected-error @+1 {{operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %e = greta.embedding %t, %i : (tensor<16x8xf32>, tensor<?xi16>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'greta.rms_norm' op input must have rank 2, got 'tensor<8xf32>'}}
  %y = greta.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<1x8xf32>) {
  // expected-error @+1 {{weight must have rank 1, got 'tensor<1x8xf32>'}}
  %y = greta.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<1x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<8xf16>) {
  // expected-error @+1 {{weight element type 'f16' differs from 'f32'}}
  %y = greta.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<8xf16>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{result type 'tensor<4x8xf32>' must equal the input type 'tensor<?x8xf32>'}}
  %y = greta.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{weight dim 0 is 4, expected 8 (the input's hidden size)}}
  %y = greta.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<4xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got 0}}
  %y = greta.rms_norm %x, %w {eps = 0.0 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got -1}}
  %y = greta.rms_norm %x, %w {eps = -1.0e-5 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got inf}}
  %y = greta.rms_norm %x, %w {eps = 0x7FF0000000000000 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{eps must be positive and finite, got nan}}
  %y = greta.rms_norm %x, %w {eps = 0x7FF8000000000000 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{'greta.linear' op input must have rank 2, got 'tensor<8xf32>'}}
  %y = greta.linear %x, %w : (tensor<8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{weight must have rank 2, got 'tensor<32xf32>'}}
  %y = greta.linear %x, %w : (tensor<?x8xf32>, tensor<32xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{result must have rank 2, got 'tensor<4xf32>'}}
  %y = greta.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xbf16>) {
  // expected-error @+1 {{weight element type 'bf16' differs from 'f32'}}
  %y = greta.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xbf16>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{result element type 'f64' differs from 'f32'}}
  %y = greta.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf64>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x16xf32>) {
  // expected-error @+1 {{weight dim 1 is 16, expected 8 (weight is [out, in]: its in must match the input's last dim)}}
  %y = greta.linear %x, %w : (tensor<?x8xf32>, tensor<4x16xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<3x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{result dim 0 is 5, expected 3 (one row per input row)}}
  %y = greta.linear %x, %w : (tensor<3x8xf32>, tensor<4x8xf32>) -> tensor<5x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{result dim 1 is 8, expected 4 (the weight's out dim)}}
  %y = greta.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %b: tensor<1x4xf32>) {
  // expected-error @+1 {{bias must have rank 1, got 'tensor<1x4xf32>'}}
  %y = greta.linear %x, %w bias %b : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<1x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %b: tensor<4xf16>) {
  // expected-error @+1 {{bias element type 'f16' differs from 'f32'}}
  %y = greta.linear %x, %w bias %b : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4xf16>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{bias dim 0 is 8, expected 4 (the weight's out dim)}}
  %y = greta.linear %x, %w bias %b : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{'greta.rope' op input must have rank 2, got 'tensor<16xf32>'}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<16xf32>, tensor<?xi64>) -> tensor<16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?x1xi64>) {
  // expected-error @+1 {{positions must have rank 1, got 'tensor<?x1xi64>'}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<?x16xf32>, tensor<?x1xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{result type 'tensor<4x16xf32>' must equal the input type 'tensor<?x16xf32>'}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<4x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{head_dim must be positive and even (rotate-half pairs column i with i + head_dim/2), got 3}}
  %y = greta.rope %x, %p {head_dim = 3 : i64, theta = 10000.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{head_dim must be positive and even (rotate-half pairs column i with i + head_dim/2), got 0}}
  %y = greta.rope %x, %p {head_dim = 0 : i64, theta = 10000.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{head_dim must be positive and even (rotate-half pairs column i with i + head_dim/2), got -8}}
  %y = greta.rope %x, %p {head_dim = -8 : i64, theta = 10000.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{input dim 1 must be static (a whole number of heads of head_dim 8 columns), got 'tensor<?x?xf32>'}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<?x?xf32>, tensor<?xi64>) -> tensor<?x?xf32>
  return
}

// -----

func.func @f(%x: tensor<?x12xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{input dim 1 (12) is not a multiple of head_dim (8)}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<?x12xf32>, tensor<?xi64>) -> tensor<?x12xf32>
  return
}

// -----

func.func @f(%x: tensor<3x16xf32>, %p: tensor<4xi64>) {
  // expected-error @+1 {{positions dim 0 is 4, expected 3 (one position per row)}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<3x16xf32>, tensor<4xi64>) -> tensor<3x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{theta must be positive and finite, got 0}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 0.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{theta must be positive and finite, got -1}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = -1.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: tensor<?xf32>) {
  // expected-error @+1 {{'greta.rope' op operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %y = greta.rope %x, %p {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<?x16xf32>, tensor<?xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{'greta.attention' op q must have rank 2, got 'tensor<16xf32>'}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{k must have rank 2, got 'tensor<8xf32>'}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{v must have rank 2, got 'tensor<8xf32>'}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?x1xi64>) {
  // expected-error @+1 {{positions must have rank 1, got 'tensor<?x1xi64>'}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x1xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf16>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{k element type 'f16' differs from 'f32'}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf16>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf16>, %p: tensor<?xi64>) {
  // expected-error @+1 {{v element type 'f16' differs from 'f32'}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf16>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{num_heads (0), num_kv_heads (2) and head_dim (4) must be positive}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 0 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{num_heads (4), num_kv_heads (-2) and head_dim (4) must be positive}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = -2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{num_heads (4), num_kv_heads (2) and head_dim (0) must be positive}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x12xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{num_heads (3) is not a multiple of num_kv_heads (2)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 3 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x12xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x12xf32>
  return
}

// -----

func.func @f(%q: tensor<?x12xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{q dim 1 is 12, expected 16 (num_heads * head_dim)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x12xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x12xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x4xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{k dim 1 is 4, expected 8 (num_kv_heads * head_dim)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x4xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{v dim 1 is 16, expected 8 (num_kv_heads * head_dim)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<3x16xf32>, %k: tensor<4x8xf32>, %v: tensor<3x8xf32>, %p: tensor<3xi64>) {
  // expected-error @+1 {{k dim 0 is 4, expected 3 (one key per query row)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<3x16xf32>, tensor<4x8xf32>, tensor<3x8xf32>, tensor<3xi64>) -> tensor<3x16xf32>
  return
}

// -----

func.func @f(%q: tensor<3x16xf32>, %k: tensor<3x8xf32>, %v: tensor<4x8xf32>, %p: tensor<3xi64>) {
  // expected-error @+1 {{v dim 0 is 4, expected 3 (one value per query row)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<3x16xf32>, tensor<3x8xf32>, tensor<4x8xf32>, tensor<3xi64>) -> tensor<3x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<3x8xf32>, %v: tensor<4x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{v dim 0 is 4, expected 3 (one value per key row)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<3x8xf32>, tensor<4x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<3x16xf32>, %k: tensor<3x8xf32>, %v: tensor<3x8xf32>, %p: tensor<5xi64>) {
  // expected-error @+1 {{positions dim 0 is 5, expected 3 (one position per row)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<3x16xf32>, tensor<3x8xf32>, tensor<3x8xf32>, tensor<5xi64>) -> tensor<3x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<3x8xf32>, %v: tensor<3x8xf32>, %p: tensor<5xi64>) {
  // expected-error @+1 {{positions dim 0 is 5, expected 3 (one position per key row)}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<3x8xf32>, tensor<3x8xf32>, tensor<5xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{result type 'tensor<?x16xf16>' must equal the q type 'tensor<?x16xf32>'}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf16>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{scale must be positive and finite, got 0}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.0 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{scale must be positive and finite, got inf}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0x7FF0000000000000 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{cache_slot must be non-negative, got -1}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = -1 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %p: tensor<?xf32>) {
  // expected-error @+1 {{'greta.attention' op operand #3 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %o = greta.attention %q, %k, %v, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%a: tensor<?x8xf32>, %b: tensor<?x4xf32>) {
  // expected-error @+1 {{'greta.swiglu' op requires the same type for all operands and results}}
  %y = "greta.swiglu"(%a, %b) : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%a: tensor<?x8xf32>, %b: tensor<?x8xf16>) {
  // expected-error @+1 {{'greta.add' op requires the same type for all operands and results}}
  %y = "greta.add"(%a, %b) : (tensor<?x8xf32>, tensor<?x8xf16>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.trace' op unknown stage 'attn_output' (expected one of embed_out, residual_pre_attn, attn_in, q_pre_rope, k_pre_rope, v_proj, q_post_rope, k_post_rope, attn_out, residual_post_attn, ffn_norm_in, router_logits, expert_selection, moe_out, mlp_out, residual_post_mlp, logits)}}
  greta.trace %x {layer = 0 : i64, payload = #greta<payload hash>, record_id = 0 : i64, stage = "attn_output"} : tensor<?x8xf32>
  return
}

// -----

// The KV-cache stages are the runtime attention's records, never a compiled
// value's.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.trace' op stage 'k_cache' is recorded by the runtime's KV cache, not by a compiled value (expected one of embed_out}}
  greta.trace %x {layer = 0 : i64, payload = #greta<payload hash>, record_id = 1099511627777 : i64, stage = "k_cache"} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.trace' op stage 'attn_out' has negative layer -1}}
  greta.trace %x {layer = -1 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  return
}

// -----

module attributes {greta.num_layers = 2 : i64} {
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.trace' op stage 'attn_out' at layer 2 is out of range: the model has 2 layers (greta.num_layers)}}
  greta.trace %x {layer = 2 : i64, payload = #greta<payload hash>, record_id = 39 : i64, stage = "attn_out"} : tensor<?x8xf32>
  return
}
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.trace' op record_id 7 does not match stage 'attn_out' at layer 1 (expected 23)}}
  greta.trace %x {layer = 1 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>) {
  // expected-error @+1 {{traced value must have rank >= 1 (one record per row), got 'tensor<f32>'}}
  greta.trace %x {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{stage 'embed_out' happens once, before layer 0, and must be tagged layer 0, got layer 1}}
  greta.trace %x {layer = 1 : i64, payload = #greta<payload hash>, record_id = 16 : i64, stage = "embed_out"} : tensor<?x8xf32>
  return
}

// -----

module attributes {greta.num_layers = 2 : i64} {
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{stage 'logits' happens once, after the last layer, and must be tagged layer 1, got layer 0}}
  greta.trace %x {layer = 0 : i64, payload = #greta<payload hash>, record_id = 12 : i64, stage = "logits"} : tensor<?x8xf32>
  return
}
}

// -----

func.func @f(%x: tensor<?x8xi32>) {
  // expected-error @+1 {{'greta.trace' op operand #0 must be ranked tensor of 16-bit float or bfloat16 type or 32-bit float or 64-bit float values or memref of 16-bit float or bfloat16 type or 32-bit float or 64-bit float values}}
  greta.trace %x {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xi32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown payload 'everything' (expected hash, stats or full)}}
  greta.trace %x {layer = 0 : i64, payload = #greta<payload everything>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{'greta.perturb' op input must have rank 2, got 'tensor<8xf32>'}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "scale", magnitude = 1.5 : f64} : (tensor<8xf32>, tensor<?xi64>) -> tensor<8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?x1xi64>) {
  // expected-error @+1 {{positions must have rank 1, got 'tensor<?x1xi64>'}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "scale", magnitude = 1.5 : f64} : (tensor<?x8xf32>, tensor<?x1xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<3x8xf32>, %p: tensor<4xi64>) {
  // expected-error @+1 {{positions dim 0 is 4, expected 3 (one position per row)}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "scale", magnitude = 1.5 : f64} : (tensor<3x8xf32>, tensor<4xi64>) -> tensor<3x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{result type 'tensor<?x8xf16>' must equal the input type 'tensor<?x8xf32>'}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "scale", magnitude = 1.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf16>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{unknown fault kind 'zero' (expected scale, offset or bitflip)}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "zero", magnitude = 1.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{from_position must be non-negative, got -1}}
  %y = greta.perturb %x, %p {from_position = -1 : i64, kind = "scale", magnitude = 1.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{magnitude must be finite, got inf}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "scale", magnitude = 0x7FF0000000000000 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{bitflip magnitude must be a bit index in [0, 32), got 32}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "bitflip", magnitude = 32.0 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf16>, %p: tensor<?xi64>) {
  // expected-error @+1 {{bitflip magnitude must be a bit index in [0, 16), got 16}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "bitflip", magnitude = 16.0 : f64} : (tensor<?x8xf16>, tensor<?xi64>) -> tensor<?x8xf16>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{bitflip magnitude must be a bit index in [0, 32), got 1.5}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "bitflip", magnitude = 1.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{bitflip magnitude must be a bit index in [0, 32), got -1}}
  %y = greta.perturb %x, %p {from_position = 0 : i64, kind = "bitflip", magnitude = -1.0 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.round' op can round to f16 or bf16, not 'f8'}}
  %y = greta.round %x {to = "f8"} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf16>) {
  // expected-error @+1 {{'greta.round' op rounds an f32 or f64 tensor (the storage type is kept), got element type 'f16'}}
  %y = greta.round %x {to = "bf16"} : tensor<?x8xf16>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %o: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.kernel' op callee must not be empty}}
  %y = greta.kernel "" ins(%x : tensor<?x8xf32>) outs(%o : tensor<?x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%o: vector<8xf32>) {
  // expected-error @+1 {{'greta.kernel' op out #0 must be a ranked tensor or a memref, got 'vector<8xf32>'}}
  greta.kernel "k" outs(%o : vector<8xf32>)
  return
}

// -----

func.func @f(%o: tensor<*xf32>) {
  // expected-error @+1 {{'greta.kernel' op out #0 must be a ranked tensor or a memref, got 'tensor<*xf32>'}}
  greta.kernel "k" outs(%o : tensor<*xf32>)
  return
}

// -----

func.func @f(%o: tensor<?x8xf32>, %m: memref<?x8xf32>) {
  // expected-error @+1 {{'greta.kernel' op outs must be all tensors or all memrefs, got 'tensor<?x8xf32>', 'memref<?x8xf32>'}}
  %y = greta.kernel "k" outs(%o, %m : tensor<?x8xf32>, memref<?x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%o: tensor<?x8xf32>, %p: tensor<?x4xf32>) {
  // expected-error @+1 {{'greta.kernel' op on tensors, needs one result per out (2), has 1}}
  %y = greta.kernel "k" outs(%o, %p : tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%o: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.kernel' op on tensors, needs one result per out (1), has 0}}
  greta.kernel "k" outs(%o : tensor<?x8xf32>)
  return
}

// -----

func.func @f(%o: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.kernel' op result #0 type 'tensor<4x8xf32>' differs from out #0 type 'tensor<?x8xf32>'}}
  %y = greta.kernel "k" outs(%o : tensor<?x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @f(%m: memref<?x8xf32>) {
  // expected-error @+1 {{'greta.kernel' op on memrefs, must have no results, has 1}}
  %y = greta.kernel "k" outs(%m : memref<?x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown stage 'attn_output' (expected one of embed_out, residual_pre_attn, attn_in, q_pre_rope, k_pre_rope, v_proj, q_post_rope, k_post_rope, attn_out, residual_post_attn, ffn_norm_in, router_logits, expert_selection, moe_out, mlp_out, residual_post_mlp, logits)}}
  %y = greta.add %x, %x {greta.stages = [#greta.stage<"attn_output", 0>]} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{stage 'attn_out' has negative layer -3}}
  %y = greta.add %x, %x {greta.stages = [#greta.stage<"attn_out", -3>]} : tensor<?x8xf32>
  return
}

// -----

module attributes {greta.num_layers = 4 : i64} {
  func.func @f(%x: tensor<?x8xf32>) {
    // expected-error @+1 {{'greta.add' op stage 'mlp_out' at layer 4 is out of range: the model has 4 layers (greta.num_layers)}}
    %y = greta.add %x, %x {greta.stages = [#greta.stage<"mlp_out", 3>, #greta.stage<"mlp_out", 4>]} : tensor<?x8xf32>
    return
  }
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{stage 'embed_out' happens once, before layer 0, and must be tagged layer 0, got layer 2}}
  %y = greta.add %x, %x {greta.stages = [#greta.stage<"embed_out", 2>]} : tensor<?x8xf32>
  return
}

// -----

module attributes {greta.num_layers = 4 : i64} {
  func.func @f(%x: tensor<?x8xf32>) {
    // expected-error @+1 {{'greta.add' op stage 'logits' happens once, after the last layer, and must be tagged layer 3, got layer 2}}
    %y = greta.add %x, %x {greta.stages = [#greta.stage<"logits", 2>]} : tensor<?x8xf32>
    return
  }
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.trace' op 'greta.stages' tags a value: the op must have exactly one result, it has 0}}
  greta.trace %x {greta.stages = [#greta.stage<"attn_out", 0>], layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  return
}

// -----

func.func private @two() -> (tensor<?x8xf32>, tensor<?x8xf32>)
func.func @f() {
  // expected-error @+1 {{'func.call' op 'greta.stages' tags a value: the op must have exactly one result, it has 2}}
  %a:2 = func.call @two() {greta.stages = [#greta.stage<"attn_out", 0>]} : () -> (tensor<?x8xf32>, tensor<?x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.add' op 'greta.stages' must be an array of #greta.stage attributes, got #greta.stage<"attn_out", 0>}}
  %y = greta.add %x, %x {greta.stages = #greta.stage<"attn_out", 0>} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.add' op 'greta.stages' element #1 must be a #greta.stage attribute, got "mlp_out"}}
  %y = greta.add %x, %x {greta.stages = [#greta.stage<"attn_out", 0>, "mlp_out"]} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.add' op 'greta.stages' must not be empty (remove the attribute instead)}}
  %y = greta.add %x, %x {greta.stages = []} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.add' op 'greta.stages' holds #greta.stage<"attn_out", 0> twice}}
  %y = greta.add %x, %x {greta.stages = [#greta.stage<"attn_out", 0>, #greta.stage<"mlp_out", 0>, #greta.stage<"attn_out", 0>]} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: f32) {
  // expected-error @+1 {{'arith.addf' op 'greta.stages' tags a traced value: the result must be a ranked tensor or memref of floats with rank >= 1 (one record per row), got 'f32'}}
  %y = arith.addf %x, %x {greta.stages = [#greta.stage<"attn_out", 0>]} : f32
  return
}

// -----

func.func @f(%x: tensor<?x8xi32>) {
  // expected-error @+1 {{'arith.addi' op 'greta.stages' tags a traced value: the result must be a ranked tensor or memref of floats with rank >= 1 (one record per row), got 'tensor<?x8xi32>'}}
  %y = arith.addi %x, %x {greta.stages = [#greta.stage<"attn_out", 0>]} : tensor<?x8xi32>
  return
}

// -----

func.func @f(%x: tensor<f32>) {
  // expected-error @+1 {{'arith.addf' op 'greta.stages' tags a traced value: the result must be a ranked tensor or memref of floats with rank >= 1 (one record per row), got 'tensor<f32>'}}
  %y = arith.addf %x, %x {greta.stages = [#greta.stage<"attn_out", 0>]} : tensor<f32>
  return
}

// -----

// expected-error @+1 {{'builtin.module' op 'greta.num_layers' must be a positive integer, got 0 : i64}}
module attributes {greta.num_layers = 0 : i64} {
}

// -----

// expected-error @+1 {{'builtin.module' op 'greta.num_layers' must be a positive integer, got "12"}}
module attributes {greta.num_layers = "12"} {
}

// -----

// expected-error @+1 {{'func.func' op argument #1 marked 'greta.positions' must be a 1-D tensor of i64 or i32 (one position per token), got 'tensor<?xf32>'}}
func.func @forward(%tokens: tensor<?xi64>, %positions: tensor<?xf32> {greta.positions}) {
  return
}

// -----

// expected-error @+1 {{'func.func' op argument #1 marked 'greta.positions' must be a 1-D tensor of i64 or i32 (one position per token), got 'tensor<?x1xi64>'}}
func.func @forward(%tokens: tensor<?xi64>, %positions: tensor<?x1xi64> {greta.positions}) {
  return
}

// -----

// expected-error @+1 {{'func.func' op 'greta.positions' must be a unit attribute, got 1 : i64}}
func.func @forward(%tokens: tensor<?xi64>, %positions: tensor<?xi64> {greta.positions = 1 : i64}) {
  return
}

// -----

// expected-error @+1 {{'func.func' op arguments #0 and #1 are both marked 'greta.positions': a function has one positions argument}}
func.func @forward(%a: tensor<?xi64> {greta.positions}, %b: tensor<?xi64> {greta.positions}) {
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'greta.add' op 'greta.positions' marks a function argument (the token positions), not an op}}
  %y = greta.add %x, %x {greta.positions} : tensor<?x8xf32>
  return
}

// -----

// The families' attributes (docs/MODELS.md).

func.func @norm_head_dim_weight(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{'greta.rms_norm' op weight dim 0 is 64, expected 16 (head_dim: the norm is per head)}}
  %y = greta.rms_norm %x, %w {eps = 1.0e-6 : f64, head_dim = 16 : i64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

func.func @norm_head_dim_divides(%x: tensor<?x60xf32>, %w: tensor<16xf32>) -> tensor<?x60xf32> {
  // expected-error @+1 {{'greta.rms_norm' op input dim 1 must be a static multiple of head_dim 16 (one norm per head), got 'tensor<?x60xf32>'}}
  %y = greta.rms_norm %x, %w {eps = 1.0e-6 : f64, head_dim = 16 : i64} : (tensor<?x60xf32>, tensor<16xf32>) -> tensor<?x60xf32>
  return %y : tensor<?x60xf32>
}

// -----

func.func @rope_table_size(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.rope' op inv_freq has 3 values, expected head_dim/2 = 4}}
  %y = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, 0.01>} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

func.func @rope_table_value(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.rope' op inv_freq[2] must be positive and finite, got -0.01}}
  %y = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, -0.01, 0.001>} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

func.func @rope_long_alone(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.rope' op long_inv_freq and long_from go together, with inv_freq (longrope's short and long tables)}}
  %y = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, 0.01, 0.001>, long_from = 32 : i64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

func.func @rope_dynamic_table(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.rope' op dynamic NTK derives its frequencies from theta: it takes no inv_freq}}
  %y = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, 0.01, 0.001>, dynamic_factor = 2.0 : f64, dynamic_max_position = 32 : i64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

func.func @rope_dynamic_alone(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.rope' op dynamic_factor and dynamic_max_position go together (dynamic NTK)}}
  %y = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, dynamic_factor = 2.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

func.func @rope_attention_factor(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.rope' op attention_factor must be positive and finite, got 0}}
  %y = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, attention_factor = 0.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

func.func @window(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.attention' op sliding_window must be positive, got 0}}
  %a = greta.attention %q, %k, %k, %pos {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35 : f64, cache_slot = 0 : i64, sliding_window = 0 : i64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

func.func @scale_zero(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'greta.scale' op factor must be finite and non-zero, got 0}}
  %y = greta.scale %x {factor = 0.0 : f64} : tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
