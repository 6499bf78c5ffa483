// Distill4J CUDA emulator: what its parts share (the fake libcuda.so.1 holds the state; the fake
// libcublasLt.so.13 and libcudart.so.13 link against it and reach it through these functions).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace emu {

/** A kernel compiled for the CPU: its name, __launch_bounds__ (0 when none), parameter sizes and a call. */
struct KernelInfo {
    const char* name;
    unsigned maxThreads;
    std::vector<size_t> paramSizes;
    void (*invoke)(void** params);
};

/** The kernels of distill_losses.cu (kernels.cpp). */
const std::vector<KernelInfo>& kernels();

/**
 * The kernel's static shared memory in bytes (its __shared__ variables, those of the functions it calls too), as a
 * CUDA module knows it before any launch: build-emu.sh's table (static_shared.pl, from the compiled kernels).
 */
size_t static_shared(const KernelInfo& k);

struct Dim {
    unsigned x, y, z;
};

/**
 * Runs every block of a launch, one block at a time (with clusters of `cluster` blocks along x, one cluster at a
 * time), its threads as fibers; returns "" or what went wrong (threads waiting at different barriers, a shuffle
 * naming a lane that has exited, ...).
 */
std::string run_kernel(const KernelInfo& k, void** params, Dim grid, Dim block, size_t dynSharedBytes, unsigned cluster);

/**
 * Queues work on a stream (a CUstream, 0 for the legacy stream). The emulator runs queued work as late as
 * it may: only when the host waits on it (stream or event synchronize, a synchronous copy) or another
 * stream's work waits on it. Work missing a dependency therefore sees stale data, as on a GPU it might.
 * Returns a CUresult (900 when the stream is capturing and the work cannot be captured).
 */
int enqueue(void* stream, std::string what, std::function<std::string()> work);

/** The emulator's lock: every API entry point holds it. */
void lock();
void unlock();

/** Remembers why the last launch failed; the next synchronizing call returns CUDA_ERROR_LAUNCH_FAILED. */
void fail(const std::string& why);

/** Whether [p, p + bytes) lies inside one live device allocation (for cuBLASLt's operand checks). */
bool device_range(uint64_t p, size_t bytes);

/** Where p lies: "N bytes into the M-byte allocation at 0x...", or "in no live device allocation". */
std::string describe(uint64_t p);

struct Guard {
    Guard() {
        lock();
    }
    ~Guard() {
        unlock();
    }
};

}  // namespace emu
