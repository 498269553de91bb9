//===- Progress.h - A progress line on stderr for long runs -----*- C++ -*-===//
//
// Shown only when stderr is a terminal and only once the run has taken more
// than a delay (2 s; GRETA_PROGRESS_AFTER=SECONDS changes it), so short
// runs, pipes, files and tests never see it. One line, redrawn in place
// ("\r", erase to end of line) by a thread every 0.25 s and by the run when
// it enters a new layer; finish() erases it before the run prints anything.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_TOOLS_PROGRESS_H
#define GRETA_TOOLS_PROGRESS_H

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace greta {

class ProgressLine {
public:
  /// `enabled` false (or stderr not a terminal): every call does nothing.
  ProgressLine(std::string tool, bool enabled = true);
  ~ProgressLine();
  ProgressLine(const ProgressLine &) = delete;
  ProgressLine &operator=(const ProgressLine &) = delete;

  /// What the run does now ("compiling", "loading weights", "running").
  void phase(const std::string &what);
  /// The forward pass: chunk `chunk` (1-based) of `chunks`, over `layers`.
  void forward(int64_t chunk, int64_t chunks, int64_t layers);
  /// The layer the forward pass is in (0-based); cheap, called per traced
  /// tensor.
  void layer(int64_t layer);
  /// Erases the line for good (also from the destructor).
  void finish();

  /// The delay before the first line: GRETA_PROGRESS_AFTER or 2 s.
  static double delaySeconds();

private:
  void draw(bool force); // under mutex_
  void tick();

  std::string tool_;
  bool enabled_ = false;
  double delay_ = 2;
  std::chrono::steady_clock::time_point start_, lastDraw_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread ticker_;
  bool done_ = false, shown_ = false;
  std::string phase_;
  int64_t chunk_ = 0, chunks_ = 0, layers_ = 0;
  std::atomic<int64_t> layer_{-1};
  int64_t drawnLayer_ = -1;
};

} // namespace greta

#endif // GRETA_TOOLS_PROGRESS_H
