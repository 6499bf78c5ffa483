package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Adaptive KL (AKL), from T. Wu, C. Tao, J. Wang, R. Yang, Z. Zhao, N. Wong, "Rethinking Kullback-Leibler Divergence in
 * Knowledge Distillation for Large Language Models", COLING 2025. Registered as {@code akl}.
 *
 * <p>Forward KL first fits the teacher's head (its most probable classes) and reverse KL its tail; AKL mixes the two
 * per row by how far the student is from the teacher on each part:
 * <pre>
 *   head = the teacher's most probable classes while their cumulative probability stays at most mu
 *          (the most probable class always; equal probabilities in class order)
 *   g_head = sum over head |p_i - q_i|,   g_tail = sum over the rest |p_i - q_i|
 *   loss = T^2 * (g_head / (g_head + g_tail) * KL(p || q) + g_tail / (g_head + g_tail) * KL(q || p))
 * </pre>
 * with {@code p = softmax(t/T)} (teacher), {@code q = softmax(s/T)} (student) and {@code mu} in [0, 1) (default 0.5,
 * the paper's). A row where the student equals the teacher has no gap; its weights are taken as 1/2 each (both KLs are
 * 0 there anyway).
 *
 * <p><b>The weights carry no gradient</b>, as in the released code (the student's probabilities are detached where the
 * gaps are measured): the gradient is {@code T * (w_head * (q - p) + w_tail * dKL(q || p)/dz)} with the row's weights
 * held fixed. It is therefore not the derivative of the reported value along the weights' own change; the weights
 * decide how much of each KL's gradient the row gets.
 *
 * <p>Finding the head takes a selection by probability mass with random pivots, expected {@code O(V)} whatever the
 * row's shape, not a sort. Its running sums are added in the selection's order, so where a prefix's mass equals
 * {@code mu} to within rounding, the head may differ by that one class from a class-by-class running sum (the released
 * code's float32 cumulative sum is no more exact there); a mass exactly {@code mu} is head.
 *
 * <p>Classes the teacher gives no mass are floored for the reverse part only, as {@link ReverseKl} floors them
 * ({@link ReverseKl#TEACHER_LOG_FLOOR} at T = 1, then tempered); the forward part and the head see the teacher as it is,
 * so a sparse teacher (a top-k store's row) at a high temperature is not spread over the classes it ruled out. The
 * reported terms include the two weighted parts, {@code akl-fkl} and {@code akl-rkl}, which add up to the value.
 */
public final class AdaptiveKl extends TemperedDivergence {
    /** The registered name. */
    public static final String NAME = "akl";
    /** The paper's head mass. */
    public static final double DEFAULT_MU = 0.5;

    private final double mu;

    /**
     * @param mu          the head's mass: the teacher's most probable classes up to this cumulative probability, in [0, 1)
     * @param temperature softmax temperature {@code T > 0} on both sides
     */
    public AdaptiveKl(double mu, double temperature) {
        this(mu, temperature, Reduction.MEAN);
    }

    /**
     * Adaptive KL with the head mass {@code mu} in [0, 1), the temperature {@code T} (finite, {@code > 0}) and the
     * reduction over rows ({@link Reduction#MEAN} in the two-argument constructor).
     *
     * @throws IllegalArgumentException if {@code mu} is outside [0, 1) or NaN, or the temperature is not a finite number
     *                                  {@code > 0}
     * @throws NullPointerException     if {@code reduction} is null
     */
    public AdaptiveKl(double mu, double temperature, Reduction reduction) {
        super(temperature, reduction);
        if (!(mu >= 0 && mu < 1)) { // NaN too
            throw new IllegalArgumentException(NAME + " mu (the head's cumulative teacher probability) must be in [0, 1), got " + mu
                    + (mu >= 1 ? ": at 1 every class is head and the loss is forward KL (kd with alpha 0)" : ""));
        }
        this.mu = mu;
    }

    @Override
    public String name() {
        return NAME;
    }

    /** The head's cumulative teacher probability. */
    public double mu() {
        return mu;
    }

    @Override
    public AdaptiveKl withTemperature(double t) {
        return new AdaptiveKl(mu, t, reduction);
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("mu", mu);
        m.putAll(super.settings());
        return m;
    }

    @Override
    String[] partNames() {
        return new String[]{NAME + "-fkl", NAME + "-rkl"};
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        final int v = r.v;
        int[] order = r.indices();
        int head = head(r.p, v, mu, order);
        double gHead = 0;
        double gAll = 0;
        for (int j = 0; j < v; j++) {
            double gap = Math.abs(r.p[order[j]] - r.q[order[j]]);
            gAll += gap;
            if (j == head - 1) {
                gHead = gAll;
            }
        }
        final double wHead = gAll > 0 ? gHead / gAll : 0.5;
        final double wTail = gAll > 0 ? (gAll - gHead) / gAll : 0.5;
        // the reverse part's dz first (on the floored teacher), then the forward part's q - p mixed in, in place
        double rkl = reverseKl(r, flooredForReverse(r, temperature), dz);
        double fkl = 0;
        for (int i = 0; i < v; i++) {
            if (r.p[i] > 0) {
                fkl += r.p[i] * (r.logP[i] - r.logQ[i]);
            }
            dz[i] = wHead * (r.q[i] - r.p[i]) + wTail * dz[i];
        }
        parts[0] = wHead * fkl;
        parts[1] = wTail * rkl;
        return parts[0] + parts[1];
    }

    /**
     * The teacher's tempered log-probabilities with those at T = 1 floored at {@link ReverseKl#TEACHER_LOG_FLOOR}, as
     * {@link ReverseKl} takes them: {@code r.logP} itself where nothing is below the floor, else a row of its own. The
     * T = 1 values are {@code T * logP} less their log-sum-exp.
     */
    static double[] flooredForReverse(Row r, double temperature) {
        final int v = r.v;
        double max = Double.NEGATIVE_INFINITY;
        double min = Double.POSITIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            max = Math.max(max, r.logP[i]);
            min = Math.min(min, r.logP[i]);
        }
        // log p1_i >= T (logP_i - max) - log v: nothing is below the floor unless the row's spread says it could be
        if (temperature * (min - max) >= ReverseKl.TEACHER_LOG_FLOOR + Math.log(v)) {
            return r.logP;
        }
        double[] out = r.extra();
        double z1 = 0;
        for (int i = 0; i < v; i++) {
            z1 += LossMath.exp(temperature * (r.logP[i] - max));
        }
        final double lse1 = temperature * max + Math.log(z1);
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            double a = Math.max(temperature * r.logP[i] - lse1, ReverseKl.TEACHER_LOG_FLOOR) / temperature;
            out[i] = a;
            m = Math.max(m, a);
        }
        double z = 0;
        for (int i = 0; i < v; i++) {
            z += LossMath.exp(out[i] - m);
        }
        final double lse = m + Math.log(z);
        for (int i = 0; i < v; i++) {
            out[i] -= lse;
        }
        return out;
    }

    /** Whether class {@code a} comes before class {@code b} in the teacher's order: more probable, or as probable and lower. */
    private static boolean before(double[] p, int a, int b) {
        return p[a] > p[b] || (p[a] == p[b] && a < b);
    }

    /**
     * The size of the teacher's head: the longest prefix of the classes in the teacher's order (see {@link #before})
     * whose cumulative probability is at most {@code mu}, and at least 1. On return {@code order[0, head)} holds the
     * head's classes (in no particular order) and {@code order[head, v)} the others, the tail's gaps summed after the
     * head's. A selection by mass: each partition keeps the side the boundary is in. Its pivots are the median of three
     * classes drawn at random (a fixed-seed generator, so the result does not vary from run to run), which keeps it
     * expected linear on any row: a deterministic choice is quadratic on some common shapes (a teacher whose
     * probabilities rise and fall across the class index, 34 s for one row of 262,144 with the median of the range's
     * first, middle and last).
     */
    static int head(double[] p, int v, double mu, int[] order) {
        for (int i = 0; i < v; i++) {
            order[i] = i;
        }
        int lo = 0;
        int hi = v; // order[0, lo) is head, order[hi, v) is not; above = the mass of order[0, lo) (at most mu)
        double above = 0;
        int head = -1;
        long seed = 0x9E3779B97F4A7C15L;
        while (lo < hi) {
            int n = hi - lo;
            seed = next(seed);
            int c1 = order[lo + (int) ((seed >>> 33) % n)];
            seed = next(seed);
            int c2 = order[lo + (int) ((seed >>> 33) % n)];
            seed = next(seed);
            int c3 = order[lo + (int) ((seed >>> 33) % n)];
            int pivot = medianOfThree(p, c1, c2, c3);
            // move the pivot to the end, then the classes before it in the teacher's order to the front
            for (int k = lo; k < hi; k++) {
                if (order[k] == pivot) {
                    order[k] = order[hi - 1];
                    order[hi - 1] = pivot;
                    break;
                }
            }
            int store = lo;
            double g = 0;
            for (int k = lo; k < hi - 1; k++) {
                int c = order[k];
                if (before(p, c, pivot)) {
                    order[k] = order[store];
                    order[store++] = c;
                    g += p[c];
                }
            }
            order[hi - 1] = order[store];
            order[store] = pivot;
            if (above + g > mu) {
                hi = store; // the boundary is among the classes before the pivot (g > 0, so there are some); the rest come after
            } else {
                above += g;
                if (above + p[pivot] > mu) {
                    head = store;
                    break;
                }
                above += p[pivot];
                lo = store + 1;
            }
        }
        if (head < 0) {
            head = lo;
        }
        // head 0 only where a pivot had nothing before it while lo was 0: the most probable class, now at order[0],
        // which is head whatever its mass
        return Math.max(head, 1);
    }

    /** xorshift64: the next state of the pivot generator (never 0 from a nonzero state). */
    private static long next(long x) {
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
        return x;
    }

    private static int medianOfThree(double[] p, int a, int b, int c) {
        if (before(p, a, b)) {
            return before(p, b, c) ? b : (before(p, a, c) ? c : a);
        }
        return before(p, a, c) ? a : (before(p, b, c) ? c : b);
    }
}
