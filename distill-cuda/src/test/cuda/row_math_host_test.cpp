// Runs the fused KD kernel's row algebra (row_math.cuh) on the CPU, in the kernel's exact structure:
// the same thread striding, the same butterfly merges across a warp's lanes and the same fixed-order sum
// across a block's warps. KdKernelAlgebraTest (JUnit) writes the inputs, runs this program and compares
// its output with the float64 reference and with the CPU loss `kd`.
//
//   row_math_host_test IN OUT
// IN (little endian): int32 rows, V, step (32: *_warp, 512: *_block), teacher, probs, labels, mode (0 kd, 1 gjsd, 2 topk);
//   float32 T, alpha, scale, beta; float32 s[rows*V]; float32 t[rows*V] when teacher; int32 y[rows] when labels;
//   for topk (teacher = 0): int32 k, rest; int32 ids[rows*k]; float32 lps[rows*k].
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

void write_out(const char* path, const std::vector<float>& rowOut, const std::vector<float>& grad) {
    FILE* out = fopen(path, "wb");
    if (out == nullptr) {
        perror(path);
        exit(2);
    }
    fwrite(rowOut.data(), sizeof(float), rowOut.size(), out);
    fwrite(grad.data(), sizeof(float), grad.size(), out);
    fclose(out);
}

// The reductions of the top-k kernels: a warp's butterfly (step 32), or warp butterflies then the warps in
// order (step 512), for sums and for log-sum-exps.
float reduce_sum(std::vector<float> parts, int step) {
    if (step == 32) {
        butterfly_sum(parts);
        return parts[0];
    }
    float total = 0.f;
    for (int w = 0; w < step / 32; w++) {
        std::vector<float> lanes(parts.begin() + w * 32, parts.begin() + (w + 1) * 32);
        butterfly_sum(lanes);
        total += lanes[0];
    }
    return total;
}

distill::Lse lse_butterfly(std::vector<distill::Lse> lanes) {
    for (int o = 16; o > 0; o >>= 1) {
        std::vector<distill::Lse> next(32);
        for (int l = 0; l < 32; l++) {
            next[l] = distill::lse_merge(lanes[l], lanes[l ^ o]);
        }
        lanes = next;
    }
    return lanes[0];
}

distill::Lse reduce_lse(const std::vector<distill::Lse>& parts, int step) {
    if (step == 32) {
        return lse_butterfly(parts);
    }
    distill::Lse total = distill::lse_empty();
    for (int w = 0; w < step / 32; w++) {
        total = distill::lse_merge(total, lse_butterfly(std::vector<distill::Lse>(parts.begin() + w * 32, parts.begin() + (w + 1) * 32)));
    }
    return total;
}

// topk_row of distill_losses.cu, thread by thread.
void topk_row(const float* sr, const int32_t* idr, const float* lpr, float* gr, int V, int k, int step, float invT, float scale,
              bool rest, float* out) {
    std::vector<bool> in(V, false);
    int bad = 0;
    std::vector<float> known(step, 0.f);
    for (int th = 0; th < step; th++) {
        for (int j = th; j < k; j += step) {
            if (idr[j] < 0 || idr[j] >= V || !std::isfinite(lpr[j])) {
                bad = 1;
            } else {
                in[idr[j]] = true;
            }
            known[th] += std::exp(lpr[j]);
        }
    }
    float kn = reduce_sum(known, step);
    if (rest && kn > 1.f + 1e-3f) {
        bad = 1;
    }
    const float logRest = distill::topk_rest_log(kn, rest, invT);
    std::vector<distill::Lse> tl(step, distill::lse_empty()), all(step, distill::lse_empty()), tail(step, distill::lse_empty());
    for (int th = 0; th < step; th++) {
        for (int j = th; j < k; j += step) {
            distill::lse_push(tl[th], lpr[j] * invT);
        }
        for (int i = th; i < V; i += step) {
            if (!std::isfinite(sr[i])) {
                bad = 1;
            }
            distill::lse_push(all[th], sr[i] * invT);
            if (rest && !in[i]) {
                distill::lse_push(tail[th], sr[i] * invT);
            }
        }
    }
    const distill::TopkRow row = distill::topk_finish(reduce_lse(tl, step), logRest, reduce_lse(all, step), reduce_lse(tail, step));
    for (int i = 0; i < V; i++) {
        if (!in[i]) {
            gr[i] = scale * distill::topk_grad_outside(row, sr[i], invT);
        }
    }
    std::vector<float> value(step, 0.f);
    for (int th = 0; th < step; th++) {
        for (int j = th; j < k; j += step) {
            int id = idr[j];
            if (id >= 0 && id < V) {
                gr[id] = scale * distill::topk_entry(row, lpr[j], sr[id], invT, value[th]);
            }
        }
    }
    value[0] += distill::topk_rest_value(row);
    out[0] = reduce_sum(value, step);
    out[1] = 0.f;
    out[2] = bad ? 1.f : 0.f;
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
    int32_t topk[2] = {0, 0};
    std::vector<int32_t> ids;
    std::vector<float> lps;
    if (h[6] == 2) {
        read(in, topk, 2);
        ids.resize((size_t)rows * topk[0]);
        lps.resize((size_t)rows * topk[0]);
        read(in, ids.data(), ids.size());
        read(in, lps.data(), lps.size());
    }
    fclose(in);

    const float invT = 1.f / T;
    const float kdWeight = teacher ? (1.f - alpha) * T : 0.f;
    const float t2 = T * T;
    const bool needS1 = !gjsd && alpha > 0.f && T != 1.f;
    std::vector<float> rowOut(3 * (size_t)rows), grad((size_t)rows * V);
    if (h[6] == 2) {
        for (int r = 0; r < rows; r++) {
            topk_row(s.data() + (size_t)r * V, ids.data() + (size_t)r * topk[0], lps.data() + (size_t)r * topk[0],
                     grad.data() + (size_t)r * V, V, topk[0], step, invT, scale, topk[1] != 0, &rowOut[3 * r]);
        }
        write_out(argv[2], rowOut, grad);
        return 0;
    }
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
                    gr[i] = scale * e.q * (e.h - tot[2]);
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
    write_out(argv[2], rowOut, grad);
    return 0;
}
