// The emulated device's block runner (tests/emulated_blocks.h): what makes
// it stand in for a GPU block (a real barrier, each thread's copies its own,
// a missing barrier caught whichever thread writes, blocks at once on
// several OS threads) and its clear errors.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "emulated_blocks.h"
#include "kernels/device_intrinsics.h"
#include "test_util.h"

using namespace gac;

TEST(EmulatedBlocks, EveryThreadSeesEveryWriteBeforeTheBarrier) {
  EmulatedBlocks blocks(2);
  constexpr int T = 7, grid = 5, rounds = 20;
  std::atomic<int> wrong{0}, checked{0};
  blocks.run(grid, T, T * sizeof(float), [&](int b, int tid, float* s, BlockShared&) {
    for (int r = 0; r < rounds; ++r) {
      s[tid] = static_cast<float>(b * 1000 + r * 10 + tid);
      block_sync();
      for (int k = 0; k < T; ++k) {
        wrong += s[k] != static_cast<float>(b * 1000 + r * 10 + k);
        ++checked;
      }
      block_sync();  // everyone has read before the next round writes
    }
  });
  EXPECT_EQ(checked, grid * T * T * rounds);
  EXPECT_EQ(wrong, 0);
}

TEST(EmulatedBlocks, AReadWithoutABarrierReadsPoisonInSomeBlockWhicheverThreadWrites) {
  EmulatedBlocks blocks(2);
  constexpr int T = 5;
  for (int writer : {0, T - 1}) {
    const int reader = T - 1 - writer;
    std::atomic<int> stale{0};
    blocks.run(2, T, sizeof(float), [&](int, int tid, float* s, BlockShared&) {
      if (tid == writer) s[0] = 1.0f;
      if (tid == reader) stale += std::isnan(s[0]);  // no block_sync between: a race on a GPU
    });
    EXPECT_GT(stale, 0) << "thread " << writer << " writes, thread " << reader << " reads: the race went unseen";
  }
}

TEST(EmulatedBlocks, AsyncCopiesStayTheirThreadsAcrossBarriersAndLandAtItsWait) {
  EmulatedBlocks blocks(2);
  constexpr int T = 6;
  std::vector<float> global(T);
  for (int k = 0; k < T; ++k) global[k] = static_cast<float>(k + 1);
  std::atomic<int> early{0}, missing{0};
  blocks.run(3, T, T * sizeof(float), [&](int, int tid, float* s, BlockShared&) {
    async_copy(s + tid, global.data() + tid, 1);
    block_sync();
    block_sync();  // two phases: forwards and backwards, every thread runs before and after every other
    early += !std::isnan(s[tid]);  // nobody waited for this thread's copy yet
    async_copy_wait_all();
    block_sync();
    for (int k = 0; k < T; ++k) missing += s[k] != global[k];
  });
  EXPECT_EQ(early, 0) << "a copy landed before its thread waited for it";
  EXPECT_EQ(missing, 0);
}

TEST(EmulatedBlocks, BlocksRunOnSeveralOsThreadsAtOnce) {
  // Each block waits (up to 10 s) for another block to have started: one
  // OS thread running the blocks one after the other would time out.
  EmulatedBlocks blocks(2);
  std::atomic<int> started{0}, alone{0};
  blocks.run(4, 3, 0, [&](int, int tid, float*, BlockShared&) {
    if (tid != 0) return;
    ++started;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    alone += started < 2;
  });
  EXPECT_EQ(alone, 0);
}

TEST(EmulatedBlocks, ABarrierSomeThreadsNeverReachIsAClearError) {
  EmulatedBlocks blocks(2);
  EXPECT_ERROR_MENTIONS(blocks.run(3, 4, 0,
                                   [&](int, int tid, float*, BlockShared&) {
                                     if (tid == 2) return;
                                     block_sync();
                                   }),
                        "block_sync");
  // The runner is whole after an abandoned block.
  std::atomic<int> ran{0};
  blocks.run(3, 4, 0, [&](int, int, float*, BlockShared&) {
    block_sync();
    ++ran;
  });
  EXPECT_EQ(ran, 12);
}

TEST(EmulatedBlocks, AThreadsErrorReachesTheCaller) {
  EmulatedBlocks blocks(3);
  EXPECT_ERROR_MENTIONS(blocks.run(6, 2, 0,
                                   [&](int b, int tid, float*, BlockShared&) {
                                     if (b == 4 && tid == 1) throw Error("thread 1 of block 4 gives up");
                                   }),
                        "block 4 gives up");
}
