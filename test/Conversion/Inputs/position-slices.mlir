// A position-dependent rewrite, as a user's IR edit would write it: rows at
// positions >= 3 are doubled, then rows at positions 5, 6 and 7 tripled. The
// slice bounds come from the call's first position, so both the offsets and
// the sizes are dynamic (a chunk before position 3 edits no row), and a
// chunked run edits the same rows as a whole one. Parameters: those of
// models/families/llama.
module attributes {greta.model = "position-slices", greta.num_layers = 1 : i64,
                   greta.vocab_size = 256 : i64,
                   greta.max_position_embeddings = 256 : i64} {
  func.func @forward(%tokens: tensor<?xi64>, %pos: tensor<?xi64> {greta.positions}) -> tensor<?x256xf32> {
    %table = greta.param "model.embed_tokens.weight" : tensor<256x32xf32>
    %x = greta.embedding %table, %tokens {greta.stages = [#greta.stage<"embed_out", 0>]} : (tensor<256x32xf32>, tensor<?xi64>) -> tensor<?x32xf32>
    %c0 = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %c5 = arith.constant 5 : index
    %c8 = arith.constant 8 : index
    %n = tensor.dim %x, %c0 : tensor<?x32xf32>
    %p0i = tensor.extract %pos[%c0] : tensor<?xi64>
    %p0 = arith.index_cast %p0i : i64 to index
    // Row of position q in this call: q - p0, clamped to [0, n].
    %a0 = arith.subi %c3, %p0 : index
    %a1 = arith.maxsi %a0, %c0 : index
    %from3 = arith.minsi %a1, %n : index
    %len3 = arith.subi %n, %from3 : index
    %tail = tensor.extract_slice %x[%from3, 0] [%len3, 32] [1, 1] : tensor<?x32xf32> to tensor<?x32xf32>
    %doubled = greta.scale %tail {factor = 2.0 : f64} : tensor<?x32xf32>
    %y = tensor.insert_slice %doubled into %x[%from3, 0] [%len3, 32] [1, 1] : tensor<?x32xf32> into tensor<?x32xf32>
    %b0 = arith.subi %c5, %p0 : index
    %b1 = arith.maxsi %b0, %c0 : index
    %from5 = arith.minsi %b1, %n : index
    %e0 = arith.subi %c8, %p0 : index
    %e1 = arith.maxsi %e0, %c0 : index
    %to8 = arith.minsi %e1, %n : index
    %len5 = arith.subi %to8, %from5 : index
    %mid = tensor.extract_slice %y[%from5, 0] [%len5, 32] [1, 1] : tensor<?x32xf32> to tensor<?x32xf32>
    %tripled = greta.scale %mid {factor = 3.0 : f64} : tensor<?x32xf32>
    %z = tensor.insert_slice %tripled into %y[%from5, 0] [%len5, 32] [1, 1] {greta.stages = [#greta.stage<"residual_pre_attn", 0>]} : tensor<?x32xf32> into tensor<?x32xf32>
    %w = greta.param "model.norm.weight" : tensor<32xf32>
    %h = greta.rms_norm %z, %w {eps = 1.0e-6 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
    %logits = greta.linear %h, %table {greta.stages = [#greta.stage<"logits", 0>]} : (tensor<?x32xf32>, tensor<256x32xf32>) -> tensor<?x256xf32>
    return %logits : tensor<?x256xf32>
  }
}
