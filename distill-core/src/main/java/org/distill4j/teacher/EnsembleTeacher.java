package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.LossMath;
import org.distill4j.loss.TeacherValues;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Several teachers as one: a weighted average of their probabilities (default) or of their logits.
 *
 * <p>{@link Combine#PROBABILITIES} is the ensemble of Hinton et al. ("Distilling the Knowledge in a Neural Network",
 * section 2: the arithmetic mean of the members' soft targets, each produced at the distillation temperature) and of
 * multi-teacher distillation (S. You, C. Xu, C. Xu, D. Tao, "Learning from Multiple Teacher Networks", KDD 2017): the
 * members' distributions softened at the loss's temperature T, then averaged,
 * {@code m_T = sum_k w_k softmax(x_k / T)} (x_k a member's logits; a member giving probabilities p is softened as the
 * losses soften probabilities, {@code softmax(log p / T)}). It is not the average at T = 1 softened afterwards, which
 * is a different distribution at T != 1 (sharper members weigh more). The rows are logits ({@link #values()}):
 * {@link #outputs(Batch, double)} gives {@code T log m_T}, computed in double, so a loss that softens teacher rows at T
 * ({@code softmax(rows / T)}, as {@code kd} and every tempered loss do) sees {@code m_T} exactly; the {@code Distiller}
 * asks at its loss's temperature (a weighted sum's is its first tempered term's, so a sum whose tempered terms have
 * other temperatures gives them all the average at that one). {@link #outputs(Batch)} is the rows at T = 1,
 * {@code log m_1}: the log of the averaged probabilities, what evaluation (teacher agreement, KL) and a {@code Labeler}
 * read. So a store labeled from an ensemble holds the T = 1 average (as log-probabilities), and training from that
 * store at T != 1 tempers that average rather than averaging tempered members, as before this ensemble averaged at T:
 * train from the live ensemble for the papers' targets at T. Being logits, the rows also feed {@code mse}, which then
 * matches the log of the averaged probabilities (at T = 1, as it has no temperature; in a weighted sum with a tempered
 * term, {@code T log m_T}), as it does on a store of log-probabilities; and {@code logit-std} standardizes
 * {@code T log m_T}, whose z-scores are those of {@code log m_T} (the factor T cancels).
 *
 * <p>{@link Combine#LOGITS} averages the members' logits, a geometric mean of their distributions; it keeps the result in
 * logit form and commutes with softening (the average of {@code x_k / T} is the average divided by T), so it is the
 * same at every temperature; the members are still asked at T, so an ensemble among them is averaged at T.
 *
 * <p>Weights are normalized to sum to one; every teacher must have the same number of classes. A teacher of weight 0
 * takes no part. A class of zero mass ({@code -Infinity} logit, e.g. from {@code VocabularyAlignment} PAD) stays of zero
 * mass in a logit average (the geometric mean is 0 where any member's probability is) and weighs nothing in a
 * probability average, where a class of zero mass in every member is {@code -Infinity}.
 */
public final class EnsembleTeacher implements Teacher {
    /** What is averaged. */
    public enum Combine {
        /**
         * The weighted arithmetic mean of the members' distributions, each softened at the loss's temperature (the
         * default); members may give logits or probabilities.
         */
        PROBABILITIES,
        /**
         * The weighted mean of the members' logits (a geometric mean of their distributions), the same at every
         * temperature; every member must give logits.
         */
        LOGITS
    }

    private final List<Teacher> teachers;
    private final double[] weights;
    private final Combine combine;

    private EnsembleTeacher(List<Teacher> teachers, double[] weights, Combine combine) {
        this.teachers = teachers;
        this.weights = weights;
        this.combine = combine;
    }

    /** Equal weights, averaging probabilities. */
    public static EnsembleTeacher of(Teacher... teachers) {
        double[] w = new double[teachers.length];
        java.util.Arrays.fill(w, 1.0);
        return of(List.of(teachers), w, Combine.PROBABILITIES);
    }

    /**
     * @param weights one non-negative weight per teacher, not all zero (normalized here)
     * @throws IllegalArgumentException on mismatched class counts, bad weights, {@code LOGITS} with a teacher that
     *                                  only gives probabilities, or a teacher of top-k entries only (a top-k store)
     */
    public static EnsembleTeacher of(List<Teacher> teachers, double[] weights, Combine combine) {
        Objects.requireNonNull(combine, "combine");
        if (teachers.isEmpty()) {
            throw new IllegalArgumentException("an ensemble needs at least one teacher");
        }
        if (weights.length != teachers.size()) {
            throw new IllegalArgumentException("ensemble has " + teachers.size() + " teachers but " + weights.length + " weights");
        }
        int classes = teachers.get(0).classes();
        double max = 0;
        for (int i = 0; i < teachers.size(); i++) {
            Teacher t = teachers.get(i);
            if (t.classes() != classes) {
                throw new IllegalArgumentException("ensemble teacher " + i + " (" + t.describe() + ") has " + t.classes()
                        + " classes, teacher 0 has " + classes);
            }
            if (t instanceof SparseTeacher sparse && !sparse.hasDenseOutputs()) {
                // found now, not at the ensemble's first batch
                throw new IllegalArgumentException("ensemble teacher " + i + " (" + t.describe() + ") holds only top-" + sparse.k()
                        + " entries per row; an ensemble combines the members' dense rows");
            }
            if (!(weights[i] >= 0) || Double.isInfinite(weights[i])) {
                throw new IllegalArgumentException("ensemble weight " + i + " is " + weights[i] + ", expected a finite value >= 0");
            }
            if (combine == Combine.LOGITS && t.values() != TeacherValues.LOGITS) {
                throw new IllegalArgumentException("ensemble teacher " + i + " gives probabilities; averaging LOGITS needs logits "
                        + "from every teacher (use Combine.PROBABILITIES)");
            }
            max = Math.max(max, weights[i]);
        }
        if (!(max > 0)) {
            throw new IllegalArgumentException("ensemble weights sum to 0.0, expected > 0");
        }
        double sum = 0;
        for (double x : weights) {
            sum += x;
        }
        // finite weights can have a sum beyond the doubles (each weight / Infinity would be 0): then scale by the largest first
        double scale = Double.isInfinite(sum) ? max : 1;
        if (scale != 1) {
            sum = 0;
            for (double x : weights) {
                sum += x / scale;
            }
        }
        double[] w = new double[weights.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = weights[i] / scale / sum;
        }
        return new EnsembleTeacher(List.copyOf(new ArrayList<>(teachers)), w, combine);
    }

    @Override
    public int classes() {
        return teachers.get(0).classes();
    }

    /** Logits, whatever is averaged: the log of the averaged probabilities ({@code PROBABILITIES}), or averaged logits. */
    @Override
    public TeacherValues values() {
        return TeacherValues.LOGITS;
    }

    /** The rows at T = 1: {@link #outputs(Batch, double) outputs(batch, 1)}. */
    @Override
    public float[] outputs(Batch batch) {
        return outputs(batch, 1.0);
    }

    /**
     * {@code PROBABILITIES}: {@code T log m_T}, {@code m_T = sum_k w_k softmax(x_k / T)} (see the class comment), the log
     * taken as a log-sum-exp over the members of {@code log w_k + log softmax(x_k / T)} in double, so that no mass that a
     * double can hold in log form is lost to {@code exp}'s underflow; {@code -Infinity} for a class of zero mass in every
     * member. {@code LOGITS}: {@code sum_k w_k x_k}. Each member is asked with {@link Teacher#outputs(Batch, double)} at
     * {@code temperature}.
     *
     * @throws IllegalArgumentException unless {@code temperature} is finite and {@code > 0}
     */
    @Override
    public float[] outputs(Batch batch, double temperature) {
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("ensemble teacher asked at temperature " + temperature + ", expected a finite value > 0");
        }
        int n = batch.size();
        int v = classes();
        List<float[]> outs = new ArrayList<>();
        List<Integer> members = new ArrayList<>();
        for (int ti = 0; ti < teachers.size(); ti++) {
            if (weights[ti] == 0) {
                continue; // no part: 0 x a -inf logit would be NaN
            }
            Teacher t = teachers.get(ti);
            float[] out = t.outputs(batch, temperature);
            if (out.length != (long) n * v) {
                throw new IllegalStateException("ensemble teacher " + ti + " (" + t.describe() + ") gave " + out.length + " values for "
                        + n + " rows of " + v + " classes; expected " + (long) n * v);
            }
            outs.add(out);
            members.add(ti);
        }
        float[] result = new float[n * v];
        if (combine == Combine.LOGITS) {
            double[] acc = new double[n * v];
            for (int j = 0; j < outs.size(); j++) {
                double w = weights[members.get(j)];
                float[] out = outs.get(j);
                for (int i = 0; i < acc.length; i++) {
                    acc[i] += w * out[i];
                }
            }
            for (int i = 0; i < acc.length; i++) {
                result[i] = (float) acc[i];
            }
            return result;
        }
        int m = outs.size();
        double[][] lp = new double[m][v];
        double[] logW = new double[m];
        for (int j = 0; j < m; j++) {
            logW[j] = Math.log(weights[members.get(j)]);
        }
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < m; j++) {
                TeacherRows.logProbabilities(outs.get(j), teachers.get(members.get(j)).values(), r, v, temperature, lp[j]);
            }
            for (int i = 0; i < v; i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < m; j++) {
                    max = Math.max(max, logW[j] + lp[j][i]); // NaN stays NaN: the losses name the bad row
                }
                double logM;
                if (max == Double.NEGATIVE_INFINITY) {
                    logM = max; // zero mass in every member (and no -inf - -inf = NaN)
                } else {
                    double sum = 0;
                    for (int j = 0; j < m; j++) {
                        sum += LossMath.exp(logW[j] + lp[j][i] - max);
                    }
                    logM = max + Math.log(sum);
                }
                result[r * v + i] = (float) (temperature * logM);
            }
        }
        return result;
    }

    /** Whether every member reads the features: one stored member cannot see an augmented batch. */
    @Override
    public boolean readsFeatures() {
        for (Teacher t : teachers) {
            if (!t.readsFeatures()) {
                return false;
            }
        }
        return true;
    }

    /** Only data that every member serves: one stored member labeled on other data makes the ensemble unusable there. */
    @Override
    public boolean serves(org.distill4j.data.Dataset data) {
        for (Teacher t : teachers) {
            if (!t.serves(data)) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String identity() {
        StringBuilder sb = new StringBuilder("ensemble, " + combine.name().toLowerCase(java.util.Locale.ROOT) + " averaged:");
        for (int i = 0; i < teachers.size(); i++) {
            sb.append(' ').append(weights[i]).append(" x [").append(teachers.get(i).identity()).append("];");
        }
        return sb.toString();
    }

    @Override
    public String describe() {
        StringBuilder sb = new StringBuilder("ensemble of " + teachers.size() + " (" + combine.name().toLowerCase(java.util.Locale.ROOT) + " averaged):");
        for (int i = 0; i < teachers.size(); i++) {
            sb.append(String.format(java.util.Locale.ROOT, " %.3f x %s;", weights[i], teachers.get(i).describe()));
        }
        return sb.toString();
    }
}
