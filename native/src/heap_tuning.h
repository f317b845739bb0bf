#pragma once
#include <cstddef>

namespace dsv4 {

// Keeps the C heap's freed memory for reuse instead of returning it to the system: blocks up
// to mmap_threshold bytes come from the heap rather than their own mmap, and the heap's free
// top is trimmed only past trim_threshold bytes. Why: a decode step's outputs (the logits of
// 6 rows are 3 MB, of 16 rows 8 MB) are fresh JavaScript buffers, which glibc by default
// maps anew each time, and every first touch of their pages is a page fault inside the
// kernels (on this VM ~5 us each). False where the C library has no such setting.
bool keep_freed_memory(size_t mmap_threshold, size_t trim_threshold);

}  // namespace dsv4
