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
// The page cache's file pages held in 2 MiB folios, system-wide (FileHugePages in
// /proc/meminfo; constant-time to read, where /proc/self/smaps walks every page table of the
// process), or -1 when that cannot be read.
long long file_huge_bytes() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  long long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "FileHugePages: %lld kB", &kb) == 1) break;
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

// Drops [begin, end) of the file from this mapping and from the page cache (pages other
// processes map stay).
void drop(const Mapping& m, const std::string& path, size_t begin, size_t end) {
  madvise(const_cast<uint8_t*>(m.data()) + begin, end - begin, MADV_DONTNEED);  // a shared file mapping: only our entries go
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    posix_fadvise(fd, static_cast<off_t>(begin), static_cast<off_t>(end - begin), POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// Reads [begin, end) back through the mapping, which asks for huge pages.
void read_back(const Mapping& m, size_t begin, size_t end, ThreadPool& pool) {
  madvise(const_cast<uint8_t*>(m.data()) + begin, end - begin, MADV_WILLNEED);
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
  // system and kernel make them (ext4 and XFS on Linux 6.x). Its first 64 MiB are dropped and
  // read back to tell the cases apart by the system's count of 2 MiB file folios: dropping
  // them lowered it (the file is in large folios already: nothing more to do), reading them
  // back raised it (the rest is read again too), or neither (no large folios here: leave it).
  constexpr size_t kProbe = size_t(64) << 20;
  if (m->size() >= 2 * kProbe) {
    const long long before = file_huge_bytes();
    if (before >= 0) {
      drop(*m, path, 0, kProbe);
      const long long dropped = file_huge_bytes();
      read_back(*m, 0, kProbe, pool);
      const long long after = file_huge_bytes();
      const long long half = static_cast<long long>(kProbe / 2);
      if (before - dropped < half && after - dropped >= half) {
        drop(*m, path, kProbe, m->size());
        read_back(*m, kProbe, m->size(), pool);
      }
    }
  }
#endif
  return m->size();
}

}  // namespace dsv4
