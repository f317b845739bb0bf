// Stress test of the thread pool (native/src/thread_pool.cc), built with ThreadSanitizer by
// test/kernels/thread-pool-tsan.test.ts: many tiny jobs of varying task counts, first from one
// calling thread, then from two at once while a third thread resizes the pool; some jobs
// throw from a task. Checks that every task of a job runs exactly once, that run() returns
// only after all of them (a task counted twice would let it return early), that no task of
// a finished job runs later, and that an exception thrown on any thread reaches the caller.
//
//   g++ -std=c++17 -fsanitize=thread -O1 -g -pthread native/test/thread_pool_test.cc
//       native/src/thread_pool.cc -o /tmp/thread_pool_test && /tmp/thread_pool_test [jobs]
//
// Exit 0 and "ok (...)" on stdout when every check held; otherwise the first failure on stderr.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "../src/thread_pool.h"

namespace {

constexpr int kMaxTasks = 67;
constexpr int kMaxThreads = 4;
constexpr int kBuffers = 3;

// Exceptions thrown by tasks running on a pool worker (not the calling thread): the test
// must see some, or it has not checked that they cross threads.
std::atomic<int> thrown_on_workers{0};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "thread_pool_test: FAILED: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

// One calling thread's jobs. Each job counts its task runs in one of kBuffers buffers used in
// turn; after a job returns, its buffer must hold exactly one run per task, and the previous
// job's buffer must still hold what it held when that job returned.
class Caller {
 public:
  Caller(dsv4::ThreadPool& pool, unsigned seed) : pool_(pool), seed_(seed) {
    for (auto& b : hits_) b.reset(new std::atomic<int>[kMaxTasks]);
  }

  void run_jobs(int jobs) {
    for (int i = 0; i < jobs; i++) one_job(i);
  }

 private:
  unsigned next_random() {
    seed_ = seed_ * 1664525u + 1013904223u;
    return seed_ >> 8;
  }

  void one_job(int i) {
    const int tasks = 1 + static_cast<int>(next_random() % kMaxTasks);
    std::atomic<int>* hits = hits_[i % kBuffers].get();
    for (int t = 0; t < kMaxTasks; t++) hits[t].store(0, std::memory_order_relaxed);
    // Every 7th job throws from one task: a runtime_error or, every other time, bad_alloc.
    const int throwing = i % 7 == 3 ? static_cast<int>(next_random() % tasks) : -1;
    const bool as_bad_alloc = (i / 7) % 2 == 1;
    bool threw = false;
    try {
      pool_.run(tasks, [&](int task, int thread) {
        if (task < 0 || task >= tasks) fail("task index " + std::to_string(task) + " outside [0, " + std::to_string(tasks) + ")");
        if (thread < 0 || thread >= kMaxThreads) fail("thread index " + std::to_string(thread) + " out of range");
        hits[task].fetch_add(1, std::memory_order_relaxed);
        if (task == throwing) {
          if (thread != 0) thrown_on_workers.fetch_add(1, std::memory_order_relaxed);
          if (as_bad_alloc) throw std::bad_alloc();
          throw std::runtime_error("task " + std::to_string(task));
        }
      });
    } catch (const std::runtime_error& e) {
      threw = true;
      if (throwing < 0 || as_bad_alloc || std::string(e.what()) != "task " + std::to_string(throwing))
        fail(std::string("unexpected exception: ") + e.what());
    } catch (const std::bad_alloc&) {
      threw = true;
      if (throwing < 0 || !as_bad_alloc) fail("unexpected std::bad_alloc");
    }
    if ((throwing >= 0) != threw) fail("job " + std::to_string(i) + ": the task's exception did not reach the caller");
    int sum = 0;
    for (int t = 0; t < kMaxTasks; t++) {
      const int h = hits[t].load(std::memory_order_relaxed);
      // After a throw the tasks not yet started are skipped, so 0 is allowed there.
      const bool ok = t >= tasks ? h == 0 : throwing >= 0 ? (h <= 1 && (t != throwing || h == 1)) : h == 1;
      if (!ok) fail("job " + std::to_string(i) + " (" + std::to_string(tasks) + " tasks): task " + std::to_string(t) + " ran " + std::to_string(h) + " times");
      sum += h;
    }
    // The previous job's buffer is untouched since that job returned.
    if (i > 0) {
      std::atomic<int>* prev = hits_[(i - 1) % kBuffers].get();
      int prev_sum = 0;
      for (int t = 0; t < kMaxTasks; t++) prev_sum += prev[t].load(std::memory_order_relaxed);
      if (prev_sum != last_sum_) fail("job " + std::to_string(i - 1) + " ran tasks after it returned");
    }
    last_sum_ = sum;
  }

  dsv4::ThreadPool& pool_;
  unsigned seed_;
  std::unique_ptr<std::atomic<int>[]> hits_[kBuffers];
  int last_sum_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 20000;
  for (int threads : {2, 3, kMaxThreads}) {
    dsv4::ThreadPool pool(threads);
    if (pool.threads() != threads) fail("pool has " + std::to_string(pool.threads()) + " threads, asked for " + std::to_string(threads));
    Caller(pool, 1u + threads).run_jobs(jobs / 2);
  }
  {
    dsv4::ThreadPool pool(kMaxThreads);
    std::atomic<bool> callers_done{false};
    std::thread resizer([&] {
      // Through 1 thread (run() then goes serial) and back while jobs run.
      for (int n = 0; !callers_done.load(); n++) {
        pool.resize(1 + n % kMaxThreads);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    std::thread a([&] { Caller(pool, 11).run_jobs(jobs); });
    std::thread b([&] { Caller(pool, 23).run_jobs(jobs); });
    a.join();
    b.join();
    callers_done.store(true);
    resizer.join();
  }
  if (thrown_on_workers.load() == 0) fail("no task threw on a pool worker: the cross-thread exception path went untested");
  std::printf("ok (%d exceptions thrown on workers)\n", thrown_on_workers.load());
  return 0;
}
