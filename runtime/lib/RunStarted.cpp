//===- RunStarted.cpp - A run reports that its forward began --------------===//
#include "greta/rt/RunStarted.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

bool greta::rt::reportForwardStarted(std::string &error) {
  const char *path = std::getenv(kStartedFileEnv);
  if (!path || !*path)
    return true;
  int fd =
      ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  std::string pid = std::to_string(::getpid()) + "\n";
  if (fd < 0 ||
      ::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    error = std::string("$") + kStartedFileEnv + " " + path + ": " +
            std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}
