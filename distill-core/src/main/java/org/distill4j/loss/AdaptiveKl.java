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
 * <p>Finding the head takes an expected {@code O(V)} selection by probability mass, not a sort. Classes the teacher
 * gives no mass are floored for the reverse part as in {@link ReverseKl} ({@link ReverseKl#TEACHER_LOG_FLOOR}); the
 * floored teacher is used throughout the row. The reported terms include the two weighted parts, {@code akl-fkl} and
 * {@code akl-rkl}, which add up to the value.
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

    /** True: the reverse part is infinite where the teacher has no mass (see {@link ReverseKl}). */
    @Override
    boolean floorsTeacher() {
        return true;
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
        // forward part's dz = q - p; the reverse part's dz from the shared row helper, then the two mixed in place
        double rkl = reverseKl(r, dz);
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

    /** Whether class {@code a} comes before class {@code b} in the teacher's order: more probable, or as probable and lower. */
    private static boolean before(double[] p, int a, int b) {
        return p[a] > p[b] || (p[a] == p[b] && a < b);
    }

    /**
     * The size of the teacher's head: the longest prefix of the classes in the teacher's order (see {@link #before})
     * whose cumulative probability is at most {@code mu}, and at least 1. On return {@code order[0, head)} holds the
     * head's classes (in no particular order) and {@code order[head, v)} the others, the tail's gaps summed after the
     * head's. An expected linear-time selection by mass: each partition keeps the side the boundary is in.
     */
    static int head(double[] p, int v, double mu, int[] order) {
        for (int i = 0; i < v; i++) {
            order[i] = i;
        }
        int lo = 0;
        int hi = v; // order[0, lo) is head, order[hi, v) is not; above = the mass of order[0, lo) (at most mu)
        double above = 0;
        int head = -1;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            int pivot = medianOfThree(p, order[lo], order[mid], order[hi - 1]);
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

    private static int medianOfThree(double[] p, int a, int b, int c) {
        if (before(p, a, b)) {
            return before(p, b, c) ? b : (before(p, a, c) ? c : a);
        }
        return before(p, a, c) ? a : (before(p, b, c) ? c : b);
    }
}
