#include "prefetch.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>

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
// Bytes of the mapping that start at `p` mapped with 2 MiB entries (FilePmdMapped in
// /proc/self/smaps), or -1 when that cannot be read.
long long pmd_mapped_bytes(const uint8_t* p) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  bool in = false;
  long long kb = -1;
  const unsigned long start = static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p));
  while (std::fgets(line, sizeof line, f)) {
    unsigned long a = 0, b = 0;
    if (std::sscanf(line, "%lx-%lx ", &a, &b) == 2) {
      if (in) break;  // the mapping's entry had no such line
      in = a == start;
      continue;
    }
    if (in && std::sscanf(line, "FilePmdMapped: %lld kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

// Drops [begin, end) of the file from this mapping and from the page cache (pages other
// processes map stay), then reads it back through the mapping, which asks for huge pages.
void reread(const Mapping& m, const std::string& path, size_t begin, size_t end, ThreadPool& pool) {
  uint8_t* p = const_cast<uint8_t*>(m.data());
  madvise(p + begin, end - begin, MADV_DONTNEED);  // a shared file mapping: only our entries go
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    posix_fadvise(fd, static_cast<off_t>(begin), static_cast<off_t>(end - begin), POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  madvise(p + begin, end - begin, MADV_WILLNEED);
  touch(m, begin, end, pool);
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
  // A file read into the page cache earlier in 4 KiB pages (written by a download or a
  // conversion, or read before large folios) stays mapped with one entry per 4 KiB: streaming
  // expert weights from a multi-GB working set then ran 2-3x slower than from a small one
  // (address translation; FP4 2048x4096 from 6.7 GB: 287 vs 121 us per product). Reading such
  // a file once more through this mapping fills the cache with 2 MiB folios where the file
  // system and kernel make them (ext4 and XFS on Linux 6.x). A first 64 MiB tells whether
  // they do; if not, the rest is left as it is.
  constexpr size_t kProbe = size_t(64) << 20;
  if (m->size() >= 2 * kProbe) {
    const long long before = pmd_mapped_bytes(m->data());
    if (before >= 0 && static_cast<size_t>(before) < m->size() / 2) {
      reread(*m, path, 0, kProbe, pool);
      const long long after = pmd_mapped_bytes(m->data());
      if (after - before >= static_cast<long long>(kProbe / 2)) reread(*m, path, kProbe, m->size(), pool);
    }
  }
#endif
  return m->size();
}

}  // namespace dsv4
