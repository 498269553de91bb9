//===- GpuMoE.h - What the MoE glue files share -----------------*- C++ -*-===//
#ifndef GRETA_GPU_MOE_H
#define GRETA_GPU_MOE_H

namespace greta::gpu::moe {
/// Called by every router call: the routing plan of the grouped experts
/// (GpuMoEExperts.cpp) is of the previous selection and is read again.
void routingChanged();
} // namespace greta::gpu::moe

#endif
