package org.distill4j.train;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.LossMath;
import org.distill4j.student.Student;
import org.distill4j.teacher.Teacher;

import java.util.function.Function;

/**
 * Top-1 predictions, accuracy, agreement and KL to the teacher over datasets, in inference mode. Accuracy, the agreement
 * over a dataset and the KL count only its labeled samples: one labeled {@link Dataset#IGNORE_INDEX} (padding) has a
 * student prediction but no part in any of them, and is not given to the teacher at all (as in training: a teacher's row
 * of a padded position, e.g. one wholly beyond an aligned student's vocabulary, may be one it cannot serve). A sample
 * labeled {@link Dataset#UNLABELED} is left out of them in the same way ("labeled" below means: with a class label).
 */
public final class Evaluation {
    /** Rows per inference batch. */
    static final int EVAL_BATCH = 1000;

    private Evaluation() {
    }

    /** Index of the largest value of each row (first on ties). */
    public static int[] argmax(float[] values, int rows, int classes) {
        int[] out = new int[rows];
        for (int r = 0; r < rows; r++) {
            int off = r * classes;
            int best = 0;
            float bv = values[off];
            for (int c = 1; c < classes; c++) {
                if (values[off + c] > bv) {
                    bv = values[off + c];
                    best = c;
                }
            }
            out[r] = best;
        }
        return out;
    }

    /**
     * The student's top-1 class for every sample (inference mode).
     *
     * @throws IllegalStateException when the student gives NaN for a sample with a class label (IGNORE_INDEX and UNLABELED
     *                               samples are not evaluated), naming the sample
     */
    public static int[] predict(Student student, Dataset data) {
        return predict(b -> student.forward(b, false), student.classes(), data, student.describe());
    }

    /**
     * The teacher's top-1 class for every labeled sample (a sparse teacher's best top-k entry); {@link Dataset#IGNORE_INDEX}
     * for a sample labeled IGNORE_INDEX or {@link Dataset#UNLABELED}, which the teacher is not asked for (evaluation counts
     * labeled samples only).
     *
     * @throws IllegalStateException when the teacher gives NaN for a labeled sample (a top-k teacher: for one of its
     *                               entries), naming the sample
     */
    public static int[] predict(Teacher teacher, Dataset data) {
        if (teacher instanceof org.distill4j.teacher.SparseTeacher sparse) {
            int[] out = unlabeledIgnored(data);
            for (Batch b : labeledBatches(data)) {
                org.distill4j.teacher.SparseTeacher.TopK top = sparse.topK(b);
                for (int r = 0; r < b.size(); r++) {
                    for (int j = 0; j < top.k(); j++) {
                        if (Float.isNaN(top.logProbs()[r * top.k() + j])) {
                            throw new IllegalStateException(teacher.describe() + " gives NaN for sample " + b.indices()[r] + " of "
                                    + data.name() + " (top-k entry " + j + ", class " + top.ids()[r * top.k() + j] + "), which has"
                                    + " no top-1 class");
                        }
                    }
                    int best = r * top.k();
                    for (int j = 1; j < top.k(); j++) {
                        if (top.logProbs()[r * top.k() + j] > top.logProbs()[best]) {
                            best = r * top.k() + j;
                        }
                    }
                    out[b.indices()[r]] = top.ids()[best];
                }
            }
            return out;
        }
        int[] out = unlabeledIgnored(data);
        for (Batch b : labeledBatches(data)) {
            float[] values = teacher.outputs(b);
            requireNoNan(values, b, teacher.classes(), data, teacher.describe());
            int[] best = argmax(values, b.size(), teacher.classes());
            for (int r = 0; r < b.size(); r++) {
                out[b.indices()[r]] = best[r];
            }
        }
        return out;
    }

    /** One entry per sample of {@code data}: IGNORE_INDEX where it is labeled so, to be filled in for the others. */
    private static int[] unlabeledIgnored(Dataset data) {
        int[] out = new int[data.size()];
        for (int i = 0; i < out.length; i++) {
            if (!data.isLabeled(i)) {
                out[i] = Dataset.IGNORE_INDEX;
            }
        }
        return out;
    }

    /**
     * The labeled samples of {@code data} in their order, in inference batches of up to {@link #EVAL_BATCH} rows (one
     * at a time, so only one batch's features are held).
     */
    private static Iterable<Batch> labeledBatches(Dataset data) {
        int[] rows;
        if (data.labeledSize() == data.size()) {
            rows = null;
        } else {
            rows = new int[data.labeledSize()];
            for (int i = 0, n = 0; i < data.size(); i++) {
                if (data.isLabeled(i)) {
                    rows[n++] = i;
                }
            }
        }
        int count = data.labeledSize();
        return () -> new java.util.Iterator<>() {
            int from;

            @Override
            public boolean hasNext() {
                return from < count;
            }

            @Override
            public Batch next() {
                if (!hasNext()) {
                    throw new java.util.NoSuchElementException();
                }
                int to = Math.min(count, from + EVAL_BATCH);
                Batch b = rows == null ? Batch.range(data, from, to) : Batch.of(data, java.util.Arrays.copyOfRange(rows, from, to));
                from = to;
                return b;
            }
        };
    }

    private static int[] predict(Function<Batch, float[]> forward, int classes, Dataset data, String who) {
        int[] out = new int[data.size()];
        for (int from = 0; from < data.size(); from += EVAL_BATCH) {
            Batch b = Batch.range(data, from, Math.min(data.size(), from + EVAL_BATCH));
            float[] values = forward.apply(b);
            requireNoNan(values, b, classes, data, who);
            System.arraycopy(argmax(values, b.size(), classes), 0, out, from, b.size());
        }
        return out;
    }

    /**
     * Throws when an evaluated sample's output (the rows of batch {@code b} of {@code data}; not those labeled
     * IGNORE_INDEX or UNLABELED) holds a NaN: its top-1 class is undefined, and argmax would answer class 0 or skip it without a word.
     */
    private static void requireNoNan(float[] values, Batch b, int classes, Dataset data, String who) {
        for (int r = 0; r < b.size(); r++) {
            int sample = b.indices()[r];
            if (!data.isLabeled(sample)) {
                continue;
            }
            for (int c = 0; c < classes; c++) {
                if (Float.isNaN(values[r * classes + c])) {
                    throw new IllegalStateException(who + " gives NaN for sample " + sample + " of " + data.name() + " (class "
                            + c + "), which has no top-1 class: parameters that are no longer finite (for a student in training, lower the"
                            + " learning rate) or a NaN in the sample's features");
                }
            }
        }
    }

    /**
     * The teacher's log-probabilities at T = 1 for every labeled sample, row-major {@code [data.size(), classes]}
     * (log-softmax of logits, or the log of renormalized probabilities); NaN in the rows of samples labeled
     * {@link Dataset#IGNORE_INDEX} or {@link Dataset#UNLABELED}, which the teacher is not asked for.
     *
     * @throws IllegalStateException when the teacher gives a labeled sample no class of positive probability (or NaN),
     *                               naming the sample: its KL is undefined
     */
    public static float[] logProbabilities(Teacher teacher, Dataset data) {
        int k = teacher.classes();
        float[] out = new float[Math.multiplyExact(data.size(), k)];
        for (int i = 0; i < data.size(); i++) {
            if (!data.isLabeled(i)) {
                java.util.Arrays.fill(out, i * k, (i + 1) * k, Float.NaN);
            }
        }
        double[] row = new double[k];
        for (Batch b : labeledBatches(data)) {
            float[] v = teacher.outputs(b);
            for (int r = 0; r < b.size(); r++) {
                org.distill4j.teacher.TeacherRows.logProbabilities(v, teacher.values(), r, k, row);
                int off = b.indices()[r] * k;
                for (int c = 0; c < k; c++) {
                    if (Double.isNaN(row[c])) {
                        // no class of mass (every logit -inf, every probability 0): the KL to the student is undefined, and
                        // leaving the sample out of the mean would understate it without a word
                        throw new IllegalStateException(teacher.describe() + " gives sample " + b.indices()[r] + " of " + data.name()
                                + " no class of positive probability (or a NaN output), so its KL to the student is undefined;"
                                + " label it Dataset.IGNORE_INDEX to leave it out of training and evaluation");
                    }
                    out[off + c] = (float) row[c];
                }
            }
        }
        return out;
    }

    /** A student's predictions on a dataset and its mean KL(teacher || student) there. */
    public record StudentEval(int[] predictions, double teacherKl) {
    }

    /**
     * The student's top-1 classes (of every sample) and, given the teacher's {@link #logProbabilities} on the same data
     * (or null), the mean KL(teacher || student) per labeled sample at T = 1, accumulated in float64 (NaN when no
     * sample is labeled).
     *
     * @throws IllegalArgumentException when {@code teacherLogProbs} is not {@code [data.size(), student.classes()]}
     * @throws IllegalStateException    when the student gives NaN for a sample with a class label, naming it
     */
    public static StudentEval evaluate(Student student, Dataset data, float[] teacherLogProbs) {
        int k = student.classes();
        if (teacherLogProbs != null && teacherLogProbs.length != (long) data.size() * k) {
            throw new IllegalArgumentException(teacherLogProbs.length + " teacher log-probabilities for " + data.name()
                    + ", expected samples x classes = " + data.size() + " x " + k);
        }
        int[] pred = new int[data.size()];
        double kl = 0;
        double[] ls = new double[k];
        for (int from = 0; from < data.size(); from += EVAL_BATCH) {
            Batch b = Batch.range(data, from, Math.min(data.size(), from + EVAL_BATCH));
            float[] logits = student.forward(b, false);
            requireNoNan(logits, b, k, data, student.describe());
            System.arraycopy(argmax(logits, b.size(), k), 0, pred, from, b.size());
            if (teacherLogProbs != null) {
                for (int r = 0; r < b.size(); r++) {
                    if (!data.isLabeled(from + r)) {
                        continue;
                    }
                    org.distill4j.teacher.TeacherRows.logProbabilities(logits, org.distill4j.loss.TeacherValues.LOGITS, r, k, ls);
                    int off = (from + r) * k;
                    for (int c = 0; c < k; c++) {
                        double lt = teacherLogProbs[off + c];
                        if (lt > Double.NEGATIVE_INFINITY) {
                            kl += LossMath.exp(lt) * (lt - ls[c]);
                        }
                    }
                }
            }
        }
        return new StudentEval(pred, teacherLogProbs == null || data.labeledSize() == 0 ? Double.NaN : kl / data.labeledSize());
    }

    /** Fraction of positions where {@code a} and {@code b} hold the same value. */
    public static double agreement(int[] a, int[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("cannot compare " + a.length + " predictions with " + b.length);
        }
        if (a.length == 0) {
            return Double.NaN;
        }
        int same = 0;
        for (int i = 0; i < a.length; i++) {
            if (a[i] == b[i]) {
                same++;
            }
        }
        return same / (double) a.length;
    }

    /**
     * The fraction of {@code data}'s labeled samples where {@code a} and {@code b} (one value per sample of {@code data})
     * agree; samples labeled {@link Dataset#IGNORE_INDEX} or {@link Dataset#UNLABELED} do not count. NaN for empty data.
     *
     * @throws IllegalArgumentException when a length is not {@code data.size()}, or no sample of non-empty data is labeled
     */
    public static double agreement(int[] a, int[] b, Dataset data) {
        if (a.length != data.size() || b.length != data.size()) {
            throw new IllegalArgumentException("cannot compare " + a.length + " predictions with " + b.length + " over the "
                    + data.size() + " samples of " + data.name());
        }
        if (data.size() == 0) {
            return Double.NaN;
        }
        if (data.labeledSize() == 0) {
            throw new IllegalArgumentException(data.name() + " has no labeled sample: all " + data.size() + " labels are UNLABELED ("
                    + Dataset.UNLABELED + ") or IGNORE_INDEX (" + Dataset.IGNORE_INDEX + "), and a sample labeled so is not evaluated");
        }
        if (data.labeledSize() == data.size()) {
            return agreement(a, b);
        }
        int same = 0;
        for (int i = 0; i < a.length; i++) {
            if (data.isLabeled(i) && a[i] == b[i]) {
                same++;
            }
        }
        return same / (double) data.labeledSize();
    }

    /**
     * Top-1 accuracy of predictions against a dataset's labels, over its labeled samples (those labeled
     * {@link Dataset#IGNORE_INDEX} or {@link Dataset#UNLABELED} do not count). NaN for empty data.
     *
     * @throws IllegalArgumentException when there is not one prediction per sample, or no sample of non-empty data is labeled
     */
    public static double accuracy(int[] predictions, Dataset data) {
        return agreement(predictions, data.labels(), data);
    }
}
