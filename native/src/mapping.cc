#include "mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>


namespace dsv4 {

namespace {
std::mutex registry_mutex;
// Weak, so a file stays mapped exactly as long as some matrix uses it.
std::unordered_map<std::string, std::weak_ptr<Mapping>> registry;

constexpr size_t kHugePage = 2u << 20;

// The file mapped read-only at a 2 MiB-aligned address, asking for huge pages: file offsets
// and addresses then agree modulo 2 MiB, so page-cache folios of that size (ext4, XFS and
// others read files into large folios) can be mapped with one entry each instead of 512.
// (The benefit is in address translation: expert weights streamed from a multi-GB working
// set on 4 KiB entries ran 2-3x slower than from a small one.)
void* map_aligned(int fd, size_t size) {
  void* span = mmap(nullptr, size + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (span == MAP_FAILED) return mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const uintptr_t base = reinterpret_cast<uintptr_t>(span);
  const uintptr_t aligned = (base + kHugePage - 1) & ~(static_cast<uintptr_t>(kHugePage) - 1);
  void* p = mmap(reinterpret_cast<void*>(aligned), size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    munmap(span, size + kHugePage);
    return mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  }
  if (aligned > base) munmap(span, aligned - base);
  const uintptr_t end = aligned + size, span_end = base + size + kHugePage;
  const uintptr_t end_page = (end + 4095) & ~static_cast<uintptr_t>(4095);
  if (span_end > end_page) munmap(reinterpret_cast<void*>(end_page), span_end - end_page);
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

std::string system_error(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}
}  // namespace

std::shared_ptr<Mapping> Mapping::open(const std::string& path) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(path);
  if (it != registry.end()) {
    if (auto existing = it->second.lock()) return existing;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(system_error("cannot open", path));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error(system_error("cannot stat", path));
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw std::runtime_error("cannot map empty file " + path);
  }
  void* p = map_aligned(fd, size);
  if (p == MAP_FAILED) {
    const std::string why = system_error("cannot mmap", path);
    ::close(fd);
    throw std::runtime_error(why);
  }
  std::shared_ptr<Mapping> m(new Mapping(static_cast<const uint8_t*>(p), size, fd));
  registry[path] = m;
  return m;
}

std::shared_ptr<Mapping> Mapping::find(const std::string& path) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(path);
  return it == registry.end() ? nullptr : it->second.lock();
}

Mapping::~Mapping() {
  munmap(const_cast<uint8_t*>(data_), size_);
  ::close(fd_);
}

std::string Mapping::lock() const {
  if (mlock(data_, size_) == 0) {
    locked_ = true;
    return "";
  }
  const int err = errno;
  std::string why = std::string("mlock of ") + std::to_string(size_) + " bytes failed: " + std::strerror(err);
  struct rlimit lim;
  if ((err == ENOMEM || err == EPERM) && getrlimit(RLIMIT_MEMLOCK, &lim) == 0) {
    why += lim.rlim_cur == RLIM_INFINITY ? std::string(" (the locked-memory limit is unlimited: the memory is not there)")
                                         : " (the locked-memory limit, ulimit -l, is " + std::to_string(lim.rlim_cur / 1024) + " KiB)";
  }
  return why;
}

void Mapping::release(size_t offset, size_t length) const {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data_) + offset + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data_) + std::min(size_, offset + length)) & ~(page - 1);
  if (end <= begin) return;
  void* p = reinterpret_cast<void*>(begin);
  if (locked_) munlock(p, end - begin);
  madvise(p, end - begin, MADV_DONTNEED);
  // And out of the page cache, unless another mapping holds them: repacking a checkpoint
  // that only just fits otherwise waits on the kernel reclaiming the cache it displaces.
  posix_fadvise(fd_, static_cast<off_t>(begin - reinterpret_cast<uintptr_t>(data_)), static_cast<off_t>(end - begin), POSIX_FADV_DONTNEED);
}

}  // namespace dsv4
