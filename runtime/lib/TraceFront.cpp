//===- TraceFront.cpp - What a trace call means, CPU and GPU alike --------===//
#include "greta/rt/TraceFront.h"
#include "greta/rt/Half.h"

#include <cstring>

using namespace greta::rt;

void TraceFront::setFilter(Filter filter, int64_t tokenCount) {
  filter_ = std::move(filter);
  tokenCount_ = tokenCount;
  select();
}

void TraceFront::setPositions(std::vector<int64_t> positions) {
  positions_ = std::move(positions);
  select();
}

void TraceFront::select() {
  selected_.clear();
  for (int64_t i = 0; i < static_cast<int64_t>(positions_.size()); ++i)
    if (filter_.selectsPosition(positions_[i], tokenCount_))
      selected_.push_back(i);
}

std::optional<TraceFront::Call> TraceFront::admit(int64_t recordId,
                                                  int64_t compiledPayload,
                                                  int64_t rows,
                                                  std::string &error) const {
  error.clear();
  std::optional<RecordKey> key = decodeRecordId(recordId);
  if (!key) {
    error = "trace: invalid record id " + std::to_string(recordId);
    return std::nullopt;
  }
  if (!filter_.selects(key->stage, key->layer))
    return std::nullopt;
  if (rows != static_cast<int64_t>(positions_.size())) {
    error = "trace of " + std::string(stageName(key->stage)) + " layer " +
            std::to_string(key->layer) + ": " + std::to_string(rows) +
            " rows but the session has " + std::to_string(positions_.size()) +
            " positions for this call";
    return std::nullopt;
  }
  int64_t p = filter_.payload ? static_cast<int64_t>(*filter_.payload)
                              : compiledPayload;
  if (p < 0 || p > static_cast<int64_t>(Payload::Full)) {
    error = "trace: invalid payload " + std::to_string(p);
    return std::nullopt;
  }
  return Call{key->stage, key->layer, static_cast<Payload>(p)};
}

bool TraceFront::repeats(bool repeat, Stage stage,
                         const std::optional<Tensor> &previous,
                         const Tensor &now) {
  return repeat && previous && stage != Stage::Logits &&
         previous->data == now.data && previous->dtype == now.dtype &&
         previous->rows == now.rows && previous->cols == now.cols &&
         previous->rowStride == now.rowStride &&
         previous->payload == now.payload;
}

void TraceFront::setPatch(int64_t recordId,
                          std::map<int64_t, std::vector<double>> rows) {
  patchRecord_ = recordId;
  patchRows_ = std::move(rows);
}

int64_t TraceFront::patch(
    int64_t recordId, DType dtype, int64_t rows, int64_t cols,
    const std::function<bool(int64_t, std::vector<uint8_t>)> &write,
    std::string &error) {
  if (recordId != patchRecord_ || patchRows_.empty())
    return 0;
  int64_t done = 0;
  size_t es = dtypeSize(dtype);
  for (int64_t i = 0; i < rows && i < static_cast<int64_t>(positions_.size());
       ++i) {
    auto it = patchRows_.find(positions_[i]);
    if (it == patchRows_.end())
      continue;
    if (static_cast<int64_t>(it->second.size()) != cols) {
      error = "patch of record " + std::to_string(recordId) + " at position " +
              std::to_string(positions_[i]) + " has " +
              std::to_string(it->second.size()) + " values, the tensor row " +
              std::to_string(cols);
      return done;
    }
    std::vector<uint8_t> bytes(static_cast<size_t>(cols) * es);
    for (int64_t c = 0; c < cols; ++c) {
      double v = it->second[c];
      uint8_t *to = bytes.data() + c * es;
      if (dtype == DType::F32) {
        float f = static_cast<float>(v);
        std::memcpy(to, &f, 4);
      } else if (dtype == DType::F64) {
        std::memcpy(to, &v, 8);
      } else {
        uint16_t h =
            dtype == DType::F16 ? doubleToHalfBits(v) : doubleToBF16Bits(v);
        std::memcpy(to, &h, 2);
      }
    }
    if (!write(i, std::move(bytes)))
      return done;
    ++rowsPatched_;
    ++done;
  }
  return done;
}
