/*===- greta/trace_writer.h - Write a GRETA trace from C -------------*- C -*-===
 *
 * A native inference engine writes the trace of its run through this C API
 * (docs/ENGINES.md), so that greta-diff compares it with another run and
 * greta-bisect drives it (--test-cmd). The bytes are those of GRETA's own
 * C++ trace writer for the same rows: the C API is a thin layer on it
 * (runtime/lib/CTraceWriter.cpp), linked from libGretaRuntime, no LLVM.
 *
 *   greta_trace_info info = {0};
 *   info.engine = "my-engine"; info.engine_version = "1.2";
 *   info.prompt_ids = ids; info.token_count = n;
 *   info.dtype = "f32"; info.device = "cpu";
 *   greta_trace_writer *w = greta_trace_writer_open("run.trace", &info);
 *   if (!w) { fprintf(stderr, "%s\n", greta_trace_last_error()); ... }
 *   greta_trace_writer_write(w, "mlp_out", layer, NULL, n, hidden,
 *                            GRETA_TRACE_F32, rows);
 *   greta_trace_writer_close(w);
 *
 * The runtime filter of greta-bisect's steps is read from the environment
 * at open: GRETA_TRACE_LAYERS, _STAGES, _POSITIONS, _PAYLOAD (greta-run's
 * syntax; unset or empty: everything, the payload of the info). Rows the
 * filter drops are neither hashed nor written.
 *
 * Every function that can fail returns NULL or a negative value and sets a
 * message, naming the argument or field at fault, that
 * greta_trace_last_error() returns (per thread).
 *===----------------------------------------------------------------------===*/
#ifndef GRETA_TRACE_WRITER_H
#define GRETA_TRACE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of rows and weights (the trace format's dtype codes). bf16
 * data is given as its 16 bits. */
typedef enum greta_trace_dtype {
  GRETA_TRACE_F32 = 0,
  GRETA_TRACE_F64 = 1,
  GRETA_TRACE_F16 = 2,
  GRETA_TRACE_BF16 = 3
} greta_trace_dtype;

/* What the manifest says about the run (docs/TRACE_FORMAT.md). Strings are
 * copied at open; NULL is "". */
typedef struct greta_trace_info {
  const char *engine;         /* required: the engine's name */
  const char *engine_version; /* its version, build, settings */
  const char *device;         /* e.g. "cpu", "cuda", "mi300x" */
  const char *dtype;          /* the run's precision: f32|f64|f16|bf16 */
  const char *model;          /* the model's name */
  const char *model_digest;   /* 64 lowercase hex digits, or NULL */
  const char *weights_digest; /* 64 hex (greta_trace_weights_digest), or NULL */
  const int64_t *prompt_ids;  /* required: token_count token ids */
  int64_t token_count;        /* > 0; resolves the filter's `last` */
  const char *prompt_name;    /* e.g. "p6_len_16" */
  const char *payload;        /* hash|stats|full unless the filter says;
                                 NULL: hash */
  const char *created_at;     /* ISO 8601; NULL: now */
  int overwrite;              /* nonzero: replace a trace already there */
} greta_trace_info;

typedef struct greta_trace_writer greta_trace_writer;

/* Creates the trace directory `dir` and writes its manifest (complete:
 * false). The manifest's backend is "ENGINE/DEVICE", its tool_version
 * "ENGINE ENGINE_VERSION", its precision the dtype, its prompt_digest that
 * of the ids. NULL on error (a bad field, a bad GRETA_TRACE_* variable, a
 * directory that is locked, unwritable, or holds a trace). */
greta_trace_writer *greta_trace_writer_open(const char *dir,
                                            const greta_trace_info *info);

/* Writes `rows` rows of one traced tensor, `row_elems` elements each,
 * contiguous, row after row: the tensor of `stage` (a GRETA stage name such
 * as "attn_out"; docs/TRACE_FORMAT.md) at `layer`, row i at token position
 * positions[i] (NULL: 0..rows-1), as GRETA's runtime writes it (SHA-256 of
 * the bytes, non-zero count, statistics, values, logits' top-5 ids, as the
 * payload asks). Returns the rows written (the filter's choice), or -1. */
int64_t greta_trace_writer_write(greta_trace_writer *w, const char *stage,
                                 int64_t layer, const int64_t *positions,
                                 int64_t rows, int64_t row_elems,
                                 greta_trace_dtype dtype, const void *data);

/* Finishes the trace (manifest complete: true) and frees the writer, also
 * on error. 0, or -1. */
int greta_trace_writer_close(greta_trace_writer *w);

/* Frees the writer without finishing: what was written stays readable, the
 * manifest says complete: false (a failed run). */
void greta_trace_writer_abandon(greta_trace_writer *w);

/* One tensor of the model's weights, in memory. */
typedef struct greta_trace_tensor {
  const char *name;      /* e.g. "model.layers.0.mlp.down_proj.weight" */
  greta_trace_dtype dtype;
  int64_t rank;          /* 0..8 */
  const int64_t *shape;  /* rank dimensions */
  const void *data;      /* product(shape) elements, contiguous */
} greta_trace_tensor;

/* The manifest's weights_digest of these tensors, as GRETA computes it for a
 * checkpoint (by the tensors' names and values, not their storage), as 64
 * hex digits and a NUL into `out`. 0, or -1 (a NULL, an empty or repeated
 * name, a bad rank or dimension). */
int greta_trace_weights_digest(const greta_trace_tensor *tensors, size_t n,
                               char out[65]);

/* The message of the last failure on this thread ("" if none). */
const char *greta_trace_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* GRETA_TRACE_WRITER_H */
