// Distill4J CUDA emulator: runs a launch's blocks one after another (a thread-block cluster's blocks
// together), each block's threads as fibers on the calling thread. A fiber runs until it reaches a barrier
// (__syncthreads, or the cluster's barrier), a warp operation (shuffle, vote, __syncwarp) or its end; when
// every live thread of the block (of the cluster, or every lane a warp operation names) has arrived, the
// barrier opens. Threads that exited do not count for a barrier, as on a GPU; a warp operation naming an
// exited lane, lanes disagreeing on the mask, threads stuck at different barriers, or a read of the shared
// memory of a cluster block that has exited fail the launch with a message that says which.
//
// Shared memory: build-emu.sh rewrites each `__shared__ T name[...];` into a reference that shared_var()
// places in the block's own static shared memory (the same offset in every block of a launch, NaN bytes at
// the start of each block), and `extern __shared__` into the block's dynamic shared memory (dyn_shared(),
// ending at a guard page). cluster_map() gives the same place in a peer block of the cluster. The launch's limits
// count the kernel's static shared memory from build-emu.sh's table (static_shared()); a block declaring more than
// that fails the launch, as the table would then be wrong.
#include "emu.h"
#include "kernel_api.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>


// x86-64 System V context switch: saves the callee-saved registers on the current stack, stores the stack
// pointer in *save and continues on `next`. MXCSR and the x87 control word are left alone: no kernel changes
// them, every fiber runs under the launching thread's, and loading them (ldmxcsr, fldcw) stalls the pipeline
// at each switch.
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
    movq %rsp, (%rdi)
    movq %rsi, %rsp
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

enum State { RUNNABLE, AT_BARRIER, AT_CLUSTER_BARRIER, AT_WARP_OP, DONE, FAILED };

struct Fiber {
    void* sp = nullptr;
    uint3 tid{};
    unsigned linear = 0;
    unsigned block = 0;  // its block's rank in the cluster
    State state = RUNNABLE;
    int opKind = 0;
    unsigned opMask = 0;
    uint64_t opValue = 0;
    int opLaneMask = 0;
    int opWidth = 32;
    uint64_t opResult = 0;
    // cp.async: copies in flight (destination NaN bytes until they land) and groups committed so far
    struct Copy {
        void* dst;
        const void* src;
        size_t bytes;
        unsigned group;  // == committed while the copy's group is still open
    };
    std::vector<Copy> copies;
    unsigned committed = 0;
};

// Static shared memory a block may have (__shared__ variables; as on a GPU).
constexpr size_t STATIC_SHARED = 48 * 1024;

// One block of the cluster that runs: its index, static and dynamic shared memory, and its threads.
struct Block {
    uint3 bidx{};
    std::vector<char> statics;  // STATIC_SHARED bytes
    char* dyn = nullptr;
    size_t first = 0;  // its fibers: [first, first + threads)
};

// A __shared__ variable of the launch: its declaration (shared_var's key), offset and size.
struct SharedVar {
    const void* key;
    size_t offset;
    size_t bytes;
};

struct Run {
    const emu::KernelInfo* kernel = nullptr;
    void** params = nullptr;
    dim3 grid{}, block{};
    unsigned cluster = 1;  // blocks per cluster (along x); 1: no clusters
    size_t threads = 0;    // per block
    size_t dynBytes = 0;
    std::vector<Block> blocks;    // the running cluster's (one without clusters)
    std::vector<SharedVar> vars;  // the same in every block
    size_t staticBytes = 0;       // what vars take
    size_t declaredBytes = 0;     // their sizes, without padding: at most static_shared(kernel), which the launch checked
    std::vector<Fiber> fibers;
    Fiber* current = nullptr;
    void* schedulerSp = nullptr;
    std::string error;  // set by a thread's call that fails the launch
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
    // stacks start at different offsets within a page (cache-line colouring): tops a whole number of pages
    // apart would all fall into the same cache sets, and every switch would miss
    uint64_t* top = (uint64_t*) (stack_top(i) - (i % 63) * 64);
    uint64_t* sp = top - 8;
    for (int r = 0; r < 7; r++) {  // the alignment slot, then r15 .. rbp
        sp[r] = 0;
    }
    sp[4] = (uint64_t) &f;                      // r12: the fiber, for emu_fiber_start
    sp[7] = (uint64_t) (void*) &emu_fiber_start;  // return address
    f.sp = sp;
    f.state = RUNNABLE;
    f.copies.clear();
    f.committed = 0;
}

// Lands the fiber's copies of groups older than `before` (all of them for UINT_MAX): the source is read now, as
// late as a GPU may read it.
void land(Fiber& f, unsigned before) {
    size_t kept = 0;
    for (size_t i = 0; i < f.copies.size(); i++) {
        Fiber::Copy& c = f.copies[i];
        if (c.group < before) {
            std::memcpy(c.dst, c.src, c.bytes);
        } else {
            f.copies[kept++] = c;
        }
    }
    f.copies.resize(kept);
}

void yield_to_scheduler() {
    Fiber* f = run->current;
    emu_switch(&f->sp, run->schedulerSp);
}

std::string where(unsigned b) {
    std::ostringstream o;
    const uint3& i = run->blocks[b].bidx;
    o << run->kernel->name << " block (" << i.x << "," << i.y << "," << i.z << ")";
    return o.str();
}

// Opens warp `warp` of block b's warp operation if every lane it names has arrived at the same operation.
// Returns "" (opened or not yet ready) or an error.
std::string try_warp(unsigned b, unsigned warp, bool& opened) {
    opened = false;
    std::vector<Fiber>& fs = run->fibers;
    size_t base = run->blocks[b].first + (size_t) warp * 32;
    size_t end = std::min(run->blocks[b].first + run->threads, base + 32);
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
            o << where(b) << ": a warp operation's mask 0x" << std::hex << mask << std::dec << " names lane " << lane << " of warp "
              << warp << ", which has exited or does not exist";
            return o.str();
        }
        if (fs[i].state != AT_WARP_OP) {
            return "";  // not there yet (or stuck at a barrier: found as a deadlock)
        }
        if (fs[i].opMask != mask || fs[i].opKind != first->opKind || fs[i].opWidth != first->opWidth) {
            std::ostringstream o;
            o << where(b) << ": lanes of warp " << warp << " disagree on a warp operation (kind " << first->opKind << " mask 0x"
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
                o << where(b) << ": lane " << lane << " of warp " << warp << " shuffles from lane " << src << ", outside the mask";
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

// Runs the blocks of run->blocks (one cluster, or one block) to their end.
std::string run_blocks() {
    std::vector<Fiber>& fs = run->fibers;
    for (size_t i = 0; i < fs.size(); i++) {
        prepare(fs[i], i);
    }
    static const bool reverse = [] {
        const char* order = std::getenv("DISTILL_EMU_ORDER");
        return order != nullptr && std::strcmp(order, "reverse") == 0;
    }();
    const unsigned nb = (unsigned) run->blocks.size();
    const unsigned warps = (unsigned) ((run->threads + 31) / 32);
    for (;;) {
        bool ran = false;
        for (unsigned bn = 0; bn < nb; bn++) {
            unsigned b = reverse ? nb - 1 - bn : bn;
            size_t first = run->blocks[b].first;
            for (size_t n = 0; n < run->threads; n++) {
                Fiber& f = fs[first + (reverse ? run->threads - 1 - n : n)];
                while (f.state == RUNNABLE) {
                    run->current = &f;
                    emu_switch(&run->schedulerSp, f.sp);
                    run->current = nullptr;
                    ran = true;
                    if (!run->error.empty()) {
                        return run->error;
                    }
                }
            }
        }
        bool opened = false;
        for (unsigned b = 0; b < nb; b++) {
            for (unsigned w = 0; w < warps; w++) {
                bool o = false;
                std::string err = try_warp(b, w, o);
                if (!err.empty()) {
                    return err;
                }
                opened |= o;
            }
        }
        if (opened) {
            continue;
        }
        size_t live = 0, atBarrier = 0, atCluster = 0, atWarp = 0;
        for (unsigned b = 0; b < nb; b++) {
            size_t blockLive = 0, blockAtBarrier = 0;
            size_t first = run->blocks[b].first;
            for (size_t i = first; i < first + run->threads; i++) {
                blockLive += fs[i].state != DONE;
                blockAtBarrier += fs[i].state == AT_BARRIER;
                atCluster += fs[i].state == AT_CLUSTER_BARRIER;
                atWarp += fs[i].state == AT_WARP_OP;
            }
            live += blockLive;
            atBarrier += blockAtBarrier;
            if (blockLive > 0 && blockAtBarrier == blockLive) {
                for (size_t i = first; i < first + run->threads; i++) {
                    if (fs[i].state == AT_BARRIER) {
                        fs[i].state = RUNNABLE;
                    }
                }
                opened = true;
            }
        }
        if (live == 0) {
            return "";
        }
        if (opened) {
            continue;
        }
        if (atCluster == live) {
            for (Fiber& f : fs) {
                if (f.state == AT_CLUSTER_BARRIER) {
                    f.state = RUNNABLE;
                }
            }
            continue;
        }
        if (!ran) {
            std::ostringstream o;
            o << where(0);
            if (nb > 1) {
                o << " (a cluster of " << nb << ")";
            }
            o << ": deadlock: of " << live << " live threads, " << atBarrier << " wait at __syncthreads, " << atCluster
              << " at the cluster barrier and " << atWarp
              << " at warp operations whose lanes never all arrive (a barrier inside divergent code?)";
            return o.str();
        }
    }
}

// Fails the launch from inside a thread: the thread never resumes.
void fail_thread(const std::string& why) {
    run->error = why;
    run->current->state = FAILED;
    yield_to_scheduler();
    std::fprintf(stderr, "cuda-emu: internal error: a failed thread of %s was resumed\n", run->kernel->name);
    std::abort();
}

}  // namespace

extern "C" void emu_fiber_main(Fiber* f) {
    run->kernel->invoke(run->params);
    land(*f, UINT_MAX);  // a GPU lands them too; nothing reads them
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
    return run->blocks[run->current->block].bidx;
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
    return run->blocks[run->current->block].dyn;
}

void* shared_var(const void* key, size_t bytes, size_t align) {
    Run& r = *run;
    Block& b = r.blocks[r.current->block];
    for (const SharedVar& v : r.vars) {
        if (v.key == key) {
            return b.statics.data() + v.offset;
        }
    }
    size_t offset = (r.staticBytes + align - 1) / align * align;
    if (offset + bytes > STATIC_SHARED) {
        std::ostringstream o;
        o << where(r.current->block) << ": __shared__ variables of more than " << STATIC_SHARED << " bytes";
        fail_thread(o.str());
    }
    // the launch's limits counted the kernel's static shared memory as build-emu.sh found it: a variable beyond it
    // means that table missed a declaration, and the launch checks would be wrong
    if (r.declaredBytes + bytes > static_shared(*r.kernel)) {
        std::ostringstream o;
        o << where(r.current->block) << ": declares " << r.declaredBytes + bytes << " bytes of __shared__ variables, more than the "
          << static_shared(*r.kernel) << " bytes of static shared memory build-emu.sh found for it (static_shared.pl)";
        fail_thread(o.str());
    }
    r.vars.push_back(SharedVar{key, offset, bytes});
    r.staticBytes = offset + bytes;
    r.declaredBytes += bytes;
    return b.statics.data() + offset;
}

unsigned cluster_rank() {
    return run->current->block;
}

unsigned cluster_size() {
    return run->cluster;
}

void async_copy(void* dst, const void* src, size_t bytes) {
    Fiber& f = *run->current;
    std::memset(dst, 0xff, bytes);  // NaN bytes: a read before the copy is waited for sees them
    f.copies.push_back(Fiber::Copy{dst, src, bytes, f.committed});
}

void async_commit() {
    run->current->committed++;
}

void async_wait(unsigned pending) {
    Fiber& f = *run->current;
    land(f, f.committed > pending ? f.committed - pending : 0);
}

void async_wait_all() {
    land(*run->current, UINT_MAX);
}

void cluster_sync() {
    run->current->state = AT_CLUSTER_BARRIER;
    yield_to_scheduler();
}

const void* cluster_map(const void* p, unsigned rank) {
    const unsigned me = run->current->block;
    const char* q = (const char*) p;
    std::ostringstream o;
    o << where(me) << ": ";
    if (rank >= run->cluster) {
        o << "maps shared memory of cluster rank " << rank << " in a cluster of " << run->cluster;
        fail_thread(o.str());
    }
    Block& peer = run->blocks[rank];
    bool exited = true;
    for (size_t i = peer.first; i < peer.first + run->threads; i++) {
        exited &= run->fibers[i].state == DONE;
    }
    if (exited) {
        o << "reads the shared memory of cluster rank " << rank << ", " << where(rank) << ", whose threads have all exited";
        fail_thread(o.str());
    }
    const char* statics = run->blocks[me].statics.data();
    if (q >= statics && q < statics + STATIC_SHARED) {
        return peer.statics.data() + (q - statics);
    }
    const char* mine = run->blocks[me].dyn;
    if (mine != nullptr && q >= mine && q < mine + run->dynBytes) {
        return peer.dyn + (q - mine);
    }
    o << "maps an address that is not in its shared memory";
    fail_thread(o.str());
    return nullptr;
}

std::string run_kernel(const KernelInfo& k, void** params, Dim grid, Dim block, size_t dynSharedBytes, unsigned cluster) {
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
    } else if (dynSharedBytes + static_shared(k) > 227 * 1024) {
        bad << k.name << ": " << dynSharedBytes << " bytes of dynamic and " << static_shared(k)
            << " of static shared memory exceed the 227 KiB a block may opt in to";
    } else if (cluster < 1 || cluster > 16 || grid.x % cluster != 0) {
        bad << k.name << ": a cluster of " << cluster << " blocks along x for a grid of " << grid.x
            << " (1 to 16 blocks that divide the grid)";
    }
    if (!bad.str().empty()) {
        return bad.str();
    }
    size_t page = (size_t) getpagesize();
    size_t padded = (dynSharedBytes + 15) / 16 * 16;
    size_t body = (dynSharedBytes + page - 1) / page * page;
    std::vector<std::pair<char*, size_t>> maps;
    Run r;
    r.kernel = &k;
    r.params = params;
    r.grid = {grid.x, grid.y, grid.z};
    r.block = {block.x, block.y, block.z};
    r.cluster = cluster;
    r.threads = threads;
    r.dynBytes = dynSharedBytes;
    r.blocks.resize(cluster);
    for (unsigned b = 0; b < cluster; b++) {
        Block& bl = r.blocks[b];
        bl.first = (size_t) b * threads;
        bl.statics.assign(STATIC_SHARED, (char) 0xff);  // shared memory starts as garbage on a GPU: NaN bytes here
        if (dynSharedBytes > 0) {  // placed against a guard page, so reading past the end faults
            size_t len = body + page;
            char* m = (char*) mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            mprotect(m + body, page, PROT_NONE);
            maps.emplace_back(m, len);
            bl.dyn = m + body - padded;
            std::memset(bl.dyn, 0xff, padded);
        }
    }
    ensure_stacks(threads * cluster);
    r.fibers.resize(threads * cluster);
    for (unsigned b = 0; b < cluster; b++) {
        for (unsigned z = 0, i = 0; z < block.z; z++) {
            for (unsigned y = 0; y < block.y; y++) {
                for (unsigned x = 0; x < block.x; x++, i++) {
                    Fiber& f = r.fibers[(size_t) b * threads + i];
                    f.tid = {x, y, z};
                    f.linear = i;
                    f.block = b;
                }
            }
        }
    }
    Run* saved = run;
    run = &r;
    std::string err;
    bool fresh = true;  // the first blocks' shared memory is garbage already
    for (unsigned bz = 0; bz < grid.z && err.empty(); bz++) {
        for (unsigned by = 0; by < grid.y && err.empty(); by++) {
            for (unsigned bx = 0; bx < grid.x && err.empty(); bx += cluster) {
                for (unsigned b = 0; b < cluster; b++) {
                    r.blocks[b].bidx = {bx + b, by, bz};
                    if (!fresh) {  // each block's shared memory starts as garbage, whatever the last one left
                        std::memset(r.blocks[b].statics.data(), 0xff, r.staticBytes);
                        if (r.blocks[b].dyn != nullptr) {
                            std::memset(r.blocks[b].dyn, 0xff, padded);
                        }
                    }
                }
                fresh = false;
                err = run_blocks();
            }
        }
    }
    run = saved;
    for (auto& m : maps) {
        munmap(m.first, m.second);
    }
    return err;
}

}  // namespace emu
