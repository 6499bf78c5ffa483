// Distill4J CUDA emulator: the CUDA driver API (libcuda.so.1) that distill-cuda calls, on the CPU, so that
// its GPU tests run their real kernels and their real host code on a machine without a GPU.
//
// What it checks that a quiet CPU fallback would not:
//  - device memory: each allocation sits between guard pages (reading or writing past it faults), starts as
//    NaN bytes, and freed memory stays inaccessible for a while (use after free faults); copies and fills
//    must stay inside one allocation;
//  - ordering: queued work runs as late as CUDA allows, only when the host waits on it or other work waits on
//    it through an event, so a missing cuStreamWaitEvent, a read of pinned memory before its event, or a
//    synchronous copy on the legacy stream (which a non-blocking stream does not wait for) shows stale data;
//  - launches: block and grid limits, __launch_bounds__, shared memory (a function's static shared memory and the
//    dynamic part together: 48 KiB unless it was opted in to more); warp operations and barriers (fiber.cpp); a
//    failed launch makes later synchronizing calls fail with its reason;
//  - graph capture: what a capture may not contain (synchronizing, allocating, pageable copies) is refused
//    and invalidates it; kernel arguments are frozen at capture, as on a GPU;
//  - the primary context's last release frees the pinned memory made in it (a later read or write faults).
// It is not a timing model: event times are host wall time.
#include <cuda.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "emu.h"

namespace {

std::recursive_mutex mu;

struct Alloc {
    char* map;
    size_t mapLen;
    size_t bytes;
};

std::map<uint64_t, Alloc> device;  // by base address
std::map<uint64_t, Alloc> pinned;
std::deque<Alloc> quarantine;
size_t quarantined = 0;
size_t liveBytes = 0;
std::string lastFailure;
bool sticky = false;

size_t page() {
    return (size_t) getpagesize();
}

size_t capacity() {
    static const size_t bytes = [] {
        const char* mib = std::getenv("DISTILL_EMU_MEMORY_MIB");
        return (mib != nullptr ? (size_t) std::strtoull(mib, nullptr, 10) : 8192) << 20;
    }();
    return bytes;
}

CUresult report(CUresult rc, const std::string& what) {
    std::fprintf(stderr, "cuda-emu: %s\n", what.c_str());
    std::fflush(stderr);
    return rc;
}

struct Op {
    uint64_t id;
    std::string what;
    std::function<std::string()> work;
};

struct Graph {
    std::vector<Op> ops;
};

struct Stream {
    unsigned flags = 0;
    std::deque<Op> queue;
    uint64_t nextId = 1;
    uint64_t done = 0;  // every op with id <= done has run
    Graph* capture = nullptr;
    bool captureInvalid = false;
};

Stream legacy;  // the NULL stream
std::set<Stream*> streams;
int capturing = 0;

struct Event {
    unsigned flags = 0;
    Stream* stream = nullptr;
    uint64_t id = 0;  // the marker op
    bool captured = false;
    double ms = 0;
};
std::set<Event*> events;

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

Stream* stream_of(CUstream s) {
    return s == nullptr ? &legacy : (Stream*) s;
}

void drain(Stream* s, uint64_t upto, int depth = 0) {
    if (depth > 64) {
        emu::fail("event waits form a cycle or nest deeper than 64");
        return;
    }
    while (!s->queue.empty() && s->queue.front().id <= upto) {
        Op op = std::move(s->queue.front());
        s->queue.pop_front();
        if (!sticky) {
            std::string err = op.work();
            if (!err.empty()) {
                emu::fail(op.what + ": " + err);
            }
        }
        s->done = op.id;
    }
}

void drain_all() {
    for (Stream* s : streams) {
        drain(s, UINT64_MAX);
    }
    drain(&legacy, UINT64_MAX);
}

CUresult sync_result() {
    return sticky ? CUDA_ERROR_LAUNCH_FAILED : CUDA_SUCCESS;
}

// The device allocation holding [p, p + bytes), or null.
const Alloc* find(const std::map<uint64_t, Alloc>& m, uint64_t p, size_t bytes) {
    auto it = m.upper_bound(p);
    if (it == m.begin()) {
        return nullptr;
    }
    --it;
    if (p >= it->first && p + bytes <= it->first + it->second.bytes && p + bytes >= p) {
        return &it->second;
    }
    return nullptr;
}

std::string where_is(uint64_t p) {
    auto it = device.upper_bound(p);
    if (it != device.begin()) {
        --it;
        if (p < it->first + it->second.bytes) {
            std::ostringstream o;
            o << "0x" << std::hex << p << std::dec << " is " << p - it->first << " bytes into the " << it->second.bytes
              << "-byte allocation at 0x" << std::hex << it->first;
            return o.str();
        }
    }
    std::ostringstream o;
    o << "0x" << std::hex << p << std::dec << " is in no live device allocation";
    return o.str();
}

std::string range_error(const char* what, uint64_t p, size_t bytes) {
    return std::string(what) + ": " + std::to_string(bytes) + " bytes from " + where_is(p) + " do not fit in it";
}

CUresult no_capture(const char* call) {
    if (capturing > 0) {
        for (Stream* s : streams) {
            if (s->capture != nullptr) {
                s->captureInvalid = true;
            }
        }
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, std::string(call) + " while a stream is capturing");
    }
    return CUDA_SUCCESS;
}

uint64_t next_handle = 0x1000;

}  // namespace

namespace emu {

void lock() {
    mu.lock();
}
void unlock() {
    mu.unlock();
}

void fail(const std::string& why) {
    if (!sticky) {
        sticky = true;
        lastFailure = why;
        report(CUDA_ERROR_LAUNCH_FAILED, "launch failed: " + why);
    }
}

bool device_range(uint64_t p, size_t bytes) {
    return find(device, p, bytes) != nullptr;
}

std::string describe(uint64_t p) {
    return where_is(p);
}

int enqueue(void* stream, std::string what, std::function<std::string()> work) {
    Stream* s = stream_of((CUstream) stream);
    if (s != &legacy && streams.count(s) == 0) {
        return report(CUDA_ERROR_INVALID_HANDLE, what + " on a stream that does not exist");
    }
    if (s->capture != nullptr) {
        s->capture->ops.push_back(Op{0, std::move(what), std::move(work)});
        return CUDA_SUCCESS;
    }
    if (s == &legacy) {
        if (capturing > 0) {
            return no_capture((what + " on the legacy stream").c_str());
        }
        for (Stream* o : streams) {  // the legacy stream waits for blocking streams only
            if ((o->flags & CU_STREAM_NON_BLOCKING) == 0) {
                drain(o, UINT64_MAX);
            }
        }
        Op op{legacy.nextId++, std::move(what), std::move(work)};
        legacy.queue.push_back(std::move(op));
        drain(&legacy, UINT64_MAX);
        return CUDA_SUCCESS;
    }
    s->queue.push_back(Op{s->nextId++, std::move(what), std::move(work)});
    static const bool eager = std::getenv("DISTILL_EMU_EAGER") != nullptr;
    if (eager) {
        drain(s, UINT64_MAX);
    }
    return CUDA_SUCCESS;
}

size_t static_shared(const KernelInfo& k) {
    // build-emu.sh's table: {"kernel", bytes} for every kernel of kernels.inc (static_shared.pl)
    static const std::map<std::string, size_t> table = {
#include "static_shared.inc"
    };
    auto e = table.find(k.name);
    return e == table.end() ? 0 : e->second;
}

}  // namespace emu

extern "C" {

CUresult cuInit(unsigned int) {
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* v) {
    *v = 13000;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    if (ordinal != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *d = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
    if (d != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    std::snprintf(name, (size_t) len, "Distill4J CUDA emulator (CPU)");
    return CUDA_SUCCESS;
}

// Shared memory (static and dynamic together) a block may opt in to (an H100's) and what a block has without opting in.
static constexpr int MAX_SHARED_OPTIN = 227 * 1024;
static constexpr unsigned DEFAULT_SHARED = 48 * 1024;

// A function's required cluster (cuFuncSetAttribute): blocks along x (1: none), and whether it may exceed the
// 8 blocks every cluster-capable device launches (16 at most, as on an H100).
struct ClusterSetting {
    unsigned width = 1;
    bool nonPortable = false;
};
static constexpr unsigned PORTABLE_CLUSTER = 8;
static constexpr unsigned MAX_CLUSTER = 16;

// A CUfunction: a kernel of one loaded module, with the attributes set on it (cuFuncSetAttribute). As on a GPU they
// belong to the handle, not to the kernel: the same kernel got from another module (another context's, or the module
// loaded again) starts from the defaults, and a handle of an unloaded module (or of a destroyed context) is invalid.
struct Function {
    const emu::KernelInfo* kernel;
    bool optedIn = false;
    unsigned sharedOptIn = 0;  // the dynamic shared memory it was opted in to, when optedIn
    ClusterSetting cluster;
};
static std::map<std::pair<CUmodule, const emu::KernelInfo*>, std::unique_ptr<Function>> functions;

// The live function f names, else nullptr (a handle never given out, or one whose module was unloaded).
static Function* function_of(CUfunction f) {
    for (auto& e : functions) {
        if ((CUfunction) e.second.get() == f) {
            return e.second.get();
        }
    }
    return nullptr;
}

// The dynamic shared memory a launch of f may ask for (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES): what f was
// opted in to, else 48 KiB less its kernel's static shared memory, as on a GPU.
static unsigned dynamic_shared_limit(const Function& f) {
    if (f.optedIn) {
        return f.sharedOptIn;
    }
    size_t statics = emu::static_shared(*f.kernel);
    return statics >= DEFAULT_SHARED ? 0 : (unsigned) (DEFAULT_SHARED - statics);
}

#define EMU_FUNCTION(call)                                                                                      \
    Function* fn = function_of(f);                                                                              \
    if (fn == nullptr) {                                                                                        \
        return report(CUDA_ERROR_INVALID_HANDLE, call ": not a function of a loaded module (unloaded, or its "   \
                                                      "context destroyed)");                                    \
    }                                                                                                           \
    const emu::KernelInfo* k = fn->kernel

CUresult cuDeviceGetAttribute(int* v, CUdevice_attribute a, CUdevice d) {
    if (d != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    switch (a) {
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *v = 48 * 1024; break;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 50 << 20; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = MAX_SHARED_OPTIN; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *v = 228 * 1024; break;
        case CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH: *v = 1; break;  // clusters along x (fiber.cpp)
        default:
            return report(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute(" + std::to_string((int) a) + "): not emulated");
    }
    return CUDA_SUCCESS;
}

// Retains of the primary context: its last release destroys it, and with it the pinned memory made in it.
static int primaryRetains = 0;

CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice d) {
    if (d != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    emu::Guard g;
    primaryRetains++;
    *c = (CUcontext) (uintptr_t) 0xC0;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice d, unsigned int* flags, int* active) {
    if (d != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    emu::Guard g;
    *flags = 0;
    *active = primaryRetains > 0 ? 1 : 0;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice) {
    emu::Guard g;
    drain_all();
    sticky = false;  // a failed launch spoils the context until it is released, as on a GPU
    lastFailure.clear();
    if (primaryRetains > 0 && --primaryRetains == 0) {
        // the context is destroyed: the driver frees the pinned memory made in it, so a later read or write of it
        // faults (kept inaccessible for a while, as freed device memory is) and cuMemFreeHost of it is refused
        for (auto& e : pinned) {
            mprotect(e.second.map, e.second.mapLen, PROT_NONE);
            quarantine.push_back(e.second);
            quarantined += e.second.mapLen;
        }
        pinned.clear();
        functions.clear();  // its modules go with it
    }
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext) {
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
    emu::Guard g;
    CUresult rc = no_capture("cuCtxSynchronize");
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    drain_all();
    return sync_result();
}

CUresult cuGetErrorName(CUresult rc, const char** s) {
    switch (rc) {
        case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; break;
        case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
        case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
        case CUDA_ERROR_INVALID_DEVICE: *s = "CUDA_ERROR_INVALID_DEVICE"; break;
        case CUDA_ERROR_INVALID_HANDLE: *s = "CUDA_ERROR_INVALID_HANDLE"; break;
        case CUDA_ERROR_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; break;
        case CUDA_ERROR_NOT_READY: *s = "CUDA_ERROR_NOT_READY"; break;
        case CUDA_ERROR_LAUNCH_FAILED: *s = "CUDA_ERROR_LAUNCH_FAILED"; break;
        case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: *s = "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"; break;
        case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: *s = "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED"; break;
        case CUDA_ERROR_STREAM_CAPTURE_ISOLATION: *s = "CUDA_ERROR_STREAM_CAPTURE_ISOLATION"; break;
        case CUDA_ERROR_NOT_SUPPORTED: *s = "CUDA_ERROR_NOT_SUPPORTED"; break;
        default: *s = "CUDA_ERROR_UNKNOWN"; return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult rc, const char** s) {
    static std::string failure;
    if (rc == CUDA_ERROR_LAUNCH_FAILED) {
        emu::Guard g;
        failure = "unspecified launch failure (emulator: " + lastFailure + ")";
        *s = failure.c_str();
        return CUDA_SUCCESS;
    }
    switch (rc) {
        case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: *s = "operation not permitted when stream is capturing"; return CUDA_SUCCESS;
        case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: *s = "operation failed due to a previous error during capture"; return CUDA_SUCCESS;
        case CUDA_ERROR_OUT_OF_MEMORY: *s = "out of memory"; return CUDA_SUCCESS;
        case CUDA_ERROR_INVALID_VALUE: *s = "invalid argument"; return CUDA_SUCCESS;
        default: return cuGetErrorName(rc, s);
    }
}

CUresult cuMemGetInfo(size_t* freeBytes, size_t* total) {
    emu::Guard g;
    *total = capacity();
    *freeBytes = capacity() > liveBytes ? capacity() - liveBytes : 0;
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc(CUdeviceptr* p, size_t bytes) {
    emu::Guard g;
    CUresult rc = no_capture("cuMemAlloc");
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (bytes == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (liveBytes + bytes > capacity()) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    size_t rounded = (bytes + 255) / 256 * 256;
    size_t body = (rounded + page() - 1) / page() * page();
    size_t len = body + 2 * page();
    char* m = (char*) mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    mprotect(m, page(), PROT_NONE);
    mprotect(m + page() + body, page(), PROT_NONE);
    char* base = m + page() + body - rounded;  // 256-aligned; the end within 255 bytes of the guard page
    const size_t edge = (size_t) 1 << 20;
    if (rounded <= ((size_t) 1 << 30)) {
        std::memset(base, 0xff, rounded);
    } else {
        // over 1 GiB (a test filling the device, say): NaN bytes at both ends only, so that the pages between are
        // never touched (MAP_NORESERVE) and such a buffer costs no host memory
        std::memset(base, 0xff, edge);
        std::memset(base + rounded - edge, 0xff, edge);
    }
    device[(uint64_t) base] = Alloc{m, len, bytes};
    liveBytes += bytes;
    *p = (CUdeviceptr) base;
    return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr p) {
    emu::Guard g;
    CUresult rc = no_capture("cuMemFree");
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    auto it = device.find((uint64_t) p);
    if (it == device.end()) {
        return report(CUDA_ERROR_INVALID_VALUE, "cuMemFree of an address that is not a live allocation's start");
    }
    drain_all();  // cuMemFree waits for the work that may use it
    Alloc a = it->second;
    device.erase(it);
    liveBytes -= a.bytes;
    mprotect(a.map, a.mapLen, PROT_NONE);  // use after free faults while quarantined
    quarantine.push_back(a);
    quarantined += a.mapLen;
    while (quarantined > ((size_t) 1 << 32) && !quarantine.empty()) {
        munmap(quarantine.front().map, quarantine.front().mapLen);
        quarantined -= quarantine.front().mapLen;
        quarantine.pop_front();
    }
    return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned int) {
    emu::Guard g;
    CUresult rc = no_capture("cuMemHostAlloc");
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    size_t body = (bytes + page() - 1) / page() * page();
    char* m = (char*) mmap(nullptr, body + page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    mprotect(m + body, page(), PROT_NONE);
    pinned[(uint64_t) m] = Alloc{m, body + page(), bytes};
    *p = m;
    return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void* p) {
    emu::Guard g;
    auto it = pinned.find((uint64_t) p);
    if (it == pinned.end()) {
        return report(CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost of memory cuMemHostAlloc did not return");
    }
    drain_all();
    munmap(it->second.map, it->second.mapLen);
    pinned.erase(it);
    return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream* s, unsigned int flags) {
    emu::Guard g;
    Stream* st = new Stream();
    st->flags = flags;
    streams.insert(st);
    *s = (CUstream) st;
    return CUDA_SUCCESS;
}

CUresult cuStreamDestroy(CUstream s) {
    emu::Guard g;
    Stream* st = (Stream*) s;
    if (streams.count(st) == 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    drain(st, UINT64_MAX);  // queued work still completes
    streams.erase(st);
    delete st->capture;
    delete st;
    return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s) {
    emu::Guard g;
    Stream* st = stream_of(s);
    if (st->capture != nullptr) {
        st->captureInvalid = true;
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamSynchronize on a capturing stream");
    }
    if (st == &legacy) {
        drain_all();
    } else {
        drain(st, UINT64_MAX);
    }
    return sync_result();
}

CUresult cuEventCreate(CUevent* e, unsigned int flags) {
    emu::Guard g;
    Event* ev = new Event();
    ev->flags = flags;
    events.insert(ev);
    *e = (CUevent) ev;
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent e) {
    emu::Guard g;
    Event* ev = (Event*) e;
    if (events.erase(ev) == 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    delete ev;
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s) {
    emu::Guard g;
    Event* ev = (Event*) e;
    if (events.count(ev) == 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    Stream* st = stream_of(s);
    if (st->capture != nullptr) {
        ev->stream = st;
        ev->captured = true;
        return CUDA_SUCCESS;
    }
    ev->captured = false;
    ev->stream = st;
    ev->id = st->nextId;  // the marker's id
    return (CUresult) emu::enqueue(s, "cuEventRecord", [ev]() {
        if (events.count(ev) != 0) {
            ev->ms = now_ms();
        }
        return std::string();
    });
}

CUresult cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int flags) {
    if (flags != 0) {
        return report(CUDA_ERROR_NOT_SUPPORTED, "cuEventRecordWithFlags with flags is not emulated");
    }
    return cuEventRecord(e, s);
}

CUresult cuEventSynchronize(CUevent e) {
    emu::Guard g;
    Event* ev = (Event*) e;
    if (events.count(ev) == 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (ev->captured) {
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuEventSynchronize on an event recorded in a capture");
    }
    if (ev->stream != nullptr) {
        drain(ev->stream, ev->id);
    }
    return sync_result();
}

CUresult cuEventElapsedTime(float* ms, CUevent a, CUevent b) {
    emu::Guard g;
    Event* ea = (Event*) a;
    Event* eb = (Event*) b;
    if (events.count(ea) == 0 || events.count(eb) == 0 || (ea->flags & CU_EVENT_DISABLE_TIMING) || (eb->flags & CU_EVENT_DISABLE_TIMING)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (ea->stream == nullptr || eb->stream == nullptr || ea->stream->done < ea->id || eb->stream->done < eb->id) {
        return CUDA_ERROR_NOT_READY;
    }
    *ms = (float) (eb->ms - ea->ms);
    return CUDA_SUCCESS;
}

CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int) {
    emu::Guard g;
    Event* ev = (Event*) e;
    if (events.count(ev) == 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    Stream* st = stream_of(s);
    if (ev->stream == nullptr) {
        return CUDA_SUCCESS;  // never recorded: nothing to wait for
    }
    if (st->capture != nullptr) {
        if (!ev->captured || ev->stream != st) {
            st->captureInvalid = true;
            return report(CUDA_ERROR_STREAM_CAPTURE_ISOLATION,
                          "cuStreamWaitEvent in a capture on an event recorded outside it (the emulator captures one stream only)");
        }
        return CUDA_SUCCESS;  // same-stream order holds anyway
    }
    Stream* src = ev->stream;
    uint64_t id = ev->id;
    return (CUresult) emu::enqueue(s, "cuStreamWaitEvent", [src, id]() {
        drain(src, id, 1);
        return std::string();
    });
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t bytes, CUstream s) {
    emu::Guard g;
    if (find(device, dst, bytes) == nullptr) {
        return report(CUDA_ERROR_INVALID_VALUE, range_error("cuMemcpyHtoDAsync destination", dst, bytes));
    }
    if (find(pinned, (uint64_t) src, bytes) != nullptr) {  // DMA reads pinned memory when the copy runs
        return (CUresult) emu::enqueue(s, "cuMemcpyHtoDAsync", [dst, src, bytes]() {
            std::memcpy((void*) dst, src, bytes);
            return std::string();
        });
    }
    if (stream_of(s)->capture != nullptr) {
        stream_of(s)->captureInvalid = true;
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuMemcpyHtoDAsync from pageable memory in a capture");
    }
    auto staged = std::make_shared<std::vector<char>>((const char*) src, (const char*) src + bytes);  // pageable: staged now
    return (CUresult) emu::enqueue(s, "cuMemcpyHtoDAsync", [dst, staged]() {
        std::memcpy((void*) dst, staged->data(), staged->size());
        return std::string();
    });
}

CUresult cuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t bytes, CUstream s) {
    emu::Guard g;
    if (find(device, src, bytes) == nullptr) {
        return report(CUDA_ERROR_INVALID_VALUE, range_error("cuMemcpyDtoHAsync source", src, bytes));
    }
    bool toPinned = find(pinned, (uint64_t) dst, bytes) != nullptr;
    if (!toPinned && stream_of(s)->capture != nullptr) {
        stream_of(s)->captureInvalid = true;
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuMemcpyDtoHAsync to pageable memory in a capture");
    }
    CUresult rc = (CUresult) emu::enqueue(s, "cuMemcpyDtoHAsync", [dst, src, bytes]() {
        std::memcpy(dst, (const void*) src, bytes);
        return std::string();
    });
    if (rc == CUDA_SUCCESS && !toPinned) {  // to pageable memory the call returns when the copy is done
        Stream* st = stream_of(s);
        drain(st, UINT64_MAX);
        return sync_result();
    }
    return rc;
}

CUresult cuMemcpyDtoH(void* dst, CUdeviceptr src, size_t bytes) {
    emu::Guard g;
    if (find(device, src, bytes) == nullptr) {
        return report(CUDA_ERROR_INVALID_VALUE, range_error("cuMemcpyDtoH source", src, bytes));
    }
    CUresult rc = (CUresult) emu::enqueue(nullptr, "cuMemcpyDtoH", [dst, src, bytes]() {
        std::memcpy(dst, (const void*) src, bytes);
        return std::string();
    });
    return rc != CUDA_SUCCESS ? rc : sync_result();
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
    emu::Guard g;
    if (find(device, dst, bytes) == nullptr) {
        return report(CUDA_ERROR_INVALID_VALUE, range_error("cuMemcpyDtoDAsync destination", dst, bytes));
    }
    if (find(device, src, bytes) == nullptr) {
        return report(CUDA_ERROR_INVALID_VALUE, range_error("cuMemcpyDtoDAsync source", src, bytes));
    }
    return (CUresult) emu::enqueue(s, "cuMemcpyDtoDAsync", [dst, src, bytes]() {
        std::memmove((void*) dst, (const void*) src, bytes);
        return std::string();
    });
}

CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, size_t n, CUstream s) {
    emu::Guard g;
    if (dst % 4 != 0) {
        return report(CUDA_ERROR_INVALID_VALUE, "cuMemsetD32Async destination is not 4-byte aligned");
    }
    if (find(device, dst, 4 * n) == nullptr) {
        return report(CUDA_ERROR_INVALID_VALUE, range_error("cuMemsetD32Async destination", dst, 4 * n));
    }
    return (CUresult) emu::enqueue(s, "cuMemsetD32Async", [dst, value, n]() {
        unsigned* p = (unsigned*) dst;
        for (size_t i = 0; i < n; i++) {
            p[i] = value;
        }
        return std::string();
    });
}

CUresult cuModuleLoadData(CUmodule* m, const void* image) {
    if (image == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    emu::Guard g;
    *m = (CUmodule) (uintptr_t) (next_handle += 16);
    return CUDA_SUCCESS;
}

// Unloading a module invalidates its functions (and what was set on them).
CUresult cuModuleUnload(CUmodule m) {
    emu::Guard g;
    for (auto it = functions.begin(); it != functions.end();) {
        it = it->first.first == m ? functions.erase(it) : std::next(it);
    }
    return CUDA_SUCCESS;
}

// Every kernel is compiled into the emulator, so any module has them all; each (module, kernel) is one handle.
CUresult cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name) {
    emu::Guard g;
    for (const emu::KernelInfo& k : emu::kernels()) {
        if (std::strcmp(k.name, name) == 0) {
            std::unique_ptr<Function>& fn = functions[{m, &k}];
            if (!fn) {
                fn.reset(new Function{&k});
            }
            *f = (CUfunction) fn.get();
            return CUDA_SUCCESS;
        }
    }
    return report(CUDA_ERROR_NOT_FOUND, std::string("no kernel named ") + name);
}

CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int value) {
    emu::Guard g;
    EMU_FUNCTION("cuFuncSetAttribute");
    switch (a) {
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
            // the opt-in covers static and dynamic shared memory together, as on a GPU
            if (value < 0 || (size_t) value + emu::static_shared(*k) > (size_t) MAX_SHARED_OPTIN) {
                return report(CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": " + std::to_string(value)
                                                            + " bytes of dynamic shared memory and " + std::to_string(emu::static_shared(*k))
                                                            + " of static shared memory; a block may opt in to at most "
                                                            + std::to_string(MAX_SHARED_OPTIN) + " in all");
            }
            fn->optedIn = true;
            fn->sharedOptIn = (unsigned) value;
            return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
            if (value < 1 || value > (int) MAX_CLUSTER) {
                return report(CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": a cluster width of " + std::to_string(value)
                                                            + " blocks; 1 to " + std::to_string(MAX_CLUSTER));
            }
            fn->cluster.width = (unsigned) value;
            return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
        case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
            if (value != 1) {
                return report(CUDA_ERROR_NOT_SUPPORTED, std::string(k->name) + ": a cluster height or depth of " + std::to_string(value)
                                                            + "; the emulator takes clusters along x only");
            }
            return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
            fn->cluster.nonPortable = value != 0;
            return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
            // where a device puts a cluster's blocks (spread over multiprocessors, or load-balanced); the emulator
            // runs a cluster's blocks together whatever the policy, so it checks the value and keeps nothing
            if (value != CU_CLUSTER_SCHEDULING_POLICY_DEFAULT && value != CU_CLUSTER_SCHEDULING_POLICY_SPREAD
                && value != CU_CLUSTER_SCHEDULING_POLICY_LOAD_BALANCING) {
                return report(CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": cluster scheduling policy " + std::to_string(value)
                                                            + "; 0 (default), 1 (spread) or 2 (load balancing)");
            }
            return CUDA_SUCCESS;
        default:
            return report(CUDA_ERROR_NOT_SUPPORTED, std::string(k->name) + ": cuFuncSetAttribute(" + std::to_string((int) a)
                                                        + ") is not emulated");
    }
}

// What the emulator knows of a function's attributes: its static shared memory (build-emu.sh's table), the dynamic
// shared memory a launch may ask for (48 KiB less the static part, or what it was opted in to) and its threads per
// block (__launch_bounds__, else 1024). It knows no registers or local memory: those are refused.
CUresult cuFuncGetAttribute(int* v, CUfunction_attribute a, CUfunction f) {
    emu::Guard g;
    if (v == nullptr) {
        return report(CUDA_ERROR_INVALID_VALUE, "cuFuncGetAttribute without a result");
    }
    EMU_FUNCTION("cuFuncGetAttribute");
    switch (a) {
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
            *v = (int) emu::static_shared(*k);
            return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
            *v = (int) dynamic_shared_limit(*fn);
            return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
            *v = k->maxThreads != 0 ? (int) k->maxThreads : 1024;
            return CUDA_SUCCESS;
        default:
            return report(CUDA_ERROR_NOT_SUPPORTED, std::string(k->name) + ": cuFuncGetAttribute(" + std::to_string((int) a)
                                                        + ") is not emulated");
    }
}

// Blocks of a function per multiprocessor, as an H100 would hold them: 2048 threads, 32 blocks and 228 KiB of
// shared memory (each block's static and dynamic parts plus the 1 KiB the driver reserves) per multiprocessor. The
// emulator knows no kernel's registers, so they do not count here.
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* n, CUfunction f, int blockSize, size_t dynamicShared) {
    emu::Guard g;
    EMU_FUNCTION("cuOccupancyMaxActiveBlocksPerMultiprocessor");
    if (n == nullptr || blockSize <= 0 || blockSize > 1024) {
        return report(CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": occupancy of a block of " + std::to_string(blockSize)
                                                    + " threads");
    }
    unsigned sharedLimit = dynamic_shared_limit(*fn);
    if ((k->maxThreads != 0 && (unsigned) blockSize > k->maxThreads) || dynamicShared > sharedLimit) {
        *n = 0;
        return CUDA_SUCCESS;
    }
    int byThreads = 2048 / blockSize;
    int byShared = (int) ((228u * 1024u) / (emu::static_shared(*k) + dynamicShared + 1024u));
    *n = std::min(32, std::min(byThreads, byShared));
    return CUDA_SUCCESS;
}

// Clusters of a function the device holds at once, as an H100 would from threads and shared memory alone: its 132 multiprocessors' blocks (as above) in whole clusters. A real H100 places a cluster within one
// GPC and may hold fewer; the cluster is the function's required one (the config may name no other).
CUresult cuOccupancyMaxActiveClusters(int* n, CUfunction f, const CUlaunchConfig* config) {
    unsigned width;
    {
        emu::Guard g;
        EMU_FUNCTION("cuOccupancyMaxActiveClusters");
        if (n == nullptr || config == nullptr) {
            return report(CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": cuOccupancyMaxActiveClusters without a result or config");
        }
        if (config->numAttrs != 0) {
            return report(CUDA_ERROR_NOT_SUPPORTED, std::string(k->name) + ": launch attributes in cuOccupancyMaxActiveClusters are not "
                                                        "emulated (the function's required cluster is)");
        }
        width = fn->cluster.width;
        if (width < 2) {
            return report(CUDA_ERROR_INVALID_CLUSTER_SIZE, std::string(k->name) + ": cuOccupancyMaxActiveClusters of a function "
                                                               "without a required cluster");
        }
    }
    int perSm = 0;
    CUresult rc = cuOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, f, (int) (config->blockDimX * config->blockDimY * config->blockDimZ),
                                                              config->sharedMemBytes);
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    *n = perSm * 132 / (int) width;
    return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                        unsigned int bz, unsigned int shared, CUstream s, void** params, void** extra) {
    emu::Guard g;
    EMU_FUNCTION("cuLaunchKernel");
    if (extra != nullptr) {
        return report(CUDA_ERROR_NOT_SUPPORTED, std::string(k->name) + ": the extra launch argument is not emulated");
    }
    if (params == nullptr && !k->paramSizes.empty()) {
        return report(CUDA_ERROR_INVALID_VALUE, std::string(k->name) + ": no kernel arguments given");
    }
    size_t threads = (size_t) bx * by * bz;
    unsigned sharedLimit = dynamic_shared_limit(*fn);
    if (threads == 0 || threads > 1024 || (k->maxThreads != 0 && threads > k->maxThreads) || gx == 0 || gy == 0 || gz == 0 || gy > 65535
        || gz > 65535 || shared > sharedLimit) {
        std::ostringstream o;
        o << k->name << ": launch of grid " << gx << "x" << gy << "x" << gz << ", block " << bx << "x" << by << "x" << bz << ", " << shared
          << " bytes of dynamic shared memory (and " << emu::static_shared(*k) << " of static) is invalid (at most 1024 threads"
          << (k->maxThreads != 0 ? ", __launch_bounds__ " : "") << (k->maxThreads != 0 ? std::to_string(k->maxThreads) : std::string())
          << ", " << sharedLimit << " bytes of dynamic shared memory: "
          << (fn->optedIn ? "what the function was opted in to)"
                                        : "48 KiB less the static part, as the function was not opted in to more)");
        return report(CUDA_ERROR_INVALID_VALUE, o.str());
    }
    unsigned cluster = 1;
    if (fn->cluster.width > 1) {
        cluster = fn->cluster.width;
        if ((cluster > PORTABLE_CLUSTER && !fn->cluster.nonPortable) || gx % cluster != 0) {
            std::ostringstream o;
            o << k->name << ": a cluster of " << cluster << " blocks for a grid of " << gx << " (the grid a multiple of the cluster; more than "
              << PORTABLE_CLUSTER << " blocks only once the function allows a non-portable size)";
            return report(CUDA_ERROR_INVALID_CLUSTER_SIZE, o.str());
        }
    }
    // the arguments are copied at launch (and frozen in a capture), as the driver does
    size_t total = 0;
    std::vector<size_t> offsets;
    for (size_t sz : k->paramSizes) {
        total = (total + 7) / 8 * 8;
        offsets.push_back(total);
        total += sz;
    }
    auto blob = std::make_shared<std::vector<uint64_t>>((total + 7) / 8 + 1);
    for (size_t i = 0; i < k->paramSizes.size(); i++) {
        std::memcpy((char*) blob->data() + offsets[i], params[i], k->paramSizes[i]);
    }
    emu::Dim grid{gx, gy, gz}, block{bx, by, bz};
    return (CUresult) emu::enqueue(s, std::string("kernel ") + k->name, [k, blob, offsets, grid, block, shared, cluster]() {
        std::vector<void*> ptrs;
        for (size_t off : offsets) {
            ptrs.push_back((char*) blob->data() + off);
        }
        return emu::run_kernel(*k, ptrs.data(), grid, block, shared, cluster);
    });
}

CUresult cuStreamBeginCapture(CUstream s, CUstreamCaptureMode) {
    emu::Guard g;
    Stream* st = stream_of(s);
    if (st == &legacy) {
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "capturing the legacy stream");
    }
    if (st->capture != nullptr) {
        return report(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture on a stream that is already capturing");
    }
    st->capture = new Graph();
    st->captureInvalid = false;
    capturing++;
    return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream s, CUgraph* out) {
    emu::Guard g;
    Stream* st = stream_of(s);
    if (st->capture == nullptr) {
        return report(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture on a stream that is not capturing");
    }
    Graph* graph = st->capture;
    st->capture = nullptr;
    capturing--;
    if (st->captureInvalid) {
        delete graph;
        *out = nullptr;
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    *out = (CUgraph) graph;
    return CUDA_SUCCESS;
}

// The executable graphs not yet destroyed: launching or destroying another is refused (on a GPU, a use after free).
static std::set<Graph*> liveExecs;

CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long) {
    emu::Guard g;
    Graph* e = new Graph(*(Graph*) graph);
    liveExecs.insert(e);
    *exec = (CUgraphExec) e;
    return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec exec, CUstream s) {
    emu::Guard g;
    if (liveExecs.count((Graph*) exec) == 0) {
        return report(CUDA_ERROR_INVALID_VALUE, "cuGraphLaunch of an executable graph that was destroyed (or never made)");
    }
    for (const Op& op : ((Graph*) exec)->ops) {
        CUresult rc = (CUresult) emu::enqueue(s, "graph: " + op.what, op.work);
        if (rc != CUDA_SUCCESS) {
            return rc;
        }
    }
    return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph graph) {
    emu::Guard g;
    delete (Graph*) graph;
    return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec exec) {
    emu::Guard g;
    if (liveExecs.erase((Graph*) exec) == 0) {
        return report(CUDA_ERROR_INVALID_VALUE, "cuGraphExecDestroy of an executable graph that was destroyed (or never made)");
    }
    delete (Graph*) exec;
    return CUDA_SUCCESS;
}

}  // extern "C"
