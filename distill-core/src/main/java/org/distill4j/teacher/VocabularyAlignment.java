package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.TeacherValues;

import java.util.Objects;

/**
 * An explicit bridge between a teacher and a student whose vocabularies differ in size (by default a
 * mismatch is an error naming both sizes). Class {@code i} of the teacher is taken to be class
 * {@code i} of the student: the vocabularies must share their first classes.
 *
 * <ul>
 *   <li>{@link Mode#TRUNCATE} (teacher larger): the teacher's extra classes are dropped; the losses
 *       renormalize the remaining distribution.</li>
 *   <li>{@link Mode#PAD} (teacher smaller): the student's extra classes get teacher probability 0. The
 *       rows keep the teacher's kind ({@link #values()}): logits are padded with {@code -Infinity},
 *       probabilities with zeros, both a class of zero mass to the losses (see {@link TeacherValues}). Every
 *       distribution loss takes them ({@code reverse-kl} and {@code gjsd} at beta 1 floor the zero
 *       probabilities, {@code logit-std} standardizes over the teacher's own classes); {@code mse} refuses
 *       them, since there is no logit to match.</li>
 * </ul>
 *
 * <p>A top-k teacher ({@link SparseTeacher}: API logprobs, a top-k store) stays a top-k teacher, for {@code topk-kd},
 * with the semantics of aligning its dense distribution:
 * <ul>
 *   <li>PAD keeps each row's entries and appends the student's new classes as entries of log-probability
 *       {@code -Infinity} ({@code k} grows by the classes added), so they have no mass under either tail of
 *       {@code topk-kd}: without them, the rest bucket would let the student spread the teacher's tail over them.</li>
 *   <li>TRUNCATE drops the entries of classes {@code >=} the student's, and renormalizes, as a dense teacher's truncated
 *       distribution is: the kept entries' log-probabilities are shifted by {@code -log(kept + rest)}, where
 *       {@code rest = 1 - sum of all entries' probabilities} is the teacher's unknown tail, taken to lie in the student's
 *       classes. Rows keep {@code k = min(k, student classes)} entries: a dropped entry's slot is filled with a class
 *       outside the row (the highest free id) at log-probability {@code -Infinity}. Under {@code topk-kd}'s default
 *       {@code renormalize} tail that is exact (an entry of probability 0 weighs nothing, and its class gets the
 *       gradient of any class outside the top-k); under the {@code rest} tail the filled class is taken as of
 *       probability 0 instead of part of the rest. A row whose entries of positive probability all lie beyond the
 *       student's classes has nothing left to distill and is an error naming the row and sample.</li>
 * </ul>
 */
public final class VocabularyAlignment implements Teacher {
    /** How to reconcile the sizes. */
    public enum Mode { TRUNCATE, PAD }

    private final Teacher teacher;
    private final int classes;
    private final Mode mode;

    private VocabularyAlignment(Teacher teacher, int classes, Mode mode) {
        this.teacher = teacher;
        this.classes = classes;
        this.mode = mode;
    }

    /** {@code teacher} as seen by a student with {@code studentClasses} outputs; unchanged when the sizes match. */
    public static Teacher align(Teacher teacher, int studentClasses, Mode mode) {
        Objects.requireNonNull(teacher, "teacher");
        Objects.requireNonNull(mode, "mode");
        int tc = teacher.classes();
        if (studentClasses < 1) {
            throw new IllegalArgumentException("cannot align the teacher's " + tc + " classes to a student with " + studentClasses
                    + " classes; expected >= 1");
        }
        if (tc == studentClasses) {
            return teacher;
        }
        if (mode == Mode.TRUNCATE && tc < studentClasses) {
            throw new IllegalArgumentException("cannot TRUNCATE: the teacher has " + tc + " classes, fewer than the student's "
                    + studentClasses + "; use PAD");
        }
        if (mode == Mode.PAD && tc > studentClasses) {
            throw new IllegalArgumentException("cannot PAD: the teacher has " + tc + " classes, more than the student's "
                    + studentClasses + "; use TRUNCATE");
        }
        VocabularyAlignment dense = new VocabularyAlignment(teacher, studentClasses, mode);
        return teacher instanceof SparseTeacher sparse ? new Sparse(dense, sparse) : dense;
    }

    /** {@link #align(Teacher, int, Mode)} of a top-k teacher, which stays a top-k teacher. */
    public static SparseTeacher align(SparseTeacher teacher, int studentClasses, Mode mode) {
        return (SparseTeacher) align((Teacher) teacher, studentClasses, mode);
    }

    @Override
    public int classes() {
        return classes;
    }

    /** The wrapped teacher's: PAD keeps logits as logits (padded with {@code -Infinity}) and probabilities as probabilities. */
    @Override
    public TeacherValues values() {
        return teacher.values();
    }

    @Override
    public float[] outputs(Batch batch) {
        int n = batch.size();
        int tc = teacher.classes();
        float[] in = teacher.outputs(batch);
        float[] out = new float[n * classes];
        if (mode == Mode.TRUNCATE) {
            for (int r = 0; r < n; r++) {
                System.arraycopy(in, r * tc, out, r * classes, classes);
            }
            return out;
        }
        // PAD: the teacher's values as they are, and zero mass in the student's extra classes
        float zeroMass = teacher.values() == TeacherValues.LOGITS ? Float.NEGATIVE_INFINITY : 0f;
        for (int r = 0; r < n; r++) {
            System.arraycopy(in, r * tc, out, r * classes, tc);
            java.util.Arrays.fill(out, r * classes + tc, (r + 1) * classes, zeroMass);
        }
        return out;
    }

    /** The wrapped teacher's feature: alignment changes the class scores, not the model's intermediate activations. */
    @Override
    public org.distill4j.data.Feature feature(Batch batch, String name) {
        return teacher.feature(batch, name);
    }

    /** Exactly the data the wrapped teacher serves (a stored teacher: only the dataset it labeled). */
    @Override
    public boolean serves(org.distill4j.data.Dataset data) {
        return teacher.serves(data);
    }

    /** As checkpoints and store headers recorded it (so "padd", unlike {@link #describe}): they must still match. */
    @Override
    public String identity() {
        return "[" + teacher.identity() + "], " + mode.name().toLowerCase() + "d from " + teacher.classes() + " to " + classes + " classes";
    }

    @Override
    public String describe() {
        return teacher.describe() + ", " + (mode == Mode.PAD ? "padded" : "truncated") + " from " + teacher.classes() + " to "
                + classes + " classes";
    }

    /** A top-k teacher aligned: its entries, as the class comment says. */
    private static final class Sparse implements SparseTeacher {
        private final VocabularyAlignment dense;
        private final SparseTeacher teacher;
        private final int k;

        Sparse(VocabularyAlignment dense, SparseTeacher teacher) {
            this.dense = dense;
            this.teacher = teacher;
            this.k = dense.mode == Mode.PAD ? teacher.k() + (dense.classes - teacher.classes()) : Math.min(teacher.k(), dense.classes);
        }

        @Override
        public int k() {
            return k;
        }

        @Override
        public TopK topK(Batch batch) {
            int n = batch.size();
            int tc = teacher.classes();
            int v = dense.classes;
            int tk = teacher.k();
            TopK in = teacher.topK(batch);
            if (in.k() != tk || in.ids().length != (long) n * tk || in.logProbs().length != (long) n * tk) {
                throw new IllegalStateException(teacher.describe() + " gave top-k rows of k " + in.k() + " with " + in.ids().length
                        + " ids and " + in.logProbs().length + " log-probabilities for " + n + " rows; expected k " + tk + " and "
                        + n + " x " + tk + " of each");
            }
            int[] ids = new int[n * k];
            float[] lps = new float[n * k];
            boolean[] inRow = new boolean[Math.max(tc, v)];
            for (int r = 0; r < n; r++) {
                for (int j = 0; j < tk; j++) {
                    int id = in.ids()[r * tk + j];
                    if (id < 0 || id >= tc) {
                        throw new IllegalArgumentException(teacher.describe() + ": top-k id at row " + r + " (sample "
                                + batch.indices()[r] + "), entry " + j + " is " + id + ", expected a class in [0, " + tc + ")");
                    }
                    if (inRow[id]) {
                        throw new IllegalArgumentException(teacher.describe() + ": top-k ids of row " + r + " (sample "
                                + batch.indices()[r] + ") repeat class " + id);
                    }
                    inRow[id] = true;
                }
                if (dense.mode == Mode.PAD) {
                    System.arraycopy(in.ids(), r * tk, ids, r * k, tk);
                    System.arraycopy(in.logProbs(), r * tk, lps, r * k, tk);
                    for (int c = tc; c < v; c++) {
                        ids[r * k + tk + c - tc] = c;
                        lps[r * k + tk + c - tc] = Float.NEGATIVE_INFINITY;
                    }
                } else {
                    truncateRow(in, r, batch, inRow, ids, lps);
                }
                for (int j = 0; j < tk; j++) {
                    inRow[in.ids()[r * tk + j]] = false;
                }
            }
            return new TopK(ids, lps, k);
        }

        /** Row {@code r} of {@code in} without the classes beyond the student's, renormalized; {@code inRow} marks its ids. */
        private void truncateRow(TopK in, int r, Batch batch, boolean[] inRow, int[] ids, float[] lps) {
            int v = dense.classes;
            int tk = teacher.k();
            double kept = 0;
            double dropped = 0;
            int nk = 0;
            for (int j = 0; j < tk; j++) {
                int id = in.ids()[r * tk + j];
                double p = Math.exp(in.logProbs()[r * tk + j]);
                if (id < v) {
                    ids[r * k + nk] = id;
                    lps[r * k + nk] = in.logProbs()[r * tk + j];
                    nk++;
                    kept += p;
                } else {
                    dropped += p;
                }
            }
            if (!(kept > 0)) {
                throw new IllegalArgumentException(teacher.describe() + ": every top-k entry of positive probability of row " + r
                        + " (sample " + batch.indices()[r] + ") is of one of the classes >= " + v + " that TRUNCATE drops (ids "
                        + java.util.Arrays.toString(java.util.Arrays.copyOfRange(in.ids(), r * tk, (r + 1) * tk))
                        + "): nothing of its distribution is left in the student's vocabulary");
            }
            if (dropped > 0) {
                // the truncated distribution: kept entries and the unknown tail (taken to lie in the student's classes), renormalized
                double shift = Math.log(kept + Math.max(0.0, 1.0 - (kept + dropped)));
                for (int j = 0; j < nk; j++) {
                    lps[r * k + j] = (float) Math.min(0.0, lps[r * k + j] - shift);
                }
            }
            // the dropped entries' slots: classes outside the row, of probability 0, from the highest id down
            int c = v - 1;
            for (int j = nk; j < k; j++) {
                while (inRow[c]) {
                    c--;
                }
                ids[r * k + j] = c;
                lps[r * k + j] = Float.NEGATIVE_INFINITY;
                c--;
            }
        }

        @Override
        public int classes() {
            return dense.classes();
        }

        @Override
        public TeacherValues values() {
            return dense.values();
        }

        /** The aligned dense rows, where the wrapped teacher has them (a top-k store does not: it says so). */
        @Override
        public float[] outputs(Batch batch) {
            return dense.outputs(batch);
        }

        @Override
        public org.distill4j.data.Feature feature(Batch batch, String name) {
            return dense.feature(batch, name);
        }

        @Override
        public boolean serves(org.distill4j.data.Dataset data) {
            return dense.serves(data);
        }

        @Override
        public String identity() {
            return dense.identity();
        }

        @Override
        public String describe() {
            return dense.describe();
        }
    }
}
