// Unpacking soft-target store rows (distill-core's SoftTargetStore format) on the device, shared by the
// kernels and by a host harness (src/test/cuda/store_rows_host_test.cpp, compiled with g++) that checks
// it byte for byte against the Java reader.
//
// A stored row is little-endian and not aligned: a top-k row is k ids of idBytes (2, 3 or 4) bytes, then
// k values; a dense row is V values. Values are f32, f16 or bf16 (codec 0, 1, 2, as ValueCodec's header
// codes). The batching core copies these rows to the device as they are on disk, so a top-k batch
// crosses PCIe at k x (idBytes + 2) bytes per row instead of 4 V.
#pragma once

#ifndef __CUDACC__
#include <cstdint>
#include <cstring>
#define DISTILL_SR_HD inline
#else
#define DISTILL_SR_HD __host__ __device__ __forceinline__
#endif

namespace distill {

DISTILL_SR_HD unsigned int load_le(const unsigned char* p, int bytes) {
    unsigned int v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (unsigned int) p[i] << (8 * i);
    }
    return v;
}

DISTILL_SR_HD float bits_to_float(unsigned int bits) {
#ifdef __CUDACC__
    return __uint_as_float(bits);
#else
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
#endif
}

// IEEE half to float, exactly (every half is a float): normals, subnormals, zeros, infinities, NaN.
DISTILL_SR_HD float half_bits_to_float(unsigned int h) {
    unsigned int sign = (h & 0x8000u) << 16;
    unsigned int exp = (h >> 10) & 0x1fu;
    unsigned int mant = h & 0x3ffu;
    if (exp == 0x1fu) {
        return bits_to_float(sign | 0x7f800000u | (mant << 13));
    }
    if (exp == 0) {
        if (mant == 0) {
            return bits_to_float(sign);
        }
        // subnormal: mant * 2^-24, normalized into a float
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while ((mant & 0x400u) == 0);
        mant &= 0x3ffu;
        return bits_to_float(sign | ((unsigned int) (127 - 15 - e) << 23) | (mant << 13));
    }
    return bits_to_float(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

// One stored value at p (codec 0 f32, 1 f16, 2 bf16).
DISTILL_SR_HD float store_value(const unsigned char* p, int codec) {
    if (codec == 0) {
        return bits_to_float(load_le(p, 4));
    }
    unsigned int h = load_le(p, 2);
    return codec == 1 ? half_bits_to_float(h) : bits_to_float(h << 16);
}

DISTILL_SR_HD int codec_bytes(int codec) {
    return codec == 0 ? 4 : 2;
}

// Entry j of a top-k row: its class id and log-probability. Returns 0 when the id is not below V.
DISTILL_SR_HD int topk_entry(const unsigned char* row, int j, int k, int idBytes, int codec, int V, int* id, float* lp) {
    unsigned int raw = load_le(row + (long long) j * idBytes, idBytes);
    *id = (int) raw;
    *lp = store_value(row + (long long) k * idBytes + (long long) j * codec_bytes(codec), codec);
    return raw < (unsigned int) V ? 1 : 0;
}

}  // namespace distill
