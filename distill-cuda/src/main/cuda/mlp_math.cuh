// Element-wise math of the GPU MLP engine (the GEMMs are cuBLASLt's), shared by the mlp_* kernels of
// distill_losses.cu (device) and by a host harness (src/test/cuda/mlp_math_host_test.cpp, compiled with
// g++) that MlpKernelAlgebraTest checks against the float64 oracle (MlpSpec.Activation, MlpReference).
// Everything is fp32; no function overflows or loses a result to cancellation for any finite input.
//
// Activations (codes = MlpSpec.Activation ordinals):
//   0 IDENTITY  z                     1
//   1 RELU      max(z, 0)             [z > 0]
//   2 TANH      tanh z                1 - tanh^2 z = 4 e / (1 + e)^2, e = exp(-2|z|)
//   3 SIGMOID   s(z)                  s(z) (1 - s(z))
//   4 GELU_SIGMOID (DL4J's default GELU)
//               z s(1.702 z)          s(x) + x s(x) (1 - s(x)), x = 1.702 z
// s and 1 - s are both taken from e = exp(-|x|) <= 1 (no exp overflow, no 1 - s cancellation), so the
// derivatives keep their relative accuracy far into the tails (|z| = 80 and beyond).
//
// Adam, as DL4J applies it (MlpReference.update), with decoupled weight decay on the parameter as it was
// before the step:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p - (alphaT m / (sqrt(v) + eps) + lr wd p),  alphaT = lr sqrt(1 - b2^t) / (1 - b1^t) (host, from the fp32
//   lr and betas, as DL4J's native updater: DeviceMlpRunner.adamAlphaT)
//
// Dropout (inverted, as DL4J's Dropout): dropProb is the probability of DROPPING a unit (MlpSpec.Layer
// .dropout; DL4J's Dropout(p) takes p = 1 - dropProb, the probability of keeping one). A kept unit is
// scaled by scale = 1 / (1 - dropProb) (computed in fp32 as 1.f / (1.f - dropProb)), a dropped one is 0.
// Element i keeps its unit when u_i >= dropProb, u_i = the top 24 bits of
// mix64(mix64(seed) + (offset + i) * 0x9E3779B97F4A7C15) / 2^24 (element offset + i of a SplitMix64 stream
// started at mix64(seed)): a mask depends only on (seed, offset + i), so a launch over elements
// [a, b) with offset + a reproduces those elements of a whole launch, and the backward applies the stored
// mask. Give every (step, layer) its own counter range (e.g. offset += n after each launch) or seed: the engine
// passes MlpDropoutMask.stepSeed(runSeed, step), itself mixed from the run's seed (not runSeed + step, which made the
// masks of runs seeded s and s + 1 the same one step apart), and a counter offset of layer << 40.
#pragma once

#ifndef __CUDACC__
#include <cmath>
#define DISTILL_MLP_HD inline
#define DISTILL_MLP_EXP std::exp
#define DISTILL_MLP_TANH std::tanh
#define DISTILL_MLP_SQRT std::sqrt
#define DISTILL_MLP_FABS std::fabs
#define DISTILL_MLP_UNROLL
#else
#define DISTILL_MLP_HD __host__ __device__ __forceinline__
#define DISTILL_MLP_EXP expf
#define DISTILL_MLP_TANH tanhf
#define DISTILL_MLP_SQRT sqrtf
#define DISTILL_MLP_FABS fabsf
#define DISTILL_MLP_UNROLL _Pragma("unroll")
#endif

namespace distill {

enum MlpAct { MLP_IDENTITY = 0, MLP_RELU = 1, MLP_TANH = 2, MLP_SIGMOID = 3, MLP_GELU_SIGMOID = 4 };

// DL4J's GELU (ActivationGELU, precise = false): x sigmoid(1.702 x).
#define DISTILL_MLP_GELU_K 1.702f

// s = sigmoid(x) and c = 1 - sigmoid(x), each to a few ulps for every finite x.
DISTILL_MLP_HD void mlp_sigmoid2(float x, float& s, float& c) {
    float e = DISTILL_MLP_EXP(-DISTILL_MLP_FABS(x));  // (0, 1]: never overflows
    float big = 1.f / (1.f + e);                       // sigmoid(|x|)
    float small = e * big;                             // 1 - sigmoid(|x|) = e / (1 + e)
    if (x >= 0.f) {
        s = big;
        c = small;
    } else {
        s = small;
        c = big;
    }
}

// The activation of pre-activation z.
DISTILL_MLP_HD float mlp_act(float z, int act) {
    float s, c;
    switch (act) {
        case MLP_RELU:
            return z > 0.f ? z : 0.f;
        case MLP_TANH:
            return DISTILL_MLP_TANH(z);
        case MLP_SIGMOID:
            mlp_sigmoid2(z, s, c);
            return s;
        case MLP_GELU_SIGMOID:
            mlp_sigmoid2(DISTILL_MLP_GELU_K * z, s, c);
            return z * s;
        default:
            return z;
    }
}

// The activation's derivative at pre-activation z.
DISTILL_MLP_HD float mlp_act_grad(float z, int act) {
    float s, c;
    switch (act) {
        case MLP_RELU:
            return z > 0.f ? 1.f : 0.f;
        case MLP_TANH: {
            float e = DISTILL_MLP_EXP(-2.f * DISTILL_MLP_FABS(z));
            float d = 1.f + e;
            return 4.f * e / (d * d);
        }
        case MLP_SIGMOID:
            mlp_sigmoid2(z, s, c);
            return s * c;
        case MLP_GELU_SIGMOID: {
            // |x| > 104 changes nothing (e = exp(-|x|) is 0 already); the clamp keeps x finite, so no inf * 0
            float x = DISTILL_MLP_GELU_K * z;
            x = x > 128.f ? 128.f : (x < -128.f ? -128.f : x);
            mlp_sigmoid2(x, s, c);
            return s + x * s * c;
        }
        default:
            return 1.f;
    }
}

// Element i of a row-major [rows, cols] tensor: its pre-activation z + bias[col] (bias may be null).
DISTILL_MLP_HD float mlp_pre(float z, const float* bias, long long i, int cols) {
    return bias != nullptr ? z + bias[i % cols] : z;
}

// One Adam step of one parameter (see the top): updates m and v, returns the new p. lrWd = lr * wd.
DISTILL_MLP_HD float mlp_adam_element(float p, float g, float& m, float& v, float beta1, float beta2, float eps, float lrWd,
                                      float alphaT) {
    float mm = beta1 * m + (1.f - beta1) * g;
    float vv = beta2 * v + (1.f - beta2) * g * g;
    m = mm;
    v = vv;
    return p - (alphaT * mm / (DISTILL_MLP_SQRT(vv) + eps) + lrWd * p);
}

// ---- dropout ----

DISTILL_MLP_HD unsigned long long mlp_mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Whether element i of a launch keeps its unit (see the top).
DISTILL_MLP_HD bool mlp_dropout_keep(unsigned long long seed, unsigned long long offset, long long i, float dropProb) {
    unsigned long long z = mlp_mix64(mlp_mix64(seed) + (offset + (unsigned long long) i) * 0x9E3779B97F4A7C15ull);
    float u = (float) (z >> 40) * (1.f / 16777216.f);  // 24 random bits -> [0, 1), exactly
    return u >= dropProb;
}

DISTILL_MLP_HD float mlp_dropout_scale(float dropProb) {
    return 1.f / (1.f - dropProb);
}

// ---- bias gradient: column sums of dz [rows, cols], in a fixed order (no atomics) ----
// mlp_bias_grad_f32 runs blocks of MLP_BG_THREADS = 1024 threads (exactly; the order depends on it), each
// block 32 columns at a time (grid-stride over column chunks: any grid gives the same bits; ceil(cols / 32)
// blocks is the natural grid), 4,224 bytes of static shared memory. Thread t takes column chunk + (t & 31)
// and lane l = t >> 5: lane l sums rows l, l + 32, l + 64, ... in that order (mlp_bias_grad_lane), then one
// thread per column adds the 32 lane sums in a fixed tree (mlp_bias_grad_tree): a[i] += a[i + h] for
// h = 16, 8, 4, 2, 1. Same inputs, same bits, whatever the device.
#define DISTILL_MLP_BG_COLS 32
#define DISTILL_MLP_BG_LANES 32
#define DISTILL_MLP_BG_THREADS (DISTILL_MLP_BG_COLS * DISTILL_MLP_BG_LANES)

DISTILL_MLP_HD float mlp_bias_grad_lane(const float* dz, long long rows, int cols, int col, int lane) {
    float a = 0.f;
    for (long long r = lane; r < rows; r += DISTILL_MLP_BG_LANES) {
        a += dz[r * cols + col];
    }
    return a;
}

// The 32 lane sums part[0], part[stride], ..., part[31 * stride], added in the fixed tree.
DISTILL_MLP_HD float mlp_bias_grad_tree(const float* part, int stride) {
    float a[DISTILL_MLP_BG_LANES];
    DISTILL_MLP_UNROLL
    for (int l = 0; l < DISTILL_MLP_BG_LANES; l++) {
        a[l] = part[l * stride];
    }
    DISTILL_MLP_UNROLL
    for (int h = DISTILL_MLP_BG_LANES / 2; h > 0; h >>= 1) {
        DISTILL_MLP_UNROLL
        for (int l = 0; l < h; l++) {
            a[l] += a[l + h];
        }
    }
    return a[0];
}

}  // namespace distill
