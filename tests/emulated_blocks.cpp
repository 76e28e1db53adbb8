#include "emulated_blocks.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include "fiber.h"
#include "gac/error.h"
#include "kernels/device_intrinsics.h"

namespace gac {
namespace {

constexpr unsigned char kPoison = 0xFF;           // NaN floats, 0xFFFFFFFF integers
constexpr size_t kFiberStack = size_t{512} << 10;  // mapped lazily: only what a kernel body touches is memory

struct BlockRun;

struct EmulatedThread {
  Fiber fiber{kFiberStack};
  BlockRun* run = nullptr;
  int tid = 0;
  bool done = false;
  std::vector<HostAsyncCopy> copies;  // this thread's copies in flight while another thread runs
};

// One block in progress: the barrier its threads meet at.
struct BlockRun final : HostBlockBarrier {
  const BlockThreadBody* body = nullptr;
  int block = 0;
  float* smem = nullptr;
  BlockShared* shared = nullptr;
  EmulatedThread* current = nullptr;
  std::exception_ptr error;

  void arrive_and_wait() override {
    EmulatedThread& t = *current;
    t.copies.swap(host_async_copies);  // the OS thread's list is the running fiber's
    t.fiber.suspend();
    t.copies.swap(host_async_copies);
  }
};

void thread_entry(void* p) {
  EmulatedThread& t = *static_cast<EmulatedThread*>(p);
  BlockRun& r = *t.run;
  try {
    (*r.body)(r.block, t.tid, r.smem, *r.shared);
  } catch (...) {
    if (!r.error) r.error = std::current_exception();
  }
  host_async_copies.clear();  // never waited for: dropped, as when a host thread ended
  t.done = true;
  t.fiber.suspend();  // never resumed
}

}  // namespace

struct EmulatedBlocks::Worker {
  std::vector<std::unique_ptr<EmulatedThread>> threads;
  std::vector<float> smem;
  BlockShared shared;

  // Runs block r's `T` threads to their end, phase by phase.
  void run_block(BlockRun& r, int T) {
    for (int tid = 0; tid < T; ++tid) {
      EmulatedThread& t = *threads[tid];
      t.run = &r;
      t.tid = tid;
      t.done = false;
      t.copies.clear();
      t.fiber.start(&thread_entry, &t);
    }
    int live = T;
    for (int phase = 0; live > 0 && !r.error; ++phase) {
      const bool backwards = (phase + r.block) % 2 == 1;
      for (int k = 0; k < T && !r.error; ++k) {
        EmulatedThread& t = *threads[backwards ? T - 1 - k : k];
        if (t.done) continue;
        r.current = &t;
        t.fiber.resume();
        if (t.done) --live;
      }
      if (live > 0 && live < T && !r.error)
        r.error = std::make_exception_ptr(
            Error("emulated device: in block " + std::to_string(r.block) + ", " + std::to_string(live) + " of " +
                  std::to_string(T) + " threads wait at a block_sync() the others returned without reaching"));
    }
  }
};

EmulatedBlocks::EmulatedBlocks(int host_threads) : host_threads_(std::max(1, host_threads)) {}
EmulatedBlocks::~EmulatedBlocks() = default;

void EmulatedBlocks::run(int grid, int threads, size_t smem_bytes, const BlockThreadBody& body) {
  if (grid <= 0 || threads <= 0) return;
  const int n_workers = std::min(grid, host_threads_);
  while (static_cast<int>(workers_.size()) < n_workers) workers_.push_back(std::make_unique<Worker>());
  std::atomic<int> next_block{0};
  std::atomic<bool> failed{false};
  std::vector<std::exception_ptr> errors(n_workers);
  auto work = [&](int w) {
    try {
      Worker& worker = *workers_[w];
      while (static_cast<int>(worker.threads.size()) < threads)
        worker.threads.push_back(std::make_unique<EmulatedThread>());
      worker.smem.resize(smem_bytes / sizeof(float));
      HostBlockBarrier* const outer = host_block_barrier;
      for (int b; !failed && (b = next_block.fetch_add(1)) < grid;) {
        std::memset(worker.smem.data(), kPoison, worker.smem.size() * sizeof(float));
        std::memset(&worker.shared, kPoison, sizeof(BlockShared));
        BlockRun r;
        r.body = &body;
        r.block = b;
        r.smem = worker.smem.data();
        r.shared = &worker.shared;
        host_block_barrier = &r;
        worker.run_block(r, threads);
        host_block_barrier = outer;
        if (r.error) std::rethrow_exception(r.error);
      }
    } catch (...) {
      errors[w] = std::current_exception();
      failed = true;
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (int w = 1; w < n_workers; ++w) helpers.emplace_back(work, w);
    work(0);
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace gac
