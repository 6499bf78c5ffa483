// Distill4J CUDA emulator: the bf16 type as kernels compiled for the CPU see it (round to nearest even,
// NaN kept quiet), standing in for the toolkit's <cuda_bf16.h>. Only what distill_losses.cu uses.
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
    uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t) h.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        h.bits = (uint16_t) ((u >> 16) | 0x0040u);  // quiet NaN, sign kept
        return h;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    h.bits = (uint16_t) (u >> 16);
    return h;
}
