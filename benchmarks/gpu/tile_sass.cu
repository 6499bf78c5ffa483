// Instruction counts of the tiled KD kernels (tile-sass.sh compiles this and counts the SASS): the element math,
// each loop's: pass 1 (kd_tile_push) and pass 2 (kd_tile_grad + pack_word) on 16-byte words of student and
// teacher logits, logit teacher, alpha 0, T != 1, as the suite runs them (pass 1's student check read once after the
// loop, as kd_tile reads it per row); and a row's exchange (tile_exchange),
// the whole function's. Not shipped; a measuring aid.
#include "../../distill-cuda/src/main/cuda/distill_losses.cu"

template <typename In>
__global__ void tile_pass1(const uint4* s, const uint4* t, int words, float c, float* out) {
    TileAcc a = tile_empty();
    TileChecks<In> checks;
    for (int j = threadIdx.x; j < words; j += blockDim.x) {
        kd_tile_push<In>(a, s[j], t[j], c, true, false, 0, checks);
    }
    out[threadIdx.x] = a.zst + a.zt + a.ms + a.mt + (checks.student.bad() ? 1.f : 0.f);
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

// One row's exchange (tile_exchange, as kd_tile calls it: logit teacher, needS1 false) for clusters of C blocks.
template <int C>
__global__ void __launch_bounds__(512, 2) tile_exchange_c(const KdSlot* in, KdSlot* out, int k) {
    __shared__ KdSlot warpSlots[2][16];
    __shared__ KdSlot slots[2];
    out[threadIdx.x] = tile_exchange<16, C>(in[threadIdx.x], warpSlots[k & 1], &slots[k & 1], false, true);
}

template __global__ void tile_exchange_c<1>(const KdSlot*, KdSlot*, int);
template __global__ void tile_exchange_c<2>(const KdSlot*, KdSlot*, int);
template __global__ void tile_exchange_c<8>(const KdSlot*, KdSlot*, int);
