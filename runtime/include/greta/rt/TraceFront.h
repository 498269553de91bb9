//===- TraceFront.h - What a trace call means, CPU and GPU alike -*- C++
//-*-===//
//
// Everything the CPU Session and the GPU session decide about a trace call
// of the compiled model before they hash anything: which record it is (the
// record id), whether the filter keeps it and which rows of this call
// (positions), that it has a row per position, its payload, whether it is a
// repeat of the previous call's tensor, and the causal patch
// (greta-bisect --confirm) of its rows. One class says it, so a CPU trace
// and a GPU trace mean the same thing.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_TRACEFRONT_H
#define GRETA_RT_TRACEFRONT_H

#include "greta/rt/Filter.h"
#include "greta/rt/Stages.h"
#include "greta/rt/Trace.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace greta::rt {

class TraceFront {
public:
  /// The filter of this run; `tokenCount` resolves `last`.
  void setFilter(Filter filter, int64_t tokenCount);
  const Filter &filter() const { return filter_; }
  /// The positions of the rows of the next forward call (one chunk).
  void setPositions(std::vector<int64_t> positions);
  const std::vector<int64_t> &positions() const { return positions_; }
  /// The rows of this call whose positions the filter keeps.
  const std::vector<int64_t> &selectedRows() const { return selected_; }

  /// A trace call the filter keeps: its record and payload.
  struct Call {
    Stage stage;
    int64_t layer;
    Payload payload;
  };
  /// Decodes `recordId`, applies the filter, checks that `rows` is the
  /// call's number of positions and resolves the payload (the filter's,
  /// else the compiled one). nullopt with `error` empty: not recorded;
  /// with `error` set: a bad call.
  std::optional<Call> admit(int64_t recordId, int64_t compiledPayload,
                            int64_t rows, std::string &error) const;

  /// A traced tensor as the previous call left it.
  struct Tensor {
    const void *data = nullptr;
    DType dtype = DType::F32;
    int64_t rows = 0, cols = 0, rowStride = 0;
    Payload payload = Payload::Hash;
  };
  /// A call flagged `repeat` (the compiler knows the buffer is the previous
  /// trace call's, unwritten since) reuses that call's records when it
  /// recorded the same tensor with the same payload. Logits never repeat:
  /// their records also carry top-5 ids.
  static bool repeats(bool repeat, Stage stage,
                      const std::optional<Tensor> &previous, const Tensor &now);

  /// greta-bisect --confirm: at every trace of `recordId`, the rows of these
  /// positions are replaced by these values before anything reads them.
  void setPatch(int64_t recordId, std::map<int64_t, std::vector<double>> rows);
  /// The patch of `recordId` for this call's `rows` rows of `cols` values:
  /// `write(row, bytes)` gets each replaced row converted to `dtype`.
  /// Returns how many rows it replaced; a patch row of another width sets
  /// `error` and stops.
  int64_t patch(
      int64_t recordId, DType dtype, int64_t rows, int64_t cols,
      const std::function<bool(int64_t row, std::vector<uint8_t> bytes)> &write,
      std::string &error);
  int64_t rowsPatched() const { return rowsPatched_; }

private:
  void select();
  Filter filter_;
  int64_t tokenCount_ = 0;
  std::vector<int64_t> positions_, selected_;
  int64_t patchRecord_ = -1;
  std::map<int64_t, std::vector<double>> patchRows_;
  int64_t rowsPatched_ = 0;
};

} // namespace greta::rt

#endif // GRETA_RT_TRACEFRONT_H
