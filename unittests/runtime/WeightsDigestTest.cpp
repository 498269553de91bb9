//===- WeightsDigestTest.cpp - Weights identity, private caches -*- C++ -*-===//
#include "greta/rt/WeightsDigest.h"
#include "greta/rt/Cache.h"
#include "greta/rt/Weights.h"

#include "greta/rt/Sha256.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>

using namespace greta::rt;

namespace {

/// Values exact in every storage type (bf16 keeps 8 significant bits).
std::vector<TensorToWrite> exactTensors() {
  return {{"b.weight", {2, 3}, {0, 1, -2, 3.5f, 0.25f, -0.0f}},
          {"a.weight", {4}, {1, 0.5f, -0.125f, 96}},
          {"empty", {0, 4}, {}}};
}

std::unique_ptr<SafeTensors> write(const std::string &path,
                                   const std::vector<TensorToWrite> &tensors,
                                   DType dtype) {
  std::string err;
  EXPECT_TRUE(writeSafeTensors(path, tensors, dtype, err)) << err;
  auto st = SafeTensors::open(path, err);
  EXPECT_TRUE(st) << err;
  return st;
}

void putU64(std::string &s, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    s.push_back(static_cast<char>(v >> (8 * i)));
}

std::string sha256(const std::string &bytes) {
  return sha256Hex(bytes.data(), bytes.size());
}

TEST(WeightsDigest, DefinitionByHand) {
  // The documented byte layout, built here by hand for one tensor.
  TempDir dir;
  auto st = write(dir.path() + "/w", {{"t", {2}, {1.5f, -2}}}, DType::F32);
  std::string bytes;
  putU64(bytes, 1);
  bytes += "t";
  putU64(bytes, 1);
  putU64(bytes, 2);
  for (double v : {1.5, -2.0}) {
    char b[8];
    std::memcpy(b, &v, 8);
    bytes.append(b, 8);
  }
  std::string tensor = sha256(bytes);
  std::string wholeBytes;
  putU64(wholeBytes, 1);
  wholeBytes += "t";
  for (size_t i = 0; i < 32; ++i)
    wholeBytes.push_back(
        static_cast<char>(std::stoi(tensor.substr(2 * i, 2), nullptr, 16)));
  WeightsDigest d = digestWeights(*st);
  ASSERT_EQ(d.tensors.size(), 1u);
  EXPECT_EQ(d.tensors[0].first, "t");
  EXPECT_EQ(d.tensors[0].second, tensor);
  EXPECT_EQ(d.whole, sha256(wholeBytes));
}

TEST(WeightsDigest, SameValuesSameDigestInEveryDType) {
  TempDir dir;
  WeightsDigest f32 =
      digestWeights(*write(dir.path() + "/f32", exactTensors(), DType::F32));
  EXPECT_EQ(f32.whole.size(), 64u);
  ASSERT_EQ(f32.tensors.size(), 3u);
  EXPECT_EQ(f32.tensors[0].first, "a.weight"); // sorted by name
  for (DType dt : {DType::F64, DType::F16, DType::BF16}) {
    WeightsDigest other = digestWeights(*write(
        dir.path() + "/w" + std::string(dtypeName(dt)), exactTensors(), dt));
    EXPECT_EQ(other.whole, f32.whole) << std::string(dtypeName(dt));
    EXPECT_EQ(other.tensors, f32.tensors) << std::string(dtypeName(dt));
  }
}

TEST(WeightsDigest, ChangeNamesItsTensor) {
  TempDir dir;
  auto tensors = exactTensors();
  WeightsDigest before =
      digestWeights(*write(dir.path() + "/a", tensors, DType::F32));
  tensors[0].values[5] = 0.0f; // -0.0 -> +0.0: a different value
  WeightsDigest after =
      digestWeights(*write(dir.path() + "/b", tensors, DType::F32));
  EXPECT_NE(before.whole, after.whole);
  ASSERT_EQ(before.tensors.size(), after.tensors.size());
  for (size_t i = 0; i < before.tensors.size(); ++i)
    EXPECT_EQ(before.tensors[i].second == after.tensors[i].second,
              before.tensors[i].first != "b.weight")
        << before.tensors[i].first;
  // Same values under another shape are other weights.
  tensors = exactTensors();
  tensors[0].shape = {3, 2};
  EXPECT_NE(digestWeights(*write(dir.path() + "/c", tensors, DType::F32)).whole,
            before.whole);
}

TEST(WeightsDigest, ThreadCountDoesNotMatter) {
  TempDir dir;
  std::vector<TensorToWrite> many;
  Rng rng(7);
  for (int i = 0; i < 40; ++i) {
    TensorToWrite t{"t" + std::to_string(i), {i + 1, 70000 / (i + 1)}, {}};
    t.values.resize(static_cast<size_t>((i + 1) * (70000 / (i + 1))));
    for (float &v : t.values)
      v = static_cast<float>(rng.uniform() - 0.5);
    many.push_back(std::move(t));
  }
  auto st = write(dir.path() + "/w", many, DType::F32);
  WeightsDigest one = digestWeights(*st, 1);
  EXPECT_EQ(digestWeights(*st, 3).tensors, one.tensors);
  EXPECT_EQ(digestWeights(*st, 64).whole, one.whole);
}

TEST(WeightsDigest, CacheHitsOnlyTheSameFileState) {
  TempDir dir;
  std::string cache = dir.path() + "/cache", path = dir.path() + "/w";
  std::string err, warning;
  ASSERT_TRUE(openCacheDir(cache, err)) << err;
  auto tensors = exactTensors();
  WeightsDigest first;
  {
    auto st = write(path, tensors, DType::F32);
    first = digestWeightsCached(*st, cache, warning);
    EXPECT_EQ(warning, "");
    EXPECT_EQ(first.whole, digestWeights(*st).whole);
  }
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  // Edit one value in place, same size, and put the times back as
  // `touch -r` would. Only the ctime tells; wait for it to move (the
  // kernel's file clock ticks in jiffies).
  std::string bytes = readFile(path);
  // The data ends with b.weight then a.weight (4 values): this is the sign
  // byte of b.weight's last value.
  size_t at = bytes.size() - 4 * 4 - 1;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x80);
  struct stat after;
  do {
    int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, bytes.data() + at, 1, static_cast<off_t>(at)), 1);
    close(fd);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
    ASSERT_EQ(stat(path.c_str(), &after), 0);
    if (after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
        after.st_ctim.tv_nsec == before.st_ctim.tv_nsec)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } while (after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
           after.st_ctim.tv_nsec == before.st_ctim.tv_nsec);
  ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  ASSERT_EQ(after.st_size, before.st_size);
  auto edited = SafeTensors::open(path, err);
  ASSERT_TRUE(edited) << err;
  WeightsDigest second = digestWeightsCached(*edited, cache, warning);
  EXPECT_EQ(second.whole, digestWeights(*edited).whole);
  EXPECT_NE(second.whole, first.whole);
  // Unchanged: the entry written for this state is used.
  auto again = SafeTensors::open(path, err);
  EXPECT_EQ(digestWeightsCached(*again, cache, warning).whole, second.whole);
}

TEST(Cache, DirectoryIsPrivate) {
  TempDir dir;
  std::string err;
  std::string cache = dir.path() + "/a/b/greta/";
  ASSERT_TRUE(openCacheDir(cache, err)) << err;
  struct stat st;
  ASSERT_EQ(stat(cache.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // Others may write: refused, naming the directory and the mode.
  std::string shared = dir.path() + "/shared";
  ASSERT_EQ(mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  EXPECT_FALSE(openCacheDir(shared, err));
  EXPECT_NE(err.find(shared + " is writable by other users (mode 0777)"),
            std::string::npos)
      << err;
  ASSERT_EQ(chmod(shared.c_str(), 0775), 0);
  EXPECT_FALSE(openCacheDir(shared, err));
  ASSERT_EQ(chmod(shared.c_str(), 0755), 0);
  EXPECT_TRUE(openCacheDir(shared, err)) << err;
  // Owned by another user (only root can give a directory away).
  if (geteuid() == 0) {
    std::string theirs = dir.path() + "/theirs";
    ASSERT_EQ(mkdir(theirs.c_str(), 0700), 0);
    ASSERT_EQ(chown(theirs.c_str(), 65534, 65534), 0);
    EXPECT_FALSE(openCacheDir(theirs, err));
    EXPECT_NE(err.find(theirs + " is owned by uid 65534, not by this user"),
              std::string::npos)
        << err;
  }
  // A file where the directory should be.
  writeFile(dir.path() + "/file", "x");
  EXPECT_FALSE(openCacheDir(dir.path() + "/file", err));
}

TEST(Cache, AtomicWritesAndSealedEntries) {
  TempDir dir;
  std::string err;
  ASSERT_TRUE(writeCacheFile(dir.path(), "x", "hello", err)) << err;
  EXPECT_EQ(readFile(dir.path() + "/x"), "hello");
  ASSERT_TRUE(writeCacheFile(dir.path(), "x", "again", err)) << err;
  EXPECT_EQ(*readCacheFile(dir.path(), "x", 100), "again");
  EXPECT_FALSE(readCacheFile(dir.path(), "x", 3)); // over the size limit
  EXPECT_FALSE(readCacheFile(dir.path(), "missing", 100));
  // A symlink is not followed.
  ASSERT_EQ(symlink((dir.path() + "/x").c_str(), (dir.path() + "/l").c_str()),
            0);
  EXPECT_FALSE(readCacheFile(dir.path(), "l", 100));

  std::string payload(1000, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(i * 7);
  std::string entry = sealCacheEntry(payload), out;
  EXPECT_EQ(unsealCacheEntry(entry, out), SealCheck::Ok);
  EXPECT_EQ(out, payload);
  std::string flipped = entry;
  flipped[flipped.size() - 10] ^= 1;
  EXPECT_EQ(unsealCacheEntry(flipped, out), SealCheck::Damaged);
  EXPECT_EQ(unsealCacheEntry(entry.substr(0, entry.size() - 1), out),
            SealCheck::Damaged);
  EXPECT_EQ(unsealCacheEntry(payload, out), SealCheck::NotSealed);
  EXPECT_EQ(unsealCacheEntry("", out), SealCheck::NotSealed);
}

} // namespace
