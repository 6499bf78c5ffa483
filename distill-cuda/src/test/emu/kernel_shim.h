// Distill4J CUDA emulator: force-included (g++ -include) before distill_losses.cu so that the kernels compile
// as C++ for the CPU. Each CUDA thread of a launch runs as a fiber (fiber.cpp); the intrinsics below are the
// points where a fiber waits for its block or warp. __shared__ variables are each block's own, NaN bytes when
// the block starts, so a kernel that reads shared memory it did not write sees NaN, as on a GPU it would see
// garbage. Only what the kernels use is here; anything else fails to compile, which is the point.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#define __CUDACC__ 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
// build-emu.sh rewrites every `__shared__ T name[...];` as EMU_SHARED(T, name, [...]) and every `extern __shared__`
// declaration as a pointer to the block's dynamic shared memory; a form it does not know fails to compile here.
#define __shared__ __shared___declaration_build_emu_sh_did_not_rewrite
// A reference to the block's instance of a __shared__ variable (fiber.cpp's shared_var): the key is a static
// local, one per declaration and template instance, of the variable's size and alignment, so that build-emu.sh reads
// each kernel's static shared memory from the compiled kernels (static_shared.pl); nothing reads or writes the key.
#define EMU_SHARED(T, name, dims)                                                                                  \
    typedef T emu_shared_type_##name dims;                                                                         \
    alignas(emu_shared_type_##name) static char emu_shared_key_##name[sizeof(emu_shared_type_##name)];             \
    emu_shared_type_##name& name = *static_cast<emu_shared_type_##name*>(                                          \
        ::emu::shared_var(&emu_shared_key_##name, sizeof(emu_shared_type_##name), alignof(emu_shared_type_##name)))

#include "kernel_api.h"

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
#define warpSize 32

inline void __syncthreads() {
    ::emu::sync_block();
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    ::emu::warp_op(::emu::SYNC, mask, 0, 0, 32);
}

inline int __any_sync(unsigned mask, int pred) {
    return (int) ::emu::warp_op(::emu::ANY, mask, pred != 0, 0, 32);
}

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    uint64_t r = ::emu::warp_op(::emu::SHFL_XOR, mask, bits, laneMask, width);
    T out;
    std::memcpy(&out, &r, sizeof(T));
    return out;
}

// One fiber runs at a time and none is switched out inside these, so plain read-modify-writes are atomic.
inline unsigned atomicOr(unsigned* p, unsigned v) {
    unsigned old = *p;
    *p = old | v;
    return old;
}
inline int atomicOr(int* p, int v) {
    int old = *p;
    *p = old | v;
    return old;
}
inline int atomicMin(int* p, int v) {
    int old = *p;
    *p = old < v ? old : v;
    return old;
}

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline float __uint_as_float(unsigned i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned i;
    std::memcpy(&i, &f, 4);
    return i;
}
// A product rounded once and never fused into a multiply-add: build-emu.sh compiles the kernels with contraction
// on (-ffp-contract=fast, as nvcc fuses by default), and the empty asm keeps g++ from fusing this one.
inline float __fmul_rn(float a, float b) {
    float p = a * b;
    __asm__("" : "+x"(p));
    return p;
}

// The 16-byte word the tiled kernels load and store.
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
    return uint4{x, y, z, w};
}

// The SM clock: here a count that moves 2^20 cycles at each read, so that a spin (spin_cycles) ends at once.
inline long long clock64() {
    static thread_local long long now = 0;
    return now += 1LL << 20;
}

// A kernel's own check failed (kd_tile launched without its cluster width): stop the launch loudly.
[[noreturn]] inline void __trap() {
    __builtin_trap();
}

using std::isfinite;
using std::isinf;
using std::isnan;
