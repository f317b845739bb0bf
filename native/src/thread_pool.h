#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace dsv4 {

// A persistent pool: workers stay alive between calls and spin briefly before sleeping, so
// the many small kernel launches of one decode step do not each pay a thread wake-up.
// The calling thread works too (as thread 0). One job runs at a time.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task, thread) for every task in [0, tasks); tasks are taken dynamically.
  // Callers on different threads (Node worker threads) take turns; fn must not call run.
  template <class F>
  void run(int tasks, F&& fn) {
    if (tasks <= 0) return;
    if (tasks == 1 || workers_.empty()) {
      for (int t = 0; t < tasks; t++) fn(t, 0);
      return;
    }
    using Fn = typename std::remove_reference<F>::type;
    dispatch(tasks, [](void* ctx, int task, int thread) { (*static_cast<Fn*>(ctx))(task, thread); }, &fn);
  }

 private:
  using Thunk = void (*)(void*, int, int);
  void dispatch(int tasks, Thunk fn, void* ctx);
  void run_tasks(uint32_t generation, int thread);
  void worker_loop(int thread);

  std::vector<std::thread> workers_;
  // Job generation in the high half, next unclaimed task in the low half: claiming a task
  // and checking that it belongs to the current job is one compare-and-swap, so a worker
  // that wakes late can never run a task of the wrong job, and the caller never waits for
  // a descheduled worker to check in (on a shared machine one may sleep for a whole slice).
  std::atomic<uint64_t> state_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  uint32_t generation_ = 0;  // caller side only
  Thunk fn_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<int> tasks_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex one_job_;
};

// The process-wide pool (DSV4_THREADS, else the CPUs this process may run on).
ThreadPool& pool();
int default_thread_count();

}  // namespace dsv4
