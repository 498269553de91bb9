//===- WorkDirState.cpp - The resumable state of a bisection ----*- C++ -*-===//
#include "WorkDirState.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;
using nlohmann::json;

namespace greta::bisect {

WorkDirState::WorkDirState(fs::path path, json inputs)
    : path_(std::move(path)) {
  state_ = {
      {"version", 1}, {"inputs", std::move(inputs)}, {"steps", json::object()}};
}

bool WorkDirState::load(std::string &error) {
  std::ifstream in(path_);
  if (!in)
    return true; // a fresh work dir
  json old = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (old.is_discarded() || !old.contains("inputs") || !old.contains("steps")) {
    error = "work dir state " + path_.string() +
            " is unreadable; remove it or use another --work-dir";
    return false;
  }
  if (old["inputs"] != state_["inputs"]) {
    error = "work dir " + path_.parent_path().string() +
            " holds a different bisection (other model, weights, prompts "
            "or flags); use another --work-dir or --restart";
    return false;
  }
  state_ = std::move(old);
  return true;
}

const json *WorkDirState::find(const std::string &key) const {
  auto it = state_["steps"].find(key);
  return it == state_["steps"].end() ? nullptr : &*it;
}

bool WorkDirState::store(const std::string &key, json value,
                         std::string &error) {
  state_["steps"][key] = std::move(value);
  fs::path tmp = path_;
  tmp += ".tmp";
  // Created anew with O_EXCL | O_NOFOLLOW: a symlink planted at the
  // temporary's name is removed, never written through.
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    error = "cannot remove " + tmp.string() + ": " + std::strerror(errno);
    return false;
  }
  int fd = ::open(tmp.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot create " + tmp.string() + ": " + std::strerror(errno);
    return false;
  }
  std::string text = state_.dump(2) + "\n";
  bool ok = true;
  for (size_t done = 0; ok && done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  int e = ok ? 0 : errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    error = "cannot write " + tmp.string() + ": " + std::strerror(e);
    return false;
  }
  std::error_code ec;
  fs::rename(tmp, path_, ec);
  if (ec) {
    error = "cannot write " + path_.string() + ": " + ec.message();
    return false;
  }
  return true;
}

} // namespace greta::bisect
