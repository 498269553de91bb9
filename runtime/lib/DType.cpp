//===- DType.cpp - Element types of weights and traces ----------*- C++ -*-===//
#include "greta/rt/DType.h"

using namespace greta::rt;

std::string_view greta::rt::dtypeName(DType d) {
  switch (d) {
  case DType::F32:
    return "f32";
  case DType::F64:
    return "f64";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  }
  return "unknown";
}

size_t greta::rt::dtypeSize(DType d) {
  switch (d) {
  case DType::F32:
    return 4;
  case DType::F64:
    return 8;
  case DType::F16:
  case DType::BF16:
    return 2;
  }
  return 0;
}
