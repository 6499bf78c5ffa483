package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.TeacherValues;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Several teachers as one: a weighted average of their probabilities (default) or of their logits.
 *
 * <p>Averaging probabilities is the classic ensemble of Hinton et al. (section 2) and of multi-teacher
 * distillation (S. You, C. Xu, C. Xu, D. Tao, "Learning from Multiple Teacher Networks", KDD 2017);
 * averaging logits (a geometric mean of the distributions) keeps the result in logit form, for losses
 * that need logits such as {@code mse}. Weights are normalized to sum to one; every teacher must have
 * the same number of classes. A teacher of weight 0 takes no part. A class of zero mass ({@code -Infinity}
 * logit, e.g. from {@code VocabularyAlignment} PAD) stays of zero mass in a logit average (the geometric mean
 * is 0 where any member's probability is) and weighs nothing in a probability average.
 */
public final class EnsembleTeacher implements Teacher {
    /** What is averaged. */
    public enum Combine { PROBABILITIES, LOGITS }

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

    @Override
    public TeacherValues values() {
        return combine == Combine.LOGITS ? TeacherValues.LOGITS : TeacherValues.PROBABILITIES;
    }

    @Override
    public float[] outputs(Batch batch) {
        int n = batch.size();
        int v = classes();
        double[] acc = new double[n * v];
        double[] row = new double[v];
        for (int ti = 0; ti < teachers.size(); ti++) {
            Teacher t = teachers.get(ti);
            double w = weights[ti];
            if (w == 0) {
                continue; // no part: 0 x a -inf logit would be NaN
            }
            float[] out = t.outputs(batch);
            for (int r = 0; r < n; r++) {
                if (combine == Combine.LOGITS) {
                    for (int i = 0; i < v; i++) {
                        acc[r * v + i] += w * out[r * v + i];
                    }
                } else {
                    TeacherRows.logProbabilities(out, t.values(), r, v, row);
                    for (int i = 0; i < v; i++) {
                        acc[r * v + i] += w * Math.exp(row[i]);
                    }
                }
            }
        }
        float[] result = new float[acc.length];
        for (int i = 0; i < acc.length; i++) {
            result[i] = (float) acc[i];
        }
        return result;
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
