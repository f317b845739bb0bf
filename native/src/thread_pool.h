#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace dsv4 {

// A persistent pool: workers stay alive between calls and spin briefly before sleeping, so
// the many small kernel launches of one decode step do not each pay a thread wake-up.
// The calling thread works too (as thread 0). One job runs at a time.
//
// Each thread owns a contiguous range of the job's tasks (its lane) and claims them from its
// own cache-line-sized counter; only a thread whose lane is empty touches another lane, to
// steal. So the hot path shares no counter between threads, and a thread that is slow to
// start (a shared machine) still has its tasks taken by the others.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  // Replaces the workers with threads - 1 new ones, after the running job (benchmarks of
  // thread scaling). Results do not depend on it: callers split work by the task index.
  void resize(int threads);

  // Calls fn(task, thread) for every task in [0, tasks), with thread in [0, threads()).
  // Callers on different threads (Node worker threads) take turns; fn must not call run.
  // If fn throws, the job's tasks not yet started are skipped, and once every started task
  // has returned the first exception is rethrown here, on the calling thread.
  template <class F>
  void run(int tasks, F&& fn) {
    if (tasks <= 0) return;
    if (tasks == 1 || threads() == 1) {
      for (int t = 0; t < tasks; t++) fn(t, 0);
      return;
    }
    using Fn = typename std::remove_reference<F>::type;
    dispatch(tasks, [](void* ctx, int task, int thread) { (*static_cast<Fn*>(ctx))(task, thread); }, &fn);
  }

 private:
  using Thunk = void (*)(void*, int, int);
  // One thread's claim counter: job generation in the high half, its next task in the low
  // half, so a claim is valid only for the job it was read for (see run_tasks).
  struct alignas(64) Lane {
    std::atomic<uint64_t> next{0};
  };

  void dispatch(int tasks, Thunk fn, void* ctx);
  // Runs tasks of job `generation` (of `tasks` tasks) until none is left; returns how many.
  int run_tasks(uint32_t generation, uint32_t tasks, int thread);
  void run_one(int task, int thread);
  void worker_loop(int thread, uint32_t seen);
  void start_workers(int threads);
  void stop_workers();

  std::vector<std::thread> workers_;
  std::unique_ptr<Lane[]> lanes_;  // one per thread, fixed while workers run
  std::atomic<int> threads_{1};
  // The job: generation in the high half, task count in the low half, published in one
  // store, so a worker never pairs one job's generation with another's task count.
  std::atomic<uint64_t> job_{0};
  alignas(64) std::atomic<int> done_{0};  // tasks finished, added once per lane a thread leaves
  std::atomic<bool> failed_{false};       // this job has thrown: skip its remaining tasks
  std::exception_ptr error_;              // the first exception, under error_mutex_
  std::mutex error_mutex_;
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  uint32_t generation_ = 0;  // under one_job_
  Thunk fn_ = nullptr;
  void* ctx_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex one_job_;
};

// The process-wide pool (DSV4_THREADS, else the CPUs this process may run on).
ThreadPool& pool();
int default_thread_count();

}  // namespace dsv4
