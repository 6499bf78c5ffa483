package org.distill4j.loss;

import org.distill4j.train.Schedule;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A weighted sum of logit losses, e.g. {@code 0.1 * ce + 0.9 * kd} or DKD's {@code ce + dkd}:
 * value {@code sum_i w_i L_i}, gradient {@code sum_i w_i dL_i}. Weights may follow a {@link Schedule}
 * per epoch; terms that depend on the epoch or the temperature follow too.
 *
 * <pre>{@code
 * LogitLoss loss = WeightedSum.builder()
 *         .add(1.0, new CrossEntropy())
 *         .add(Schedule.linear(0.0, 1.0), new Dkd(1, 8, 4, 20))
 *         .build();
 * }</pre>
 * All terms must share one reduction. {@link LossResult#terms()} holds each term's unweighted value
 * under its name and the components the terms report themselves, every one under its own key: the
 * components of a repeated loss get a {@code #2}, {@code #3} suffix, and any other key already present
 * (e.g. {@code kd} from both {@code kd} and {@code logit-std} around kd, or {@code ce} from {@code ce}
 * and a {@code kd} with alpha &gt; 0) gets the next free {@code #n}.
 *
 * <p>A sum is {@link TemperatureScaled} exactly when one of its terms is (so {@code ce + mse} takes no
 * temperature schedule, and the run says so when it is configured); a temperature then applies to every
 * temperature-scaled term.
 */
public sealed class WeightedSum implements LogitLoss, EpochAware {
    /**
     * One term: a loss and its weight schedule.
     *
     * @param loss          the term's loss
     * @param weight        the weight's schedule over the epochs
     * @param currentWeight the weight in use: the schedule's value at the current epoch (at epoch 0 outside training)
     */
    public record Term(LogitLoss loss, Schedule weight, double currentWeight) {
        /**
         * Checks the loss and the schedule (the current weight is checked to be finite when the sum is built).
         *
         * @throws NullPointerException if {@code loss} or {@code weight} is null
         */
        public Term {
            Objects.requireNonNull(loss, "loss");
            Objects.requireNonNull(weight, "weight");
        }
    }

    private final List<Term> terms;

    /** A sum of {@code terms}, {@link TemperatureScaled} when one of them is. */
    private static WeightedSum of(List<Term> terms) {
        return terms.stream().anyMatch(t -> t.loss() instanceof TemperatureScaled) ? new Tempered(terms) : new WeightedSum(terms);
    }

    private WeightedSum(List<Term> terms) {
        if (terms.isEmpty()) {
            throw new IllegalArgumentException("a weighted sum needs at least one term");
        }
        Reduction r = terms.get(0).loss().reduction();
        for (Term t : terms) {
            if (t.loss().reduction() != r) {
                throw new IllegalArgumentException("all terms of a weighted sum must share one reduction; '" + terms.get(0).loss().name()
                        + "' uses " + r + ", '" + t.loss().name() + "' uses " + t.loss().reduction());
            }
            if (!Double.isFinite(t.currentWeight())) {
                throw new IllegalArgumentException("weight of term '" + t.loss().name() + "' is " + t.currentWeight()
                        + "; expected a finite number");
            }
        }
        this.terms = List.copyOf(terms);
    }

    /** A new, empty builder; add at least one term before {@link Builder#build()}. */
    public static Builder builder() {
        return new Builder();
    }

    /** The terms in the order they were added, each with its current weight; an unmodifiable list, never empty. */
    public List<Term> terms() {
        return terms;
    }

    @Override
    public String name() {
        return "weighted-sum";
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        List<Map<String, Object>> list = new ArrayList<>();
        for (Term t : terms) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("loss", t.loss().name());
            e.put("weight", t.weight().describe());
            e.putAll(t.loss().settings());
            list.add(e);
        }
        m.put("terms", list);
        return m;
    }

    @Override
    public boolean needsTeacher() {
        return terms.stream().anyMatch(t -> t.loss().needsTeacher());
    }

    @Override
    public boolean needsLabels() {
        return terms.stream().anyMatch(t -> t.loss().needsLabels());
    }

    @Override
    public boolean acceptsUnlabeledRows() {
        return terms.stream().allMatch(t -> t.loss().acceptsUnlabeledRows());
    }

    @Override
    public boolean needsTopK() {
        return terms.stream().anyMatch(t -> t.loss().needsTopK());
    }

    /** Whether every term is. */
    @Override
    public boolean rowSeparable() {
        return terms.stream().allMatch(t -> t.loss().rowSeparable());
    }

    @Override
    public Reduction reduction() {
        return terms.get(0).loss().reduction();
    }

    @Override
    public WeightedSum atEpoch(int epoch, int epochs) {
        List<Term> out = new ArrayList<>();
        for (Term t : terms) {
            LogitLoss l = t.loss() instanceof EpochAware ea ? ea.atEpoch(epoch, epochs) : t.loss();
            out.add(new Term(l, t.weight(), t.weight().at(epoch, epochs)));
        }
        return of(out);
    }

    /**
     * The first temperature-scaled term's temperature (the one {@link #withTemperature} sets on all of them), or NaN
     * when no term has one (then this sum is not {@link TemperatureScaled}).
     */
    public double temperature() {
        for (Term t : terms) {
            if (t.loss() instanceof TemperatureScaled ts) {
                return ts.temperature();
            }
        }
        return Double.NaN;
    }

    /**
     * Every temperature-scaled term at temperature {@code t}.
     *
     * @throws IllegalArgumentException when no term has a temperature
     */
    public WeightedSum withTemperature(double t) {
        List<Term> out = new ArrayList<>();
        boolean any = false;
        for (Term term : terms) {
            LogitLoss l = term.loss();
            if (l instanceof TemperatureScaled ts) {
                l = ts.withTemperature(t);
                any = true;
            }
            out.add(new Term(l, term.weight(), term.currentWeight()));
        }
        if (!any) {
            throw new IllegalArgumentException("no term of this weighted sum has a temperature");
        }
        return of(out);
    }

    /** A weighted sum with a temperature-scaled term. */
    private static final class Tempered extends WeightedSum implements TemperatureScaled {
        private Tempered(List<Term> terms) {
            super(terms);
        }
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut, upstream);
        return sliced(batch, 0, batch.rows(), gradOut, 0, upstream);
    }

    /** Each term's {@link LogitLoss#computeRows} on the rows. */
    @Override
    public LossResult computeRows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        checkRows(batch, from, to, gradOut, gradOffset, upstream);
        return sliced(batch, from, to, gradOut, gradOffset, upstream);
    }

    /**
     * Rows {@code [from, to)} in slices of {@link Scratch#SLICE_ELEMENTS} logits ({@link Scratch#inSlices}) when every
     * term is row-separable, so the terms' gradient buffer stays a slice's on a batch of any size; the sum is the CPU
     * backend's, bit for bit. A sum with a term that looks across rows gets the whole range at once.
     */
    private LossResult sliced(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        return Scratch.inSlices(from, to, batch.classes(), gradOffset, rowSeparable(),
                (a, b, off) -> rows(batch, a, b, gradOut, off, upstream));
    }

    /**
     * Rows {@code [from, to)}, their gradient from {@code gradOut[gradOffset]} on; the arguments are checked. Each
     * term writes its gradient into a scratch buffer of the thread's (held while the terms run, which take theirs from
     * the next level) that is added to {@code gradOut}.
     */
    private LossResult rows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        final int n = (to - from) * batch.classes();
        java.util.Arrays.fill(gradOut, gradOffset, gradOffset + n, 0f);
        double value = 0;
        Map<String, Double> parts = new LinkedHashMap<>();
        Map<String, Integer> seen = new LinkedHashMap<>();
        try (Scratch sc = Scratch.acquire()) {
            float[] g = sc.floats(0, n);
            for (Term t : terms) {
                double w = t.currentWeight();
                LossResult r = t.loss().computeRows(batch, from, to, g, 0, (float) (upstream * w));
                for (int i = 0; i < n; i++) {
                    gradOut[gradOffset + i] += g[i];
                }
                value += w * r.value();
                int k = seen.merge(t.loss().name(), 1, Integer::sum);
                for (Map.Entry<String, Double> e : r.terms().entrySet()) {
                    parts.put(uniqueKey(parts, e.getKey(), k), e.getValue());
                }
            }
        }
        return new LossResult(value, batch.countedRows(from, to), parts);
    }

    /**
     * {@code key} with the suffix {@code #n} of the term's occurrence (none for the first), or, while that is
     * already taken (two terms that report the same component, e.g. {@code kd} and {@code logit-std} around
     * kd both report {@code kd}), the next free {@code #m}: no term's value overwrites another's.
     */
    private static String uniqueKey(Map<String, Double> parts, String key, int n) {
        for (int m = n; ; m++) {
            String k = m == 1 ? key : key + "#" + m;
            if (!parts.containsKey(k)) {
                return k;
            }
        }
    }

    /** Builds a weighted sum term by term. */
    public static final class Builder {
        private final List<Term> terms = new ArrayList<>();

        private Builder() {
        }

        /** A term with a constant weight. */
        public Builder add(double weight, LogitLoss loss) {
            return add(Schedule.constant(weight), loss);
        }

        /** A term whose weight follows a schedule over the epochs (its epoch-0 value outside training). */
        public Builder add(Schedule weight, LogitLoss loss) {
            terms.add(new Term(loss, weight, weight.at(0, 1)));
            return this;
        }

        /**
         * The sum of the terms added so far ({@link TemperatureScaled} when one of them is). The builder can be used on;
         * later additions do not change a sum already built.
         *
         * @throws IllegalArgumentException when no term was added, the terms' reductions differ, or a term's weight at
         *                                  epoch 0 is not finite
         */
        public WeightedSum build() {
            return of(terms);
        }
    }
}
