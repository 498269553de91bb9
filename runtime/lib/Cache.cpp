//===- Cache.cpp - A private cache directory --------------------*- C++ -*-===//
#include "greta/rt/Cache.h"
#include "greta/rt/Sha256.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

using namespace greta::rt;

namespace {
std::string errnoText(int e) { return std::strerror(e); }

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

/// mkdir -p of the parents (mode 0777 & ~umask, as usual), then `dir` itself
/// 0700.
int makeDirs(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  for (size_t slash = dir.find('/', 1); slash != std::string::npos;
       slash = dir.find('/', slash + 1)) {
    std::string parent = dir.substr(0, slash);
    if (::mkdir(parent.c_str(), 0777) != 0 && errno != EEXIST)
      return errno;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return errno;
  return 0;
}

constexpr const char kSealMagic[] = "greta-cache-entry 1\n";
} // namespace

std::string greta::rt::defaultCacheDir() {
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/greta";
  if (const char *home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/greta";
  return "";
}

bool greta::rt::openCacheDir(const std::string &dir, std::string &error) {
  if (dir.empty()) {
    error = "the cache directory is an empty path";
    return false;
  }
  if (int e = makeDirs(dir)) {
    error = "cache directory " + dir + ": cannot create: " + errnoText(e);
    return false;
  }
  // Checked through an open descriptor: the directory examined is the one
  // the path names now (a symlink is followed, its target checked).
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    error = "cache directory " + dir + ": " + errnoText(errno);
    return false;
  }
  struct stat st;
  int rc = ::fstat(fd, &st);
  int e = errno;
  ::close(fd);
  if (rc != 0) {
    error = "cache directory " + dir + ": cannot stat: " + errnoText(e);
    return false;
  }
  if (st.st_uid != ::geteuid()) {
    error = "cache directory " + dir + " is owned by uid " +
            std::to_string(st.st_uid) + ", not by this user (uid " +
            std::to_string(::geteuid()) +
            "): its compiled objects and digests cannot be trusted; give "
            "--cache-dir a directory of your own";
    return false;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    error = "cache directory " + dir + " is writable by other users (mode " +
            octal(st.st_mode) +
            "): anyone could plant a compiled object a run would load; "
            "'chmod go-w " +
            dir + "' or give --cache-dir a private directory";
    return false;
  }
  return true;
}

bool greta::rt::writeCacheFile(const std::string &dir, const std::string &name,
                               const std::string &bytes, std::string &error) {
  std::string path = dir + "/" + name;
  std::random_device random;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
          std::to_string(random());
    fd = ::open(tmp.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + errnoText(errno);
    return false;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(tmp.c_str());
      error = "cannot write " + tmp + ": " + errnoText(e);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    error = "cannot write " + tmp + ": " + errnoText(e);
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    error = "cannot rename " + tmp + " to " + path + ": " + errnoText(e);
    return false;
  }
  return true;
}

std::optional<std::string> greta::rt::readCacheFile(const std::string &dir,
                                                    const std::string &name,
                                                    size_t maxBytes) {
  std::string path = dir + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) > maxBytes) {
    ::close(fd);
    return std::nullopt;
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done != bytes.size())
    return std::nullopt;
  return bytes;
}

std::string greta::rt::sealCacheEntry(const std::string &payload) {
  return std::string(kSealMagic) + "sha256 " +
         sha256Hex(payload.data(), payload.size()) + "\nsize " +
         std::to_string(payload.size()) + "\n\n" + payload;
}

SealCheck greta::rt::unsealCacheEntry(const std::string &entry,
                                      std::string &payload) {
  // greta-cache-entry 1\nsha256 <64 hex>\nsize <n>\n\n<payload>
  size_t magic = sizeof(kSealMagic) - 1;
  if (entry.compare(0, magic, kSealMagic) != 0)
    return SealCheck::NotSealed;
  size_t end = entry.find("\n\n", magic);
  if (end == std::string::npos || end - magic > 128)
    return SealCheck::NotSealed;
  std::string header = entry.substr(magic, end - magic);
  char hex[65] = {};
  unsigned long long size = 0;
  if (std::sscanf(header.c_str(), "sha256 %64[0-9a-f]\nsize %llu", hex,
                  &size) != 2 ||
      std::strlen(hex) != 64)
    return SealCheck::NotSealed;
  size_t start = end + 2;
  if (entry.size() - start != size)
    return SealCheck::Damaged;
  if (sha256Hex(entry.data() + start, size) != hex)
    return SealCheck::Damaged;
  payload = entry.substr(start);
  return SealCheck::Ok;
}
