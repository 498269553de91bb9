//===- InputDigests.cpp - What a step's result depends on -----------------===//
#include "InputDigests.h"
#include "greta/bisect/Bisect.h"

#include "greta/rt/Cache.h"
#include "greta/rt/Weights.h"
#include "greta/rt/WeightsDigest.h"

#include "greta/rt/Sha256.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using nlohmann::json;
namespace rt = ::greta::rt;

namespace greta::bisect {

namespace {
std::string sha256Text(const std::string &text) {
  return rt::sha256Hex(text.data(), text.size());
}

/// The paths the dynamic loader resolves for `exe` ("" entries dropped): the
/// output of `LD_TRACE_LOADED_OBJECTS=1 exe`, lines "name => /path (0x..)"
/// or "/path (0x..)". Empty when `exe` is not a dynamic executable.
std::vector<std::string> loadedLibraries(const std::string &exe) {
  int pipefd[2];
  if (pipe(pipefd) != 0)
    return {};
  pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return {};
  }
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      dup2(devnull, STDERR_FILENO);
    }
    close(pipefd[0]);
    close(pipefd[1]);
    setenv("LD_TRACE_LOADED_OBJECTS", "1", 1);
    execl(exe.c_str(), exe.c_str(), static_cast<char *>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return {};
  std::set<std::string> paths;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    size_t arrow = line.find("=> ");
    size_t start = arrow == std::string::npos ? 0 : arrow + 3;
    start = line.find_first_not_of(" \t", start);
    if (start == std::string::npos || line[start] != '/')
      continue;
    size_t end = line.find(" (0x", start);
    paths.insert(line.substr(start, end == std::string::npos ? std::string::npos
                                                             : end - start));
  }
  return {paths.begin(), paths.end()};
}
} // namespace

std::string fileDigest(const std::string &path, std::string &error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return "";
  }
  rt::Sha256Stream sha;
  std::vector<char> buf(1 << 20);
  bool ok = true;
  for (ssize_t n; (n = read(fd, buf.data(), buf.size())) != 0;) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      error = "cannot read " + path + ": " + std::strerror(errno);
      ok = false;
      break;
    }
    sha.update(buf.data(), static_cast<size_t>(n));
  }
  close(fd);
  std::string digest = sha.finalHex();
  return ok ? digest : "";
}

std::string executableDigest(const std::string &path, std::string &error) {
  std::string text = fileDigest(path, error);
  if (text.empty())
    return "";
  for (const std::string &lib : loadedLibraries(path)) {
    std::string libError;
    text += "\n" + lib + " " + fileDigest(lib, libError);
  }
  return sha256Text(text);
}

/// A model is an IR file, or an HF checkpoint directory whose graph comes
/// from its config.json; the models of every configuration, in one digest.
static std::string modelDigest(const Options &o, std::string &error) {
  std::string text;
  for (const std::string *m : {&o.model, &o.test.model,
                               o.ref ? &o.ref->model : nullptr}) {
    if (!m || m->empty())
      continue;
    std::string file = std::filesystem::is_directory(*m)
                           ? (std::filesystem::path(*m) / "config.json").string()
                           : *m;
    std::string d = fileDigest(file, error);
    if (d.empty())
      return "";
    text += *m + " " + d + "\n";
  }
  return sha256Text(text);
}

bool InputDigests::compute(const Options &o, std::string &error) {
  if ((model = modelDigest(o, error)).empty() ||
      (gretaRun = executableDigest(o.gretaRun, error)).empty() ||
      (gretaDiff = executableDigest(o.gretaDiff, error)).empty())
    return false;
  for (const auto &[name, path] : o.prompts)
    if ((prompts[name] = fileDigest(path, error)).empty())
      return false;
  if (o.weights.empty())
    return true; // outside engines only: they name their weights themselves
  auto weightsFile = rt::SafeTensors::open(o.weights, error);
  if (!weightsFile)
    return false;
  // The digest cache greta-run keeps by default, if it is usable.
  std::string cacheDir = rt::defaultCacheDir(), cacheError, warning;
  if (!cacheDir.empty() && !rt::openCacheDir(cacheDir, cacheError))
    cacheDir.clear();
  weights = rt::digestWeightsCached(*weightsFile, cacheDir, warning).whole;
  return true;
}

json InputDigests::forStep(const std::string &prompt) const {
  auto it = prompts.find(prompt);
  return {{"model", model},
          {"weights", weights},
          {"prompt", it == prompts.end() ? "" : it->second},
          {"greta-run", gretaRun},
          {"greta-diff", gretaDiff}};
}

std::string changedInputs(const json &recorded, const json &current) {
  if (!recorded.is_object())
    return "its inputs were not recorded (an older greta-bisect)";
  std::string changed;
  for (auto it = current.begin(); it != current.end(); ++it) {
    bool same = recorded.is_object() && recorded.contains(it.key()) &&
                recorded[it.key()] == it.value();
    if (!same)
      changed += (changed.empty() ? "" : ", ") + it.key();
  }
  return changed.empty() ? "" : changed + " changed since the work dir's run";
}

} // namespace greta::bisect
