//===- TokenizerBpe.cpp - Byte-pair encoding of one piece -------*- C++ -*-===//
//
// The BPE model of tokenizer.json, as the Rust crate runs it: the piece
// starts as one symbol per byte (byte-level) or per char (with byte fallback
// or unk for a char outside the vocabulary); then the pair of lowest merge
// rank, leftmost first, is merged until no pair has a merge. A piece already
// in the vocabulary is one token when ignore_merges is set (Llama-3).
//
// Byte-level vocabularies are written in GPT-2's byte-to-char table; they
// are mapped back to bytes at load, so a piece is looked up as it is.
//
//===----------------------------------------------------------------------===//
#include "TokenizerInternal.h"

#include <algorithm>
#include <queue>

using namespace greta::rt;
using namespace greta::rt::tok;

namespace {
constexpr size_t kCacheEntries = 1 << 17;
constexpr size_t kCachedPieceBytes = 256;
constexpr uint32_t kNone = StringMap::kMissing;

/// A byte-level token's bytes; false if a char stands for no byte (such a
/// token cannot come out of a byte-level piece).
bool unmapByteLevel(const std::string &token, std::string &bytes) {
  bytes.clear();
  for (size_t i = 0; i < token.size();) {
    int b = codePointToByte(nextCodePoint(token, i));
    if (b < 0)
      return false;
    bytes += static_cast<char>(b);
  }
  return true;
}

uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}
} // namespace

std::unique_ptr<BpeModel> BpeModel::create(BpeConfig c, std::string &error) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  m->byteLevel_ = c.byteLevel;
  m->byteFallback_ = c.byteFallback;
  m->ignoreMerges_ = c.ignoreMerges;
  m->fuseUnk_ = c.fuseUnk;

  int64_t maxId = -1;
  for (const auto &[token, id] : c.vocab) {
    if (id < 0 || id > 0x7fffffff) {
      error = "model.vocab: token '" + token + "' has id " +
              std::to_string(id) + ", outside [0, 2^31)";
      return nullptr;
    }
    maxId = std::max(maxId, id);
  }
  m->tokens_.resize(static_cast<size_t>(maxId + 1));
  std::vector<bool> seen(m->tokens_.size());
  std::string bytes;
  for (auto &[token, id] : c.vocab) {
    if (seen[id]) {
      error = "model.vocab: id " + std::to_string(id) +
              " is given to two tokens ('" + m->tokens_[id] + "' and '" +
              token + "')";
      return nullptr;
    }
    seen[id] = true;
    if (!m->byteLevel_)
      m->ids_.set(token, static_cast<uint32_t>(id));
    else if (unmapByteLevel(token, bytes))
      m->ids_.set(bytes, static_cast<uint32_t>(id));
    m->tokens_[id] = std::move(token);
  }

  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    m->byteIds_[b] =
        m->byteLevel_ ? m->ids_.get(std::string(1, char(b))) : m->ids_.get(hex);
  }
  if (c.unkToken) {
    m->unkId_ = m->ids_.get(*c.unkToken);
    if (m->unkId_ == kNone) {
      error = "model.unk_token '" + *c.unkToken + "' is not in the vocabulary";
      return nullptr;
    }
  }

  size_t capacity = 16;
  while (capacity < c.merges.size() * 2)
    capacity *= 2;
  m->mergeKeys_.assign(capacity, ~0ull);
  m->mergeValues_.resize(capacity);
  m->mergeMask_ = capacity - 1;
  std::string left, right;
  for (size_t rank = 0; rank < c.merges.size(); ++rank) {
    const auto &[a, b] = c.merges[rank];
    left = a;
    right = b;
    if (m->byteLevel_ &&
        (!unmapByteLevel(a, left) || !unmapByteLevel(b, right))) {
      error = "model.merges[" + std::to_string(rank) + "] '" + a + " " + b +
              "': a char stands for no byte in a byte-level vocabulary";
      return nullptr;
    }
    uint32_t l = m->ids_.get(left), r = m->ids_.get(right),
             merged = m->ids_.get(left + right);
    if (l == kNone || r == kNone || merged == kNone) {
      error = "model.merges[" + std::to_string(rank) + "] '" + a + " " + b +
              "': '" +
              (l == kNone   ? a
               : r == kNone ? b
                            : a + b) +
              "' is not in the vocabulary";
      return nullptr;
    }
    uint64_t key = (uint64_t(l) << 32) | r;
    size_t i = mix(key) & m->mergeMask_;
    while (m->mergeKeys_[i] != ~0ull && m->mergeKeys_[i] != key)
      i = (i + 1) & m->mergeMask_;
    // A repeated pair keeps its last rank, as both references do.
    m->mergeKeys_[i] = key;
    m->mergeValues_[i] = {static_cast<uint32_t>(rank), merged};
  }
  return m;
}

const BpeModel::Merge *BpeModel::findMerge(uint32_t left,
                                           uint32_t right) const {
  uint64_t key = (uint64_t(left) << 32) | right;
  for (size_t i = mix(key) & mergeMask_;; i = (i + 1) & mergeMask_) {
    if (mergeKeys_[i] == key)
      return &mergeValues_[i];
    if (mergeKeys_[i] == ~0ull)
      return nullptr;
  }
}

const std::string *BpeModel::token(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(tokens_.size()))
    return nullptr;
  const std::string &t = tokens_[id];
  return t.empty() ? nullptr : &t;
}

bool BpeModel::initialSymbols(std::string_view piece,
                              std::vector<uint32_t> &syms,
                              std::string &error) const {
  bool lastWasUnk = false;
  auto unknown = [&](std::string_view what) {
    if (unkId_ == kNone) {
      error = "no token for " + quoteToken(what) +
              " (the vocabulary has neither it, nor its bytes, nor an "
              "unk_token)";
      return false;
    }
    if (!(fuseUnk_ && lastWasUnk))
      syms.push_back(unkId_);
    lastWasUnk = true;
    return true;
  };
  if (byteLevel_) {
    for (char ch : piece) {
      uint32_t id = byteIds_[static_cast<uint8_t>(ch)];
      if (id == kNone) {
        if (!unknown(std::string_view(&ch, 1)))
          return false;
        continue;
      }
      syms.push_back(id);
      lastWasUnk = false;
    }
    return true;
  }
  for (size_t i = 0; i < piece.size();) {
    size_t start = i;
    nextCodePoint(piece, i);
    std::string_view ch = piece.substr(start, i - start);
    uint32_t id = ids_.get(ch);
    if (id != kNone) {
      syms.push_back(id);
      lastWasUnk = false;
      continue;
    }
    bool bytesKnown = byteFallback_;
    for (char b : ch)
      bytesKnown = bytesKnown && byteIds_[static_cast<uint8_t>(b)] != kNone;
    if (bytesKnown) {
      for (char b : ch)
        syms.push_back(byteIds_[static_cast<uint8_t>(b)]);
      lastWasUnk = false;
      continue;
    }
    if (!unknown(ch))
      return false;
  }
  return true;
}

bool BpeModel::mergeWord(std::string_view piece, std::vector<int64_t> &ids,
                         std::string &error) const {
  std::vector<uint32_t> sym;
  if (!initialSymbols(piece, sym, error))
    return false;
  size_t n = sym.size();
  if (n > 1) {
    // A doubly linked list over the symbols; a merged-away symbol is dead.
    std::vector<int32_t> prev(n), next(n);
    for (size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<int32_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    }
    auto mergeAt = [&](int32_t pos, uint32_t merged) {
      int32_t right = next[pos];
      sym[pos] = merged;
      sym[right] = kNone;
      next[pos] = next[right];
      if (next[pos] >= 0)
        prev[next[pos]] = pos;
    };
    if (n <= 64) {
      // Short pieces: the rank of each adjacent pair, kept up to date; the
      // lowest (leftmost on ties) is merged until none is left.
      std::vector<const Merge *> pair(n);
      auto rate = [&](int32_t i) {
        pair[i] = next[i] >= 0 ? findMerge(sym[i], sym[next[i]]) : nullptr;
      };
      for (int32_t i = 0; i < static_cast<int32_t>(n); ++i)
        rate(i);
      for (;;) {
        int32_t best = -1;
        for (int32_t i = 0; i >= 0; i = next[i])
          if (pair[i] && (best < 0 || pair[i]->rank < pair[best]->rank))
            best = i;
        if (best < 0)
          break;
        mergeAt(best, pair[best]->merged);
        rate(best);
        if (prev[best] >= 0)
          rate(prev[best]);
      }
    } else {
      // Long pieces (a whole SentencePiece-style section): a heap of
      // (rank, position); an entry whose pair has changed since is stale.
      struct Entry {
        uint32_t rank;
        int32_t pos;
        uint32_t merged;
        bool operator>(const Entry &o) const {
          return rank != o.rank ? rank > o.rank : pos > o.pos;
        }
      };
      std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
      auto push = [&](int32_t pos) {
        if (pos < 0 || next[pos] < 0)
          return;
        if (const Merge *mg = findMerge(sym[pos], sym[next[pos]]))
          heap.push({mg->rank, pos, mg->merged});
      };
      for (int32_t i = 0; i + 1 < static_cast<int32_t>(n); ++i)
        push(i);
      while (!heap.empty()) {
        Entry top = heap.top();
        heap.pop();
        if (sym[top.pos] == kNone || next[top.pos] < 0)
          continue;
        const Merge *mg = findMerge(sym[top.pos], sym[next[top.pos]]);
        if (!mg || mg->merged != top.merged)
          continue;
        mergeAt(top.pos, top.merged);
        push(prev[top.pos]);
        push(top.pos);
      }
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (sym[i] != kNone)
      ids.push_back(sym[i]);
  return true;
}

bool BpeModel::encode(std::string_view piece, std::vector<int64_t> &ids,
                      std::string &error) const {
  if (piece.empty())
    return true;
  if (ignoreMerges_) {
    uint32_t id = ids_.get(piece);
    if (id != kNone) {
      ids.push_back(id);
      return true;
    }
  }
  bool cacheable = piece.size() < kCachedPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    uint32_t slot = cache_.get(piece);
    if (slot != kNone) {
      auto [offset, length] = cacheSpans_[slot];
      ids.insert(ids.end(), cacheIds_.begin() + offset,
                 cacheIds_.begin() + offset + length);
      return true;
    }
  }
  size_t first = ids.size();
  if (!mergeWord(piece, ids, error))
    return false;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    if (cache_.size() < kCacheEntries && cache_.get(piece) == kNone) {
      cache_.set(piece, static_cast<uint32_t>(cacheSpans_.size()));
      cacheSpans_.push_back({static_cast<uint32_t>(cacheIds_.size()),
                             static_cast<uint32_t>(ids.size() - first)});
      cacheIds_.insert(cacheIds_.end(), ids.begin() + first, ids.end());
    }
  }
  return true;
}
