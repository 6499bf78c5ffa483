// Distill4J CUDA emulator: runs a launch's blocks one after another, each block's threads as fibers on the
// calling thread. A fiber runs until it reaches a barrier (__syncthreads), a warp operation (shuffle, vote,
// __syncwarp) or its end; when every live thread of the block (or every lane a warp operation names) has
// arrived, the barrier opens. Threads that exited do not count for __syncthreads, as on a GPU; a warp
// operation naming an exited lane, lanes disagreeing on the mask, or threads stuck at different barriers
// fail the launch with a message that says which.
#include "emu.h"
#include "kernel_api.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

extern "C" char __start_emu_shared[];
extern "C" char __stop_emu_shared[];


// x86-64 System V context switch: saves the callee-saved registers, MXCSR and the x87 control word on the
// current stack, stores the stack pointer in *save and continues on `next`.
extern "C" void emu_switch(void** save, void* next);
extern "C" void emu_fiber_start();
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
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
.size emu_switch, .-emu_switch
.globl emu_fiber_start
.type emu_fiber_start,@function
emu_fiber_start:
    movq %r12, %rdi
    call emu_fiber_main
    ud2
.size emu_fiber_start, .-emu_fiber_start
)");

namespace {

constexpr size_t STACK = 128 * 1024;

enum State { RUNNABLE, AT_BARRIER, AT_WARP_OP, DONE };

struct Fiber {
    void* sp = nullptr;
    uint3 tid{};
    unsigned linear = 0;
    State state = RUNNABLE;
    int opKind = 0;
    unsigned opMask = 0;
    uint64_t opValue = 0;
    int opLaneMask = 0;
    int opWidth = 32;
    uint64_t opResult = 0;
};

struct Run {
    const emu::KernelInfo* kernel = nullptr;
    void** params = nullptr;
    dim3 grid{}, block{};
    uint3 bidx{};
    char* dyn = nullptr;
    std::vector<Fiber> fibers;
    Fiber* current = nullptr;
    void* schedulerSp = nullptr;
};

Run* run = nullptr;
char* stacks = nullptr;
size_t stackCount = 0;

char* stack_top(size_t i) {
    return stacks + (i + 1) * (STACK + (size_t) getpagesize());
}

void ensure_stacks(size_t n) {
    if (n <= stackCount) {
        return;
    }
    size_t page = (size_t) getpagesize();
    size_t each = STACK + page;  // a guard page below each stack
    void* m = mmap(nullptr, each * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        std::fprintf(stderr, "cuda-emu: cannot map %zu fiber stacks\n", n);
        std::abort();
    }
    for (size_t i = 0; i < n; i++) {
        mprotect((char*) m + i * each, page, PROT_NONE);
    }
    if (stacks != nullptr) {
        munmap(stacks, each * stackCount);
    }
    stacks = (char*) m;
    stackCount = n;
}

void prepare(Fiber& f, size_t i) {
    uint64_t* top = (uint64_t*) stack_top(i);
    uint64_t* sp = top - 8;
    uint32_t ctrl[2];
    asm volatile("stmxcsr %0" : "=m"(ctrl[0]));
    asm volatile("fnstcw %0" : "=m"(ctrl[1]));
    std::memcpy(&sp[0], ctrl, 8);
    for (int r = 1; r < 7; r++) {
        sp[r] = 0;
    }
    sp[4] = (uint64_t) &f;                      // r12: the fiber, for emu_fiber_start
    sp[7] = (uint64_t) (void*) &emu_fiber_start;  // return address
    f.sp = sp;
    f.state = RUNNABLE;
}

void yield_to_scheduler() {
    Fiber* f = run->current;
    emu_switch(&f->sp, run->schedulerSp);
}

std::string where() {
    std::ostringstream o;
    o << run->kernel->name << " block (" << run->bidx.x << "," << run->bidx.y << "," << run->bidx.z << ")";
    return o.str();
}

// Opens the warp operation of `warp` if every lane it names has arrived at the same operation. Returns
// "" (opened or not yet ready) or an error.
std::string try_warp(unsigned warp, bool& opened) {
    opened = false;
    std::vector<Fiber>& fs = run->fibers;
    size_t base = (size_t) warp * 32;
    size_t end = std::min(fs.size(), base + 32);
    Fiber* first = nullptr;
    for (size_t i = base; i < end; i++) {
        if (fs[i].state == AT_WARP_OP) {
            first = &fs[i];
            break;
        }
    }
    if (first == nullptr) {
        return "";
    }
    unsigned mask = first->opMask;
    for (unsigned lane = 0; lane < 32; lane++) {
        if (!(mask & (1u << lane))) {
            continue;
        }
        size_t i = base + lane;
        if (i >= end || fs[i].state == DONE) {
            std::ostringstream o;
            o << where() << ": a warp operation's mask 0x" << std::hex << mask << std::dec << " names lane " << lane << " of warp "
              << warp << ", which has exited or does not exist";
            return o.str();
        }
        if (fs[i].state != AT_WARP_OP) {
            return "";  // not there yet (or stuck at __syncthreads: found as a deadlock)
        }
        if (fs[i].opMask != mask || fs[i].opKind != first->opKind || fs[i].opWidth != first->opWidth) {
            std::ostringstream o;
            o << where() << ": lanes of warp " << warp << " disagree on a warp operation (kind " << first->opKind << " mask 0x"
              << std::hex << mask << " vs kind " << std::dec << fs[i].opKind << " mask 0x" << std::hex << fs[i].opMask << ")";
            return o.str();
        }
    }
    int kind = first->opKind;
    uint64_t any = 0;
    for (unsigned lane = 0; lane < 32; lane++) {
        if (mask & (1u << lane)) {
            any |= fs[base + lane].opValue != 0 ? 1 : 0;
        }
    }
    for (unsigned lane = 0; lane < 32; lane++) {
        if (!(mask & (1u << lane))) {
            continue;
        }
        Fiber& f = fs[base + lane];
        if (kind == emu::SHFL_XOR) {
            int width = f.opWidth;
            unsigned src = lane ^ (unsigned) f.opLaneMask;
            if (src / (unsigned) width > lane / (unsigned) width || src >= 32) {
                f.opResult = f.opValue;
            } else if (!(mask & (1u << src))) {
                std::ostringstream o;
                o << where() << ": lane " << lane << " of warp " << warp << " shuffles from lane " << src << ", outside the mask";
                return o.str();
            } else {
                f.opResult = fs[base + src].opValue;
            }
        } else if (kind == emu::ANY) {
            f.opResult = any;
        } else {
            f.opResult = 0;
        }
    }
    for (unsigned lane = 0; lane < 32; lane++) {
        if (mask & (1u << lane)) {
            fs[base + lane].state = RUNNABLE;
        }
    }
    opened = true;
    return "";
}

std::string run_block() {
    std::vector<Fiber>& fs = run->fibers;
    for (size_t i = 0; i < fs.size(); i++) {
        prepare(fs[i], i);
    }
    static const bool reverse = [] {
        const char* order = std::getenv("DISTILL_EMU_ORDER");
        return order != nullptr && std::strcmp(order, "reverse") == 0;
    }();
    for (;;) {
        bool ran = false;
        for (size_t n = 0; n < fs.size(); n++) {
            Fiber& f = fs[reverse ? fs.size() - 1 - n : n];
            while (f.state == RUNNABLE) {
                run->current = &f;
                emu_switch(&run->schedulerSp, f.sp);
                run->current = nullptr;
                ran = true;
            }
        }
        bool opened = false;
        for (unsigned w = 0; w < (fs.size() + 31) / 32; w++) {
            bool o = false;
            std::string err = try_warp(w, o);
            if (!err.empty()) {
                return err;
            }
            opened |= o;
        }
        if (opened) {
            continue;
        }
        size_t live = 0, atBarrier = 0, atWarp = 0;
        for (Fiber& f : fs) {
            live += f.state != DONE;
            atBarrier += f.state == AT_BARRIER;
            atWarp += f.state == AT_WARP_OP;
        }
        if (live == 0) {
            return "";
        }
        if (atBarrier == live) {
            for (Fiber& f : fs) {
                if (f.state == AT_BARRIER) {
                    f.state = RUNNABLE;
                }
            }
            continue;
        }
        if (!ran) {
            std::ostringstream o;
            o << where() << ": deadlock: of " << live << " live threads, " << atBarrier << " wait at __syncthreads and " << atWarp
              << " at warp operations whose lanes never all arrive (a barrier inside divergent code?)";
            return o.str();
        }
    }
}

}  // namespace

extern "C" void emu_fiber_main(Fiber* f) {
    run->kernel->invoke(run->params);
    f->state = DONE;
    yield_to_scheduler();
    std::fprintf(stderr, "cuda-emu: internal error: a finished thread of %s was resumed\n", run->kernel->name);
    std::abort();
}

namespace emu {

const uint3& thread_idx() {
    return run->current->tid;
}
const uint3& block_idx() {
    return run->bidx;
}
const dim3& block_dim() {
    return run->block;
}
const dim3& grid_dim() {
    return run->grid;
}

void sync_block() {
    run->current->state = AT_BARRIER;
    yield_to_scheduler();
}

uint64_t warp_op(int kind, unsigned mask, uint64_t value, int laneMask, int width) {
    Fiber* f = run->current;
    f->opKind = kind;
    f->opMask = mask;
    f->opValue = value;
    f->opLaneMask = laneMask;
    f->opWidth = width;
    f->state = AT_WARP_OP;
    yield_to_scheduler();
    return f->opResult;
}

void* dyn_shared() {
    return run->dyn;
}

std::string run_kernel(const KernelInfo& k, void** params, Dim grid, Dim block, size_t dynSharedBytes) {
    size_t threads = (size_t) block.x * block.y * block.z;
    std::ostringstream bad;
    if (threads == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
        bad << k.name << ": empty launch (grid " << grid.x << "x" << grid.y << "x" << grid.z << ", block " << block.x << "x" << block.y
            << "x" << block.z << ")";
    } else if (threads > 1024) {
        bad << k.name << ": " << threads << " threads per block; a block holds at most 1024";
    } else if (k.maxThreads != 0 && threads > k.maxThreads) {
        bad << k.name << ": " << threads << " threads per block exceed its __launch_bounds__(" << k.maxThreads << ")";
    } else if (grid.y > 65535 || grid.z > 65535) {
        bad << k.name << ": grid " << grid.x << "x" << grid.y << "x" << grid.z << " exceeds 65535 in y or z";
    } else if (dynSharedBytes > 227 * 1024) {
        bad << k.name << ": " << dynSharedBytes << " bytes of dynamic shared memory exceed the 227 KiB a block may opt in to";
    }
    if (!bad.str().empty()) {
        return bad.str();
    }
    // shared memory starts as garbage on a GPU: NaN bytes here
    std::memset(__start_emu_shared, 0xff, (size_t) (__stop_emu_shared - __start_emu_shared));
    size_t page = (size_t) getpagesize();
    char* dynMap = nullptr;
    size_t dynLen = 0;
    char* dyn = nullptr;
    if (dynSharedBytes > 0) {  // placed against a guard page, so reading past the end faults
        size_t body = (dynSharedBytes + page - 1) / page * page;
        dynLen = body + page;
        dynMap = (char*) mmap(nullptr, dynLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mprotect(dynMap + body, page, PROT_NONE);
        dyn = dynMap + body - (dynSharedBytes + 15) / 16 * 16;
        std::memset(dyn, 0xff, (dynSharedBytes + 15) / 16 * 16);
    }
    ensure_stacks(threads);
    Run r;
    r.kernel = &k;
    r.params = params;
    r.grid = {grid.x, grid.y, grid.z};
    r.block = {block.x, block.y, block.z};
    r.dyn = dyn;
    r.fibers.resize(threads);
    for (unsigned z = 0, i = 0; z < block.z; z++) {
        for (unsigned y = 0; y < block.y; y++) {
            for (unsigned x = 0; x < block.x; x++, i++) {
                r.fibers[i].tid = {x, y, z};
                r.fibers[i].linear = i;
            }
        }
    }
    Run* saved = run;
    run = &r;
    std::string err;
    for (unsigned bz = 0; bz < grid.z && err.empty(); bz++) {
        for (unsigned by = 0; by < grid.y && err.empty(); by++) {
            for (unsigned bx = 0; bx < grid.x && err.empty(); bx++) {
                r.bidx = {bx, by, bz};
                err = run_block();
            }
        }
    }
    run = saved;
    if (dynMap != nullptr) {
        munmap(dynMap, dynLen);
    }
    return err;
}

}  // namespace emu
