// A model whose residual stream is edited by position, as a user's IR edit
// would: rows from position 3 on are doubled (a static offset with a dynamic
// size), and the last two rows of the call get +1 (a dynamic offset). The
// parameters are those of models/families/llama (1 layer is enough).
module attributes {greta.model = "slices", greta.num_layers = 1 : i64,
                   greta.vocab_size = 256 : i64,
                   greta.max_position_embeddings = 256 : i64} {
  func.func @forward(%tokens: tensor<?xi64>, %pos: tensor<?xi64> {greta.positions}) -> tensor<?x256xf32> {
    %table = greta.param "model.embed_tokens.weight" : tensor<256x32xf32>
    %x = greta.embedding %table, %tokens {greta.stages = [#greta.stage<"embed_out", 0>]} : (tensor<256x32xf32>, tensor<?xi64>) -> tensor<?x32xf32>
    %c0 = arith.constant 0 : index
    %c2 = arith.constant 2 : index
    %c3 = arith.constant 3 : index
    %n = tensor.dim %x, %c0 : tensor<?x32xf32>
    %len = arith.subi %n, %c3 : index
    %tail = tensor.extract_slice %x[3, 0] [%len, 32] [1, 1] : tensor<?x32xf32> to tensor<?x32xf32>
    %doubled = greta.scale %tail {factor = 2.0 : f64} : tensor<?x32xf32>
    %y = tensor.insert_slice %doubled into %x[3, 0] [%len, 32] [1, 1] : tensor<?x32xf32> into tensor<?x32xf32>
    %off = arith.subi %n, %c2 : index
    %last = tensor.extract_slice %y[%off, 0] [2, 32] [1, 1] : tensor<?x32xf32> to tensor<2x32xf32>
    %one = arith.constant dense<1.0> : tensor<2x32xf32>
    %bumped = greta.add %last, %one : tensor<2x32xf32>
    %z = tensor.insert_slice %bumped into %y[%off, 0] [2, 32] [1, 1] {greta.stages = [#greta.stage<"residual_pre_attn", 0>]} : tensor<2x32xf32> into tensor<?x32xf32>
    %w = greta.param "model.norm.weight" : tensor<32xf32>
    %h = greta.rms_norm %z, %w {eps = 1.0e-6 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
    %logits = greta.linear %h, %table {greta.stages = [#greta.stage<"logits", 0>]} : (tensor<?x32xf32>, tensor<256x32xf32>) -> tensor<?x256xf32>
    return %logits : tensor<?x256xf32>
  }
}
