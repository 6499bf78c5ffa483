// Instruction counts of the tiled KD kernels' element math (tile-sass.sh compiles this and counts the SASS of
// each loop): pass 1 (kd_tile_push) and pass 2 (kd_tile_grad + pack_word) on 16-byte words of student and
// teacher logits, logit teacher, alpha 0, T != 1, as the suite runs them. Not shipped; a measuring aid.
#include "../../distill-cuda/src/main/cuda/distill_losses.cu"

template <typename In>
__global__ void tile_pass1(const uint4* s, const uint4* t, int words, float c, float* out) {
    TileAcc a = tile_empty();
    int bad = 0;
    for (int j = threadIdx.x; j < words; j += blockDim.x) {
        kd_tile_push<In>(a, s[j], t[j], c, true, false, 0, bad);
    }
    out[threadIdx.x] = a.zst + a.zt + a.ms + a.mt + bad;
}

template <typename In>
__global__ void tile_pass2(const uint4* s, const uint4* t, uint4* g, int words, float c, TileRow row, float* out) {
    float kl2 = 0.f;
    for (int j = threadIdx.x; j < words; j += blockDim.x) {
        float v[16 / sizeof(In)];
        kd_tile_grad<In, false>(row, s[j], t[j], c, true, false, 0, j, -1, kl2, v);
        g[j] = pack_word<In>(v);
    }
    out[threadIdx.x] = kl2;
}

template __global__ void tile_pass1<float>(const uint4*, const uint4*, int, float, float*);
template __global__ void tile_pass1<__nv_bfloat16>(const uint4*, const uint4*, int, float, float*);
template __global__ void tile_pass2<float>(const uint4*, const uint4*, uint4*, int, float, TileRow, float*);
template __global__ void tile_pass2<__nv_bfloat16>(const uint4*, const uint4*, uint4*, int, float, TileRow, float*);
