// Per-call cost of the thread pool: microseconds per run() of empty tasks, for 1 and 2 (or
// argv[1]) threads and a few task counts. Uses only ThreadPool(int) and run(), so the same
// file times an older thread_pool.cc for comparison:
//
//   g++ -std=c++17 -O2 -pthread -Inative/src native/test/thread_pool_overhead.cc
//       native/src/thread_pool.cc -o /tmp/pool_overhead && /tmp/pool_overhead 2
//
// Prints one line per (threads, tasks): the best of 5 windows of `calls` runs (another process
// on a shared machine only slows a window down).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "thread_pool.h"

namespace {
// About a microsecond of work that the compiler cannot drop.
void spin(int seed) {
  volatile double x = seed;
  for (int i = 0; i < 150; i++) x = x * 0.999 + 1.0;
}
}  // namespace

int main(int argc, char** argv) {
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int calls = argc > 2 ? std::atoi(argv[2]) : 20000;
  for (int threads = 1; threads <= max_threads; threads++) {
    dsv4::ThreadPool pool(threads);
    for (int tasks : {2, 8, 64}) {
      double best = 1e30;
      for (int w = 0; w < 5; w++) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < calls; c++) pool.run(tasks, [](int, int) {});
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, s * 1e6 / calls);
      }
      std::printf("threads %d  tasks %2d  empty      %7.3f us per run\n", threads, tasks, best);
    }
    // Tasks of about a microsecond each: every thread has to take part, so the wake-up and
    // hand-back are in the figure (1 thread: the work alone).
    for (int tasks : {2, 16}) {
      double best = 1e30;
      for (int w = 0; w < 5; w++) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < calls / 4; c++) pool.run(tasks, [](int task, int) { spin(task); });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, s * 1e6 / (calls / 4));
      }
      std::printf("threads %d  tasks %2d  1us-tasks  %7.3f us per run\n", threads, tasks, best);
    }
  }
  return 0;
}
