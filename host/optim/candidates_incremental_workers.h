// The incremental evaluator's threads (host/optim/candidates_incremental.cpp),
// kept from batch to batch. A batch of LeNet candidates takes a few
// milliseconds; on a loaded machine a new thread (parallel_for starts one per
// call) waits for the CPU far longer than a sleeping one that is woken, so the
// workers sleep on an atomic between batches instead of ending.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace gac {

class IncrementalWorkers {
 public:
  explicit IncrementalWorkers(int threads) {
    for (int t = 1; t < threads; ++t) pool_.emplace_back([this, t] { serve(t); });
  }
  ~IncrementalWorkers() {
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
  }  // then pool_, the last member, joins first
  IncrementalWorkers(const IncrementalWorkers&) = delete;
  IncrementalWorkers& operator=(const IncrementalWorkers&) = delete;

  // body(thread, i) for every i in [0, count), handed out in order one at a
  // time (as parallel_for with grain 1); returns when all are done.
  void run(uint64_t count, const std::function<void(int, uint64_t)>& body) {
    body_ = &body;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    busy_.store(static_cast<int>(pool_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    work(0);
    for (int busy; (busy = busy_.load(std::memory_order_acquire)) != 0;) busy_.wait(busy);
  }

 private:
  void work(int t) {
    for (uint64_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < count_;) (*body_)(t, i);
  }

  void serve(int t) {
    for (uint64_t seen = 0;;) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      work(t);
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) busy_.notify_one();
    }
  }

  const std::function<void(int, uint64_t)>* body_ = nullptr;
  uint64_t count_ = 0;
  std::atomic<uint64_t> next_{0}, generation_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::jthread> pool_;  // last: joined before the members above go
};

}  // namespace gac
