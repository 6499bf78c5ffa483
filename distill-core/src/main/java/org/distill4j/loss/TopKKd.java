package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Soft-target KD from a sparse teacher: per row only the top-k classes and their log-probabilities
 * are known (API logprobs, compressed logit stores). Registered as {@code topk-kd}.
 *
 * <p>The teacher's missing tail mass {@code r = 1 - sum_k p_i} is treated one of two ways:
 * <ul>
 *   <li>{@link Tail#RENORMALIZE} (default): the k probabilities are renormalized to sum to one and the
 *       student's full softmax is matched to them: {@code T^2 * sum_{i in K} p~_i (log p~_i - log q_i)},
 *       gradient {@code T (q_j - p~_j [j in K])}. Classes outside the top-k are pushed towards zero.</li>
 *   <li>{@link Tail#REST_BUCKET}: a (k+1)-th "rest" bucket holds {@code r} on the teacher side and
 *       {@code q_rest = sum_{j not in K} q_j} on the student side, and KL is taken over the k+1
 *       buckets; the student's distribution within the tail is left free. Gradient: {@code T (q_j - p_j)}
 *       in K and {@code T q_j (1 - p_rest / q_rest)} outside.</li>
 * </ul>
 * With temperature T the known log-probabilities are divided by T and renormalized; under
 * REST_BUCKET the tail is tempered as one class ({@code r^(1/T)}), an approximation that is exact at
 * T = 1. With k = V both treatments equal {@code kd} with {@code alpha = 0}.
 */
public final class TopKKd implements LogitLoss, TemperatureScaled {
    /** The registered name. */
    public static final String NAME = "topk-kd";

    /**
     * How far above 1 a row's entries' probabilities may sum under the rest tail (the rest bucket is then empty): a
     * producer's rounding, and a 16-bit store's (bf16 keeps 8 bits of each log-probability, about 0.4% of each
     * probability). More is not one distribution, and the row is refused. The stores check rows against the same bound
     * when they are written and read, and the CUDA kernel flags such rows at it too.
     */
    public static final double MASS_TOLERANCE = 0.01;

    /** How the teacher's probability mass outside the top-k is treated. */
    public enum Tail {
        /**
         * The top-k probabilities are renormalized to sum to one and the student's full softmax is matched to them;
         * classes outside the top-k are pushed towards zero. The registry's default ({@code renormalize}).
         */
        RENORMALIZE,
        /**
         * The teacher's missing mass goes to one extra "rest" bucket, matched by the student's total mass outside the
         * top-k; the student's distribution within the tail is left free ({@code rest}).
         */
        REST_BUCKET;

        /** Parses {@code renormalize} or {@code rest} (case-insensitive). */
        public static Tail parse(String s) {
            String v = s.trim().toLowerCase(Locale.ROOT);
            if (v.equals("renormalize")) {
                return RENORMALIZE;
            }
            if (v.equals("rest") || v.equals("rest-bucket") || v.equals("rest_bucket")) {
                return REST_BUCKET;
            }
            throw new IllegalArgumentException("topk-kd tail must be 'renormalize' or 'rest', got '" + s + "'");
        }
    }

    private final double temperature;
    private final Tail tail;
    private final Reduction reduction;

    /** Top-k KD at the temperature {@code T} with the given tail treatment, averaged over rows ({@link Reduction#MEAN}). */
    public TopKKd(double temperature, Tail tail) {
        this(temperature, tail, Reduction.MEAN);
    }

    /**
     * Top-k KD at the temperature {@code T} (finite, {@code > 0}) with the given tail treatment and reduction over rows.
     *
     * @throws IllegalArgumentException if the temperature is not a finite number {@code > 0}
     * @throws NullPointerException     if {@code tail} or {@code reduction} is null
     */
    public TopKKd(double temperature, Tail tail, Reduction reduction) {
        RowMath.requireTemperature(NAME, temperature);
        this.temperature = temperature;
        this.tail = Objects.requireNonNull(tail, "tail");
        this.reduction = Objects.requireNonNull(reduction, "reduction");
    }

    /** How the teacher's probability mass outside the top-k is treated; never null. */
    public Tail tail() {
        return tail;
    }

    @Override
    public double temperature() {
        return temperature;
    }

    @Override
    public TopKKd withTemperature(double t) {
        return new TopKKd(t, tail, reduction);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("temperature", temperature);
        m.put("tail", tail == Tail.RENORMALIZE ? "renormalize" : "rest");
        m.put("reduction", reduction.name().toLowerCase());
        return m;
    }

    @Override
    public boolean needsTeacher() {
        return false;
    }

    @Override
    public boolean needsTopK() {
        return true;
    }

    @Override
    public boolean needsLabels() {
        return false;
    }

    /** True: each row's KL depends on that row and its own top-k entries only. */
    @Override
    public boolean rowSeparable() {
        return true;
    }

    @Override
    public Reduction reduction() {
        return reduction;
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut, upstream);
        return rows(batch, 0, batch.rows(), gradOut, 0, upstream);
    }

    /** Reads the rows in place. */
    @Override
    public LossResult computeRows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        checkRows(batch, from, to, gradOut, gradOffset, upstream);
        return rows(batch, from, to, gradOut, gradOffset, upstream);
    }

    /** Rows {@code [from, to)}, their gradient from {@code gradOut[gradOffset]} on; the arguments are checked. */
    private LossResult rows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        final int v = batch.classes();
        final int k = batch.k();
        final float[] s = batch.student();
        final int[] ids = batch.topkIds();
        final float[] lps = batch.topkLogProbs();
        final double invT = 1.0 / temperature;
        final double w = batch.rowWeight(reduction);
        final double scale = w * upstream * temperature;
        final double[] logT = new double[k + 1];
        final boolean[] inK = new boolean[v];
        final boolean restTail = tail == Tail.REST_BUCKET;
        double total = 0;
        try (Scratch sc = Scratch.acquire()) { // the thread's rows, reused by every row and call
            final double[] logQ = sc.doubles(0, v);
            final double[] q = sc.doubles(1, v);
            for (int r = from; r < to; r++) {
                final int goff = gradOffset + (r - from) * v;
                if (!RowMath.beginRow(batch, gradOut, goff, r, false)) {
                    continue;
                }
                final int off = r * v;
                final int koff = r * k;
                TemperedDivergence.tempered(s, off, v, false, invT, logQ, q);
                // teacher buckets: k known entries (+ the rest), tempered and normalized in the log domain; an absent
                // slot (LogitBatch.ABSENT, -inf) is an empty bucket
                double known = 0;
                int entries = 0;
                for (int j = 0; j < k; j++) {
                    known += LossMath.exp(lps[koff + j]);
                    entries += ids[koff + j] != LogitBatch.ABSENT ? 1 : 0;
                }
                // with every class among the entries none is outside them: the rest bucket is empty on both sides
                final boolean rest = restTail && entries < v;
                int buckets = k;
                if (rest) {
                    if (known > 1 + MASS_TOLERANCE) {
                        throw new BadRowException("top-k probabilities of row ", r, " sum to " + known
                                + " > 1; the rest bucket needs true log-probabilities");
                    }
                    logT[k] = Math.log(Math.max(0.0, 1.0 - known)) * invT;
                    buckets = k + 1;
                }
                double m = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < k; j++) {
                    logT[j] = lps[koff + j] * invT;
                }
                for (int j = 0; j < buckets; j++) {
                    m = Math.max(m, logT[j]);
                }
                double z = 0;
                for (int j = 0; j < buckets; j++) {
                    z += LossMath.exp(logT[j] - m);
                }
                // shift by m before log z is taken off: m + log z rounds to m where |m| is huge (finite log-probabilities
                // near -3e38, or below it at T < 1), which made each of two tied entries probability 1
                final double logZ = Math.log(z);
                for (int j = 0; j < buckets; j++) {
                    logT[j] = (logT[j] - m) - logZ;
                }
                // student buckets and value
                double value = 0;
                for (int j = 0; j < k; j++) {
                    int id = ids[koff + j];
                    if (id == LogitBatch.ABSENT) {
                        continue;
                    }
                    inK[id] = true;
                    double p = LossMath.exp(logT[j]);
                    if (p > 0) {
                        value += p * (logT[j] - logQ[id]);
                    }
                }
                double pRest = 0;
                double logQRest = Double.NEGATIVE_INFINITY;
                if (rest) {
                    pRest = LossMath.exp(logT[k]);
                    double mr = Double.NEGATIVE_INFINITY;
                    for (int i = 0; i < v; i++) {
                        if (!inK[i]) {
                            mr = Math.max(mr, logQ[i]);
                        }
                    }
                    if (mr != Double.NEGATIVE_INFINITY) {
                        double sr = 0;
                        for (int i = 0; i < v; i++) {
                            if (!inK[i]) {
                                sr += LossMath.exp(logQ[i] - mr);
                            }
                        }
                        logQRest = mr + Math.log(sr);
                    }
                    if (pRest > 0) {
                        value += pRest * (logT[k] - logQRest);
                    }
                }
                // gradient: q_j - p_j in K; outside K: q_j (rest: minus p_rest * q_j / q_rest)
                for (int i = 0; i < v; i++) {
                    double g = q[i];
                    if (rest && !inK[i] && pRest > 0) {
                        g -= pRest * LossMath.exp(logQ[i] - logQRest);
                    }
                    gradOut[goff + i] = (float) (scale * g);
                }
                for (int j = 0; j < k; j++) {
                    int id = ids[koff + j];
                    if (id != LogitBatch.ABSENT) {
                        gradOut[goff + id] = (float) (scale * (q[id] - LossMath.exp(logT[j])));
                        inK[id] = false;
                    }
                }
                total += value;
            }
        }
        double result = total * temperature * temperature * w;
        return new LossResult(result, batch.countedRows(from, to), Map.of(NAME, result));
    }
}
