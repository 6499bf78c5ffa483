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
// student logit, a teacher logit of NaN or +inf, an invalid probability, or no teacher class with mass (the
// host raises it like the CPU loss), 2 where a kernel leaves a row to the CPU loss (the tiled kernels' tile_in_range; at T < 1, a logit whose product
// with 1/T leaves fp32, tempered_out_of_range). A teacher logit of -inf, like a probability of 0, is a class of zero mass
// (TeacherValues.java): it adds nothing to the teacher's normalizer or to KL, and its gradient is the
// student's part alone. The host sums the rows in order, in double: the loss is bit-identical for the same
// inputs.
//
// Kernels, by row width (the host picks; see KernelPlan.java):
//   kd_warp_<t>     one warp per row, 8 rows per 256-thread block: V <= 2048 (V = 10 included)
//   kd_block_<t>    one 512-thread block per row: V > 2048 (32k .. 260k vocabularies)
//   kd_tile_<t>_c<C> one row per cluster of C = 1..16 blocks, each input read once (below; V > 2048, 16-byte rows)
//   gjsd_warp_<t>, gjsd_block_<t>   generalized JSD for 0 < beta < 1 (three passes; see row_math.cuh)
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "row_math.cuh"
#include "store_rows.cuh"
#include "mlp_math.cuh"

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

// Validates one element and returns the teacher's log-value (log p for probability teachers; -inf, a class of
// zero mass, for p = 0 and for a logit of -inf). Bad: NaN, +inf, a negative probability.
__device__ __forceinline__ float teacher_log(float tv, int teacherProbs, int& bad) {
    if (teacherProbs) {
        if (!(tv >= 0.f) || isinf(tv)) {
            bad = 1;
        }
        return tv > 0.f ? logf(tv) : -DISTILL_INF;
    }
    if (!(tv < DISTILL_INF)) {  // NaN or +inf
        bad = 1;
    }
    return tv;
}

// Whether a row's merged sums left fp32 through the temperature: at T < 1 a finite logit beyond FLT_MAX * T has a
// product with 1/T of +-inf, which makes the sums NaN (a student or teacher maximum of +inf) or the student's empty
// (every product -inf). The CPU loss (float64) computes such a row; the kernels flag it 2, beyond their range, as
// the tiled kernels do theirs (tile_in_range). Checked once per row, on the merged maxima.
__device__ __forceinline__ bool tempered_out_of_range(const KdAcc& a, bool teacher) {
    return !(a.st.m < DISTILL_INF) || a.st.m == -DISTILL_INF || (teacher && a.t.m == DISTILL_INF);
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

// A row that does not count (ignored label, masked): zero gradient and zero parts; true when skipped.
template <typename In>
__device__ __forceinline__ bool skipped_row(const unsigned char* __restrict__ counted, int r, In* __restrict__ gr,
                                            float* __restrict__ rowOut, int V, int first, int step) {
    if (counted == nullptr || counted[r]) {
        return false;
    }
    zero_row(gr, V, first, step);
    if (first == 0) {
        rowOut[3 * r] = 0.f;
        rowOut[3 * r + 1] = 0.f;
        rowOut[3 * r + 2] = 0.f;
    }
    return true;
}

// Merges every thread's pass-1 accumulator across a block (warp butterflies, then warp 0 over the warps:
// a fixed order) and ORs the bad flags; every thread gets both.
template <int BLOCK>
__device__ __forceinline__ KdAcc block_merge(KdAcc a, int& bad, KdAcc* shAcc, int* shBad) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    a = warp_merge(a);
    if (lane == 0) {
        shAcc[warp] = a;
    }
    if (threadIdx.x == 0) {
        *shBad = 0;
    }
    __syncthreads();
    if (bad) {
        atomicOr(shBad, 1);  // an OR: order does not matter
    }
    if (warp == 0) {
        a = warp_merge(lane < BLOCK / 32 ? shAcc[lane] : distill::kd_empty());
        if (lane == 0) {
            shAcc[0] = a;
        }
    }
    __syncthreads();
    bad = *shBad;
    return shAcc[0];
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
        if (skipped_row(counted, r, gr, rowOut, V, lane, 32)) {
            continue;
        }
        int bad = 0;
        KdAcc a = warp_merge(kd_pass1(sr, tr, V, lane, 32, invT, teacherProbs, teacher, needS1, bad));
        bad = __any_sync(FULL, bad);
        if (teacher && a.t.m == -DISTILL_INF) {
            bad = 1;  // no teacher class with mass (all logits -inf, all probabilities 0)
        }
        const bool range = tempered_out_of_range(a, teacher);
        const KdRow row = distill::kd_finish(a, teacher, needS1);
        const int y = labels != nullptr ? labels[r] : -1;
        // an unlabeled row (y -1) has no cross-entropy term: alpha 0 for it
        float kl = warp_sum(kd_pass2(sr, tr, gr, V, lane, 32, row, y, invT, kdWeight, y >= 0 ? alpha : 0.f, scale, teacherProbs,
                                     teacher, needS1));
        if (lane == 0) {
            rowOut[3 * r] = t2 * (kl > 0.f ? kl : 0.f);
            rowOut[3 * r + 1] = y >= 0 ? row.logZs1 - to_f(sr[y]) : 0.f;
            rowOut[3 * r + 2] = bad ? 1.f : (range ? 2.f : 0.f);
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
        if (skipped_row(counted, r, gr, rowOut, V, threadIdx.x, BLOCK)) {
            continue;
        }
        int bad = 0;
        KdAcc a = block_merge<BLOCK>(kd_pass1(sr, tr, V, threadIdx.x, BLOCK, invT, teacherProbs, teacher, needS1, bad), bad, shAcc,
                                     &shBad);
        if (teacher && a.t.m == -DISTILL_INF) {
            bad = 1;
        }
        const bool range = tempered_out_of_range(a, teacher);
        const KdRow row = distill::kd_finish(a, teacher, needS1);
        const int y = labels != nullptr ? labels[r] : -1;
        float kl = warp_sum(kd_pass2(sr, tr, gr, V, threadIdx.x, BLOCK, row, y, invT, kdWeight, y >= 0 ? alpha : 0.f, scale,
                                     teacherProbs, teacher, needS1));
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
            rowOut[3 * r + 2] = bad ? 1.f : (range ? 2.f : 0.f);
        }
        __syncthreads();  // shAcc and shSum are reused by the next row
    }
}

// ---- kd_tile: each input element read from memory once ----
// One row per cluster of C blocks (C = 1: a plain block; C > 1 needs sm_90 and the launch's required cluster
// width set to C). Block `rank` owns the contiguous chunk [rank * chunk, min(V, (rank + 1) * chunk)) of every
// row its cluster takes. Pass 1 copies the first `cached` elements of its chunk of s and t into dynamic shared
// memory (asynchronous copies, all in flight together: in one group, which the host plans by default, or in
// four groups so that the block starts pushing the first group's elements while the others are still in
// flight), reads the rest with 16-byte loads, and pushes every element into the online log-sum-exps (in base
// 2: see "the tiled kernels' element math"). Then the row's exchange (tile_slot_reduce: the largest maximum
// by a butterfly, each sum rescaled to it once, the sums added by a butterfly): each warp merges its threads'
// sums and writes them to shared memory; after one barrier the block's warps are merged the same way (by every
// warp where a block holds the row; else by warp 0, which shows the block's sums to the cluster), and after
// one cluster barrier every warp merges the cluster's blocks through distributed shared memory by the same
// butterfly, block l's sums in lane l (a cluster that is not a power of two as the next one, the lanes of
// missing blocks empty). Each thread carries its KL terms of a row to the next row's exchange, which adds them alongside (the
// last row's are added after the loop by the same butterflies: the same bits), and thread 0 of rank 0 writes
// the row's parts then. A row so costs one barrier, and one cluster barrier where C > 1 (the c0fc9a2 kernel
// had five and one). Pass 2 reads the cached part from shared memory (the rest again from global memory,
// mostly L2), writes the gradient with 16-byte stores and sums the KL terms. With TILE_PREFETCH in `flags` a
// cluster that loops over rows copies the cached part of its next row during this row's pass 2: each thread
// reads back only the words it copied itself, so it may overwrite a word as soon as it has used it, with no
// barrier. With TILE_DOUBLE the cache holds two rows: at the start of each row a looping cluster issues the
// copies of its next row into the other buffer (which held the previous row), so they are in flight through
// all of this row: pass 1, the exchange and pass 2 (the price: half the cache per row). The host (KdPlan.java)
// launches these only when V * sizeof(In) and every row pointer are multiples of 16 bytes; chunk and cached
// are multiples of 16 / sizeof(In).

// A KdAcc plus a KL partial of the previous row and a bad flag: what a warp shows its block and a block its
// cluster (16-byte aligned: peers read it with two 16-byte loads).
struct alignas(16) KdSlot {
    KdAcc a;
    float kl;
    int bad;
};

// The cluster primitives below: PTX on sm_90 (a trap before it, where no cluster launches), the emulator's
// versions (src/test/emu) where the source is compiled for the CPU.
__device__ __forceinline__ int cluster_rank() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return (int)r;
#elif defined(__CUDA_ARCH__)
    __trap();
    return 0;
#else
    return (int)::emu::cluster_rank();
#endif
}

__device__ __forceinline__ int cluster_size() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    unsigned n;
    asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
    return (int)n;
#elif defined(__CUDA_ARCH__)
    return 1;
#else
    return (int)::emu::cluster_size();
#endif
}

// A barrier over every thread of the cluster. A warp that wrote shared memory its peers read after the barrier
// arrives with release semantics (`publish`, the same in all its lanes); the others arrive relaxed, sparing
// them the GPU-scope memory barrier (MEMBAR.ALL.GPU) a release costs; every thread waits with acquire.
__device__ __forceinline__ void cluster_sync(bool publish) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (publish) {
        asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
    } else {
        asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
    }
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#elif defined(__CUDA_ARCH__)
    (void)publish;
    __trap();
#else
    (void)publish;
    ::emu::cluster_sync();
#endif
}

// The slot at the same shared address in block `rank` of this cluster.
__device__ __forceinline__ KdSlot cluster_read(const KdSlot* mine, int rank) {
    KdSlot out;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    static_assert(sizeof(KdSlot) == 32, "KdSlot is read as eight 32-bit words");
    unsigned local = (unsigned)__cvta_generic_to_shared(mine);
    unsigned remote;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
    unsigned w[8];
    asm volatile("ld.shared::cluster.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(w[0]), "=r"(w[1]), "=r"(w[2]), "=r"(w[3]) : "r"(remote)
                 : "memory");
    asm volatile("ld.shared::cluster.v4.u32 {%0, %1, %2, %3}, [%4 + 16];" : "=r"(w[4]), "=r"(w[5]), "=r"(w[6]), "=r"(w[7]) : "r"(remote)
                 : "memory");
    out.a.st.m = __uint_as_float(w[0]);
    out.a.st.z = __uint_as_float(w[1]);
    out.a.s1.m = __uint_as_float(w[2]);
    out.a.s1.z = __uint_as_float(w[3]);
    out.a.t.m = __uint_as_float(w[4]);
    out.a.t.z = __uint_as_float(w[5]);
    out.kl = __uint_as_float(w[6]);
    out.bad = (int)w[7];
#elif defined(__CUDA_ARCH__)
    (void)rank;
    out = *mine;
    __trap();
#else
    out = *static_cast<const KdSlot*>(::emu::cluster_map(mine, (unsigned)rank));
#endif
    return out;
}

// Copies 16 bytes from global to shared memory without passing through registers (cp.async, sm_80+): the
// copies a thread issues are all in flight until copy_async_wait(). Before sm_80 it copies at once; the emulator
// holds NaN bytes at the destination until a wait lands the copy, so a read before its wait shows.
__device__ __forceinline__ void copy16_async(uint4* sharedDst, const uint4* globalSrc) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned d = (unsigned)__cvta_generic_to_shared(sharedDst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(globalSrc) : "memory");
#elif defined(__CUDA_ARCH__)
    *sharedDst = *globalSrc;
#else
    ::emu::async_copy(sharedDst, globalSrc, 16);
#endif
}

// Waits for this thread's copy16_async copies (their data is then visible to this thread).
__device__ __forceinline__ void copy_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_all;" ::: "memory");
#elif !defined(__CUDA_ARCH__)
    ::emu::async_wait_all();
#endif
}

// Closes a group of this thread's copy16_async copies: the ones issued since the last group.
__device__ __forceinline__ void copy_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#elif !defined(__CUDA_ARCH__)
    ::emu::async_commit();
#endif
}

// Waits until at most `pending` (0 .. 3) of this thread's newest groups are still in flight: the older groups'
// data is then visible to this thread. The count is an immediate of the instruction, hence the switch.
__device__ __forceinline__ void copy_async_wait_pending(int pending) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    switch (pending) {
        case 0:
            asm volatile("cp.async.wait_group 0;" ::: "memory");
            break;
        case 1:
            asm volatile("cp.async.wait_group 1;" ::: "memory");
            break;
        case 2:
            asm volatile("cp.async.wait_group 2;" ::: "memory");
            break;
        default:
            asm volatile("cp.async.wait_group 3;" ::: "memory");
            break;
    }
#elif defined(__CUDA_ARCH__)
    (void)pending;
#else
    ::emu::async_wait((unsigned)(pending < 3 ? pending : 3));
#endif
}

// ---- the tiled kernels' element math, in base 2 ----
// The tiled kernels move every element once, so their speed is set by the instructions they spend per
// element: pass 1 reads 16-byte words as four 32-bit registers (one shared-memory load), keeps each
// thread's running maxima of the raw logits (one max per element, no compare-and-select), and adds
// 2^(x c - m c) with c = log2(e) / T: one multiply-add and one ex2 per element and accumulator, the
// rescale once per word. Pass 2 forms log2 q and log2 p the same way, so q, p and the KL term cost a
// multiply-add and an ex2 each. ex2 is the multiprocessor's approximate instruction with subnormals
// flushed (relative error about 2^-22; a result below 2^-126, 1.2e-38, becomes 0): exp2f without its
// subnormal fix-up.

constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

// 2^x (see above); the emulator uses exp2f.
__device__ __forceinline__ float ex2_ftz(float x) {
#if defined(__CUDA_ARCH__)
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

// The elements of a 16-byte word as floats, from its four 32-bit registers (bf16: a shift or a mask each).
template <typename In>
__device__ __forceinline__ void unpack_word(const uint4& v, float* x);
template <>
__device__ __forceinline__ void unpack_word<float>(const uint4& v, float* x) {
    x[0] = __uint_as_float(v.x);
    x[1] = __uint_as_float(v.y);
    x[2] = __uint_as_float(v.z);
    x[3] = __uint_as_float(v.w);
}
template <>
__device__ __forceinline__ void unpack_word<__nv_bfloat16>(const uint4& v, float* x) {
    const unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        x[2 * k] = __uint_as_float(w[k] << 16);  // the low half is the lower-addressed element
        x[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
}
// An fp16 element from its 16 bits.
__device__ __forceinline__ float half_bits_to_f(unsigned short b) {
#if defined(__CUDA_ARCH__)
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(b));
    return f;
#else
    __half h;
    h.bits = b;
    return __half2float(h);
#endif
}
template <>
__device__ __forceinline__ void unpack_word<__half>(const uint4& v, float* x) {
    const unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        x[2 * k] = half_bits_to_f((unsigned short)(w[k] & 0xffffu));
        x[2 * k + 1] = half_bits_to_f((unsigned short)(w[k] >> 16));
    }
}

// Two floats as one 32-bit word of In (round to nearest even), the lower-addressed element in the low half.
template <typename In>
__device__ __forceinline__ unsigned pack_pair(float lo, float hi);
template <>
__device__ __forceinline__ unsigned pack_pair<__nv_bfloat16>(float lo, float hi) {
#if defined(__CUDA_ARCH__)
    unsigned w;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(w) : "f"(hi), "f"(lo));
    return w;
#else
    return (unsigned)__float2bfloat16_rn(lo).bits | ((unsigned)__float2bfloat16_rn(hi).bits << 16);
#endif
}
template <>
__device__ __forceinline__ unsigned pack_pair<__half>(float lo, float hi) {
#if defined(__CUDA_ARCH__)
    unsigned w;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(w) : "f"(hi), "f"(lo));
    return w;
#else
    return (unsigned)__float2half_rn(lo).bits | ((unsigned)__float2half_rn(hi).bits << 16);
#endif
}

// The N = 16 / sizeof(In) gradient values of a word, rounded to In.
template <typename In>
__device__ __forceinline__ uint4 pack_word(const float* g) {
    if constexpr (sizeof(In) == 4) {
        return make_uint4(__float_as_uint(g[0]), __float_as_uint(g[1]), __float_as_uint(g[2]), __float_as_uint(g[3]));
    } else {
        return make_uint4(pack_pair<In>(g[0], g[1]), pack_pair<In>(g[2], g[3]), pack_pair<In>(g[4], g[5]), pack_pair<In>(g[6], g[7]));
    }
}

// One thread's pass-1 sums in the tiled kernels: the running maxima of the raw student and teacher logits
// (-inf: none yet) and, in base 2 relative to M = fl(max c) (the product rounded once, as pass 2 forms it),
// sum 2^(s c - Ms), sum 2^(s log2 e - Ms1) (the student at T = 1, with needS1) and sum 2^(t c - Mt).
struct TileAcc {
    float ms;
    float zst;
    float zs1;
    float mt;
    float zt;
};

__device__ __forceinline__ TileAcc tile_empty() {
    return TileAcc{-DISTILL_INF, 0.f, 0.f, -DISTILL_INF, 0.f};
}

// -fl(m c): the offset of the exponents when the raw maximum is m; 0 while fl(m c) is -inf (m is -inf, or so
// negative that the product overflows: a mask of -FLT_MAX at T < log2 e), so that -inf - -inf makes no NaN (such
// an element adds nothing, and so does a word of nothing else). The products fl(m c) here, in the
// rescales and in tile_acc are __fmul_rn: nvcc would otherwise fuse one into the subtraction that follows it (a
// multiply-add, exact product), and a rescale that should be exactly 1 would come out 1 + (m c - fl(m c)) ln 2,
// up to 1.7e-4 at m c ~ 8000, once per word pushed after the maximum.
__device__ __forceinline__ float tile_offset(float m, float c) {
    const float mc = __fmul_rn(m, c);
    return mc == -DISTILL_INF ? 0.f : -mc;
}

// The largest of the N (a power of two) values of one word, taken pairwise, x[e] with x[e + N/2] first: a
// dependency chain of log2 N operations where a running maximum makes one of N - 1 (with 8 bf16 elements a
// word, such chains were what warps waited on; the sums below keep two accumulators for the same reason).
template <int N>
__device__ __forceinline__ float word_max(const float* x) {
    float t[N];
#pragma unroll
    for (int e = 0; e < N; e++) {
        t[e] = x[e];
    }
#pragma unroll
    for (int w = N / 2; w > 0; w >>= 1) {
#pragma unroll
        for (int e = 0; e < w; e++) {
            t[e] = fmaxf(t[e], t[e + w]);
        }
    }
    return t[0];
}

// Adds the N elements x of one word to z, the sum relative to raw maximum m at scale c: the new maximum, one
// rescale of z by 2^(fl(m c) - fl(mx c)) (two products rounded as pass 2 rounds them: their difference is
// exact where it matters), then one multiply-add and ex2 per element, the word's even and odd elements summed
// apart and then added (two chains of N / 2; a fixed order, so deterministic).
template <int N>
__device__ __forceinline__ void tile_push(float& m, float& z, const float* x, float c) {
    const float mx = fmaxf(m, word_max<N>(x));
    const float nm = tile_offset(mx, c);
    float even = ex2_ftz(fmaf(x[0], c, nm));
    float odd = ex2_ftz(fmaf(x[1], c, nm));
#pragma unroll
    for (int e = 2; e < N; e += 2) {
        even += ex2_ftz(fmaf(x[e], c, nm));
        odd += ex2_ftz(fmaf(x[e + 1], c, nm));
    }
    z = fmaf(z, ex2_ftz(__fmul_rn(m, c) + nm), even + odd);
    m = mx;
}

// The same for the student at T and at 1, which share the maximum.
template <int N>
__device__ __forceinline__ void tile_push2(float& m, float& z, float& z1, const float* x, float c) {
    const float mx = fmaxf(m, word_max<N>(x));
    const float nm = tile_offset(mx, c);
    const float nm1 = tile_offset(mx, LOG2E);
    float even = ex2_ftz(fmaf(x[0], c, nm)), odd = ex2_ftz(fmaf(x[1], c, nm));
    float even1 = ex2_ftz(fmaf(x[0], LOG2E, nm1)), odd1 = ex2_ftz(fmaf(x[1], LOG2E, nm1));
#pragma unroll
    for (int e = 2; e < N; e += 2) {
        even += ex2_ftz(fmaf(x[e], c, nm));
        odd += ex2_ftz(fmaf(x[e + 1], c, nm));
        even1 += ex2_ftz(fmaf(x[e], LOG2E, nm1));
        odd1 += ex2_ftz(fmaf(x[e + 1], LOG2E, nm1));
    }
    z = fmaf(z, ex2_ftz(__fmul_rn(m, c) + nm), even + odd);
    z1 = fmaf(z1, ex2_ftz(__fmul_rn(m, LOG2E) + nm1), even1 + odd1);
    m = mx;
}

// Adds x * 0 to an accumulator for each element of a 16-byte word: it stays zero while every element is
// finite and becomes NaN at the first inf or NaN (fp32: one multiply-add per element; bf16 and fp16: one per
// pair, in the input's own packed arithmetic).
template <typename In>
__device__ __forceinline__ unsigned fma_zero_pair(unsigned w, unsigned acc);
template <>
__device__ __forceinline__ unsigned fma_zero_pair<__nv_bfloat16>(unsigned w, unsigned acc) {
#if defined(__CUDA_ARCH__)
    asm("fma.rn.bf16x2 %0, %1, %2, %0;" : "+r"(acc) : "r"(w), "r"(0u));
    return acc;
#else
    const bool finite = isfinite(__uint_as_float(w << 16)) && isfinite(__uint_as_float(w & 0xffff0000u));
    return finite ? acc : 0x7fc07fc0u;
#endif
}
template <>
__device__ __forceinline__ unsigned fma_zero_pair<__half>(unsigned w, unsigned acc) {
#if defined(__CUDA_ARCH__)
    asm("fma.rn.f16x2 %0, %1, %2, %0;" : "+r"(acc) : "r"(w), "r"(0u));
    return acc;
#else
    const bool finite = isfinite(half_bits_to_f((unsigned short)(w & 0xffffu))) && isfinite(half_bits_to_f((unsigned short)(w >> 16)));
    return finite ? acc : 0x7e007e00u;
#endif
}
template <typename In>
struct FiniteAcc {
    unsigned acc = 0u;  // two packed elements of In
    __device__ __forceinline__ void add1(unsigned w) {
        acc = fma_zero_pair<In>(w, acc);
    }
    __device__ __forceinline__ void add(const uint4& v) {
        add1(v.x);
        add1(v.y);
        add1(v.z);
        add1(v.w);
    }
    __device__ __forceinline__ bool bad() const {
        return (acc & 0x7fff7fffu) != 0u;  // both halves a zero of either sign: all finite
    }
};
template <>
struct FiniteAcc<float> {
    float acc = 0.f;
    __device__ __forceinline__ void add(const uint4& v) {
        acc = fmaf(__uint_as_float(v.x), 0.f, acc);
        acc = fmaf(__uint_as_float(v.y), 0.f, acc);
        acc = fmaf(__uint_as_float(v.z), 0.f, acc);
        acc = fmaf(__uint_as_float(v.w), 0.f, acc);
    }
    __device__ __forceinline__ bool bad() const {
        return acc != 0.f;
    }
};

// What pass 1 of the tiled kernels checks of a row, each thread over its words, read once at the row's end:
// whether a student logit is not finite, and whether a probability is invalid (a probability teacher:
// teacher_log, element by element). A logit teacher needs no check of its own: a teacher logit of NaN or +inf
// makes the teacher's sum NaN (2^NaN, or inf - inf at the maximum) or its maximum +inf, which the row's
// range check after the exchange sees (tile_in_range), and one of -inf adds 0 to it (a class of zero mass).
template <typename In>
struct TileChecks {
    FiniteAcc<In> student;
    int badProb = 0;
};

// Pass 1 of the tiled kernels for one 16-byte word of s and of t: checks and pushes its elements.
// c = log2(e) / T.
template <typename In>
__device__ __forceinline__ void kd_tile_push(TileAcc& a, const uint4& vs, const uint4& vt, float c, bool teacher, bool needS1,
                                             int teacherProbs, TileChecks<In>& checks) {
    constexpr int N = 16 / sizeof(In);
    float xs[N], xt[N];
    unpack_word<In>(vs, xs);
    checks.student.add(vs);
    if (teacher) {
        unpack_word<In>(vt, xt);
        if (teacherProbs) {
#pragma unroll
            for (int e = 0; e < N; e++) {
                xt[e] = teacher_log(xt[e], 1, checks.badProb);
            }
        }
    }
    if (needS1) {
        tile_push2<N>(a.ms, a.zst, a.zs1, xs, c);
    } else {
        tile_push<N>(a.ms, a.zst, xs, c);
    }
    if (teacher) {
        tile_push<N>(a.mt, a.zt, xt, c);
    }
}

// A thread's pass-1 sums as base-2 accumulators for the exchanges (tile_lse_reduce): maxima fl(ms c),
// fl(ms log2 e) and fl(mt c), the same products tile_push took.
__device__ __forceinline__ KdAcc tile_acc(const TileAcc& a, float c) {
    auto scaled = [](float m, float scale) { return m == -DISTILL_INF ? m : __fmul_rn(m, scale); };  // -inf: empty
    KdAcc o;
    o.st = distill::Lse{scaled(a.ms, c), a.zst};
    o.s1 = distill::Lse{scaled(a.ms, LOG2E), a.zs1};
    o.t = distill::Lse{scaled(a.mt, c), a.zt};
    return o;
}

// The base-2 sums of lanes l, l ^ FIRST, l ^ FIRST / 2, ..., l ^ 1 merged: the largest maximum first (exact),
// then each lane's sum rescaled to it (one ex2) and the sums added by a butterfly. Every lane gets the same
// bits, the sums added in an order fixed by the lane numbers: deterministic. An empty sum (-inf, 0) adds
// nothing, and all empty stay empty.
template <int FIRST>
__device__ __forceinline__ distill::Lse tile_lse_reduce(distill::Lse a) {
    float m = a.m;
#pragma unroll
    for (int o = FIRST; o > 0; o >>= 1) {
        m = fmaxf(m, __shfl_xor_sync(FULL, m, o));
    }
    float z = a.z * ex2_ftz(a.m - (m == -DISTILL_INF ? 0.f : m));
#pragma unroll
    for (int o = FIRST; o > 0; o >>= 1) {
        z += __shfl_xor_sync(FULL, z, o);
    }
    return distill::Lse{m, z};
}

// The KL partials of the same lanes added by the same butterfly.
template <int FIRST>
__device__ __forceinline__ float tile_kl_reduce(float kl) {
#pragma unroll
    for (int o = FIRST; o > 0; o >>= 1) {
        kl += __shfl_xor_sync(FULL, kl, o);
    }
    return kl;
}

// A row's exchange at one level (lanes l, l ^ FIRST, ..., l ^ 1 each holding one part: a thread's, a warp's or a
// block's): the sums a row uses merged, the KL partials added, the bad flags ORed; every lane gets the result.
template <int FIRST>
__device__ __forceinline__ KdSlot tile_slot_reduce(KdSlot x, bool needS1, bool teacher) {
    x.a.st = tile_lse_reduce<FIRST>(x.a.st);
    if (needS1) {
        x.a.s1 = tile_lse_reduce<FIRST>(x.a.s1);
    }
    if (teacher) {
        x.a.t = tile_lse_reduce<FIRST>(x.a.t);
    }
    x.kl = tile_kl_reduce<FIRST>(x.kl);
    x.bad = __any_sync(FULL, x.bad);
    return x;
}

// Whether a row's merged base-2 sum is one the tiled kernels compute exactly: some mass (m is not -inf: every logit
// -inf, or every product x c overflowed), and |m| = |fl(max c)| below 2^30. Each exponent x c - m is formed by one
// multiply-add from the exact product, so the maximum's own term is 2^(max c - fl(max c)), off by up to half an ulp of
// max c: 2^32 at most below 2^30, harmless as pass 2 forms p and q from the same m; at 2^31 and above it may overflow
// or underflow. Past that (|logit| / T of 7.4e8 or more, or +inf) the host lets the CPU loss decide, and a NaN sum (a
// teacher logit of NaN) goes there too.
__device__ __forceinline__ bool tile_in_range(const distill::Lse& a) {
    return fabsf(a.m) < 1073741824.f && a.z == a.z;
}

// Pass 2's constants of a row, from its merged base-2 sums: with es = 2^(s c - Ms) and et = 2^(t c - Mt),
// q = es / Zs and p = et / Zt, so the gradient kw (q - p) is gs es - gt et; log2 p - log2 q = (t c - Mt) -
// (s c - Ms) + k with k = log2 Zs - log2 Zt. Each exponent is formed from the logit and the same rounded maximum
// as in pass 1, so at the largest logits p and q come out exact, whatever their size (a single rounded
// normalizer of size max c would cost a relative error of max c 2^-24 in every p and q).
struct TileRow {
    float ms;   // Ms
    float mt;   // Mt
    float m1;   // Ms1 (log2 e scale)
    float gs;   // kw / Zs
    float gt;   // kw / Zt
    float iz1;  // 1 / Zs1 (the softmax at 1; 1 / Zs when that is q)
    float izs;  // 1 / Zs
    float ka;   // the cross-entropy weight (the row's scale folded in, as in gs and gt)
};

// Pass 2 of the tiled kernels for one word: its N gradient values (before rounding to In), adding
// sum et (log2 et - log2 es) to kl2 (the row's KL is (kl2 / Zt + k) ln 2). i0 is the word's first class, y the
// row's label (-1: none). CE: the cross-entropy term (alpha > 0), a separate instance so that the common
// alpha = 0 path holds no more registers than it needs.
template <typename In, bool CE>
__device__ __forceinline__ void kd_tile_grad(const TileRow& row, const uint4& vs, const uint4& vt, float c, bool teacher,
                                             bool needS1, int teacherProbs, int i0, int y, float& kl2, float* g) {
    constexpr int N = 16 / sizeof(In);
    float xs[N], xt[N];
    unpack_word<In>(vs, xs);
    if (teacher) {
        unpack_word<In>(vt, xt);
        if (teacherProbs) {
            int ignored = 0;
#pragma unroll
            for (int e = 0; e < N; e++) {
                xt[e] = teacher_log(xt[e], 1, ignored);
            }
        }
    }
    float kl[2] = {0.f, 0.f};  // the word's KL terms, even and odd elements apart (two short chains), then added
#pragma unroll
    for (int e = 0; e < N; e++) {
        const float as = fmaf(xs[e], c, -row.ms);
        const float es = ex2_ftz(as);
        g[e] = 0.f;
        if (teacher) {
            const float at = fmaf(xt[e], c, -row.mt);
            const float et = ex2_ftz(at);
            // a class of zero mass adds nothing: log p = -inf (a logit of -inf, a probability of 0, or a product x c that
            // overflows: a mask of -FLT_MAX at T < log2 e) would make et (at - as) 0 x -inf; where et underflowed, the
            // term is 0 anyway
            kl[e & 1] = et == 0.f ? kl[e & 1] : fmaf(et, at - as, kl[e & 1]);
            g[e] = fmaf(-row.gt, et, row.gs * es);
        }
        if (CE) {
            const float s1 = needS1 ? ex2_ftz(fmaf(xs[e], LOG2E, -row.m1)) * row.iz1 : es * row.izs;
            g[e] = fmaf(row.ka, s1 - (i0 + e == y ? 1.f : 0.f), g[e]);
        }
    }
    kl2 += kl[0] + kl[1];
}

// Calls f(j, vs, vt) for j = first, first + step, ... < end with the j-th 16-byte words of s and t (vt = vs without a
// teacher), loading each word while f works on the one before it (AHEAD; else each word just before its use: fp16's
// conversions leave no registers for a word ahead in 64).
template <bool AHEAD, typename F>
__device__ __forceinline__ void tile_stream(const uint4* __restrict__ s, const uint4* __restrict__ t, int first, int end, int step,
                                            bool teacher, F&& f) {
    if constexpr (!AHEAD) {
        for (int j = first; j < end; j += step) {
            f(j, s[j], teacher ? t[j] : s[j]);
        }
        return;
    }
    if (first >= end) {
        return;
    }
    uint4 vs = s[first];
    uint4 vt = teacher ? t[first] : vs;
    for (int j = first; j < end; j += step) {
        const int next = j + step < end ? j + step : j;  // the last word loads itself again: no branch, no bounds issue
        const uint4 ns = s[next];
        const uint4 nt = teacher ? t[next] : ns;
        f(j, vs, vt);
        vs = ns;
        vt = nt;
    }
}

// Whether pass 1 loads its uncached words one ahead (tile_stream): not for fp16, whose conversions leave no registers.
template <typename In>
struct TileAhead {
    static constexpr bool value = true;
};
template <>
struct TileAhead<__half> {
    static constexpr bool value = false;
};

// The groups a block's pass-1 copies are issued in (copy_async_wait_pending takes 0 .. 3 pending).
constexpr int TILE_STAGES = 4;
// kd_tile's flags (KdPlan.java): prefetch the next row during pass 2; copy a row into the cache in one group
// (without it, staged: in TILE_STAGES groups, whether pass 1 issues them or the previous pass 2 prefetches them,
// pass 1 starting on each group as it lands); keep two rows in the cache, loading the next while this one is
// worked on.
constexpr int TILE_PREFETCH = 1;
constexpr int TILE_ONE_GROUP = 2;
constexpr int TILE_DOUBLE = 4;

// What kd_tile's thread 0 (of rank 0) keeps of a row until the next exchange has added the row's KL terms.
struct TilePending {
    int row;  // -1: none
    float k;  // k ln 2 (TileRow), 0 where it does not count
    float ce;
    int bad;
};

// Writes the pending row's parts (if any), its threads' KL terms summing to kl.
__device__ __forceinline__ void tile_write_row(float* __restrict__ rowOut, float t2, const TilePending& p, float kl) {
    if (p.row >= 0) {
        kl += p.k;
        rowOut[3 * p.row] = t2 * (kl > 0.f ? kl : 0.f);
        rowOut[3 * p.row + 1] = p.ce;
        rowOut[3 * p.row + 2] = (float)p.bad;
    }
}

// The least power of two >= C (C >= 1).
template <int C>
struct TilePow2 {
    static constexpr int value = 2 * TilePow2<(C + 1) / 2>::value;
};
template <>
struct TilePow2<1> {
    static constexpr int value = 1;
};

// One row's exchange in kd_tile (see there): each thread's part in, the row's merged parts out, in every thread.
// warpSlots: the block's WARPS slots for this row; blockSlot: the block's slot for this row (C > 1).
template <int WARPS, int C>
__device__ __forceinline__ KdSlot tile_exchange(KdSlot part, KdSlot* warpSlots, KdSlot* blockSlot, bool needS1, bool teacher) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    part = tile_slot_reduce<16>(part, needS1, teacher);
    if (lane == 0) {
        warpSlots[warp] = part;
    }
    __syncthreads();
    if (C == 1) {
        return tile_slot_reduce<WARPS / 2>(warpSlots[lane & (WARPS - 1)], needS1, teacher);
    }
    if (warp == 0) {
        const KdSlot block = tile_slot_reduce<WARPS / 2>(warpSlots[lane & (WARPS - 1)], needS1, teacher);
        if (lane == 0) {
            *blockSlot = block;
        }
    }
    cluster_sync(warp == 0);  // warp 0 wrote the block's slot
    // with P = C rounded up to a power of two, lane l of each group of P lanes holds block l's slot, or an empty
    // one where l >= C (it adds nothing: see tile_lse_reduce), and the groups merge as for a cluster of P
    constexpr int P = TilePow2<C>::value;
    static_assert(P <= 32, "a cluster's blocks are merged within a warp");
    const int peer = lane & (P - 1);
    KdSlot x;
    if (P == C || peer < C) {
        x = cluster_read(blockSlot, peer);
    } else {
        x.a = distill::kd_empty();
        x.kl = 0.f;
        x.bad = 0;
    }
    return tile_slot_reduce<P / 2>(x, needS1, teacher);
}

template <typename In, int BLOCK, int C>
__device__ void kd_tile(const In* __restrict__ s, const In* __restrict__ t, const int* __restrict__ labels,
                        const unsigned char* __restrict__ counted, In* __restrict__ grad, float* __restrict__ rowOut, int rows, int V,
                        float invT, float kdWeight, float alpha, float t2, float scale, int teacherProbs, int needS1i, int chunk,
                        int cached, int flags) {
    constexpr int N = 16 / sizeof(In);
    constexpr int WARPS = BLOCK / 32;
    static_assert(WARPS == 16 && C >= 1 && C <= 32, "a block's warps and a cluster's blocks are merged by lane");
    extern __shared__ uint4 tileCache[];
    __shared__ KdSlot warpSlots[2][WARPS];  // each warp's part of row k in [k & 1]
    __shared__ KdSlot slots[2];             // the block's part of row k in [k & 1] (C > 1)
    __shared__ TilePending pending;         // thread 0's, of rank 0
    if (C > 1 && cluster_size() != C) {
        __trap();  // launched without the required cluster width: the row merge would be wrong
    }
    const bool teacher = t != nullptr;
    const bool needS1 = needS1i != 0;
    const float c = invT * LOG2E;
    const int rank = C == 1 ? 0 : cluster_rank();
    const int c0 = rank * chunk;
    const int c1 = c0 + chunk < V ? c0 + chunk : V;
    const int nvec = c1 > c0 ? (c1 - c0) / N : 0;
    const int cvec = cached / N < nvec ? cached / N : nvec;
    // with TILE_DOUBLE the cache holds two rows, buffer b (row k of this block in buffer k & 1) at 2 b cw
    const bool twoBuffers = (flags & TILE_DOUBLE) != 0;
    const int cw = cached / N;
    // this thread's cached words are j = threadIdx.x + m * BLOCK for m < mine; pass 1 copies them in
    // TILE_STAGES groups, group g holding m in [stageEnd(g - 1), stageEnd(g))
    const int mine = (int)threadIdx.x < cvec ? (cvec - 1 - (int)threadIdx.x) / BLOCK + 1 : 0;
    const int stages = (flags & TILE_ONE_GROUP) != 0 ? 1 : TILE_STAGES;
    auto stageEnd = [mine, stages](int g) { return g < 0 ? 0 : (g + 1) * mine / stages; };
    const int clusters = gridDim.x / C;
    int k = 0;
    // A row's KL is the sum of its threads' terms plus k ln 2 (TileRow): each thread carries its terms to the next
    // row's exchange (or the one after the loop), and thread 0 of rank 0 keeps the rest of the row's parts in
    // `pending` (shared memory, so that no thread holds registers for them) and writes them then.
    float carryKl = 0.f;
    if (threadIdx.x == 0) {
        pending.row = -1;
    }
    bool ready = false;  // the cached part of row r was copied during the previous row's pass 2 (prefetch)
    // copies this thread's words of the cached part of `row` into (dst, dst + cw)
    auto fetchRow = [&](int row, uint4* dst) {
        const uint4* fs = reinterpret_cast<const uint4*>(s + (size_t)row * V + c0);
        const uint4* ft = teacher ? reinterpret_cast<const uint4*>(t + (size_t)row * V + c0) : nullptr;
        for (int j = threadIdx.x; j < cvec; j += BLOCK) {
            copy16_async(dst + j, fs + j);
            if (teacher) {
                copy16_async(dst + cw + j, ft + j);
            }
        }
    };
    auto counts = [&](int row) { return counted == nullptr || counted[row] != 0; };
    if (twoBuffers) {
        const int first = blockIdx.x / C;
        if (first < rows && cvec > 0 && counts(first)) {
            fetchRow(first, tileCache);
        }
        copy_async_commit();
    }
    for (int r = blockIdx.x / C; r < rows; r += clusters, k++) {
        const size_t off = (size_t)r * V + c0;
        const uint4* sr = reinterpret_cast<const uint4*>(s + off);
        const uint4* tr = teacher ? reinterpret_cast<const uint4*>(t + off) : nullptr;
        uint4* gr = reinterpret_cast<uint4*>(grad + off);
        const bool skip = !counts(r);
        const int next = r + clusters;
        uint4* cs = tileCache + (twoBuffers ? (k & 1) * 2 * cw : 0);
        uint4* ct = cs + cw;
        if (twoBuffers) {
            // the next row this block takes, when it counts, goes into the other buffer now, so that its loads
            // overlap all of this row; that buffer held the previous row, and each thread overwrites only words
            // it has read itself (in program order, before this)
            if (next < rows && cvec > 0 && counts(next)) {
                fetchRow(next, tileCache + ((k + 1) & 1) * 2 * cw);
            }
            copy_async_commit();
        }
        // TILE_PREFETCH: the next row this block takes, when it counts, is copied into the cache during this row's
        // pass 2, each 16-byte word by the thread that owns it once that thread has read the word it replaces
        const bool fetchNext = (flags & TILE_PREFETCH) != 0 && !twoBuffers && cvec > 0 && next < rows && counts(next);
        const uint4* sn = fetchNext ? reinterpret_cast<const uint4*>(s + (size_t)next * V + c0) : nullptr;
        const uint4* tn = fetchNext && teacher ? reinterpret_cast<const uint4*>(t + (size_t)next * V + c0) : nullptr;
        TileAcc ta = tile_empty();
        TileChecks<In> checks;
        if (!skip) {
            // the cached part goes to shared memory by asynchronous copies, all in flight at once (no registers
            // held), issued in `stages` groups; the uncached rest is read meanwhile; then each thread reads back
            // what it copied itself, each group as soon as it has landed. A prefetched row (either way) is in
            // shared memory or on its way already.
            const bool issue = !ready && !twoBuffers;
            if (issue) {
#pragma unroll 1
                for (int g = 0; g < stages; g++) {
                    for (int m = stageEnd(g - 1); m < stageEnd(g); m++) {
                        const int j = threadIdx.x + m * BLOCK;
                        copy16_async(cs + j, sr + j);
                        if (teacher) {
                            copy16_async(ct + j, tr + j);
                        }
                    }
                    copy_async_commit();
                }
            }
            // each word's loads issued one word ahead of its sums (tile_stream), so that a thread has a word in
            // flight while it works on the last: the loads of a word and its use would otherwise be back to back
            tile_stream<TileAhead<In>::value>(sr, tr, cvec + (int)threadIdx.x, nvec, BLOCK, teacher,
                        [&](int, const uint4& vs, const uint4& vt) { kd_tile_push<In>(ta, vs, vt, c, teacher, needS1, teacherProbs, checks); });
            // the words in the same order as one loop over j would take them: the sums do not depend on staging. A row
            // prefetched during the last pass 2 came in `stages` groups too (one: not committed, waited for at once).
#pragma unroll 1
            for (int g = 0; g < stages; g++) {
                if (issue || (ready && stages > 1)) {
                    copy_async_wait_pending(stages - 1 - g);
                } else if (g == 0 && twoBuffers) {
                    copy_async_wait_pending(1);  // this row's group; the next row's, the newest, may stay in flight
                } else if (g == 0 && ready) {
                    copy_async_wait();  // the row copied during the last pass 2, as one
                }
                for (int m = stageEnd(g - 1); m < stageEnd(g); m++) {
                    const int j = threadIdx.x + m * BLOCK;
                    kd_tile_push<In>(ta, cs[j], teacher ? ct[j] : cs[j], c, teacher, needS1, teacherProbs, checks);
                }
            }
        }
        // the row's exchange, carrying the previous row's KL terms
        KdSlot part;
        part.a = tile_acc(ta, c);
        part.kl = carryKl;
        part.bad = checks.student.bad() || checks.badProb ? 1 : 0;
        const KdSlot row = tile_exchange<WARPS, C>(part, warpSlots[k & 1], &slots[k & 1], needS1, teacher);
        if (threadIdx.x == 0 && rank == 0) {
            tile_write_row(rowOut, t2, pending, row.kl);
        }
        const KdAcc rowAcc = row.a;
        // 1: a row the CPU loss refuses (a student logit not finite, a probability not valid); 2: a row for the CPU loss
        // to decide (see tile_in_range: a teacher logit of NaN or +inf, which it refuses; no class of mass; logits
        // beyond this kernel's range, which it computes)
        int flag = row.bad ? 1 : 0;
        if (!skip && flag == 0
            && !(tile_in_range(rowAcc.st) && (!needS1 || tile_in_range(rowAcc.s1)) && (!teacher || tile_in_range(rowAcc.t)))) {
            flag = 2;
        }
        TileRow tr2;
        tr2.ms = rowAcc.st.m;
        tr2.mt = rowAcc.t.m;
        tr2.m1 = rowAcc.s1.m;
        tr2.izs = 1.f / rowAcc.st.z;
        tr2.gs = scale * kdWeight * tr2.izs;
        tr2.gt = teacher ? scale * kdWeight / rowAcc.t.z : 0.f;
        tr2.iz1 = needS1 ? 1.f / rowAcc.s1.z : tr2.izs;
        tr2.ka = scale * alpha;
        const int y = labels != nullptr ? labels[r] : -1;
        float kl2 = 0.f;  // sum et (log2 et - log2 es) of this thread's elements
        // one word's gradient (the words in j order, cached ones first: kl2 sums as one loop over j would)
        auto gradWord = [&](int j, const uint4& vs, const uint4& vt) {
            float g[N];
            if (alpha > 0.f && y >= 0) {  // the same for every thread: a branch per word; an unlabeled row (y -1) has no CE
                kd_tile_grad<In, true>(tr2, vs, vt, c, teacher, needS1, teacherProbs, c0 + j * N, y, kl2, g);
            } else {
                kd_tile_grad<In, false>(tr2, vs, vt, c, teacher, needS1, teacherProbs, c0 + j * N, y, kl2, g);
            }
            gr[j] = pack_word<In>(g);
        };
        if (skip) {
            for (int j = threadIdx.x; j < nvec; j += BLOCK) {
                gr[j] = make_uint4(0u, 0u, 0u, 0u);
            }
        } else {
            if (fetchNext && stages > 1) {
                // staged: the next row's words copied in `stages` groups, so that its pass 1 starts on the first group
                // while the last is in flight (a block alone on its multiprocessor has no other block to wait for it)
#pragma unroll 1
                for (int g = 0; g < stages; g++) {
                    for (int m = stageEnd(g - 1); m < stageEnd(g); m++) {
                        const int j = threadIdx.x + m * BLOCK;
                        gradWord(j, cs[j], teacher ? ct[j] : cs[j]);
                        // issued after g, which used the words it overwrites: in-order issue has read them by now
                        copy16_async(cs + j, sn + j);
                        if (teacher) {
                            copy16_async(ct + j, tn + j);
                        }
                    }
                    copy_async_commit();
                }
            } else {
                for (int j = threadIdx.x; j < cvec; j += BLOCK) {
                    gradWord(j, cs[j], teacher ? ct[j] : cs[j]);
                    if (fetchNext) {
                        // issued after g, which used the words it overwrites: in-order issue has read them by now
                        copy16_async(cs + j, sn + j);
                        if (teacher) {
                            copy16_async(ct + j, tn + j);
                        }
                    }
                }
            }
            // the uncached rest again from global memory (L2, read moments ago in pass 1)
            for (int j = cvec + threadIdx.x; j < nvec; j += BLOCK) {
                gradWord(j, sr[j], teacher ? tr[j] : sr[j]);
            }
        }
        if (skip && fetchNext) {
#pragma unroll 1
            for (int g = 0; g < stages; g++) {
                for (int m = stageEnd(g - 1); m < stageEnd(g); m++) {
                    const int j = threadIdx.x + m * BLOCK;
                    copy16_async(cs + j, sn + j);
                    if (teacher) {
                        copy16_async(ct + j, tn + j);
                    }
                }
                if (stages > 1) {
                    copy_async_commit();
                }
            }
        }
        ready = fetchNext;
        carryKl = teacher && !skip ? kl2 * (LN2 / rowAcc.t.z) : 0.f;
        if (threadIdx.x == 0 && rank == 0) {
            pending.row = r;
            pending.k = teacher && !skip ? (log2f(rowAcc.st.z) - log2f(rowAcc.t.z)) * LN2 : 0.f;  // k ln 2 (TileRow)
            float ce = 0.f;
            if (!skip && y >= 0) {
                // -log softmax(s)[y]; with needS1 false it is at T, where T == 1 (or alpha == 0) makes it the same
                const float sy = to_f(s[(size_t)r * V + y]);
                ce = needS1 ? (fmaf(-sy, LOG2E, rowAcc.s1.m) + log2f(rowAcc.s1.z)) * LN2 : (rowAcc.st.m + log2f(rowAcc.st.z)) * LN2 - sy;
            }
            pending.ce = ce;
            pending.bad = skip ? 0 : flag;
        }
    }
    // the last row's KL terms, added as a next row's exchange adds them (the same bits); then no block of a
    // cluster leaves while a peer may still read its slots
    KdSlot last;
    last.a = distill::kd_empty();
    last.kl = carryKl;
    last.bad = 0;
    const float kl = tile_exchange<WARPS, C>(last, warpSlots[k & 1], &slots[k & 1], false, false).kl;
    if (threadIdx.x == 0 && rank == 0) {
        tile_write_row(rowOut, t2, pending, kl);
    }
    if (C > 1) {
        cluster_sync(false);  // peers' reads of this block's slots are done (their values used) once they arrive
    }
}

// ---- generalized JSD, 0 < beta < 1: three passes (normalizers, row sums, gradient) ----

template <typename In>
__device__ __forceinline__ distill::JsdSums gjsd_pass2(const In* __restrict__ sr, const In* __restrict__ tr, int V, int first, int step,
                                                       const KdRow& row, float invT, float logB, float log1mB, float beta,
                                                       int teacherProbs) {
    distill::JsdSums sums{0.f, 0.f, 0.f};
    int ignored = 0;
    for (int i = first; i < V; i += step) {
        float tl = teacher_log(to_f(tr[i]), teacherProbs, ignored);
        distill::gjsd_element(row, to_f(sr[i]), tl, invT, logB, log1mB, beta, &sums);
    }
    return sums;
}

template <typename In>
__device__ __forceinline__ void gjsd_pass3(const In* __restrict__ sr, const In* __restrict__ tr, In* __restrict__ gr, int V, int first,
                                           int step, const KdRow& row, float invT, float logB, float log1mB, float beta, float mean,
                                           float scale, int teacherProbs) {
    int ignored = 0;
    for (int i = first; i < V; i += step) {
        float tl = teacher_log(to_f(tr[i]), teacherProbs, ignored);
        distill::JsdElement e = distill::gjsd_element(row, to_f(sr[i]), tl, invT, logB, log1mB, beta, nullptr);
        gr[i] = from_f<In>(scale * e.q * (e.h - mean));
    }
}

template <typename In>
__device__ void gjsd_warp(const In* __restrict__ s, const In* __restrict__ t, const unsigned char* __restrict__ counted,
                          In* __restrict__ grad, float* __restrict__ rowOut, int rows, int V, float invT, float beta, float t2,
                          float scale, int teacherProbs) {
    const int lane = threadIdx.x & 31;
    const int warpsPerBlock = blockDim.x >> 5;
    const float logB = logf(beta);
    const float log1mB = log1pf(-beta);
    for (int r = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); r < rows; r += gridDim.x * warpsPerBlock) {
        const size_t off = (size_t)r * V;
        const In* sr = s + off;
        const In* tr = t + off;
        In* gr = grad + off;
        if (skipped_row(counted, r, gr, rowOut, V, lane, 32)) {
            continue;
        }
        int bad = 0;
        KdAcc a = warp_merge(kd_pass1(sr, tr, V, lane, 32, invT, teacherProbs, true, false, bad));
        bad = __any_sync(FULL, bad);
        if (a.t.m == -DISTILL_INF) {
            bad = 1;
        }
        const bool range = tempered_out_of_range(a, true);
        const KdRow row = distill::kd_finish(a, true, false);
        distill::JsdSums sums = gjsd_pass2(sr, tr, V, lane, 32, row, invT, logB, log1mB, beta, teacherProbs);
        sums.klP = warp_sum(sums.klP);
        sums.klQ = warp_sum(sums.klQ);
        sums.mean = warp_sum(sums.mean);
        gjsd_pass3(sr, tr, gr, V, lane, 32, row, invT, logB, log1mB, beta, sums.mean, scale, teacherProbs);
        if (lane == 0) {
            float jsd = beta * sums.klP + (1.f - beta) * sums.klQ;
            rowOut[3 * r] = t2 * (jsd > 0.f ? jsd : 0.f);
            rowOut[3 * r + 1] = 0.f;
            rowOut[3 * r + 2] = bad ? 1.f : (range ? 2.f : 0.f);
        }
    }
}

template <typename In, int BLOCK>
__device__ void gjsd_block(const In* __restrict__ s, const In* __restrict__ t, const unsigned char* __restrict__ counted,
                           In* __restrict__ grad, float* __restrict__ rowOut, int rows, int V, float invT, float beta, float t2,
                           float scale, int teacherProbs) {
    constexpr int WARPS = BLOCK / 32;
    __shared__ KdAcc shAcc[WARPS];
    __shared__ float shSums[3][WARPS];
    __shared__ float shTotal[3];
    __shared__ int shBad;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const float logB = logf(beta);
    const float log1mB = log1pf(-beta);
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t off = (size_t)r * V;
        const In* sr = s + off;
        const In* tr = t + off;
        In* gr = grad + off;
        if (skipped_row(counted, r, gr, rowOut, V, threadIdx.x, BLOCK)) {
            continue;
        }
        int bad = 0;
        KdAcc a = block_merge<BLOCK>(kd_pass1(sr, tr, V, threadIdx.x, BLOCK, invT, teacherProbs, true, false, bad), bad, shAcc,
                                     &shBad);
        bad = bad || a.t.m == -DISTILL_INF;
        const bool range = tempered_out_of_range(a, true);
        const KdRow row = distill::kd_finish(a, true, false);
        distill::JsdSums sums = gjsd_pass2(sr, tr, V, threadIdx.x, BLOCK, row, invT, logB, log1mB, beta, teacherProbs);
        float parts[3] = {warp_sum(sums.klP), warp_sum(sums.klQ), warp_sum(sums.mean)};
        if (lane == 0) {
            for (int k = 0; k < 3; k++) {
                shSums[k][warp] = parts[k];
            }
        }
        __syncthreads();
        if (threadIdx.x < 3) {
            float total = 0.f;
            for (int w = 0; w < WARPS; w++) {  // fixed order: deterministic
                total += shSums[threadIdx.x][w];
            }
            shTotal[threadIdx.x] = total;
        }
        __syncthreads();
        gjsd_pass3(sr, tr, gr, V, threadIdx.x, BLOCK, row, invT, logB, log1mB, beta, shTotal[2], scale, teacherProbs);
        if (threadIdx.x == 0) {
            float jsd = beta * shTotal[0] + (1.f - beta) * shTotal[1];
            rowOut[3 * r] = t2 * (jsd > 0.f ? jsd : 0.f);
            rowOut[3 * r + 1] = 0.f;
            rowOut[3 * r + 2] = bad ? 1.f : (range ? 2.f : 0.f);
        }
        __syncthreads();
    }
}

// ---- top-k sparse KD ----
// bits: a membership bitmap of the row (V bits), in shared memory.
__device__ __forceinline__ bool in_topk(const unsigned* bits, int i) {
    return (bits[i >> 5] >> (i & 31)) & 1u;
}

// One row of top-k KD over threads first, first + step, ... (lanes of a warp, or a block's threads with
// the block's reductions done by the caller through `reduce`). Returns this thread's value part.
template <typename In, typename Reduce>
__device__ __forceinline__ float topk_row(const In* __restrict__ sr, const int* __restrict__ idr, const float* __restrict__ lpr,
                                          In* __restrict__ gr, unsigned* bits, int V, int k, int first, int step, float invT,
                                          float scale, bool rest, int& bad, bool& range, Reduce reduce) {
    // membership and the teacher's known mass
    for (int w = first; w < (V + 31) / 32; w += step) {
        bits[w] = 0u;
    }
    reduce.sync();
    float known = 0.f;
    float present = 0.f;  // the row's entries that hold a class (exact as a float: k < 2^24)
    for (int j = first; j < k; j += step) {
        int id = idr[j];
        // as LogitBatch.ofTopK: an id in the vocabulary, a log-probability <= 0 (1e-4 of rounding above), or -inf for
        // probability 0 (it adds nothing: its bucket is empty); or an absent slot (id -1, -inf), which holds no class
        if (id == -1 && lpr[j] == -DISTILL_INF) {
            continue;
        }
        if (id < 0 || id >= V || !(lpr[j] <= 1e-4f)) {
            bad = 1;
        } else {
            atomicOr(&bits[id >> 5], 1u << (id & 31));  // an OR: order does not matter
        }
        known += expf(lpr[j]);
        present += 1.f;
    }
    reduce.sync();  // the bitmap is complete before anyone reads it
    known = reduce.sum(known);
    // with every class among the entries none is outside them: no rest bucket on either side (the same in every thread)
    rest = rest && reduce.sum(present) < (float)V;
    if (rest && known > 1.f + distill::TOPK_MASS_TOLERANCE) {
        bad = 1;
    }
    const float logRest = distill::topk_rest_log(known, rest, invT);
    distill::Lse tl = distill::lse_empty();
    for (int j = first; j < k; j += step) {
        distill::lse_push(tl, lpr[j] * invT);
    }
    tl = reduce.merge(tl);
    // The entries' log-probabilities are taken relative to `shift` (0, except below)
    float shift = 0.f;
    if (tl.m == -DISTILL_INF) {
        // No tempered entry is finite (the same for every thread: tl is merged). An entry has mass iff its log-probability
        // is finite, as in the CPU loss: every entry -inf is a row without mass; but at T < 1 a finite log-probability
        // below -FLT_MAX * T has a product with 1/T of -inf. With a rest bucket of mass, those entries' probabilities are
        // 0 next to it (as in float64); without one, the entries are tempered relative to the largest, (lp - M) / T.
        distill::Lse raw = distill::lse_empty();
        for (int j = first; j < k; j += step) {
            distill::lse_push(raw, lpr[j]);
        }
        raw = reduce.merge(raw);
        if (raw.m == -DISTILL_INF) {
            bad = 1;  // every entry -inf: no entry has probability
        } else if (logRest == -DISTILL_INF) {
            shift = raw.m;
            for (int j = first; j < k; j += step) {
                distill::lse_push(tl, (lpr[j] - shift) * invT);
            }
            tl = reduce.merge(tl);
        }
    }
    // the student's normalizers (pass 1 over the row)
    distill::Lse all = distill::lse_empty();
    distill::Lse tail = distill::lse_empty();
    for (int i = first; i < V; i += step) {
        float x = to_f(sr[i]);
        if (!isfinite(x)) {
            bad = 1;
        }
        distill::lse_push(all, x * invT);
        if (rest && !in_topk(bits, i)) {
            distill::lse_push(tail, x * invT);
        }
    }
    all = reduce.merge(all);
    tail = reduce.merge(tail);
    // a student product with 1/T beyond fp32 (see tempered_out_of_range): the CPU loss computes the row
    range = !(all.m < DISTILL_INF) || all.m == -DISTILL_INF;
    const distill::TopkRow row = distill::topk_finish(tl, logRest, all, tail);
    // pass 2: the gradient outside the top-k
    for (int i = first; i < V; i += step) {
        if (!in_topk(bits, i)) {
            gr[i] = from_f<In>(scale * distill::topk_grad_outside(row, to_f(sr[i]), invT));
        }
    }
    // the top-k entries: value and gradient
    float value = 0.f;
    for (int j = first; j < k; j += step) {
        int id = idr[j];
        if (id >= 0 && id < V) {
            gr[id] = from_f<In>(scale * distill::topk_entry(row, lpr[j] - shift, to_f(sr[id]), invT, value));
        }
    }
    if (first == 0) {
        value += distill::topk_rest_value(row);
    }
    return value;
}

struct WarpReduce {
    __device__ __forceinline__ void sync() const {
        __syncwarp();
    }
    __device__ __forceinline__ float sum(float x) const {
        return warp_sum(x);
    }
    __device__ __forceinline__ distill::Lse merge(distill::Lse a) const {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            a = distill::lse_merge(a, shfl_lse(a, o));
        }
        return a;
    }
};

template <int BLOCK>
struct BlockReduce {
    distill::Lse* shLse;  // [BLOCK / 32]
    float* shSum;         // [BLOCK / 32]
    __device__ __forceinline__ void sync() const {
        __syncthreads();
    }
    __device__ __forceinline__ float sum(float x) const {
        x = warp_sum(x);
        if ((threadIdx.x & 31) == 0) {
            shSum[threadIdx.x >> 5] = x;
        }
        __syncthreads();
        float total = 0.f;
        for (int w = 0; w < BLOCK / 32; w++) {  // every thread, the same fixed order
            total += shSum[w];
        }
        __syncthreads();
        return total;
    }
    __device__ __forceinline__ distill::Lse merge(distill::Lse a) const {
        a = WarpReduce().merge(a);
        if ((threadIdx.x & 31) == 0) {
            shLse[threadIdx.x >> 5] = a;
        }
        __syncthreads();
        distill::Lse total = distill::lse_empty();
        for (int w = 0; w < BLOCK / 32; w++) {
            total = distill::lse_merge(total, shLse[w]);
        }
        __syncthreads();
        return total;
    }
};

template <typename In>
__device__ void topk_warp(const In* __restrict__ s, const int* __restrict__ ids, const float* __restrict__ lps,
                          const unsigned char* __restrict__ counted, In* __restrict__ grad, float* __restrict__ rowOut, int rows, int V,
                          int k, float invT, float scale, int rest) {
    __shared__ unsigned shBits[8][2048 / 32];  // 8 warps of 256 threads, V <= 2048
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warpsPerBlock = blockDim.x >> 5;
    for (int r = blockIdx.x * warpsPerBlock + warp; r < rows; r += gridDim.x * warpsPerBlock) {
        const size_t off = (size_t)r * V;
        In* gr = grad + off;
        if (skipped_row(counted, r, gr, rowOut, V, lane, 32)) {
            continue;
        }
        int bad = 0;
        bool range = false;
        float v = topk_row(s + off, ids + (size_t)r * k, lps + (size_t)r * k, gr, shBits[warp], V, k, lane, 32, invT, scale, rest != 0,
                           bad, range, WarpReduce());
        v = warp_sum(v);
        bad = __any_sync(FULL, bad);
        if (lane == 0) {
            rowOut[3 * r] = v;
            rowOut[3 * r + 1] = 0.f;
            rowOut[3 * r + 2] = bad ? 1.f : (range ? 2.f : 0.f);
        }
    }
}

template <typename In, int BLOCK>
__device__ void topk_block(const In* __restrict__ s, const int* __restrict__ ids, const float* __restrict__ lps,
                           const unsigned char* __restrict__ counted, In* __restrict__ grad, float* __restrict__ rowOut, int rows, int V,
                           int k, float invT, float scale, int rest) {
    extern __shared__ unsigned shBitsDyn[];  // V bits, sized at launch
    __shared__ distill::Lse shLse[BLOCK / 32];
    __shared__ float shSum[BLOCK / 32];
    __shared__ int shBad;
    BlockReduce<BLOCK> reduce{shLse, shSum};
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t off = (size_t)r * V;
        In* gr = grad + off;
        if (skipped_row(counted, r, gr, rowOut, V, threadIdx.x, BLOCK)) {
            continue;
        }
        if (threadIdx.x == 0) {
            shBad = 0;
        }
        int bad = 0;
        bool range = false;  // the same in every thread (from the merged sums)
        float v = topk_row(s + off, ids + (size_t)r * k, lps + (size_t)r * k, gr, shBitsDyn, V, k, threadIdx.x, BLOCK, invT, scale,
                           rest != 0, bad, range, reduce);
        if (bad) {
            atomicOr(&shBad, 1);
        }
        v = reduce.sum(v);  // ends with a barrier, so shBad is complete
        if (threadIdx.x == 0) {
            rowOut[3 * r] = v;
            rowOut[3 * r + 1] = 0.f;
            rowOut[3 * r + 2] = shBad ? 1.f : (range ? 2.f : 0.f);
        }
        __syncthreads();
    }
}

}  // namespace

// The six entry points of a row-kernel family: {warp, block} x {f32, f16, bf16}, e.g. kd_block_bf16.
#define DISTILL_ROW_KERNELS(family, ARGS, PASS)                                                     \
    extern "C" {                                                                                     \
    __global__ void __launch_bounds__(256) family##_warp_f32(ARGS(float)) {                        \
        family##_warp<float>(PASS);                                                                  \
    }                                                                                                \
    __global__ void __launch_bounds__(256) family##_warp_f16(ARGS(__half)) {                       \
        family##_warp<__half>(PASS);                                                                 \
    }                                                                                                \
    __global__ void __launch_bounds__(256) family##_warp_bf16(ARGS(__nv_bfloat16)) {               \
        family##_warp<__nv_bfloat16>(PASS);                                                          \
    }                                                                                                \
    __global__ void __launch_bounds__(512) family##_block_f32(ARGS(float)) {                       \
        family##_block<float, 512>(PASS);                                                            \
    }                                                                                                \
    __global__ void __launch_bounds__(512) family##_block_f16(ARGS(__half)) {                      \
        family##_block<__half, 512>(PASS);                                                           \
    }                                                                                                \
    __global__ void __launch_bounds__(512) family##_block_bf16(ARGS(__nv_bfloat16)) {              \
        family##_block<__nv_bfloat16, 512>(PASS);                                                    \
    }                                                                                                \
    }

#define DISTILL_KD_ARGS(In)                                                                                                       \
    const In *s, const In *t, const int *labels, const unsigned char *counted, In *grad, float *rowOut, int rows, int V, float invT, \
        float kdWeight, float alpha, float t2, float scale, int teacherProbs, int needS1
#define DISTILL_KD_PASS s, t, labels, counted, grad, rowOut, rows, V, invT, kdWeight, alpha, t2, scale, teacherProbs, needS1

DISTILL_ROW_KERNELS(kd, DISTILL_KD_ARGS, DISTILL_KD_PASS)

// kd_tile_<t>_c<C>: the tiled KD kernels, 512 threads, two blocks per multiprocessor (KdPlan.java).
#define DISTILL_KD_TILE(T, sfx, C)                                                                                       \
    extern "C" __global__ void __launch_bounds__(512, 2)                                                                \
        kd_tile_##sfx##_c##C(DISTILL_KD_ARGS(T), int chunk, int cached, int flags) {                                     \
        kd_tile<T, 512, C>(DISTILL_KD_PASS, chunk, cached, flags);                                                     \
    }
#define DISTILL_KD_TILES(T, sfx) \
    DISTILL_KD_TILE(T, sfx, 1)   \
    DISTILL_KD_TILE(T, sfx, 2)   \
    DISTILL_KD_TILE(T, sfx, 3)   \
    DISTILL_KD_TILE(T, sfx, 4)   \
    DISTILL_KD_TILE(T, sfx, 5)   \
    DISTILL_KD_TILE(T, sfx, 6)   \
    DISTILL_KD_TILE(T, sfx, 7)   \
    DISTILL_KD_TILE(T, sfx, 8)   \
    DISTILL_KD_TILE(T, sfx, 16)

DISTILL_KD_TILES(float, f32)
DISTILL_KD_TILES(__half, f16)
DISTILL_KD_TILES(__nv_bfloat16, bf16)

#define DISTILL_TOPK_ARGS(In)                                                                                                  \
    const In *s, const int *ids, const float *lps, const unsigned char *counted, In *grad, float *rowOut, int rows, int V, int k, \
        float invT, float scale, int rest
#define DISTILL_TOPK_PASS s, ids, lps, counted, grad, rowOut, rows, V, k, invT, scale, rest

// rowOut[3 r] is KL over the buckets (times T^2 on the host); the block kernels take V / 8 bytes of dynamic
// shared memory for the membership bitmap.
DISTILL_ROW_KERNELS(topk, DISTILL_TOPK_ARGS, DISTILL_TOPK_PASS)

#define DISTILL_JSD_ARGS(In)                                                                                                        \
    const In *s, const In *t, const unsigned char *counted, In *grad, float *rowOut, int rows, int V, float invT, float beta, float t2, \
        float scale, int teacherProbs
#define DISTILL_JSD_PASS s, t, counted, grad, rowOut, rows, V, invT, beta, t2, scale, teacherProbs

DISTILL_ROW_KERNELS(gjsd, DISTILL_JSD_ARGS, DISTILL_JSD_PASS)

// ---- Inputs made on the device (tests and benchmarks of sizes no host array can hold) ----

namespace {

// A counter-based hash (splitmix64 finalizer): element i of stream `seed` is reproducible anywhere.
__device__ __forceinline__ float uniform_pm1(unsigned long long i, unsigned long long seed) {
    unsigned long long z = i + seed * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // 24 random bits -> [-1, 1)
}

template <typename T>
__device__ void fill_uniform(T* __restrict__ x, long long n, unsigned long long seed, float scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        x[i] = from_f<T>(scale * uniform_pm1((unsigned long long)i, seed));
    }
}

// ---- The unfused baseline of the benchmark suite: what a framework's separate ops do ----
// lsm: out = log_softmax(x / T) per row (two passes, one block per row), written as an [N, V] intermediate.
template <typename T, int BLOCK>
__device__ void log_softmax_rows(const T* __restrict__ x, T* __restrict__ out, int rows, int V, float invT) {
    __shared__ distill::Lse sh[BLOCK / 32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + (size_t)r * V;
        distill::Lse a = distill::lse_empty();
        for (int i = threadIdx.x; i < V; i += BLOCK) {
            distill::lse_push(a, to_f(xr[i]) * invT);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            a = distill::lse_merge(a, shfl_lse(a, o));
        }
        if (lane == 0) {
            sh[warp] = a;
        }
        __syncthreads();
        if (warp == 0) {
            a = lane < BLOCK / 32 ? sh[lane] : distill::lse_empty();
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                a = distill::lse_merge(a, shfl_lse(a, o));
            }
            if (lane == 0) {
                sh[0] = a;
            }
        }
        __syncthreads();
        const float lse = distill::lse_log(sh[0]);
        for (int i = threadIdx.x; i < V; i += BLOCK) {
            out[(size_t)r * V + i] = from_f<T>(to_f(xr[i]) * invT - lse);
        }
        __syncthreads();
    }
}

// Element-wise KD gradient and KL terms from the two log-softmax intermediates (alpha = 0).
template <typename T>
__device__ void kd_from_log_softmax(const T* __restrict__ logq, const T* __restrict__ logp, T* __restrict__ grad,
                                    float* __restrict__ klTerms, long long n, float kdWeightScale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float lq = to_f(logq[i]);
        float lp = to_f(logp[i]);
        float p = expf(lp);
        klTerms[i] = p * (lp - lq);
        grad[i] = from_f<T>(kdWeightScale * (expf(lq) - p));
    }
}

template <int BLOCK>
__device__ void row_sums(const float* __restrict__ x, float* __restrict__ out, int rows, int V, float factor) {
    __shared__ float sh[BLOCK / 32];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        float a = 0.f;
        for (int i = threadIdx.x; i < V; i += BLOCK) {
            a += x[(size_t)r * V + i];
        }
        a = warp_sum(a);
        if ((threadIdx.x & 31) == 0) {
            sh[threadIdx.x >> 5] = a;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            float total = 0.f;
            for (int w = 0; w < BLOCK / 32; w++) {
                total += sh[w];
            }
            out[r] = factor * total;
        }
        __syncthreads();
    }
}

}  // namespace

extern "C" {
// The benchmark suites' busy kernel (one thread): spins for `cycles` SM clocks, so that the host queues the timed
// work while the device is still busy and the events around that work time the device alone, not the host's launch.
__global__ void spin_cycles(long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) {
    }
}
__global__ void fill_uniform_f32(float* x, long long n, unsigned long long seed, float scale) {
    fill_uniform<float>(x, n, seed, scale);
}
__global__ void fill_uniform_f16(__half* x, long long n, unsigned long long seed, float scale) {
    fill_uniform<__half>(x, n, seed, scale);
}
__global__ void fill_uniform_bf16(__nv_bfloat16* x, long long n, unsigned long long seed, float scale) {
    fill_uniform<__nv_bfloat16>(x, n, seed, scale);
}
__global__ void __launch_bounds__(512) unfused_log_softmax_f32(const float* x, float* out, int rows, int V, float invT) {
    log_softmax_rows<float, 512>(x, out, rows, V, invT);
}
__global__ void __launch_bounds__(512) unfused_log_softmax_bf16(const __nv_bfloat16* x, __nv_bfloat16* out, int rows, int V,
                                                                 float invT) {
    log_softmax_rows<__nv_bfloat16, 512>(x, out, rows, V, invT);
}
__global__ void unfused_kd_grad_f32(const float* logq, const float* logp, float* grad, float* klTerms, long long n, float s) {
    kd_from_log_softmax<float>(logq, logp, grad, klTerms, n, s);
}
__global__ void unfused_kd_grad_bf16(const __nv_bfloat16* logq, const __nv_bfloat16* logp, __nv_bfloat16* grad, float* klTerms,
                                     long long n, float s) {
    kd_from_log_softmax<__nv_bfloat16>(logq, logp, grad, klTerms, n, s);
}
__global__ void __launch_bounds__(512) unfused_row_sums_f32(const float* x, float* out, int rows, int V, float factor) {
    row_sums<512>(x, out, rows, V, factor);
}
}

// ---- the batching core: stored teacher rows, copied to the device as they are on disk, unpacked here ----
extern "C" {
// Top-k rows -> int32 ids and float32 log-probabilities, [rows, k] each (the topk_* kernels' inputs). An id
// not below V is written as 0 and the lowest such row goes to *badRow (which the host sets to INT_MAX
// first), so the host can name the row instead of letting a loss kernel index past the vocabulary.
__global__ void unpack_topk_rows(const unsigned char* raw, long long rowBytes, int rows, int k, int idBytes, int codec, int V,
                                 int* ids, float* lps, int* badRow) {
    long long n = (long long) rows * k;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        long long r = i / k;
        int id;
        float lp;
        int ok = distill::topk_entry(raw + r * rowBytes, (int) (i - r * k), k, idBytes, codec, V, &id, &lp);
        ids[i] = ok ? id : 0;
        lps[i] = lp;
        if (!ok) {
            atomicMin(badRow, (int) r);
        }
    }
}

// Dense rows -> float32 [rows, V] (the teacher input of the kd_* / gjsd_* f32 kernels).
__global__ void unpack_dense_rows(const unsigned char* raw, long long rowBytes, int rows, int V, int codec, float* out) {
    long long n = (long long) rows * V;
    int vb = distill::codec_bytes(codec);
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        long long r = i / V;
        out[i] = distill::store_value(raw + r * rowBytes + (i - r * V) * vb, codec);
    }
}
}

// ---- the GPU MLP engine's element-wise kernels (mlp_math.cuh); its GEMMs are cuBLASLt's ----
// Grid-stride loops over n elements (any 1-D launch), fp32 math, except mlp_bias_grad_f32: exactly
// DISTILL_MLP_BG_THREADS = 1024 threads per block (see mlp_math.cuh). Activation codes are
// MlpSpec.Activation ordinals. bf16 outputs are rounded to nearest even (__float2bfloat16_rn).
extern "C" {
// y = act(z + bias[col]) in place over row-major [rows, cols]; the pre-activation z + bias goes to preOut
// when it is not null (the backward's input; preOut may be zOrY itself). bias may be null.
__global__ void mlp_bias_act_f32(float* zOrY, const float* bias, long long rows, int cols, int act, float* preOut) {
    long long n = rows * cols;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float pre = distill::mlp_pre(zOrY[i], bias, i, cols);
        if (preOut != nullptr) {
            preOut[i] = pre;
        }
        zOrY[i] = distill::mlp_act(pre, act);
    }
}

// The same from fp32 z, writing the activation in bf16 (the next GEMM's input in mixed precision) and the
// fp32 pre-activation to preOut when it is not null (preOut may be z itself).
__global__ void mlp_bias_act_bf16out(const float* z, const float* bias, long long rows, int cols, int act, __nv_bfloat16* y,
                                     float* preOut) {
    long long n = rows * cols;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float pre = distill::mlp_pre(z[i], bias, i, cols);
        if (preOut != nullptr) {
            preOut[i] = pre;
        }
        y[i] = __float2bfloat16_rn(distill::mlp_act(pre, act));
    }
}

// dz = dy * act'(pre), in place over [rows, cols].
__global__ void mlp_act_backward_f32(float* dy, const float* pre, long long rows, int cols, int act) {
    long long n = rows * cols;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        dy[i] = dy[i] * distill::mlp_act_grad(pre[i], act);
    }
}

// The same, also writing dz in bf16 (the backward GEMMs' input in mixed precision).
__global__ void mlp_act_backward_bf16out(float* dy, const float* pre, long long rows, int cols, int act, __nv_bfloat16* dzBf16) {
    long long n = rows * cols;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float dz = dy[i] * distill::mlp_act_grad(pre[i], act);
        dy[i] = dz;
        dzBf16[i] = __float2bfloat16_rn(dz);
    }
}

// y = bf16(x), rounded to nearest even, over n elements.
__global__ void mlp_to_bf16(const float* x, __nv_bfloat16* y, long long n) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        y[i] = __float2bfloat16_rn(x[i]);
    }
}

// dbias[c] = sum over rows of dz[r, c], deterministic: blockDim.x must be 1024 (1-D), any grid (ceil(cols / 32)
// blocks is natural), no dynamic shared memory.
__global__ void __launch_bounds__(DISTILL_MLP_BG_THREADS) mlp_bias_grad_f32(const float* dz, long long rows, int cols, float* dbias) {
    __shared__ float part[DISTILL_MLP_BG_LANES][DISTILL_MLP_BG_COLS + 1];
    const int cx = threadIdx.x % DISTILL_MLP_BG_COLS;
    const int lane = threadIdx.x / DISTILL_MLP_BG_COLS;
    for (long long c0 = (long long) blockIdx.x * DISTILL_MLP_BG_COLS; c0 < cols; c0 += (long long) gridDim.x * DISTILL_MLP_BG_COLS) {
        const int c = (int) c0 + cx;
        part[lane][cx] = c < cols ? distill::mlp_bias_grad_lane(dz, rows, cols, c, lane) : 0.f;
        __syncthreads();
        if (lane == 0 && c < cols) {
            dbias[c] = distill::mlp_bias_grad_tree(&part[0][cx], DISTILL_MLP_BG_COLS + 1);
        }
        __syncthreads();
    }
}

// Sets *halted when the step's loss flagged a row of its rows (rowOut[3 r + 2] not 0, NaN included: a non-finite
// logit, a teacher row without mass, ...), before the optimizer's launch: mlp_adam_f32 / mlp_sgd_f32 then leave the
// parameters, their bf16 copy and the optimizer state as they were, in that step and in every step queued after it
// (the host sees the flag only when it reads the step's rows back, and refuses further steps then). Only the host
// clears *halted (once, when the engine starts).
__global__ void mlp_step_guard(const float* rowOut, int rows, int* halted) {
    for (long long r = blockIdx.x * (long long) blockDim.x + threadIdx.x; r < rows; r += (long long) gridDim.x * blockDim.x) {
        if (!(rowOut[3 * r + 2] == 0.f)) {
            *halted = 1;  // every writer writes 1: no order needed
        }
    }
}

// One Adam step over n parameters (mlp_math.cuh): alphaT = lr sqrt(1 - beta2^t) / (1 - beta1^t), computed by
// the host in float64 for step t = 1, 2, ...; weightDecay is decoupled (lr * weightDecay * p, 0 for none).
// When pBf16 is not null it receives the updated weights in bf16 (the GEMMs' copy in mixed precision).
// When alphaTDev is not null, alphaT is read from it instead (a replayed CUDA graph: the host writes each
// step's value there before the launch). When halted is not null and *halted is not 0 (mlp_step_guard), nothing
// changes.
__global__ void mlp_adam_f32(float* p, const float* g, float* m, float* v, long long n, float lr, float beta1, float beta2, float eps,
                             float weightDecay, float alphaT, __nv_bfloat16* pBf16, const float* alphaTDev, const int* halted) {
    if (halted != nullptr && *halted != 0) {
        return;
    }
    if (alphaTDev != nullptr) {
        alphaT = *alphaTDev;
    }
    const float lrWd = lr * weightDecay;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float mi = m[i];
        float vi = v[i];
        float pi = distill::mlp_adam_element(p[i], g[i], mi, vi, beta1, beta2, eps, lrWd, alphaT);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
        if (pBf16 != nullptr) {
            pBf16[i] = __float2bfloat16_rn(pi);
        }
    }
}

// p -= lr g over n parameters; pBf16 and halted as for Adam.
__global__ void mlp_sgd_f32(float* p, const float* g, long long n, float lr, __nv_bfloat16* pBf16, const int* halted) {
    if (halted != nullptr && *halted != 0) {
        return;
    }
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float pi = p[i] - lr * g[i];
        p[i] = pi;
        if (pBf16 != nullptr) {
            pBf16[i] = __float2bfloat16_rn(pi);
        }
    }
}

// Inverted dropout in place (mlp_math.cuh): x[i] = keep ? x[i] / (1 - dropProb) : 0, mask[i] = keep (1 or 0),
// keep drawn from (seed, offset + i). dropProb is the probability of dropping, in [0, 1). When seedDev is not
// null, the seed is read from it instead (a replayed CUDA graph: the host writes each step's seed there).
__global__ void mlp_dropout_f32(float* x, unsigned char* mask, long long n, float dropProb, unsigned long long seed,
                                unsigned long long offset, const unsigned long long* seedDev) {
    if (seedDev != nullptr) {
        seed = *seedDev;
    }
    const float scale = distill::mlp_dropout_scale(dropProb);
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        bool keep = distill::mlp_dropout_keep(seed, offset, i, dropProb);
        mask[i] = keep ? 1 : 0;
        x[i] = keep ? x[i] * scale : 0.f;
    }
}

// The same on a bf16 tensor (a mixed-precision layer input): x = bf16(float(x) * scale) or 0.
__global__ void mlp_dropout_bf16(__nv_bfloat16* x, unsigned char* mask, long long n, float dropProb, unsigned long long seed,
                                 unsigned long long offset, const unsigned long long* seedDev) {
    if (seedDev != nullptr) {
        seed = *seedDev;
    }
    const float scale = distill::mlp_dropout_scale(dropProb);
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        bool keep = distill::mlp_dropout_keep(seed, offset, i, dropProb);
        mask[i] = keep ? 1 : 0;
        x[i] = __float2bfloat16_rn(keep ? __bfloat162float(x[i]) * scale : 0.f);
    }
}

// The backward of dropout: dx[i] = mask[i] ? dx[i] / (1 - dropProb) : 0, in place, with the forward's mask.
__global__ void mlp_dropout_backward_f32(float* dx, const unsigned char* mask, long long n, float dropProb) {
    const float scale = distill::mlp_dropout_scale(dropProb);
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        dx[i] = mask[i] ? dx[i] * scale : 0.f;
    }
}
}
