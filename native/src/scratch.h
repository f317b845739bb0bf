#pragma once
#include <cstddef>

namespace dsv4 {

// Per-thread working buffers, 64-byte aligned, grown on demand and never freed (the pool's
// threads and the calling JS threads live as long as the process). One slot per use, since
// a caller may hold several at once. Compiled at the baseline ISA, so every kernel table
// shares the one definition.
enum class Scratch { Prepared, Carry, Tile, Prescaled, Post, Paired, Count };

// At least `bytes` bytes for `slot` on this thread; the contents are not kept when it grows.
// Throws std::bad_alloc when the memory is not there.
void* scratch(Scratch slot, size_t bytes);

}  // namespace dsv4
