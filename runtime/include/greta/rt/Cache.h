//===- Cache.h - A private cache directory, written atomically --*- C++ -*-===//
//
// GRETA's caches (compiled objects, weights digests) are trusted to hold
// what this user's own runs put there, nothing more:
// - the directory is created 0700 and must be owned by this user and not
//   writable by group or others, or it is refused (another user could plant
//   an object that a run would load);
// - every file is written beside its final name with O_EXCL|O_NOFOLLOW and
//   renamed into place, so a reader never sees half a file;
// - a sealed entry carries the SHA-256 of its payload, checked on every
//   read: a damaged or edited entry is a miss, never loaded.
// docs/RELIABILITY.md ("Caches") describes what is checked.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_CACHE_H
#define GRETA_RT_CACHE_H

#include <optional>
#include <string>

namespace greta::rt {

/// The default cache directory: $XDG_CACHE_HOME/greta, else ~/.cache/greta;
/// "" when neither variable is set.
std::string defaultCacheDir();

/// Creates `dir` (mode 0700, parents as the umask says) if needed and checks
/// that it is a directory owned by this user that no one else can write.
/// On refusal returns false with `error` naming the directory and the fix.
bool openCacheDir(const std::string &dir, std::string &error);

/// Writes `bytes` to `dir/name` atomically: a fresh temporary beside it
/// (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600), then rename(2). `name` is a plain
/// file name (no '/').
bool writeCacheFile(const std::string &dir, const std::string &name,
                    const std::string &bytes, std::string &error);

/// Reads `dir/name` if it is a regular file (a symlink is not followed) of
/// at most `maxBytes`; std::nullopt if absent or unreadable.
std::optional<std::string>
readCacheFile(const std::string &dir, const std::string &name, size_t maxBytes);

/// A sealed entry: a header naming the SHA-256 and size of `payload`, then
/// the payload.
std::string sealCacheEntry(const std::string &payload);

/// What unsealing found.
enum class SealCheck {
  Ok,       // the payload's digest matches its header
  Damaged,  // a header, but the payload does not match it
  NotSealed // no valid header (another format, a truncated file)
};
/// Checks `entry` and on Ok sets `payload` to the bytes after the header.
SealCheck unsealCacheEntry(const std::string &entry, std::string &payload);

} // namespace greta::rt

#endif // GRETA_RT_CACHE_H
