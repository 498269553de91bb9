//===- hip_compat.h - Build GRETA's HIP kernels with nvcc ---------*- C++ -*-===//
//
// The kernels in kernels/src/*.hip are written in HIP. On AMD (hipcc/clang
// -x hip, __HIP_PLATFORM_AMD__ defined) the real HIP headers are used. On
// NVIDIA the same sources are compiled by nvcc as CUDA (`-x cu`), and this
// header maps the HIP names the kernels use onto CUDA's. It maps only what
// GRETA uses: add a line here when a kernel needs a new HIP call.
//
// Types the kernels name:
//   greta_half  = __half                  (both platforms)
//   greta_bf16  = __hip_bfloat16 (ROCm >= 6) / hip_bfloat16 (ROCm 5.x, no
//                 hip_bf16.h) / __nv_bfloat16 (NVIDIA)
// bf16 <-> float goes through greta_bf16_to_float / greta_float_to_bf16_rn
// (round to nearest even everywhere): CUDA's __float2bfloat16_rn does not
// exist in ROCm's headers, and ROCm 5.x has neither name.
// Warp width: GRETA_WARP is 32 on NVIDIA and the wavefront size on AMD
// (64 on CDNA: gfx90a, gfx942). Every reduction in the kernels is written in
// terms of it; GRETA_WARP_CONST is the same width as a constant for host
// code (launch sizes) and array bounds.
// BLAS: only Gemm.hip uses it. It defines GRETA_KERNELS_NEED_BLAS before
// including this header, so the other sources compile where hipBLAS is
// absent (Debian 12 ships no hipBLAS).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_KERNELS_HIP_COMPAT_H
#define GRETA_KERNELS_HIP_COMPAT_H

#if defined(__HIP_PLATFORM_AMD__) || defined(GRETA_GPU_HIP) ||                \
    (defined(__HIP__) && !defined(__CUDACC__))
// ----------------------------------------------------------------- AMD / HIP
#ifndef GRETA_GPU_HIP
#define GRETA_GPU_HIP 1 // the sources test this (or __HIP_PLATFORM_AMD__)
#endif
#if !__has_include(<hip/hip_bf16.h>) && defined(__clang_major__) &&           \
    __clang_major__ > 15
// ROCm 5.x headers (Debian 12: 5.2, made for clang 15) with a newer clang
// (the gfx942 compile check uses clang-22): amd_hip_fp16.h calls
// __llvm_amdgcn_rcp_f16/_2f16, which clang 15's HIP wrapper declared and
// newer ones do not. Same operation (llvm.amdgcn.rcp.f16) through the
// builtin. GRETA's kernels never call hrcp/h2rcp; this only lets the
// header parse.
static __device__ inline _Float16 greta_rocm5_rcp_f16(_Float16 x) {
  return __builtin_amdgcn_rcph(x);
}
static __device__ inline __2f16 greta_rocm5_rcp_2f16(__2f16 x) {
  return __2f16{greta_rocm5_rcp_f16(x.x), greta_rocm5_rcp_f16(x.y)};
}
#define __llvm_amdgcn_rcp_f16 greta_rocm5_rcp_f16
#define __llvm_amdgcn_rcp_2f16 greta_rocm5_rcp_2f16
#endif
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
typedef __half greta_half;
#if __has_include(<hip/hip_bf16.h>)
#include <hip/hip_bf16.h>
typedef __hip_bfloat16 greta_bf16;
__host__ __device__ inline float greta_bf16_to_float(greta_bf16 x) {
  return __bfloat162float(x);
}
// HIP's __float2bfloat16 rounds to nearest even (CUDA's _rn).
__host__ __device__ inline greta_bf16 greta_float_to_bf16_rn(float f) {
  return __float2bfloat16(f);
}
#else
// ROCm 5.x (Debian 12 ships 5.2): only the older hip_bfloat16 class. Its
// float constructor rounds to nearest even and keeps NaN a NaN.
#include <hip/hip_bfloat16.h>
typedef hip_bfloat16 greta_bf16;
__host__ __device__ inline float greta_bf16_to_float(greta_bf16 x) {
  return static_cast<float>(x);
}
__host__ __device__ inline greta_bf16 greta_float_to_bf16_rn(float f) {
  return hip_bfloat16(f);
}
#endif
#define GRETA_PLATFORM_NAME "hip"
#define GRETA_WARP warpSize
// The targets (gfx90a, gfx942) run wave64. Host code sizes launches with
// this constant; the kernels index with GRETA_WARP, so on a wave32 target
// (RDNA) a launch would only carry idle warps, never skip work.
#define GRETA_WARP_CONST 64
#define GRETA_SHFL_XOR(v, m) __shfl_xor((v), (m))
#define GRETA_FULL_MASK 0
#define GRETA_SYNCWARP() __builtin_amdgcn_wave_barrier()
#ifdef GRETA_KERNELS_NEED_BLAS
#if !__has_include(<hipblas/hipblas.h>)
#error "Gemm.hip needs hipBLAS (ROCm >= 6, hipblas/hipblas.h): not found"
#else
// hipBLAS with hipDataType/hipblasComputeType_t (ROCm >= 6 with HIPBLAS_V2,
// the default from ROCm 7).
#ifndef HIPBLAS_V2
#define HIPBLAS_V2
#endif
#include <hipblas/hipblas.h>
#define GRETA_COMPUTE_32F HIPBLAS_COMPUTE_32F
#define GRETA_R_16F HIP_R_16F
#define GRETA_R_16BF HIP_R_16BF
#define GRETA_R_32F HIP_R_32F
#endif // hipblas.h found
#endif // GRETA_KERNELS_NEED_BLAS
#else
// ------------------------------------------------------------ NVIDIA / CUDA
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
typedef __half greta_half;
typedef __nv_bfloat16 greta_bf16;
typedef __nv_bfloat16 hip_bfloat16;
__host__ __device__ inline float greta_bf16_to_float(greta_bf16 x) {
  return __bfloat162float(x);
}
__host__ __device__ inline greta_bf16 greta_float_to_bf16_rn(float f) {
  return __float2bfloat16_rn(f);
}
#define GRETA_PLATFORM_NAME "cuda"
#define GRETA_WARP 32
#define GRETA_WARP_CONST 32
#define GRETA_SHFL_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
#define GRETA_FULL_MASK 0xffffffffu
#define GRETA_SYNCWARP() __syncwarp()

// Runtime: types, constants, calls.
#define hipError_t cudaError_t
#define hipSuccess cudaSuccess
#define hipErrorMemoryAllocation cudaErrorMemoryAllocation
#define hipErrorNoDevice cudaErrorNoDevice
#define hipErrorInsufficientDriver cudaErrorInsufficientDriver
#define hipGetErrorString cudaGetErrorString
#define hipGetErrorName cudaGetErrorName
#define hipGetLastError cudaGetLastError
#define hipPeekAtLastError cudaPeekAtLastError
#define hipStream_t cudaStream_t
#define hipStreamCreate cudaStreamCreate
#define hipStreamCreateWithFlags cudaStreamCreateWithFlags
#define hipStreamNonBlocking cudaStreamNonBlocking
#define hipStreamDestroy cudaStreamDestroy
#define hipStreamSynchronize cudaStreamSynchronize
#define hipStreamWaitEvent cudaStreamWaitEvent
#define hipEvent_t cudaEvent_t
#define hipEventCreate cudaEventCreate
#define hipEventCreateWithFlags cudaEventCreateWithFlags
#define hipEventDisableTiming cudaEventDisableTiming
#define hipEventRecord cudaEventRecord
#define hipEventSynchronize cudaEventSynchronize
#define hipEventQuery cudaEventQuery
#define hipEventElapsedTime cudaEventElapsedTime
#define hipEventDestroy cudaEventDestroy
#define hipDeviceSynchronize cudaDeviceSynchronize
#define hipGetDeviceCount cudaGetDeviceCount
#define hipGetDevice cudaGetDevice
#define hipSetDevice cudaSetDevice
#define hipDeviceProp_t cudaDeviceProp
#define hipGetDeviceProperties cudaGetDeviceProperties
#define hipDeviceGetAttribute cudaDeviceGetAttribute
#define hipDeviceAttributeComputeCapabilityMajor                               \
  cudaDevAttrComputeCapabilityMajor
#define hipDeviceAttributeComputeCapabilityMinor                               \
  cudaDevAttrComputeCapabilityMinor
#define hipMemGetInfo cudaMemGetInfo
#define hipMalloc cudaMalloc
#define hipFree cudaFree
#define hipHostMalloc(p, n, flags) cudaHostAlloc((p), (n), (flags))
#define hipHostMallocDefault cudaHostAllocDefault
#define hipHostMallocMapped cudaHostAllocMapped
#define hipHostGetDevicePointer cudaHostGetDevicePointer
#define hipHostFree cudaFreeHost
#define hipMemcpy cudaMemcpy
#define hipMemcpyAsync cudaMemcpyAsync
#define hipMemcpy2DAsync cudaMemcpy2DAsync
#define hipMemset cudaMemset
#define hipMemsetAsync cudaMemsetAsync
#define hipMemcpyHostToDevice cudaMemcpyHostToDevice
#define hipMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define hipMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define hipMemcpyToSymbol cudaMemcpyToSymbol
#define hipMemcpyFromSymbolAsync cudaMemcpyFromSymbolAsync
#define hipFuncSetAttribute cudaFuncSetAttribute
#define hipFuncAttributeMaxDynamicSharedMemorySize                             \
  cudaFuncAttributeMaxDynamicSharedMemorySize
#define hipFuncAttributePreferredSharedMemoryCarveout                          \
  cudaFuncAttributePreferredSharedMemoryCarveout
#define hipLaunchKernelGGL(kernel, grid, block, shmem, stream, ...)            \
  kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)

// BLAS: hipBLAS -> cuBLAS (GEMMs only).
#define hipblasHandle_t cublasHandle_t
#define hipblasStatus_t cublasStatus_t
#define HIPBLAS_STATUS_SUCCESS CUBLAS_STATUS_SUCCESS
#define hipblasCreate cublasCreate
#define hipblasDestroy cublasDestroy
#define hipblasSetStream cublasSetStream
#define hipblasGemmEx cublasGemmEx
#define HIPBLAS_OP_N CUBLAS_OP_N
#define HIPBLAS_OP_T CUBLAS_OP_T
#define HIPBLAS_GEMM_DEFAULT CUBLAS_GEMM_DEFAULT
#define GRETA_COMPUTE_32F CUBLAS_COMPUTE_32F
#define GRETA_R_16F CUDA_R_16F
#define GRETA_R_16BF CUDA_R_16BF
#define GRETA_R_32F CUDA_R_32F
#endif

// -------------------------------------------------- error checking (host)
// GRETA_HIP_TRY(expr): on failure, records a message naming the call, file
// and line through greta_gpu_set_error (Runtime.hip) and returns the status
// from the enclosing function. Never aborts: the C ABI reports every error.
#define GRETA_HIP_TRY(expr)                                                    \
  do {                                                                         \
    hipError_t greta_e_ = (expr);                                              \
    if (greta_e_ != hipSuccess)                                                \
      return ::greta::gpu::failFromHip(greta_e_, #expr, __FILE__, __LINE__);   \
  } while (0)
// After a kernel launch: a launch error (bad configuration, no kernel image
// for this device) surfaces through hipGetLastError.
#define GRETA_HIP_LAUNCH_CHECK() GRETA_HIP_TRY(hipGetLastError())

#endif // GRETA_KERNELS_HIP_COMPAT_H
