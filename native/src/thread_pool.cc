#include "thread_pool.h"

#include <sched.h>

#include <cstdlib>

namespace dsv4 {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
// About 100-300 us of spinning: long enough to bridge the JS between two kernel calls,
// short enough not to burn a core while the process idles.
constexpr int kSpinIterations = 4000;
}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int t = 1; t < threads; t++) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    state_.store(static_cast<uint64_t>(generation_ + 1) << 32);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_tasks(uint32_t generation, int thread) {
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    if (static_cast<uint32_t>(s >> 32) != generation) return;
    const uint32_t task = static_cast<uint32_t>(s);
    if (task >= static_cast<uint32_t>(tasks_.load(std::memory_order_relaxed))) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
    // The job cannot finish before this task does, so fn_/ctx_ are still this job's.
    fn_(ctx_, static_cast<int>(task), thread);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::dispatch(int tasks, Thunk fn, void* ctx) {
  std::lock_guard<std::mutex> job(one_job_);
  fn_ = fn;
  ctx_ = ctx;
  tasks_.store(tasks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  generation_++;
  state_.store(static_cast<uint64_t>(generation_) << 32, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_tasks(generation_, 0);
  while (done_.load(std::memory_order_acquire) < tasks) cpu_relax();
}

void ThreadPool::worker_loop(int thread) {
  uint32_t seen = 0;
  auto current = [this] { return static_cast<uint32_t>(state_.load(std::memory_order_acquire) >> 32); };
  for (;;) {
    uint32_t g = current();
    for (int i = 0; g == seen && i < kSpinIterations; i++) {
      cpu_relax();
      g = current();
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return static_cast<uint32_t>(state_.load(std::memory_order_seq_cst) >> 32) != seen; });
      sleeping_.fetch_sub(1, std::memory_order_relaxed);
      g = current();
    }
    seen = g;
    if (stop_.load()) return;
    run_tasks(g, thread);
  }
}

int default_thread_count() {
  if (const char* env = std::getenv("DSV4_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

ThreadPool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can race
  // with Node tearing down; the OS reclaims them.
  static ThreadPool* p = new ThreadPool(default_thread_count());
  return *p;
}

}  // namespace dsv4
