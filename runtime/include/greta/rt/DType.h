//===- DType.h - Element types and payloads of traces ------*- C++ -*-===//
//
// The element types a weight or a traced row is stored in, and how much of
// a traced row a trace keeps. Weights.h and Filter.h need these alone, not
// the whole trace format (Trace.h).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_DTYPE_H
#define GRETA_RT_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace greta::rt {

enum class DType : uint8_t { F32 = 0, F64 = 1, F16 = 2, BF16 = 3 };
std::string_view dtypeName(DType d);
size_t dtypeSize(DType d);

enum class Payload : uint8_t { Hash = 0, Stats = 1, Full = 2 };

} // namespace greta::rt

#endif // GRETA_RT_DTYPE_H
