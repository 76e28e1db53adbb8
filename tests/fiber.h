// Fibers for the emulated device (tests/emulated_device.cpp): an emulated GPU
// thread runs on a stack of its own and hands the OS thread back where a real
// GPU thread would wait (block_sync), so a block's barriers cost a context
// switch each instead of a futex wake-up of every OS thread of the block.
//
// On x86-64 the switch is hand-rolled (callee-saved registers, the SSE and x87
// control words, the stack pointer: a few nanoseconds); elsewhere glibc's
// swapcontext does the same job (slower: it asks the kernel for the signal
// mask on every switch).
#pragma once

#include <cstddef>
#include <memory>

namespace gac {

class Fiber {
 public:
  // A stack of `stack_bytes` (mapped lazily, an inaccessible guard page below
  // it so that an overflow faults instead of corrupting a neighbour).
  explicit Fiber(size_t stack_bytes);
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // The next resume() starts entry(arg) from the top of the stack, whatever
  // the fiber was doing. `entry` must never return: it ends with a last
  // suspend() and is never resumed after it.
  void start(void (*entry)(void*), void* arg);
  // Runs the fiber (from the thread that drives it) until it suspends.
  void resume();
  // Back to whoever resumed this fiber (from inside the fiber).
  void suspend();

 private:
  struct Portable;
  char* mapping_ = nullptr;
  size_t mapped_ = 0;
  size_t usable_ = 0;
  char* stack_top_ = nullptr;
  void* sp_ = nullptr;         // the fiber's saved stack pointer (hand-rolled switch)
  void* caller_sp_ = nullptr;  // the resumer's
  std::unique_ptr<Portable> portable_;  // the swapcontext switch's saved contexts
};

}  // namespace gac
