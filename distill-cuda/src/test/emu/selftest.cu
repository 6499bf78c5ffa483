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
}
