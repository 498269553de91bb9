//===- Progress.cpp - A progress line on stderr for long runs -------------===//
#include "greta/tools/Progress.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

using namespace greta;
using Clock = std::chrono::steady_clock;

double ProgressLine::delaySeconds() {
  if (const char *s = std::getenv("GRETA_PROGRESS_AFTER")) {
    char *end = nullptr;
    double v = std::strtod(s, &end);
    if (end != s && *end == '\0' && v >= 0)
      return v;
  }
  return 2.0;
}

ProgressLine::ProgressLine(std::string tool, bool enabled)
    : tool_(std::move(tool)), enabled_(enabled && isatty(STDERR_FILENO)),
      delay_(delaySeconds()), start_(Clock::now()), lastDraw_(start_) {
  if (enabled_)
    ticker_ = std::thread([this] { tick(); });
}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::phase(const std::string &what) {
  if (!enabled_)
    return;
  std::lock_guard<std::mutex> lock(mutex_);
  phase_ = what;
  chunks_ = 0;
  draw(/*force=*/true);
}

void ProgressLine::forward(int64_t chunk, int64_t chunks, int64_t layers) {
  if (!enabled_)
    return;
  std::lock_guard<std::mutex> lock(mutex_);
  phase_ = "running";
  chunk_ = chunk;
  chunks_ = chunks;
  layers_ = layers;
  layer_.store(-1, std::memory_order_relaxed);
  draw(/*force=*/true);
}

void ProgressLine::layer(int64_t layer) {
  if (!enabled_ || layer_.exchange(layer, std::memory_order_relaxed) == layer)
    return;
  std::lock_guard<std::mutex> lock(mutex_);
  // A new layer is drawn at once when nothing of this chunk was, else at
  // most every 0.1 s.
  draw(/*force=*/drawnLayer_ < 0);
}

void ProgressLine::finish() {
  if (!enabled_)
    return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_)
      return;
    done_ = true;
    if (shown_)
      std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
  wake_.notify_all();
  if (ticker_.joinable())
    ticker_.join();
}

void ProgressLine::draw(bool force) {
  if (done_)
    return;
  auto now = Clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  if (elapsed < delay_)
    return;
  if (!force && now - lastDraw_ < std::chrono::milliseconds(100))
    return;
  lastDraw_ = now;
  std::string text = "[" + tool_ + "] " + phase_;
  if (chunks_ > 0) {
    int64_t l = layer_.load(std::memory_order_relaxed);
    drawnLayer_ = l;
    if (l >= 0 && layers_ > 0)
      text += ": layer " + std::to_string(std::min(l + 1, layers_)) + " of " +
              std::to_string(layers_);
    if (chunks_ > 1)
      text += ", chunk " + std::to_string(chunk_) + " of " +
              std::to_string(chunks_);
  } else {
    drawnLayer_ = -1;
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, ", %.1f s", elapsed);
  text += secs;
  std::fprintf(stderr, "\r%s\033[K", text.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void ProgressLine::tick() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!done_) {
    wake_.wait_for(lock, std::chrono::milliseconds(250));
    draw(/*force=*/true);
  }
}
