/*===- c_engine.c - A native engine writing its trace through the C API ---===
 *
 * Stands in for an inference engine written in C: its "activations" are
 * plain arrays filled by a deterministic generator (with the values a
 * writer must get right: NaN, inf, signed zeros, an all-NaN row, ties), in
 * f32, f64, f16 and bf16, written through greta/trace_writer.h with the
 * runtime filter of the GRETA_TRACE_* variables (docs/ENGINES.md).
 *
 *   greta-c-engine --prompt P.json --trace-dir D [--payload hash|stats|full]
 *                  [--dump-arrays DIR] [--bug LAYER:POSITION]
 *
 * --dump-arrays writes every tensor's rows (DIR/STAGE_LAYER.bin) and
 * DIR/spec.json, the input of `greta-trace-gen --arrays` and of the Python
 * Writer, so that a test can check that the three writers write the same
 * bytes (test/examples/c-engine.test). --bug changes mlp_out of LAYER from
 * POSITION on and every later tensor, as a planted bug would.
 *===----------------------------------------------------------------------===*/
#include "greta/trace_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAYERS 2
#define HIDDEN 16
#define VOCAB 24
#define MAX_TOKENS 4096

static uint64_t rng_state = 42;
static double next_uniform(void) { /* xorshift64*, in [-1, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) /
             (double)(1ULL << 52) -
         1.0;
}

static uint16_t f32_to_f16_bits(float f) { /* truncating, finite only */
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  if (exp <= 0)
    return (uint16_t)sign;
  if (exp >= 31)
    return (uint16_t)(sign | 0x7c00);
  return (uint16_t)(sign | (uint32_t)exp << 10 | ((x >> 13) & 0x3ff));
}

static uint16_t f32_to_bf16_bits(float f) { /* truncating */
  uint32_t x;
  memcpy(&x, &f, 4);
  return (uint16_t)(x >> 16);
}

/* Row r of a tensor of `cols` columns, as doubles, with special values in
 * rows 0-4. */
static void fill_row(double *row, int64_t r, int cols, double shift) {
  for (int c = 0; c < cols; ++c)
    row[c] = next_uniform();
  switch (r) {
  case 0: row[1] = NAN; break;
  case 1: memset(row, 0, cols * sizeof(double)); row[3] = -0.0; break;
  case 2: row[2] = INFINITY; row[4] = -INFINITY; break;
  case 3: for (int c = 0; c < cols; ++c) row[c] = 1.5; break; /* ties */
  case 4: for (int c = 0; c < cols; ++c) row[c] = NAN; break;
  default: break;
  }
  for (int c = 0; c < cols; ++c)
    row[c] += shift;
}

struct tensor {
  const char *stage;
  int layer;
  greta_trace_dtype dtype;
  int cols;
};

static const char *dtype_name(greta_trace_dtype d) {
  static const char *names[] = {"f32", "f64", "f16", "bf16"};
  return names[d];
}
static size_t dtype_size(greta_trace_dtype d) {
  return d == GRETA_TRACE_F64 ? 8 : d == GRETA_TRACE_F32 ? 4 : 2;
}

/* The rows of one tensor in its dtype, into a new buffer. */
static void *make_rows(const struct tensor *t, int64_t n, int bug_layer,
                       int64_t bug_from) {
  void *out = malloc((size_t)n * t->cols * dtype_size(t->dtype));
  double row[VOCAB];
  for (int64_t r = 0; r < n; ++r) {
    int buggy = bug_layer >= 0 && r >= bug_from &&
                (t->layer > bug_layer ||
                 (t->layer == bug_layer && strcmp(t->stage, "mlp_out") == 0) ||
                 strcmp(t->stage, "logits") == 0);
    fill_row(row, r, t->cols, buggy ? 0.25 : 0.0);
    for (int c = 0; c < t->cols; ++c) {
      size_t i = (size_t)r * t->cols + c;
      float f = (float)row[c];
      switch (t->dtype) {
      case GRETA_TRACE_F32: ((float *)out)[i] = f; break;
      case GRETA_TRACE_F64: ((double *)out)[i] = row[c]; break;
      case GRETA_TRACE_F16: ((uint16_t *)out)[i] = f32_to_f16_bits(f); break;
      case GRETA_TRACE_BF16: ((uint16_t *)out)[i] = f32_to_bf16_bits(f); break;
      }
    }
  }
  return out;
}

/* Token ids of a GRETA prompt file (a JSON list of integers). */
static int64_t read_prompt(const char *path, int64_t *ids) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  int64_t n = 0;
  int ch;
  while ((ch = fgetc(f)) != EOF && n < MAX_TOKENS) {
    if (ch >= '0' && ch <= '9') {
      ungetc(ch, f);
      long long v;
      if (fscanf(f, "%lld", &v) != 1)
        break;
      ids[n++] = v;
    }
  }
  fclose(f);
  return n;
}

static int dump(const char *dir, const struct tensor *t, const void *rows,
                int64_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s_%d.bin", dir, t->stage, t->layer);
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t bytes = (size_t)n * t->cols * dtype_size(t->dtype);
  int ok = fwrite(rows, 1, bytes, f) == bytes;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static const char *env_or_empty(const char *name) {
  const char *v = getenv(name);
  return v ? v : "";
}

int main(int argc, char **argv) {
  const char *prompt = NULL, *trace_dir = NULL, *payload = "hash",
             *dump_dir = NULL;
  int bug_layer = -1;
  long long bug_from = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--prompt")) prompt = argv[i + 1];
    else if (!strcmp(argv[i], "--trace-dir")) trace_dir = argv[i + 1];
    else if (!strcmp(argv[i], "--payload")) payload = argv[i + 1];
    else if (!strcmp(argv[i], "--dump-arrays")) dump_dir = argv[i + 1];
    else if (!strcmp(argv[i], "--bug") &&
             sscanf(argv[i + 1], "%d:%lld", &bug_layer, &bug_from) == 2) ;
    else {
      fprintf(stderr, "c_engine: bad argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!prompt || !trace_dir) {
    fprintf(stderr, "usage: greta-c-engine --prompt P.json --trace-dir D "
                    "[--payload P] [--dump-arrays DIR] [--bug L:P]\n");
    return 2;
  }
  static int64_t ids[MAX_TOKENS];
  int64_t n = read_prompt(prompt, ids);
  if (n <= 0) {
    fprintf(stderr, "c_engine: cannot read token ids from '%s'\n", prompt);
    return 2;
  }

  /* The weights' digest, from the arrays the engine holds. */
  static float embed[VOCAB * HIDDEN];
  for (int i = 0; i < VOCAB * HIDDEN; ++i)
    embed[i] = (float)next_uniform();
  int64_t embed_shape[2] = {VOCAB, HIDDEN};
  greta_trace_tensor weights[1] = {
      {"model.embed_tokens.weight", GRETA_TRACE_F32, 2, embed_shape, embed}};
  char weights_digest[65];
  if (greta_trace_weights_digest(weights, 1, weights_digest) != 0) {
    fprintf(stderr, "c_engine: %s\n", greta_trace_last_error());
    return 1;
  }

  greta_trace_info info;
  memset(&info, 0, sizeof info);
  info.engine = "c-engine";
  info.engine_version = "1.0";
  info.device = "cpu";
  info.dtype = "f32";
  info.model = "c-engine-tiny";
  info.model_digest =
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  info.weights_digest = weights_digest;
  info.prompt_ids = ids;
  info.token_count = n;
  info.prompt_name = "c_prompt";
  info.payload = payload;
  info.created_at = "2026-01-01T00:00:00Z"; /* reproducible bytes */
  greta_trace_writer *w = greta_trace_writer_open(trace_dir, &info);
  if (!w) {
    fprintf(stderr, "c_engine: %s\n", greta_trace_last_error());
    return 1;
  }
  const struct tensor tensors[] = {
      {"embed_out", 0, GRETA_TRACE_F32, HIDDEN},
      {"q_pre_rope", 0, GRETA_TRACE_F16, HIDDEN},
      {"k_pre_rope", 0, GRETA_TRACE_BF16, HIDDEN},
      {"mlp_out", 0, GRETA_TRACE_F32, HIDDEN},
      {"attn_out", 1, GRETA_TRACE_F64, HIDDEN},
      {"mlp_out", 1, GRETA_TRACE_F32, HIDDEN},
      {"logits", 1, GRETA_TRACE_F32, VOCAB}};
  size_t count = sizeof tensors / sizeof tensors[0];
  FILE *spec = NULL;
  if (dump_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/spec.json", dump_dir);
    spec = fopen(path, "w");
    if (!spec) {
      fprintf(stderr, "c_engine: cannot write '%s'\n", path);
      return 1;
    }
    fprintf(spec,
            "{\"manifest\": {\"model\": \"%s\", \"model_digest\": \"%s\", "
            "\"weights_digest\": \"%s\", \"prompt_name\": \"%s\", "
            "\"token_count\": %lld, \"backend\": \"c-engine/cpu\", "
            "\"precision\": \"f32\", \"tool_version\": \"c-engine 1.0\", "
            "\"created_at\": \"%s\"},\n \"filter\": {\"layers\": \"%s\", "
            "\"stages\": \"%s\", \"positions\": \"%s\", \"payload\": "
            "\"%s\"},\n \"calls\": [{\"positions\": [",
            info.model, info.model_digest, weights_digest, info.prompt_name,
            (long long)n, info.created_at, env_or_empty("GRETA_TRACE_LAYERS"),
            env_or_empty("GRETA_TRACE_STAGES"),
            env_or_empty("GRETA_TRACE_POSITIONS"),
            env_or_empty("GRETA_TRACE_PAYLOAD"));
    for (int64_t p = 0; p < n; ++p)
      fprintf(spec, "%s%lld", p ? ", " : "", (long long)p);
    fprintf(spec, "], \"tensors\": [");
  }
  int64_t written = 0;
  for (size_t i = 0; i < count; ++i) {
    const struct tensor *t = &tensors[i];
    void *rows = make_rows(t, n, bug_layer, bug_from);
    int64_t k = greta_trace_writer_write(w, t->stage, t->layer, NULL, n,
                                         t->cols, t->dtype, rows);
    if (k < 0 || (dump_dir && dump(dump_dir, t, rows, n) != 0)) {
      fprintf(stderr, "c_engine: %s\n",
              k < 0 ? greta_trace_last_error() : "cannot dump arrays");
      greta_trace_writer_abandon(w);
      return 1;
    }
    written += k;
    if (spec) /* f16/bf16: GRETA's runtime computes in f32/f64 */
      fprintf(spec,
              "%s\n  {\"stage\": \"%s\", \"layer\": %d, \"dtype\": \"%s\", "
              "\"payload\": \"%s\", \"cols\": %d, \"file\": \"%s_%d.bin\", "
              "\"frames\": \"%s\"}",
              i ? "," : "", t->stage, t->layer, dtype_name(t->dtype), payload,
              t->cols, t->stage, t->layer,
              dtype_size(t->dtype) == 2 ? "block" : "session");
    free(rows);
  }
  if (spec) {
    fprintf(spec, "]}]}\n");
    fclose(spec);
  }
  if (greta_trace_writer_close(w) != 0) {
    fprintf(stderr, "c_engine: %s\n", greta_trace_last_error());
    return 1;
  }
  printf("c_engine: %lld tokens, %lld rows written to %s\n", (long long)n,
         (long long)written, trace_dir);
  return 0;
}
