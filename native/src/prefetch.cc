#include "prefetch.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mapping.h"
#include "thread_pool.h"

namespace dsv4 {

namespace {

// Reads one byte of every page of [begin, end) of the mapping, spread over the pool.
void touch(const Mapping& m, size_t begin, size_t end, ThreadPool& pool) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  constexpr size_t kChunk = size_t(16) << 20;
  const size_t chunks = (end - begin + kChunk - 1) / kChunk;
  std::atomic<unsigned> sink{0};
  pool.run(static_cast<int>(chunks), [&](int c, int) {
    const uint8_t* p = m.data();
    const size_t from = begin + static_cast<size_t>(c) * kChunk, to = std::min(end, from + kChunk);
    unsigned acc = 0;
    for (size_t i = from; i < to; i += page) acc += *static_cast<const volatile uint8_t*>(p + i);
    sink.fetch_add(acc, std::memory_order_relaxed);
  });
}

#ifdef __linux__
constexpr size_t kHugePage = size_t(2) << 20;
// The unit in which a file's page-cache folios are checked and, where small, read again.
constexpr size_t kFolioChunk = size_t(64) << 20;

// Drops [begin, end) of the file from this mapping and from the page cache (pages other
// processes map stay). Pages not yet written back (a file written moments ago) are written
// first: the page cache keeps dirty pages through POSIX_FADV_DONTNEED.
void drop(const Mapping& m, const std::string& path, size_t begin, size_t end) {
  madvise(const_cast<uint8_t*>(m.data()) + begin, end - begin, MADV_DONTNEED);  // a shared file mapping: only our entries go
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    sync_file_range(fd, static_cast<off_t>(begin), static_cast<off_t>(end - begin),
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(fd, static_cast<off_t>(begin), static_cast<off_t>(end - begin), POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// Reads [begin, end) back through the mapping, which asks for huge pages: by its faults alone,
// since MADV_WILLNEED's readahead fills the start of the range with 4 KiB folios.
void read_back(const Mapping& m, size_t begin, size_t end, ThreadPool& pool) { touch(m, begin, end, pool); }

// The whole 2 MiB extents of chunk `c` of a file of `size` bytes: [begin, begin + bytes).
size_t chunk_extent_bytes(size_t c, size_t size) {
  const size_t begin = c * kFolioChunk, end = std::min(size, begin + kFolioChunk);
  return end > begin ? (end - begin) / kHugePage * kHugePage : 0;
}

// For chunks [first, last) of the file: the share of each one's whole 2 MiB extents that the
// page cache holds in 2 MiB folios (1 for a chunk with none), or empty when that cannot be
// told. Each chunk is mapped once more at a 2 MiB-aligned address (a VMA of its own, so
// /proc/self/smaps counts it apart) and one byte per 2 MiB is read: a large folio is mapped
// whole by that fault, a small one is not, and FilePmdMapped counts what was.
std::vector<double> huge_folio_shares(const std::string& path, size_t size, size_t first, size_t last) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  // The reserved spans the probe mappings sit in (unmapping a span unmaps its probe too).
  std::vector<std::pair<void*, size_t>> spans;
  std::unordered_map<uintptr_t, size_t> chunk_at;
  bool ok = true;
  for (size_t c = first; c < last && ok; c++) {
    const size_t bytes = chunk_extent_bytes(c, size);
    if (bytes == 0) continue;
    void* span = mmap(nullptr, bytes + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (span == MAP_FAILED) {
      ok = false;
      break;
    }
    const uintptr_t at = (reinterpret_cast<uintptr_t>(span) + kHugePage - 1) & ~(static_cast<uintptr_t>(kHugePage) - 1);
    spans.emplace_back(span, bytes + kHugePage);
    void* p = mmap(reinterpret_cast<void*>(at), bytes, PROT_READ, MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(c * kFolioChunk));
    if (p == MAP_FAILED) {
      ok = false;
      break;
    }
    madvise(p, bytes, MADV_HUGEPAGE);
    unsigned acc = 0;
    for (size_t i = 0; i < bytes; i += kHugePage) acc += *(static_cast<const volatile uint8_t*>(p) + i);
    (void)acc;
    chunk_at[at] = c;
  }
  ::close(fd);
  std::vector<double> shares(last - first, 1.0);
  std::vector<bool> seen(last - first, false);
  FILE* f = ok ? std::fopen("/proc/self/smaps", "r") : nullptr;
  if (f) {
    char line[512];
    long long current = -1;  // the chunk of the VMA whose fields are being read
    while (std::fgets(line, sizeof line, f)) {
      unsigned long lo = 0, hi = 0;
      long long kb = 0;
      if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
        auto it = chunk_at.find(lo);
        current = it == chunk_at.end() ? -1 : static_cast<long long>(it->second);
      } else if (current >= 0 && std::sscanf(line, "FilePmdMapped: %lld kB", &kb) == 1) {
        const size_t i = static_cast<size_t>(current) - first;
        shares[i] = static_cast<double>(kb) * 1024 / static_cast<double>(chunk_extent_bytes(static_cast<size_t>(current), size));
        seen[i] = true;
      }
    }
    std::fclose(f);
  }
  for (const auto& [span, bytes] : spans) munmap(span, bytes);
  if (!f) return {};
  for (const auto& [at, c] : chunk_at)
    if (!seen[c - first]) return {};  // no FilePmdMapped field (a kernel without it)
  return shares;
}

// A file read into the page cache in 4 KiB folios (written in small pieces by a download or a
// conversion, or read while memory was fragmented) stays mapped with one entry per 4 KiB, and
// streaming weights from a multi-GB working set then runs 2-3x slower than from 2 MiB entries
// (address translation; FP4 2048x4096 from 6.7 GB: 287 vs 121 us per product; a flash-slice
// shard holding the head and half of layer 0's experts with 46-75% of each 64 MiB in 2 MiB
// folios: a 16-row decode step 297 vs 171 ms). Each 64 MiB chunk not wholly in 2 MiB folios is
// dropped and read back through the mapping, which asks for huge pages, where the file system
// and kernel make them (ext4 and XFS on Linux 6.x). Chunks, not the whole file: such a file
// is often small folios in places only. The first chunk re-read tells whether it helps here
// at all; if it came back in small folios too, the rest is left as it is.
void reread_small_folio_chunks(const Mapping& m, const std::string& path, ThreadPool& pool) {
  const size_t chunks = (m.size() + kFolioChunk - 1) / kFolioChunk;
  const std::vector<double> shares = huge_folio_shares(path, m.size(), 0, chunks);
  std::vector<size_t> small;
  for (size_t c = 0; c < shares.size(); c++)
    if (shares[c] < 1.0) small.push_back(c);
  if (small.empty()) return;
  const auto reread = [&](size_t from, size_t to) {  // chunks [from, to)
    const size_t begin = from * kFolioChunk, end = std::min(m.size(), to * kFolioChunk);
    drop(m, path, begin, end);
    read_back(m, begin, end, pool);
  };
  reread(small[0], small[0] + 1);
  const std::vector<double> after = huge_folio_shares(path, m.size(), small[0], small[0] + 1);
  if (after.empty() || after[0] <= shares[small[0]]) return;
  for (size_t i = 1; i < small.size();) {
    size_t j = i + 1;
    while (j < small.size() && small[j] == small[j - 1] + 1) j++;
    reread(small[i], small[j - 1] + 1);
    i = j;
  }
}
#endif

}  // namespace

size_t prefetch_mapping(const std::string& path, ThreadPool& pool) {
  const std::shared_ptr<Mapping> m = Mapping::find(path);
  if (!m) return 0;
  // Starts the disk read of pages not yet in the page cache ahead of the touches below.
  madvise(const_cast<uint8_t*>(m->data()), m->size(), MADV_WILLNEED);
  touch(*m, 0, m->size(), pool);
#ifdef __linux__
  reread_small_folio_chunks(*m, path, pool);
#endif
  return m->size();
}

}  // namespace dsv4
