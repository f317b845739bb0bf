#pragma once
#include <cstddef>
#include <string>

namespace dsv4 {

class ThreadPool;

// Reads one byte of every page of the file's mapping, spread over the pool, so that no later
// step pays the first touch of weights it had not used yet: the page faults, and on a virtual
// machine the hypervisor's own per-page cost, which is about as large (0.5 s per GB measured
// on a 2-core Firecracker guest, with or without MADV_POPULATE_READ). Returns the bytes
// covered: 0 when the file is not mapped. On Linux each 64 MiB of the file that the page
// cache holds in 4 KiB folios is read once more so that it comes back in 2 MiB ones (see
// prefetch.cc).
size_t prefetch_mapping(const std::string& path, ThreadPool& pool);

}  // namespace dsv4
