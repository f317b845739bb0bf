#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dsv4 {

// A read-only memory map of one whole checkpoint file. Every matrix stored in the file keeps
// a reference, so the file is mapped once and unmapped when its last matrix is collected.
// Pages are only read when a kernel touches them: opening a checkpoint reads nothing.
class Mapping {
 public:
  static std::shared_ptr<Mapping> open(const std::string& path);
  // The file's mapping if some matrix holds it, else null.
  static std::shared_ptr<Mapping> find(const std::string& path);
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Keeps the whole file in memory (mlock): read in now, never paged out. Empty on success,
  // else what failed and why, with the locked-memory limit where that was the cause.
  std::string lock() const;
  bool locked() const { return locked_; }
  // The whole pages inside [offset, offset + length) leave this process (munlock, then
  // MADV_DONTNEED) and the page cache where no other mapping holds them (POSIX_FADV_DONTNEED):
  // for bytes that were copied elsewhere and will not be read here again. A later read would
  // fault them back in from the file.
  void release(size_t offset, size_t length) const;

 private:
  Mapping(const uint8_t* data, size_t size, int fd) : data_(data), size_(size), fd_(fd) {}
  const uint8_t* data_;
  size_t size_;
  int fd_;  // kept open for release()'s page-cache advice (one per shard)
  mutable bool locked_ = false;
};


}  // namespace dsv4
