// Row math of the fused logit-loss kernels, shared by the kernels (device) and by a host harness
// (distill-cuda/src/test/cuda/row_math_host_test.cpp, compiled with g++) that checks this algebra on the
// CPU against a float64 reference: online log-sum-exp accumulators, their merge, and the per-element
// value and gradient of soft-target KD with hard-label cross-entropy.
//
// A row takes two passes: pass 1 reads s and t once into three log-sum-exps (merged across threads);
// pass 2 reads them again (from L2 for rows in flight), writes the gradient once and sums the KL terms
// p (log p - log q), each made of two normalized (<= 0) log-values, so no large terms cancel.
//
// Conventions (the CPU loss `kd`, SoftTargetKd.java):
//   q = softmax(s / T), p = softmax(t / T) (t = log p for probability teachers), s1 = softmax(s)
//   row value  = alpha * CE + (1 - alpha) * T^2 * KL(p || q),  CE = -log s1[y]
//   d/ds_i     = (1 - alpha) * T * (q_i - p_i) + alpha * (s1_i - [i == y])
// Everything is accumulated in fp32 relative to running maxima, so any finite logits give finite
// results.
#pragma once

#ifndef __CUDACC__
#include <cmath>
#define DISTILL_HD inline
#define DISTILL_EXP std::exp
#define DISTILL_LOG std::log
#define DISTILL_LOG1P std::log1p
#define DISTILL_EXPM1 std::expm1
#define DISTILL_INF INFINITY
#else
#define DISTILL_HD __host__ __device__ __forceinline__
#define DISTILL_EXP expf
#define DISTILL_LOG logf
#define DISTILL_LOG1P log1pf
#define DISTILL_EXPM1 expm1f
#define DISTILL_INF __int_as_float(0x7f800000)
#endif

namespace distill {

// A running log-sum-exp: z = sum exp(x_i - m). m = -inf means empty.
struct Lse {
    float m;
    float z;
};

DISTILL_HD Lse lse_empty() {
    Lse a;
    a.m = -DISTILL_INF;
    a.z = 0.f;
    return a;
}

// Adds exp(x) to a. x may be -inf (a zero probability): it adds nothing.
DISTILL_HD void lse_push(Lse& a, float x) {
    if (x == -DISTILL_INF) {
        return;
    }
    if (x > a.m) {
        float r = a.m == -DISTILL_INF ? 0.f : DISTILL_EXP(a.m - x);
        a.z = a.z * r + 1.f;
        a.m = x;
    } else {
        a.z += DISTILL_EXP(x - a.m);
    }
}

DISTILL_HD Lse lse_merge(Lse a, Lse b) {
    if (a.m == -DISTILL_INF) {
        return b;
    }
    if (b.m == -DISTILL_INF) {
        return a;
    }
    Lse o;
    o.m = a.m > b.m ? a.m : b.m;
    float ra = DISTILL_EXP(a.m - o.m);
    float rb = DISTILL_EXP(b.m - o.m);
    o.z = a.z * ra + b.z * rb;
    return o;
}

DISTILL_HD float lse_log(const Lse& a) {
    return a.m + DISTILL_LOG(a.z);
}

// lse_log(a) - lse_log(b) without rounding each (of order log V + max x) first: the maxima subtract exactly
// when they are close, and the ratio of the sums is taken in one log.
DISTILL_HD float lse_diff(const Lse& a, const Lse& b) {
    if (a.m == -DISTILL_INF || b.m == -DISTILL_INF) {
        return lse_log(a) - lse_log(b);
    }
    return (a.m - b.m) + DISTILL_LOG(a.z / b.z);
}

// The three accumulators of a KD row: the student at T (s/T), the student at 1 (s), the teacher at T (t/T).
struct KdAcc {
    Lse st;
    Lse s1;
    Lse t;
};

DISTILL_HD KdAcc kd_empty() {
    KdAcc a;
    a.st = lse_empty();
    a.s1 = lse_empty();
    a.t = lse_empty();
    return a;
}

// One element: student logit s, teacher log-value tl (a logit, or log p; -inf for p = 0).
DISTILL_HD void kd_push(KdAcc& a, float s, float tl, float invT, bool teacher, bool needS1) {
    lse_push(a.st, s * invT);
    if (needS1) {
        lse_push(a.s1, s);
    }
    if (teacher) {
        lse_push(a.t, tl * invT);
    }
}

DISTILL_HD KdAcc kd_merge(const KdAcc& a, const KdAcc& b) {
    KdAcc o;
    o.st = lse_merge(a.st, b.st);
    o.s1 = lse_merge(a.s1, b.s1);
    o.t = lse_merge(a.t, b.t);
    return o;
}

// The normalizers of a row, for pass 2.
struct KdRow {
    float logZst;  // log sum exp(s/T)
    float logZs1;  // log sum exp(s) (= logZst when T == 1)
    float logZt;   // log sum exp(t/T)
    float dZ;      // logZt - logZst (lse_diff), 0 without a teacher
};

DISTILL_HD KdRow kd_finish(const KdAcc& a, bool teacher, bool needS1) {
    KdRow r;
    r.logZst = lse_log(a.st);
    r.logZs1 = needS1 ? lse_log(a.s1) : r.logZst;
    r.logZt = teacher ? lse_log(a.t) : 0.f;
    r.dZ = teacher ? lse_diff(a.t, a.st) : 0.f;
    return r;
}

// One element of pass 2: returns the gradient before the row's scale (rowWeight * upstream) and adds
// p (log p - log q) to kl. kdWeight = (1 - alpha) * T; with T == 1 the softmax at 1 is q (needS1 false).
DISTILL_HD float kd_element(const KdRow& r, float s, float tl, float invT, float kdWeight, float alpha, bool isLabel,
                            bool teacher, bool needS1, float& kl) {
    float logQ = s * invT - r.logZst;
    float q = DISTILL_EXP(logQ);
    float g = 0.f;
    if (teacher) {
        float xt = tl * invT;
        if (xt != -DISTILL_INF) {
            float logP = xt - r.logZt;
            float p = DISTILL_EXP(logP);
            kl += p * (logP - logQ);
            g = kdWeight * (q - p);
        } else {
            g = kdWeight * q;
        }
    }
    if (alpha > 0.f) {
        float s1 = needS1 ? DISTILL_EXP(s - r.logZs1) : q;
        g += alpha * (s1 - (isLabel ? 1.f : 0.f));
    }
    return g;
}

// ---- generalized JSD (the CPU loss `gjsd`, GeneralizedJsd.java), 0 < beta < 1 ----
//   m = beta p + (1 - beta) q,  JSD = beta KL(p || m) + (1 - beta) KL(q || m),  value = T^2 JSD
//   with g_i = (1 - beta) (log q_i - log m_i):  d value / d s_j = T q_j (g_j - sum_i q_i g_i)
// Three passes: the normalizers (kd_push / kd_finish with needS1 false), then the row sums below, then the
// gradient. The end points run elsewhere: beta = 0 is forward KL (the kd kernel, alpha 0), beta = 1 is
// reverse KL (the CPU).

DISTILL_HD float log_add_exp(float a, float b) {
    if (a == -DISTILL_INF) {
        return b;
    }
    if (b == -DISTILL_INF) {
        return a;
    }
    float m = a > b ? a : b;
    return m + DISTILL_LOG(DISTILL_EXP(a - m) + DISTILL_EXP(b - m));
}

// Per-row sums of pass 2.
struct JsdSums {
    float klP;   // sum p (log p - log m)
    float klQ;   // sum q (log q - log m)
    float mean;  // sum q h
};

// An element's q and h = g + (1 - beta) log(1 - beta), its gradient term g = (1 - beta) (log q - log m)
// measured from g's limit where p << q. The gradient q (g - sum q g) equals q (h - sum q h) as sum q = 1,
// and where q is concentrated on classes the teacher gives next to nothing, g sits within 1e-4 of that
// limit: as differences of fp32 numbers near 0.23 the gradients would keep only a few digits; h keeps them.
struct JsdElement {
    float q;
    float h;
};

// One element's q and h, adding its terms to sums when given. Everything is formed from d = log p - log q,
// which comes from the two logits and the normalizers' difference (dZ), not from two log-probabilities each
// rounded at the scale of log V:
//   log q - log m = -log(beta e^d + 1 - beta) = -log1p(beta expm1(d))        (exact near p = q)
//   log p - log m = -log(beta + (1 - beta) e^-d) = -log1p((1 - beta) expm1(-d))
//   h = -(1 - beta) softplus(d + log(beta / (1 - beta)))
DISTILL_HD JsdElement gjsd_element(const KdRow& r, float s, float tl, float invT, float logB, float log1mB, float beta,
                                   JsdSums* sums) {
    float logQ = s * invT - r.logZst;
    float q = DISTILL_EXP(logQ);
    float d = tl == -DISTILL_INF ? -DISTILL_INF : (tl - s) * invT - r.dZ;
    float x = d + (logB - log1mB);
    float softplus = x > 0.f ? x + DISTILL_LOG1P(DISTILL_EXP(-x)) : DISTILL_LOG1P(DISTILL_EXP(x));
    JsdElement e;
    e.q = q;
    e.h = -(1.f - beta) * softplus;
    if (sums != nullptr) {
        float qm = d < 1.f ? -DISTILL_LOG1P(beta * DISTILL_EXPM1(d)) : -log_add_exp(logB + d, log1mB);
        if (d != -DISTILL_INF) {
            float pm = d > -1.f ? -DISTILL_LOG1P((1.f - beta) * DISTILL_EXPM1(-d)) : d + qm;
            sums->klP += DISTILL_EXP(tl * invT - r.logZt) * pm;
        }
        if (q > 0.f) {
            sums->klQ += q * qm;
        }
        sums->mean += q * e.h;
    }
    return e;
}

// ---- top-k sparse KD (the CPU loss `topk-kd`, TopKKd.java) ----
// The teacher gives k ids and log-probabilities per row. Buckets: the k known entries, plus with the
// REST tail a (k+1)-th bucket holding the missing mass r = 1 - sum p_j; all tempered (/T) and normalized
// in the log domain. The student side needs log Z over the whole row and, for REST, over the classes
// outside the top-k (a membership bitmap marks them), so no complement 1 - sum q cancels.
//   value = T^2 [ sum_j p_j (log p_j - log q_id_j) + p_r (log p_r - log q_rest) ]
//   grad_i = scale (q_i - p_j) for i = id_j;  scale (q_i - p_r exp(s_i / T - logZ_tail)) outside (REST)
//   (RENORMALIZE: p_r = 0, grad_i = scale q_i outside.)

// The teacher's bucket normalization: logT_j = lp_j / T - logZT; logRest is the rest bucket's tempered
// log-mass before normalization (-inf when there is none).
struct TopkTeacher {
    float logZT;
    float logRest;
};

// How far above 1 a row's entries' probabilities may sum under the rest tail before the row is flagged (and rerun on the
// CPU, which refuses it): TopKKd.MASS_TOLERANCE, the bound the CPU loss and the stores take (CudaRuntimeLogicTest checks
// that the two agree).
constexpr float TOPK_MASS_TOLERANCE = 0.01f;

DISTILL_HD float topk_rest_log(float known, bool rest, float invT) {
    if (!rest) {
        return -DISTILL_INF;
    }
    float r = 1.f - known;
    return r > 0.f ? DISTILL_LOG(r) * invT : -DISTILL_INF;
}

// The row's normalizers, once its three log-sum-exps are merged: the teacher's buckets (tl, before the rest
// bucket), the student over all classes (all) and over the tail (tail), all at T.
struct TopkRow {
    float logZT;
    float logZst;
    float logZtail;  // -inf when the tail is empty or unused
    float logPRest;  // the rest bucket's normalized log-probability, -inf when none
    float pRest;
};

DISTILL_HD TopkRow topk_finish(Lse tl, float logRest, const Lse& all, const Lse& tail) {
    lse_push(tl, logRest);
    TopkRow r;
    r.logZT = lse_log(tl);
    r.logZst = lse_log(all);
    r.logZtail = tail.m == -DISTILL_INF ? -DISTILL_INF : lse_log(tail);
    r.logPRest = logRest == -DISTILL_INF ? -DISTILL_INF : logRest - r.logZT;
    r.pRest = r.logPRest == -DISTILL_INF ? 0.f : DISTILL_EXP(r.logPRest);
    return r;
}

// The gradient of a class outside the top-k, before the scale.
DISTILL_HD float topk_grad_outside(const TopkRow& r, float s, float invT) {
    float xs = s * invT;
    float g = DISTILL_EXP(xs - r.logZst);
    if (r.pRest > 0.f) {
        g -= r.pRest * DISTILL_EXP(xs - r.logZtail);
    }
    return g;
}

// A top-k entry (teacher log-probability lp, student logit s at its id): adds p (log p - log q) to value
// and returns its gradient before the scale.
DISTILL_HD float topk_entry(const TopkRow& r, float lp, float s, float invT, float& value) {
    float logP = lp * invT - r.logZT;
    float p = DISTILL_EXP(logP);
    float logQ = s * invT - r.logZst;
    if (p > 0.f) {
        value += p * (logP - logQ);
    }
    return DISTILL_EXP(logQ) - p;
}

// The rest bucket's KL term (added once per row).
DISTILL_HD float topk_rest_value(const TopkRow& r) {
    return r.pRest > 0.f && r.logZtail != -DISTILL_INF ? r.pRest * (r.logPRest - (r.logZtail - r.logZst)) : 0.f;
}

}  // namespace distill
