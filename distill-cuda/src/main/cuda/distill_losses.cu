// Fused forward + backward of Distill4J's logit losses on NVIDIA GPUs (CUDA 13; sm_80 .. sm_90).
//
// kd_*: soft-target KD (T^2 KL(p || q) at temperature T) mixed with alpha * hard-label cross-entropy, the
// CPU loss `kd`; with no teacher (t == nullptr, kdWeight 0, alpha 1) it is plain cross-entropy, `ce`.
// One launch computes every row's value parts and writes the gradient once:
//   pass 1 reads the row of s (and t) into three online log-sum-exps, merged across the warp/block;
//   pass 2 reads the row again (from L2 while the row is in flight), writes
//     grad = scale * ((1 - alpha) T (q - p) + alpha (softmax(s) - onehot(y)))
//   and sums the KL terms. No [N, V] intermediate beyond the gradient; fp32 accumulation for fp32, fp16 and
//   bf16 inputs (the gradient is written in the input's type).
// rowOut[3 r + 0] = T^2 KL of row r, [3 r + 1] = its CE, [3 r + 2] = 1 when the row held a non-finite
// logit or an invalid probability (the host raises it like the CPU loss). The host sums the rows in order,
// in double: the loss is bit-identical for the same inputs.
//
// Kernels, by row width (the host picks; see KernelPlan.java):
//   kd_warp_<t>     one warp per row, 8 rows per 256-thread block: V <= 2048 (V = 10 included)
//   kd_block_<t>    one 512-thread block per row: V > 2048 (32k .. 260k vocabularies)
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "row_math.cuh"

using distill::KdAcc;
using distill::KdRow;

namespace {

constexpr unsigned FULL = 0xffffffffu;

template <typename T>
__device__ __forceinline__ float to_f(T x);
template <>
__device__ __forceinline__ float to_f<float>(float x) {
    return x;
}
template <>
__device__ __forceinline__ float to_f<__half>(__half x) {
    return __half2float(x);
}
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) {
    return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) {
    return x;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float x) {
    return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

__device__ __forceinline__ distill::Lse shfl_lse(distill::Lse a, int o) {
    distill::Lse b;
    b.m = __shfl_xor_sync(FULL, a.m, o);
    b.z = __shfl_xor_sync(FULL, a.z, o);
    return b;
}

// Butterfly merge: every lane ends with the warp's merged accumulator, in a fixed order.
__device__ __forceinline__ KdAcc warp_merge(KdAcc a) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        KdAcc b;
        b.st = shfl_lse(a.st, o);
        b.s1 = shfl_lse(a.s1, o);
        b.t = shfl_lse(a.t, o);
        a = distill::kd_merge(a, b);
    }
    return a;
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        x += __shfl_xor_sync(FULL, x, o);
    }
    return x;
}

// Validates one element and returns the teacher's log-value (log p for probability teachers).
__device__ __forceinline__ float teacher_log(float tv, int teacherProbs, int& bad) {
    if (teacherProbs) {
        if (!(tv >= 0.f) || isinf(tv)) {
            bad = 1;
        }
        return tv > 0.f ? logf(tv) : -DISTILL_INF;
    }
    if (!isfinite(tv)) {
        bad = 1;
    }
    return tv;
}

// Pass 1 over the elements i = first, first + step, ... of a row.
template <typename In>
__device__ __forceinline__ KdAcc kd_pass1(const In* __restrict__ sr, const In* __restrict__ tr, int V, int first, int step,
                                          float invT, int teacherProbs, bool teacher, bool needS1, int& bad) {
    KdAcc a = distill::kd_empty();
    for (int i = first; i < V; i += step) {
        float sv = to_f(sr[i]);
        if (!isfinite(sv)) {
            bad = 1;
        }
        float tl = teacher ? teacher_log(to_f(tr[i]), teacherProbs, bad) : 0.f;
        distill::kd_push(a, sv, tl, invT, teacher, needS1);
    }
    return a;
}

// Pass 2: writes the gradient of the elements, returns their KL sum.
template <typename In>
__device__ __forceinline__ float kd_pass2(const In* __restrict__ sr, const In* __restrict__ tr, In* __restrict__ gr, int V,
                                          int first, int step, const KdRow& row, int y, float invT, float kdWeight, float alpha,
                                          float scale, int teacherProbs, bool teacher, bool needS1) {
    float kl = 0.f;
    int ignored = 0;
    for (int i = first; i < V; i += step) {
        float sv = to_f(sr[i]);
        float tl = teacher ? teacher_log(to_f(tr[i]), teacherProbs, ignored) : 0.f;
        float g = distill::kd_element(row, sv, tl, invT, kdWeight, alpha, i == y, teacher, needS1, kl);
        gr[i] = from_f<In>(scale * g);
    }
    return kl;
}

template <typename In>
__device__ __forceinline__ void zero_row(In* __restrict__ gr, int V, int first, int step) {
    for (int i = first; i < V; i += step) {
        gr[i] = from_f<In>(0.f);
    }
}

// One warp per row.
template <typename In>
__device__ void kd_warp(const In* __restrict__ s, const In* __restrict__ t, const int* __restrict__ labels,
                        const unsigned char* __restrict__ counted, In* __restrict__ grad, float* __restrict__ rowOut, int rows,
                        int V, float invT, float kdWeight, float alpha, float t2, float scale, int teacherProbs, int needS1i) {
    const int lane = threadIdx.x & 31;
    const int warpsPerBlock = blockDim.x >> 5;
    const bool teacher = t != nullptr;
    const bool needS1 = needS1i != 0;
    for (int r = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); r < rows; r += gridDim.x * warpsPerBlock) {
        const size_t off = (size_t)r * V;
        const In* sr = s + off;
        const In* tr = teacher ? t + off : nullptr;
        In* gr = grad + off;
        if (counted != nullptr && !counted[r]) {
            zero_row(gr, V, lane, 32);
            if (lane == 0) {
                rowOut[3 * r] = 0.f;
                rowOut[3 * r + 1] = 0.f;
                rowOut[3 * r + 2] = 0.f;
            }
            continue;
        }
        int bad = 0;
        KdAcc a = warp_merge(kd_pass1(sr, tr, V, lane, 32, invT, teacherProbs, teacher, needS1, bad));
        bad = __any_sync(FULL, bad);
        if (teacher && a.t.m == -DISTILL_INF) {
            bad = 1;  // an all-zero probability row
        }
        const KdRow row = distill::kd_finish(a, teacher, needS1);
        const int y = labels != nullptr ? labels[r] : -1;
        float kl = warp_sum(kd_pass2(sr, tr, gr, V, lane, 32, row, y, invT, kdWeight, alpha, scale, teacherProbs, teacher, needS1));
        if (lane == 0) {
            rowOut[3 * r] = t2 * (kl > 0.f ? kl : 0.f);
            rowOut[3 * r + 1] = y >= 0 ? row.logZs1 - to_f(sr[y]) : 0.f;
            rowOut[3 * r + 2] = bad ? 1.f : 0.f;
        }
    }
}

// One block of BLOCK threads per row.
template <typename In, int BLOCK>
__device__ void kd_block(const In* __restrict__ s, const In* __restrict__ t, const int* __restrict__ labels,
                         const unsigned char* __restrict__ counted, In* __restrict__ grad, float* __restrict__ rowOut, int rows,
                         int V, float invT, float kdWeight, float alpha, float t2, float scale, int teacherProbs, int needS1i) {
    constexpr int WARPS = BLOCK / 32;
    __shared__ KdAcc shAcc[WARPS];
    __shared__ float shSum[WARPS];
    __shared__ int shBad;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const bool teacher = t != nullptr;
    const bool needS1 = needS1i != 0;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t off = (size_t)r * V;
        const In* sr = s + off;
        const In* tr = teacher ? t + off : nullptr;
        In* gr = grad + off;
        if (counted != nullptr && !counted[r]) {
            zero_row(gr, V, threadIdx.x, BLOCK);
            if (threadIdx.x == 0) {
                rowOut[3 * r] = 0.f;
                rowOut[3 * r + 1] = 0.f;
                rowOut[3 * r + 2] = 0.f;
            }
            continue;
        }
        int bad = 0;
        KdAcc a = warp_merge(kd_pass1(sr, tr, V, threadIdx.x, BLOCK, invT, teacherProbs, teacher, needS1, bad));
        if (lane == 0) {
            shAcc[warp] = a;
        }
        if (threadIdx.x == 0) {
            shBad = 0;
        }
        __syncthreads();
        if (bad) {
            atomicOr(&shBad, 1);  // an OR: order does not matter
        }
        if (warp == 0) {
            a = warp_merge(lane < WARPS ? shAcc[lane] : distill::kd_empty());
            if (lane == 0) {
                shAcc[0] = a;
            }
        }
        __syncthreads();
        a = shAcc[0];
        bad = shBad;
        if (teacher && a.t.m == -DISTILL_INF) {
            bad = 1;
        }
        const KdRow row = distill::kd_finish(a, teacher, needS1);
        const int y = labels != nullptr ? labels[r] : -1;
        float kl = warp_sum(kd_pass2(sr, tr, gr, V, threadIdx.x, BLOCK, row, y, invT, kdWeight, alpha, scale, teacherProbs, teacher,
                                     needS1));
        if (lane == 0) {
            shSum[warp] = kl;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            float total = 0.f;
            for (int w = 0; w < WARPS; w++) {  // fixed order: deterministic
                total += shSum[w];
            }
            rowOut[3 * r] = t2 * (total > 0.f ? total : 0.f);
            rowOut[3 * r + 1] = y >= 0 ? row.logZs1 - to_f(sr[y]) : 0.f;
            rowOut[3 * r + 2] = bad ? 1.f : 0.f;
        }
        __syncthreads();  // shAcc and shSum are reused by the next row
    }
}

}  // namespace

#define DISTILL_KD_ARGS(In)                                                                                                       \
    const In *s, const In *t, const int *labels, const unsigned char *counted, In *grad, float *rowOut, int rows, int V, float invT, \
        float kdWeight, float alpha, float t2, float scale, int teacherProbs, int needS1
#define DISTILL_KD_PASS s, t, labels, counted, grad, rowOut, rows, V, invT, kdWeight, alpha, t2, scale, teacherProbs, needS1

extern "C" {
__global__ void __launch_bounds__(256) kd_warp_f32(DISTILL_KD_ARGS(float)) {
    kd_warp<float>(DISTILL_KD_PASS);
}
__global__ void __launch_bounds__(256) kd_warp_f16(DISTILL_KD_ARGS(__half)) {
    kd_warp<__half>(DISTILL_KD_PASS);
}
__global__ void __launch_bounds__(256) kd_warp_bf16(DISTILL_KD_ARGS(__nv_bfloat16)) {
    kd_warp<__nv_bfloat16>(DISTILL_KD_PASS);
}
__global__ void __launch_bounds__(512) kd_block_f32(DISTILL_KD_ARGS(float)) {
    kd_block<float, 512>(DISTILL_KD_PASS);
}
__global__ void __launch_bounds__(512) kd_block_f16(DISTILL_KD_ARGS(__half)) {
    kd_block<__half, 512>(DISTILL_KD_PASS);
}
__global__ void __launch_bounds__(512) kd_block_bf16(DISTILL_KD_ARGS(__nv_bfloat16)) {
    kd_block<__nv_bfloat16, 512>(DISTILL_KD_PASS);
}
}
