// Runs the GPU MLP engine's element-wise math (mlp_math.cuh) on the CPU, element by element as the mlp_*
// kernels of distill_losses.cu do; the bias gradient in the kernel's exact reduction order (32 lanes per
// column, then the fixed tree). bf16 outputs are rounded to nearest even, as __float2bfloat16_rn.
// MlpKernelAlgebraTest (JUnit) writes the inputs and compares the outputs with the float64 oracle.
//
//   mlp_math_host_test IN OUT
// IN and OUT are little endian, fields packed; IN starts with int32 mode:
//   0 bias + activation: int32 act, int64 rows, int32 cols, int32 hasBias; f32 z[n], f32 bias[cols] (hasBias)
//     OUT: f32 y[n] and f32 pre[n] (mlp_bias_act_f32), u16 yBf16[n] and f32 pre[n] (mlp_bias_act_bf16out)
//   1 activation backward: int32 act, int64 rows, int32 cols; f32 dy[n], f32 pre[n]
//     OUT: f32 dz[n] (mlp_act_backward_f32)
//   2 bias gradient: int64 rows, int32 cols; f32 dz[n]
//     OUT: f32 dbias[cols] (mlp_bias_grad_f32)
//   3 Adam: int64 n, int32 steps, f32 lr, beta1, beta2, eps, weightDecay, f32 alphaT[steps], f32 p[n],
//     f32 g[steps][n] (m = v = 0 at the start)
//     OUT: per step f32 p[n] and u16 pBf16[n]; then f32 m[n], f32 v[n] (mlp_adam_f32)
//   4 SGD: int64 n, int32 steps, f32 lr, f32 p[n], f32 g[steps][n]
//     OUT: per step f32 p[n] and u16 pBf16[n] (mlp_sgd_f32)
//   5 dropout: int64 n, f32 dropProb, u64 seed, u64 offset, int32 bf16; x[n] (f32, or u16 bf16 bits), f32 dx[n]
//     OUT: x[n] (as given), u8 mask[n] (mlp_dropout_f32 / mlp_dropout_bf16), f32 dx[n] (mlp_dropout_backward_f32)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mlp_math.cuh"

namespace {

FILE* in;
FILE* out;

template <typename T>
T get() {
    T v;
    if (fread(&v, sizeof(T), 1, in) != 1) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
    return v;
}

template <typename T>
std::vector<T> get(long long n) {
    std::vector<T> v((size_t) n);
    if (n > 0 && fread(v.data(), sizeof(T), (size_t) n, in) != (size_t) n) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
    return v;
}

template <typename T>
void put(const std::vector<T>& v) {
    if (!v.empty() && fwrite(v.data(), sizeof(T), v.size(), out) != v.size()) {
        perror("write");
        exit(2);
    }
}

// __float2bfloat16_rn: round to nearest even (a NaN stays a NaN, quiet).
uint16_t bf16(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t) ((b >> 16) | 0x40u);
    }
    return (uint16_t) ((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

float from_bf16(uint16_t h) {
    uint32_t b = (uint32_t) h << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

void bias_act() {
    int act = get<int32_t>();
    long long rows = get<int64_t>();
    int cols = get<int32_t>();
    int hasBias = get<int32_t>();
    long long n = rows * cols;
    std::vector<float> z = get<float>(n);
    std::vector<float> bias = hasBias ? get<float>(cols) : std::vector<float>();
    const float* b = hasBias ? bias.data() : nullptr;
    // mlp_bias_act_f32 (in place, preOut given)
    std::vector<float> y = z;
    std::vector<float> pre(n);
    for (long long i = 0; i < n; i++) {
        float p = distill::mlp_pre(y[i], b, i, cols);
        pre[i] = p;
        y[i] = distill::mlp_act(p, act);
    }
    // mlp_bias_act_bf16out
    std::vector<uint16_t> yb(n);
    std::vector<float> pre2(n);
    for (long long i = 0; i < n; i++) {
        float p = distill::mlp_pre(z[i], b, i, cols);
        pre2[i] = p;
        yb[i] = bf16(distill::mlp_act(p, act));
    }
    put(y);
    put(pre);
    put(yb);
    put(pre2);
}

void act_backward() {
    int act = get<int32_t>();
    long long rows = get<int64_t>();
    int cols = get<int32_t>();
    long long n = rows * cols;
    std::vector<float> dy = get<float>(n);
    std::vector<float> pre = get<float>(n);
    for (long long i = 0; i < n; i++) {
        dy[i] = dy[i] * distill::mlp_act_grad(pre[i], act);
    }
    put(dy);
}

void bias_grad() {
    long long rows = get<int64_t>();
    int cols = get<int32_t>();
    std::vector<float> dz = get<float>(rows * cols);
    std::vector<float> dbias(cols);
    // one block's column chunks in turn; within a chunk, every (lane, column) thread, then lane 0's tree
    float part[DISTILL_MLP_BG_LANES][DISTILL_MLP_BG_COLS + 1];
    for (long long c0 = 0; c0 < cols; c0 += DISTILL_MLP_BG_COLS) {
        for (int t = 0; t < DISTILL_MLP_BG_THREADS; t++) {
            int cx = t % DISTILL_MLP_BG_COLS;
            int lane = t / DISTILL_MLP_BG_COLS;
            int c = (int) c0 + cx;
            part[lane][cx] = c < cols ? distill::mlp_bias_grad_lane(dz.data(), rows, cols, c, lane) : 0.f;
        }
        for (int cx = 0; cx < DISTILL_MLP_BG_COLS; cx++) {
            int c = (int) c0 + cx;
            if (c < cols) {
                dbias[c] = distill::mlp_bias_grad_tree(&part[0][cx], DISTILL_MLP_BG_COLS + 1);
            }
        }
    }
    put(dbias);
}

void adam() {
    long long n = get<int64_t>();
    int steps = get<int32_t>();
    float lr = get<float>();
    float beta1 = get<float>();
    float beta2 = get<float>();
    float eps = get<float>();
    float weightDecay = get<float>();
    std::vector<float> alphaT = get<float>(steps);
    std::vector<float> p = get<float>(n);
    std::vector<float> m(n, 0.f);
    std::vector<float> v(n, 0.f);
    std::vector<uint16_t> pb(n);
    const float lrWd = lr * weightDecay;
    for (int t = 0; t < steps; t++) {
        std::vector<float> g = get<float>(n);
        for (long long i = 0; i < n; i++) {
            float mi = m[i];
            float vi = v[i];
            float pi = distill::mlp_adam_element(p[i], g[i], mi, vi, beta1, beta2, eps, lrWd, alphaT[t]);
            m[i] = mi;
            v[i] = vi;
            p[i] = pi;
            pb[i] = bf16(pi);
        }
        put(p);
        put(pb);
    }
    put(m);
    put(v);
}

void sgd() {
    long long n = get<int64_t>();
    int steps = get<int32_t>();
    float lr = get<float>();
    std::vector<float> p = get<float>(n);
    std::vector<uint16_t> pb(n);
    for (int t = 0; t < steps; t++) {
        std::vector<float> g = get<float>(n);
        for (long long i = 0; i < n; i++) {
            float pi = p[i] - lr * g[i];
            p[i] = pi;
            pb[i] = bf16(pi);
        }
        put(p);
        put(pb);
    }
}

void dropout() {
    long long n = get<int64_t>();
    float dropProb = get<float>();
    unsigned long long seed = get<uint64_t>();
    unsigned long long offset = get<uint64_t>();
    int isBf16 = get<int32_t>();
    std::vector<float> x;
    std::vector<uint16_t> xb;
    if (isBf16) {
        xb = get<uint16_t>(n);
    } else {
        x = get<float>(n);
    }
    std::vector<float> dx = get<float>(n);
    std::vector<uint8_t> mask(n);
    const float scale = distill::mlp_dropout_scale(dropProb);
    for (long long i = 0; i < n; i++) {
        bool keep = distill::mlp_dropout_keep(seed, offset, i, dropProb);
        mask[i] = keep ? 1 : 0;
        if (isBf16) {
            xb[i] = bf16(keep ? from_bf16(xb[i]) * scale : 0.f);
        } else {
            x[i] = keep ? x[i] * scale : 0.f;
        }
    }
    for (long long i = 0; i < n; i++) {
        dx[i] = mask[i] ? dx[i] * scale : 0.f;
    }
    if (isBf16) {
        put(xb);
    } else {
        put(x);
    }
    put(mask);
    put(dx);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: mlp_math_host_test IN OUT\n");
        return 2;
    }
    in = fopen(argv[1], "rb");
    if (in == nullptr) {
        perror(argv[1]);
        return 2;
    }
    out = fopen(argv[2], "wb");
    if (out == nullptr) {
        perror(argv[2]);
        return 2;
    }
    switch (get<int32_t>()) {
        case 0:
            bias_act();
            break;
        case 1:
            act_backward();
            break;
        case 2:
            bias_grad();
            break;
        case 3:
            adam();
            break;
        case 4:
            sgd();
            break;
        case 5:
            dropout();
            break;
        default:
            fprintf(stderr, "unknown mode\n");
            return 2;
    }
    fclose(in);
    return fclose(out) == 0 ? 0 : 2;
}
