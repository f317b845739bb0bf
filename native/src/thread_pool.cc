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

constexpr uint64_t pack(uint32_t generation, uint32_t low) { return (static_cast<uint64_t>(generation) << 32) | low; }
constexpr uint32_t generation_of(uint64_t word) { return static_cast<uint32_t>(word >> 32); }

// First task of lane `lane` when `tasks` tasks are split over `lanes` lanes (lane `lanes`:
// the end). Contiguous ranges keep neighbouring output rows on one core.
inline uint32_t lane_begin(int lane, uint32_t tasks, int lanes) {
  return static_cast<uint32_t>(static_cast<uint64_t>(lane) * tasks / static_cast<uint64_t>(lanes));
}
}  // namespace

ThreadPool::ThreadPool(int threads) { start_workers(threads); }

ThreadPool::~ThreadPool() {
  std::lock_guard<std::mutex> job(one_job_);
  stop_workers();
}

void ThreadPool::resize(int threads) {
  std::lock_guard<std::mutex> job(one_job_);
  stop_workers();
  start_workers(threads);
}

void ThreadPool::start_workers(int threads) {
  if (threads < 1) threads = 1;
  lanes_.reset(new Lane[threads]);
  threads_.store(threads, std::memory_order_relaxed);
  const uint32_t seen = generation_;
  try {
    for (int t = 1; t < threads; t++) workers_.emplace_back([this, t, seen] { worker_loop(t, seen); });
  } catch (const std::exception&) {
    // The system would not give us more threads: work with the ones that started (their
    // lanes are the first ones; no job has run yet, so no lane count is in use).
    threads_.store(static_cast<int>(workers_.size()) + 1, std::memory_order_relaxed);
  }
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_++;
    job_.store(pack(generation_, 0), std::memory_order_seq_cst);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  stop_.store(false, std::memory_order_relaxed);
}

void ThreadPool::run_one(int task, int thread) {
  if (failed_.load(std::memory_order_relaxed)) return;
  try {
    fn_(ctx_, task, thread);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
    failed_.store(true, std::memory_order_relaxed);
  }
}

int ThreadPool::run_tasks(uint32_t generation, uint32_t tasks, int thread) {
  const int lanes = threads_.load(std::memory_order_relaxed);
  int total = 0;
  // Own lane first, then the others in turn (stealing).
  for (int i = 0; i < lanes; i++) {
    const int l = (thread + i) % lanes;
    std::atomic<uint64_t>& next = lanes_[l].next;
    const uint32_t end = lane_begin(l + 1, tasks, lanes);
    int count = 0;
    uint64_t s = next.load(std::memory_order_acquire);
    for (;;) {
      // A lane of a newer job: this job is over (it cannot be while we hold finished,
      // uncounted tasks, so count is 0 here).
      if (generation_of(s) != generation) return total;
      const uint32_t task = static_cast<uint32_t>(s);
      if (task >= end) break;
      // Succeeds only while the lane still holds this job's generation: a worker that read
      // `s` before being descheduled can never claim a task of a later job.
      if (!next.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      // The job cannot finish before this task is counted, so fn_/ctx_ are still its own.
      run_one(static_cast<int>(task), thread);
      count++;
      s = s + 1;  // the likely next value; a failed exchange reloads it
    }
    if (count) {
      done_.fetch_add(count, std::memory_order_release);
      total += count;
    }
  }
  return total;
}

void ThreadPool::dispatch(int tasks, Thunk fn, void* ctx) {
  std::lock_guard<std::mutex> job(one_job_);
  const int lanes = threads_.load(std::memory_order_relaxed);
  if (lanes == 1) {  // resized to one thread since run() looked
    for (int t = 0; t < tasks; t++) fn(ctx, t, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  const uint32_t generation = ++generation_;
  const uint32_t count = static_cast<uint32_t>(tasks);
  for (int l = 0; l < lanes; l++) lanes_[l].next.store(pack(generation, lane_begin(l, count, lanes)), std::memory_order_release);
  // Published after the lanes: a worker that sees this generation sees its lanes.
  job_.store(pack(generation, count), std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_tasks(generation, count, 0);
  // Every task is claimed now; wait for those still running elsewhere.
  for (int spins = 0; done_.load(std::memory_order_acquire) < tasks; spins++) {
    if (spins < kSpinIterations) {
      cpu_relax();
    } else {
      std::this_thread::yield();  // a worker holding a task was descheduled: let it run
    }
  }
  if (failed_.load(std::memory_order_relaxed)) {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(error_mutex_);
      e = error_;
      error_ = nullptr;
    }
    std::rethrow_exception(e);
  }
}

void ThreadPool::worker_loop(int thread, uint32_t seen) {
  for (;;) {
    uint64_t j = job_.load(std::memory_order_acquire);
    for (int i = 0; generation_of(j) == seen && i < kSpinIterations; i++) {
      cpu_relax();
      j = job_.load(std::memory_order_acquire);
    }
    if (generation_of(j) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] {
        j = job_.load(std::memory_order_seq_cst);
        return generation_of(j) != seen;
      });
      sleeping_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (stop_.load(std::memory_order_relaxed)) return;
    seen = generation_of(j);
    run_tasks(seen, static_cast<uint32_t>(j), thread);
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
