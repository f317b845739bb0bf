#include "mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>


namespace dsv4 {

namespace {
std::mutex registry_mutex;
// Weak, so a file stays mapped exactly as long as some matrix uses it.
std::unordered_map<std::string, std::weak_ptr<Mapping>> registry;

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
  void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file referenced
  if (p == MAP_FAILED) throw std::runtime_error(system_error("cannot mmap", path));
  std::shared_ptr<Mapping> m(new Mapping(static_cast<const uint8_t*>(p), size));
  registry[path] = m;
  return m;
}

std::shared_ptr<Mapping> Mapping::find(const std::string& path) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(path);
  return it == registry.end() ? nullptr : it->second.lock();
}

Mapping::~Mapping() { munmap(const_cast<uint8_t*>(data_), size_); }

}  // namespace dsv4
