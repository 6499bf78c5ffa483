// Distill4J CUDA emulator: kernels that break CUDA's rules on purpose, compiled into the emulator only, so
// that CudaEmulatorGpuTest can check the emulator reports what a GPU would do wrong with them.
extern "C" {

// Half of each warp waits at a full-warp shuffle, the other half at __syncthreads: neither can complete
// (on a GPU, undefined behaviour: a hang or garbage).
__global__ void emu_selftest_split_warp(float* out) {
    if ((threadIdx.x & 31) < 16) {
        out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float) threadIdx.x, 1);
    } else {
        __syncthreads();
        out[threadIdx.x] = 0.f;
    }
}

// Threads 32.. exit before the others' __syncthreads: allowed, exited threads do not count (sm_70 on).
__global__ void emu_selftest_barrier_after_exit(float* out) {
    if (threadIdx.x >= 32) {
        out[threadIdx.x] = 2.f;
        return;
    }
    __syncthreads();
    out[threadIdx.x] = 1.f;
}

// Lane 31 exits before a full-warp shuffle names it.
__global__ void emu_selftest_shuffle_exited_lane(float* out) {
    if (threadIdx.x == 31) {
        return;
    }
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float) threadIdx.x, 1);
}

// out[i] = sum over the block of in[j], by a butterfly in each warp and one thread over the warps: the rules kept.
__global__ void emu_selftest_block_sum(const float* in, float* out) {
    __shared__ float part[32];
    float x = in[blockIdx.x * blockDim.x + threadIdx.x];
    for (int o = 16; o > 0; o >>= 1) {
        x += __shfl_xor_sync(0xffffffffu, x, o);
    }
    if ((threadIdx.x & 31) == 0) {
        part[threadIdx.x >> 5] = x;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.f;
        for (unsigned w = 0; w < blockDim.x / 32; w++) {
            s += part[w];
        }
        out[blockIdx.x] = s;
    }
}

// out[c] = sum of in over cluster c (blockDim.x threads per block): each block sums its part into shared memory,
// and after the cluster's barrier rank 0 adds its peers' parts through cluster_map, the rules kept (every block
// waits at a second barrier until rank 0 has read them). With `early` nonzero, ranks other than 0 exit after the
// first barrier and rank 0 reads their memory after a __syncthreads: the memory of a block that has exited.
__global__ void emu_selftest_cluster_sum(const float* in, float* out, int early) {
    __shared__ float part;
    const unsigned rank = ::emu::cluster_rank();
    if (threadIdx.x == 0) {
        float s = 0.f;
        for (unsigned i = 0; i < blockDim.x; i++) {
            s += in[blockIdx.x * blockDim.x + i];
        }
        part = s;
    }
    ::emu::cluster_sync();
    if (early && rank != 0) {
        return;
    }
    __syncthreads();
    if (rank == 0 && threadIdx.x == 0) {
        float s = 0.f;
        for (unsigned r = 0; r < ::emu::cluster_size(); r++) {
            s += *static_cast<const float*>(::emu::cluster_map(&part, r));
        }
        out[blockIdx.x / ::emu::cluster_size()] = s;
    }
    if (!early) {
        ::emu::cluster_sync();
    }
}

// cp.async as the emulator models it (kernel_api.h): three committed groups of one float each and a fourth copy
// left in the open group; out[] records the destination at each step: NaN before any wait, then group 0 only
// after wait_group 2, the committed groups but not the open one after wait_group 0, everything after wait_all.
__global__ void emu_selftest_async_copy(const float* in, float* out) {
    __shared__ float dst[4];
    for (int g = 0; g < 4; g++) {
        ::emu::async_copy(&dst[g], &in[g], 4);
        if (g < 3) {
            ::emu::async_commit();
        }
    }
    out[0] = dst[0];
    ::emu::async_wait(2);
    out[1] = dst[0];
    out[2] = dst[1];
    ::emu::async_wait(0);
    out[3] = dst[2];
    out[4] = dst[3];
    ::emu::async_wait_all();
    out[5] = dst[3];
}
}

