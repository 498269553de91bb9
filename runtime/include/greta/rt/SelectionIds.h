//===- SelectionIds.h - Expert ids of expert_selection rows -----*- C++ -*-===//
//
// An expert_selection row is [k expert ids, k weights] of the tensor's
// element type (greta.moe_router). Its ids become the record's top ids on
// the CPU (Session::trace) and on the GPU (the trace writer, rows in f16,
// bf16 or f32): one function, so both traces hold the same ids for the same
// selection. A value that is not a whole number in [0, 2^31 - 1) reads as
// -1, so a corrupt selection never reads as expert 0.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_SELECTIONIDS_H
#define GRETA_RT_SELECTIONIDS_H

#include "greta/rt/DType.h"
#include "greta/rt/Half.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace greta::rt {

/// Value j of a row of `dtype`, widened to double.
inline double rowValue(const uint8_t *row, DType dtype, int64_t j) {
  switch (dtype) {
  case DType::F32: {
    float f;
    std::memcpy(&f, row + j * 4, 4);
    return f;
  }
  case DType::F64: {
    double d;
    std::memcpy(&d, row + j * 8, 8);
    return d;
  }
  case DType::F16:
  case DType::BF16: {
    uint16_t h;
    std::memcpy(&h, row + j * 2, 2);
    return dtype == DType::F16 ? halfBitsToFloat(h) : bf16BitsToFloat(h);
  }
  }
  return NAN;
}

/// Expert id j of one selection row; -1 when it is not a whole number.
inline int32_t selectionId(const uint8_t *row, DType dtype, int64_t j) {
  double v = rowValue(row, dtype, j);
  return v >= 0 && v < 2147483647.0 && v == std::floor(v)
             ? static_cast<int32_t>(v)
             : -1;
}

/// The k = cols / 2 ids of each of n dense rows of `cols` values, row after
/// row, into ids (n * k entries).
inline void selectionIds(const uint8_t *rows, DType dtype, int64_t n,
                         int64_t cols, std::vector<int32_t> &ids) {
  int64_t k = cols / 2;
  size_t rowBytes = static_cast<size_t>(cols) * dtypeSize(dtype);
  ids.clear();
  ids.reserve(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      ids.push_back(selectionId(rows + i * rowBytes, dtype, j));
}

} // namespace greta::rt

#endif // GRETA_RT_SELECTIONIDS_H
