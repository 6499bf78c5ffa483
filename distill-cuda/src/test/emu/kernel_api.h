// Distill4J CUDA emulator: what a kernel compiled for the CPU calls in the fiber scheduler (fiber.cpp).
#pragma once
#include <cstdint>

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};

namespace emu {
const uint3& thread_idx();
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void sync_block();
enum WarpOpKind { SHFL_XOR = 1, ANY = 2, SYNC = 3 };
/** Waits until every lane `mask` names has arrived at the same operation; returns this lane's result. */
uint64_t warp_op(int kind, unsigned mask, uint64_t value, int laneMask, int width);
/** The launch's dynamic shared memory (null when it asked for none). */
void* dyn_shared();
}  // namespace emu
