// Distill4J CUDA emulator: the fp16 type as kernels compiled for the CPU see it (IEEE binary16, round to
// nearest even, subnormals, overflow to infinity), standing in for the toolkit's <cuda_fp16.h>.
#pragma once
#include <cstdint>
#include <cstring>

struct __half {
    uint16_t bits;
};

inline float __half2float(__half h) {
    uint32_t sign = (uint32_t) (h.bits & 0x8000u) << 16;
    uint32_t exp = (h.bits >> 10) & 0x1fu;
    uint32_t man = h.bits & 0x3ffu;
    uint32_t u;
    if (exp == 0x1fu) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else {  // subnormal: normalize
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while ((man & 0x400u) == 0);
        u = sign | ((uint32_t) (112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline __half __float2half_rn(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t) ((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u) {
        h.bits = (uint16_t) (sign | 0x7e00u);
        return h;
    }
    if (a >= 0x477ff000u) {  // rounds to >= 65520: infinity
        h.bits = (uint16_t) (sign | 0x7c00u);
        return h;
    }
    if (a < 0x38800000u) {  // below 2^-14: subnormal or zero
        if (a < 0x33000000u) {  // below half the smallest subnormal (2^-25): zero
            h.bits = sign;
            return h;
        }
        uint32_t exp = a >> 23;
        uint32_t man = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - exp;  // 2^-24 units: man * 2^(exp - 150) / 2^-24 = man >> (126 - exp)
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) {
            q++;
        }
        h.bits = (uint16_t) (sign | q);
        return h;
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
    h.bits = (uint16_t) (sign | (r >> 13));
    return h;
}
