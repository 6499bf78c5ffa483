// Runs the fused KD kernel's row algebra (row_math.cuh) on the CPU, in the kernel's exact structure:
// the same thread striding, the same butterfly merges across a warp's lanes and the same fixed-order sum
// across a block's warps. KdKernelAlgebraTest (JUnit) writes the inputs, runs this program and compares
// its output with the float64 reference and with the CPU loss `kd`.
//
//   row_math_host_test IN OUT
// IN (little endian): int32 rows, V, step (32: *_warp, 512: *_block), teacher, probs, labels, mode (0 kd, 1 gjsd);
//   float32 T, alpha, scale, beta; float32 s[rows*V]; float32 t[rows*V] when teacher; int32 y[rows] when labels.
// OUT: float32 rowOut[3*rows] (kd: T^2 KL, CE, bad; gjsd: T^2 JSD, 0, bad), then float32 grad[rows*V].
// For gjsd, scale is the CPU's w * upstream * T.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "row_math.cuh"

using distill::KdAcc;
using distill::KdRow;

namespace {

template <typename T>
void read(FILE* f, T* dst, size_t n) {
    if (fread(dst, sizeof(T), n, f) != n) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
}

float teacher_log(float tv, bool probs, int& bad) {
    if (probs) {
        if (!(tv >= 0.f) || std::isinf(tv)) {
            bad = 1;
        }
        return tv > 0.f ? std::log(tv) : -INFINITY;
    }
    if (!std::isfinite(tv)) {
        bad = 1;
    }
    return tv;
}

// The warp's butterfly: after it every lane holds the same merged value, as __shfl_xor_sync leaves it.
void butterfly(std::vector<KdAcc>& lanes) {
    for (int o = 16; o > 0; o >>= 1) {
        std::vector<KdAcc> next(32);
        for (int l = 0; l < 32; l++) {
            next[l] = distill::kd_merge(lanes[l], lanes[l ^ o]);
        }
        lanes = next;
    }
}

void butterfly_sum(std::vector<float>& lanes) {
    for (int o = 16; o > 0; o >>= 1) {
        std::vector<float> next(32);
        for (int l = 0; l < 32; l++) {
            next[l] = lanes[l] + lanes[l ^ o];
        }
        lanes = next;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (in == nullptr) {
        perror(argv[1]);
        return 2;
    }
    int32_t h[7];
    read(in, h, 7);
    float fset[4];
    read(in, fset, 4);
    const int rows = h[0], V = h[1], step = h[2];
    const bool teacher = h[3] != 0, probs = h[4] != 0, labels = h[5] != 0, gjsd = h[6] == 1;
    const float T = fset[0], alpha = fset[1], scale = fset[2], beta = fset[3];
    std::vector<float> s((size_t)rows * V), t(teacher ? (size_t)rows * V : 0);
    std::vector<int32_t> y(labels ? rows : 0);
    read(in, s.data(), s.size());
    if (teacher) {
        read(in, t.data(), t.size());
    }
    if (labels) {
        read(in, y.data(), y.size());
    }
    fclose(in);

    const float invT = 1.f / T;
    const float kdWeight = teacher ? (1.f - alpha) * T : 0.f;
    const float t2 = T * T;
    const bool needS1 = !gjsd && alpha > 0.f && T != 1.f;
    std::vector<float> rowOut(3 * (size_t)rows), grad((size_t)rows * V);
    for (int r = 0; r < rows; r++) {
        const float* sr = s.data() + (size_t)r * V;
        const float* tr = teacher ? t.data() + (size_t)r * V : nullptr;
        float* gr = grad.data() + (size_t)r * V;
        // pass 1, one accumulator per thread
        std::vector<KdAcc> acc(step, distill::kd_empty());
        int bad = 0;
        for (int th = 0; th < step; th++) {
            for (int i = th; i < V; i += step) {
                float tl = teacher ? teacher_log(tr[i], probs, bad) : 0.f;
                if (!std::isfinite(sr[i])) {
                    bad = 1;
                }
                distill::kd_push(acc[th], sr[i], tl, invT, teacher, needS1);
            }
        }
        KdAcc merged;
        if (step == 32) {
            butterfly(acc);
            merged = acc[0];
        } else {
            const int warps = step / 32;
            std::vector<KdAcc> shAcc(warps);
            for (int w = 0; w < warps; w++) {
                std::vector<KdAcc> lanes(acc.begin() + w * 32, acc.begin() + (w + 1) * 32);
                butterfly(lanes);
                shAcc[w] = lanes[0];
            }
            std::vector<KdAcc> lanes(32, distill::kd_empty());
            for (int l = 0; l < warps; l++) {
                lanes[l] = shAcc[l];
            }
            butterfly(lanes);
            merged = lanes[0];
        }
        if (teacher && merged.t.m == -INFINITY) {
            bad = 1;
        }
        const KdRow row = distill::kd_finish(merged, teacher, needS1);
        if (gjsd) {
            const float logB = std::log(beta), log1mB = std::log1p(-beta);
            std::vector<float> klP(step, 0.f), klQ(step, 0.f), mean(step, 0.f);
            int ignored = 0;
            for (int th = 0; th < step; th++) {
                distill::JsdSums sums{0.f, 0.f, 0.f};
                for (int i = th; i < V; i += step) {
                    distill::gjsd_element(row, sr[i], teacher_log(tr[i], probs, ignored), invT, logB, log1mB, beta, &sums);
                }
                klP[th] = sums.klP;
                klQ[th] = sums.klQ;
                mean[th] = sums.mean;
            }
            float tot[3];
            std::vector<float>* parts[3] = {&klP, &klQ, &mean};
            for (int k = 0; k < 3; k++) {
                if (step == 32) {
                    butterfly_sum(*parts[k]);
                    tot[k] = (*parts[k])[0];
                } else {
                    tot[k] = 0.f;
                    for (int w = 0; w < step / 32; w++) {
                        std::vector<float> lanes(parts[k]->begin() + w * 32, parts[k]->begin() + (w + 1) * 32);
                        butterfly_sum(lanes);
                        tot[k] += lanes[0];
                    }
                }
            }
            for (int th = 0; th < step; th++) {
                for (int i = th; i < V; i += step) {
                    distill::JsdElement e = distill::gjsd_element(row, sr[i], teacher_log(tr[i], probs, ignored), invT, logB, log1mB,
                                                                  beta, nullptr);
                    gr[i] = scale * e.q * (e.g - tot[2]);
                }
            }
            float jsd = beta * tot[0] + (1.f - beta) * tot[1];
            rowOut[3 * r] = t2 * (jsd > 0.f ? jsd : 0.f);
            rowOut[3 * r + 1] = 0.f;
            rowOut[3 * r + 2] = bad ? 1.f : 0.f;
            continue;
        }
        const int label = labels ? y[r] : -1;
        // pass 2
        std::vector<float> kl(step, 0.f);
        int ignored = 0;
        for (int th = 0; th < step; th++) {
            for (int i = th; i < V; i += step) {
                float tl = teacher ? teacher_log(tr[i], probs, ignored) : 0.f;
                float g = distill::kd_element(row, sr[i], tl, invT, kdWeight, alpha, i == label, teacher, needS1, kl[th]);
                gr[i] = scale * g;
            }
        }
        float total;
        if (step == 32) {
            butterfly_sum(kl);
            total = kl[0];
        } else {
            total = 0.f;
            for (int w = 0; w < step / 32; w++) {
                std::vector<float> lanes(kl.begin() + w * 32, kl.begin() + (w + 1) * 32);
                butterfly_sum(lanes);
                total += lanes[0];
            }
        }
        rowOut[3 * r] = t2 * (total > 0.f ? total : 0.f);
        rowOut[3 * r + 1] = label >= 0 ? row.logZs1 - sr[label] : 0.f;
        rowOut[3 * r + 2] = bad ? 1.f : 0.f;
    }
    FILE* out = fopen(argv[2], "wb");
    if (out == nullptr) {
        perror(argv[2]);
        return 2;
    }
    fwrite(rowOut.data(), sizeof(float), rowOut.size(), out);
    fwrite(grad.data(), sizeof(float), grad.size(), out);
    fclose(out);
    return 0;
}
