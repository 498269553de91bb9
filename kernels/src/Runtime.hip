//===- Runtime.hip - Errors, device set-up, memory, variant registry ------===//
#include "Common.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace greta::gpu {
namespace {
thread_local std::string tlsError;

struct VariantDesc {
  Op op;
  const char *opName;
  const char *name;
  int plantedBug;
  const char *description;
};
// Variant 0 of each op is its default. Keep in the order of the indices in
// Common.h (variant::k*).
const VariantDesc kVariants[] = {
    {Op::Embedding, "embedding", "default", 0, "row gather, 16-byte copies"},
    {Op::RmsNorm, "rms_norm", "default", 0,
     "one block per row, fp32 sum of squares, HF order of rounding"},
    {Op::Linear, "linear", "default", 0,
     "hipBLAS/cuBLAS GemmEx, fp32 compute (no TF32)"},
    {Op::Rope, "rope", "default", 0,
     "rotate-half; inv_freq correctly rounded to fp32, angle = pos*inv_freq "
     "in fp32, accurate sincosf"},
    {Op::Rope, "rope", "fp16_angles", 1,
     "PLANTED BUG: position and inv_freq rounded to fp16 and multiplied in "
     "fp16; angles lose precision as positions grow (inf past 65504)"},
    {Op::KvAppend, "kv_append", "default", 0, "row scatter into the KV cache"},
    {Op::Attention, "attention", "default", 0,
     "flash-style: the hopper kernel on compute capability 9.0 (f16/bf16, "
     "head_dim 64/128), else the gqa kernel (f16/bf16 on NVIDIA), else the "
     "scalar kernel"},
    {Op::Attention, "attention", "wmma", 0,
     "flash-style on the portable WMMA API: S and PV through shared memory "
     "(f16/bf16 on NVIDIA; scalar otherwise)"},
    {Op::Attention, "attention", "scalar", 0,
     "flash-style, online softmax, fp32 FMA on 64x64 tiles in shared memory "
     "(the portable kernel)"},
    {Op::Attention, "attention", "partial_tile_bug", 1,
     "PLANTED BUG: number of key tiles computed as kv_len / 64 (floor): keys "
     "of the partial last tile are dropped, so queries at positions >= "
     "64*floor(kv_len/64) go wrong when kv_len is not a multiple of 64"},
    {Op::Attention, "attention", "mma_fa2", 0,
     "the previous default: FlashAttention-2 structure on mma.sync, one head "
     "and 64 query rows per block (16 per warp), cp.async double buffering "
     "(f16/bf16 on NVIDIA; scalar otherwise)"},
    {Op::Attention, "attention", "lazy_rescale", 0,
     "the default with lazy online-softmax rescaling (reference max moves "
     "only when a row max grows by > 2^8): faster, as accurate against an "
     "exact reference, but rounds P differently from PyTorch"},
    {Op::Attention, "attention", "hopper", 0,
     "sm_90a, FlashAttention-3's structure: wgmma (S = QK^T from shared "
     "memory, P V with P from registers), a producer warpgroup (cp.async "
     "into 128-byte-swizzled shared memory, mbarrier pipeline) and two "
     "consumer warpgroups taking turns, GQA-packed, 128-key tiles; head_dim "
     "64/128 f16/bf16 on compute capability 9.0, the gqa kernel otherwise"},
    {Op::Attention, "attention", "gqa", 0,
     "FlashAttention-2 structure on mma.sync m16n8k16 with S, P and O in "
     "registers; GQA-packed blocks (the query heads of one KV head share "
     "each K/V tile), 32 rows per warp at head_dim <= 64, 3-stage cp.async, "
     "f16/bf16 on NVIDIA (the default before hopper, and its fallback)"},
    {Op::Swiglu, "swiglu", "default", 0, "silu(gate) rounded to T, times up"},
    {Op::Add, "add", "default", 0, "elementwise"},
    {Op::Trace, "trace", "default", 0,
     "SHA-256 by split_schedule up to 32768 (tensor, row) slots per "
     "launch, then one_thread_per_row; stats one warp per row"},
    {Op::Trace, "trace", "one_thread_per_row", 0,
     "SHA-256 schedule and rounds of a row in one thread (the most rows "
     "per SM: the fastest on launches that fill the GPU)"},
    {Op::Trace, "trace", "split_schedule", 0,
     "SHA-256 with two warps per 32 rows: one computes the message "
     "schedule of block t into shared memory while the other runs the "
     "rounds of block t-1 (about half the latency of a row's chain)"},
    {Op::PagedKvAppend, "paged_kv_append", "default", 0,
     "row scatter into the paged KV cache through the block table"},
    {Op::PagedKvAppend, "paged_kv_append", "stale_page_bug", 1,
     "PLANTED BUG: a row that opens a new page (position a multiple of "
     "--kv-block-size, > 0) goes through the page pointer held from before "
     "the sequence grew and is dropped: that slot of the new page keeps "
     "what its previous use left there"},
    {Op::PagedAttention, "paged_attention", "default", 0,
     "split-K flash-decoding over the paged KV cache: one block per (kv "
     "head, key range, query row), a warp per query head of the group, "
     "online softmax in fp32, the ranges merged in a fixed order"},
    {Op::PagedAttention, "paged_attention", "page_boundary_bug", 1,
     "PLANTED BUG: off by one at page boundaries: the page of a key that "
     "opens a page is taken as (position - 1) / block_size, so it is read "
     "from the previous page's first slot"},
};
constexpr size_t kNumVariants = sizeof(kVariants) / sizeof(kVariants[0]);

std::atomic<int> gSelected[static_cast<int>(Op::Count)];
greta_gpu_variant_info gInfo[kNumVariants];
std::once_flag gInfoOnce;

void buildInfo() {
  for (size_t i = 0; i < kNumVariants; ++i) {
    const VariantDesc &v = kVariants[i];
    bool first = i == 0 || kVariants[i - 1].op != v.op;
    gInfo[i] = {v.opName, v.name, first ? 1 : 0, v.plantedBug, v.description};
  }
}

std::string knownVariants() {
  std::string s;
  for (size_t i = 0; i < kNumVariants; ++i) {
    if (i == 0 || kVariants[i - 1].op != kVariants[i].op)
      s += std::string(i ? "; " : "") + kVariants[i].opName + "=";
    else
      s += "|";
    s += kVariants[i].name;
  }
  return s;
}

__device__ unsigned gDeviceError;
} // namespace

greta_gpu_status fail(greta_gpu_status s, std::string message) {
  tlsError = std::move(message);
  return s;
}

greta_gpu_status failFromHip(hipError_t e, const char *expr, const char *file,
                             int line) {
  const char *base = std::strrchr(file, '/');
  std::string msg = std::string(GRETA_PLATFORM_NAME) + " error " +
                    hipGetErrorName(e) + " (" + hipGetErrorString(e) +
                    ") in `" + expr + "` at " + (base ? base + 1 : file) + ":" +
                    std::to_string(line);
  if (e == hipErrorMemoryAllocation) {
    size_t freeB = 0, totalB = 0;
    (void)hipGetLastError();
    if (hipMemGetInfo(&freeB, &totalB) == hipSuccess)
      msg += "; device memory free " + std::to_string(freeB) + " of " +
             std::to_string(totalB) + " bytes";
    return fail(GRETA_GPU_ERR_OUT_OF_MEMORY, msg);
  }
  if (e == hipErrorNoDevice || e == hipErrorInsufficientDriver)
    return fail(GRETA_GPU_ERR_NO_DEVICE, msg);
  // Clear a sticky-free error so the next call starts clean.
  (void)hipGetLastError();
  return fail(GRETA_GPU_ERR_LAUNCH, msg);
}

int selectedVariant(Op op) {
  return gSelected[static_cast<int>(op)].load(std::memory_order_relaxed);
}

// hipGetSymbolAddress / cudaGetSymbolAddress differ only by name. Kernels in
// other translation units get the word's address as an argument (no
// relocatable device code needed).
#if defined(__HIP_PLATFORM_AMD__) || defined(GRETA_GPU_HIP)
#define GRETA_GET_SYMBOL_ADDRESS hipGetSymbolAddress
#else
#define GRETA_GET_SYMBOL_ADDRESS cudaGetSymbolAddress
#endif
unsigned *deviceErrorWord() {
  void *p = nullptr;
  if (GRETA_GET_SYMBOL_ADDRESS(&p, gDeviceError) != hipSuccess) {
    (void)hipGetLastError();
    return nullptr;
  }
  return static_cast<unsigned *>(p);
}

greta_gpu_status checkMatrix(const char *what, const void *p, int64_t rows,
                             int64_t cols, int64_t ld) {
  if (rows < 0 || cols < 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                std::string(what) + ": negative size (rows " +
                    std::to_string(rows) + ", cols " + std::to_string(cols) +
                    ")");
  if (ld < cols)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                std::string(what) + ": leading dimension " +
                    std::to_string(ld) + " < cols " + std::to_string(cols));
  if (rows > 0 && cols > 0 && p == nullptr)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                std::string(what) + ": null pointer");
  return GRETA_GPU_OK;
}

} // namespace greta::gpu

using namespace greta::gpu;

extern "C" {

const char *greta_gpu_last_error(void) { return tlsError.c_str(); }

const char *greta_gpu_platform(void) { return GRETA_PLATFORM_NAME; }

const char *greta_gpu_status_name(greta_gpu_status s) {
  switch (s) {
  case GRETA_GPU_OK: return "ok";
  case GRETA_GPU_ERR_NO_DEVICE: return "no GPU";
  case GRETA_GPU_ERR_UNKNOWN_VARIANT: return "unknown kernel variant";
  case GRETA_GPU_ERR_OUT_OF_MEMORY: return "out of device memory";
  case GRETA_GPU_ERR_INVALID_ARGUMENT: return "invalid argument";
  case GRETA_GPU_ERR_LAUNCH: return "kernel or runtime call failed";
  case GRETA_GPU_ERR_BLAS: return "BLAS call failed";
  case GRETA_GPU_ERR_DEVICE_ASSERT: return "a kernel flagged bad data";
  }
  return "unknown status";
}

greta_gpu_status greta_gpu_init(int device, char *desc, size_t descLen) {
  tlsError.clear();
  int count = 0;
  hipError_t e = hipGetDeviceCount(&count);
  if (e != hipSuccess || count == 0) {
    (void)hipGetLastError();
    return fail(GRETA_GPU_ERR_NO_DEVICE,
                std::string("no ") + GRETA_PLATFORM_NAME +
                    " GPU found (" +
                    (e != hipSuccess ? hipGetErrorString(e) : "0 devices") +
                    ")");
  }
  if (device < 0 || device >= count)
    return fail(GRETA_GPU_ERR_NO_DEVICE,
                "GPU " + std::to_string(device) + " requested, " +
                    std::to_string(count) + " present");
  GRETA_HIP_TRY(hipSetDevice(device));
  hipDeviceProp_t prop;
  GRETA_HIP_TRY(hipGetDeviceProperties(&prop, device));
  // Touch the device and reset the error word: fails early when this build
  // has no code for the device's architecture.
  unsigned zero = 0;
  GRETA_HIP_TRY(hipMemcpyToSymbol(gDeviceError, &zero, sizeof zero));
  if (desc && descLen) {
    std::snprintf(desc, descLen,
                  "%s, %.1f GiB, %d SMs, compute capability %d.%d (%s)",
                  prop.name, prop.totalGlobalMem / 1073741824.0,
                  prop.multiProcessorCount, prop.major, prop.minor,
                  GRETA_PLATFORM_NAME);
  }
  return GRETA_GPU_OK;
}

greta_gpu_status greta_gpu_malloc(void **p, size_t bytes) {
  if (!p)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "greta_gpu_malloc: null out");
  *p = nullptr;
  hipError_t e = hipMalloc(p, bytes);
  if (e == hipSuccess)
    return GRETA_GPU_OK;
  (void)hipGetLastError();
  size_t freeB = 0, totalB = 0;
  bool haveInfo = hipMemGetInfo(&freeB, &totalB) == hipSuccess;
  if (e == hipErrorMemoryAllocation)
    return fail(GRETA_GPU_ERR_OUT_OF_MEMORY,
                "out of device memory: asked for " + std::to_string(bytes) +
                    " bytes (" + std::to_string(bytes >> 20) + " MiB), " +
                    (haveInfo ? std::to_string(freeB) + " bytes (" +
                                    std::to_string(freeB >> 20) +
                                    " MiB) free of " + std::to_string(totalB)
                              : std::string("free memory unknown")));
  return failFromHip(e, "hipMalloc", __FILE__, __LINE__);
}

greta_gpu_status greta_gpu_free(void *p) {
  GRETA_HIP_TRY(hipFree(p));
  return GRETA_GPU_OK;
}

greta_gpu_status greta_gpu_host_alloc(void **p, size_t bytes) {
  if (!p)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "greta_gpu_host_alloc: null");
  GRETA_HIP_TRY(hipHostMalloc(p, bytes, hipHostMallocDefault));
  return GRETA_GPU_OK;
}

greta_gpu_status greta_gpu_host_alloc_mapped(void **p, void **d,
                                            size_t bytes) {
  if (!p || !d)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "greta_gpu_host_alloc_mapped: null");
  *p = *d = nullptr;
  GRETA_HIP_TRY(hipHostMalloc(p, bytes, hipHostMallocMapped));
  hipError_t e = hipHostGetDevicePointer(d, *p, 0);
  if (e != hipSuccess) {
    (void)hipHostFree(*p);
    *p = *d = nullptr;
    return failFromHip(e, "hipHostGetDevicePointer", __FILE__, __LINE__);
  }
  return GRETA_GPU_OK;
}

greta_gpu_status greta_gpu_host_free(void *p) {
  GRETA_HIP_TRY(hipHostFree(p));
  return GRETA_GPU_OK;
}

greta_gpu_status greta_gpu_check_device_errors(void *stream) {
  unsigned word = 0, zero = 0;
  GRETA_HIP_TRY(hipMemcpyFromSymbolAsync(&word, gDeviceError, sizeof word, 0,
                                         hipMemcpyDeviceToHost,
                                         asStream(stream)));
  GRETA_HIP_TRY(hipStreamSynchronize(asStream(stream)));
  if (!word)
    return GRETA_GPU_OK;
  GRETA_HIP_TRY(hipMemcpyToSymbol(gDeviceError, &zero, sizeof zero));
  std::string what;
  if (word & kErrBadEmbeddingId)
    what += "an embedding id outside [0, vocab) (its row was set to NaN)";
  if (word & kErrBadExpertId)
    what += std::string(what.empty() ? "" : "; ") +
            "an expert_selection id that is not a whole number in [0, 2^24) "
            "(moe_accumulate counted it as not chosen)";
  return fail(GRETA_GPU_ERR_DEVICE_ASSERT, "kernel flagged bad data: " + what);
}

const greta_gpu_variant_info *greta_gpu_kernel_variants(size_t *count) {
  std::call_once(gInfoOnce, buildInfo);
  if (count)
    *count = kNumVariants;
  return gInfo;
}

greta_gpu_status greta_gpu_set_variant(const char *spec) {
  std::string s = spec ? spec : "";
  size_t eq = s.find('=');
  std::string opName = s.substr(0, eq);
  std::string name = eq == std::string::npos ? "" : s.substr(eq + 1);
  int opIndex = -1, within = 0;
  bool opFound = false;
  for (size_t i = 0; i < kNumVariants; ++i) {
    if (i > 0 && kVariants[i - 1].op != kVariants[i].op)
      within = 0;
    if (opName == kVariants[i].opName) {
      opFound = true;
      if (name == kVariants[i].name) {
        opIndex = static_cast<int>(kVariants[i].op);
        gSelected[opIndex].store(within);
        return GRETA_GPU_OK;
      }
    }
    ++within;
  }
  return fail(GRETA_GPU_ERR_UNKNOWN_VARIANT,
              std::string("unknown kernel variant '") + s + "'" +
                  (opFound ? " (no such variant of " + opName + ")"
                           : " (no op '" + opName + "')") +
                  "; known: " + knownVariants());
}

const char *greta_gpu_get_variant(const char *op) {
  if (!op)
    return nullptr;
  int within = 0;
  for (size_t i = 0; i < kNumVariants; ++i) {
    if (i > 0 && kVariants[i - 1].op != kVariants[i].op)
      within = 0;
    if (std::strcmp(op, kVariants[i].opName) == 0 &&
        selectedVariant(kVariants[i].op) == within)
      return kVariants[i].name;
    ++within;
  }
  return nullptr;
}

void greta_gpu_reset_variants(void) {
  for (auto &s : gSelected)
    s.store(0);
}

} // extern "C"
