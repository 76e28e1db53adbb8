#include "fiber.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "gac/error.h"

namespace gac {

#if defined(__x86_64__) && defined(__linux__)
#define GAC_FIBER_HAND_ROLLED 1
// gac_fiber_switch(save, to): pushes the callee-saved registers and the
// MXCSR / x87 control words, stores the stack pointer in *save, loads `to`
// and pops what the fiber pushed when it stopped. A fresh stack is laid out
// as if it had stopped there, returning into gac_fiber_trampoline, which
// calls r12(r13) with the stack aligned as the ABI wants.
extern "C" void gac_fiber_switch(void** save, void* to);
extern "C" void gac_fiber_trampoline();
asm(R"(
  .text
  .globl gac_fiber_switch
  .hidden gac_fiber_switch
  .type gac_fiber_switch, @function
gac_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size gac_fiber_switch, .-gac_fiber_switch

  .globl gac_fiber_trampoline
  .hidden gac_fiber_trampoline
  .type gac_fiber_trampoline, @function
gac_fiber_trampoline:
  movq %r13, %rdi
  callq *%r12
  ud2
  .size gac_fiber_trampoline, .-gac_fiber_trampoline
)");
#else
#define GAC_FIBER_HAND_ROLLED 0
#endif

struct Fiber::Portable {
  ucontext_t fiber{}, caller{};
  void (*entry)(void*) = nullptr;
  void* arg = nullptr;
  static void trampoline(unsigned high, unsigned low) {
    auto* p = reinterpret_cast<Portable*>((uintptr_t{high} << 32) | low);
    p->entry(p->arg);
  }
};

Fiber::Fiber(size_t stack_bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  usable_ = (stack_bytes + page - 1) / page * page;
  mapped_ = usable_ + page;
  void* m = mmap(nullptr, mapped_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) throw Error("emulated device: cannot map a fiber stack of " + std::to_string(usable_) + " bytes");
  mapping_ = static_cast<char*>(m);
  if (mprotect(mapping_ + page, usable_, PROT_READ | PROT_WRITE) != 0) {
    munmap(mapping_, mapped_);
    throw Error("emulated device: cannot map a fiber stack of " + std::to_string(usable_) + " bytes");
  }
  stack_top_ = mapping_ + mapped_;
  if (!GAC_FIBER_HAND_ROLLED) portable_ = std::make_unique<Portable>();
}

Fiber::~Fiber() { munmap(mapping_, mapped_); }

void Fiber::start(void (*entry)(void*), void* arg) {
#if GAC_FIBER_HAND_ROLLED
  // Top down: the trampoline as the return address, rbp rbx r12 r13 r14 r15,
  // then the control words (this thread's, so fibers compute as it does).
  auto* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(stack_top_ - 64) & ~uintptr_t{15});
  uint64_t* sp = top - 8;
  uint32_t mxcsr = 0;
  uint16_t fpucw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  std::memset(sp, 0, 8 * sizeof(uint64_t));
  std::memcpy(sp, &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
  sp[3] = reinterpret_cast<uint64_t>(arg);    // r13
  sp[4] = reinterpret_cast<uint64_t>(entry);  // r12
  sp[7] = reinterpret_cast<uint64_t>(&gac_fiber_trampoline);
  sp_ = sp;
#else
  Portable& p = *portable_;
  if (getcontext(&p.fiber) != 0) throw Error("emulated device: getcontext failed");
  p.fiber.uc_stack.ss_sp = stack_top_ - usable_;
  p.fiber.uc_stack.ss_size = usable_;
  p.fiber.uc_link = nullptr;
  p.entry = entry;
  p.arg = arg;
  // makecontext passes int arguments: the pointer travels in two halves.
  const auto at = reinterpret_cast<uintptr_t>(&p);
  makecontext(&p.fiber, reinterpret_cast<void (*)()>(&Portable::trampoline), 2, static_cast<unsigned>(at >> 32),
              static_cast<unsigned>(at & 0xFFFFFFFFu));
#endif
}

void Fiber::resume() {
#if GAC_FIBER_HAND_ROLLED
  gac_fiber_switch(&caller_sp_, sp_);
#else
  swapcontext(&portable_->caller, &portable_->fiber);
#endif
}

void Fiber::suspend() {
#if GAC_FIBER_HAND_ROLLED
  gac_fiber_switch(&sp_, caller_sp_);
#else
  swapcontext(&portable_->fiber, &portable_->caller);
#endif
}

}  // namespace gac
