// Distill4J CUDA emulator: what a kernel compiled for the CPU calls in the fiber scheduler (fiber.cpp).
#pragma once
#include <cstddef>
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
/**
 * The __shared__ variable declared at `key` (one per declaration and template instance): `bytes` at the same
 * offset of every block's static shared memory, NaN bytes when the block starts (build-emu.sh's EMU_SHARED).
 */
void* shared_var(const void* key, size_t bytes, size_t align);
/** This block's rank in its thread-block cluster (0 without clusters). */
unsigned cluster_rank();
/** Blocks in this block's cluster (1 without clusters). */
unsigned cluster_size();
/**
 * cp.async: starts copying `bytes` from global `src` to shared `dst`, which holds NaN bytes until a wait lands the
 * copy (then `src` is read). async_commit closes the thread's open group; async_wait(n) lands every committed
 * group but the newest n (cp.async.wait_group n; copies of the open group stay in flight); async_wait_all lands
 * every copy (cp.async.wait_all).
 */
void async_copy(void* dst, const void* src, size_t bytes);
void async_commit();
void async_wait(unsigned pending);
void async_wait_all();
/** Waits until every live thread of the cluster has arrived (barrier.cluster.arrive + wait). */
void cluster_sync();
/**
 * Where the shared memory at `p` (a __shared__ variable or the dynamic shared memory of this block) lies in block
 * `rank` of the cluster (mapa); fails the launch for a rank outside the cluster, a block that has exited or an
 * address outside shared memory.
 */
const void* cluster_map(const void* p, unsigned rank);
}  // namespace emu
