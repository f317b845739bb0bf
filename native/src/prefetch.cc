#include "prefetch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "mapping.h"
#include "thread_pool.h"

namespace dsv4 {

size_t prefetch_mapping(const std::string& path, ThreadPool& pool) {
  const std::shared_ptr<Mapping> m = Mapping::find(path);
  if (!m) return 0;
  // Starts the disk read of pages not yet in the page cache ahead of the touches below.
  madvise(const_cast<uint8_t*>(m->data()), m->size(), MADV_WILLNEED);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  constexpr size_t kChunk = size_t(16) << 20;
  const size_t chunks = (m->size() + kChunk - 1) / kChunk;
  std::atomic<unsigned> sink{0};
  pool.run(static_cast<int>(chunks), [&](int c, int) {
    const uint8_t* p = m->data();
    const size_t end = std::min(m->size(), (static_cast<size_t>(c) + 1) * kChunk);
    unsigned acc = 0;
    for (size_t i = static_cast<size_t>(c) * kChunk; i < end; i += page) acc += *static_cast<const volatile uint8_t*>(p + i);
    sink.fetch_add(acc, std::memory_order_relaxed);
  });
  return m->size();
}

}  // namespace dsv4
