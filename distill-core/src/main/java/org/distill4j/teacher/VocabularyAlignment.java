package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LossMath;
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
 *       classes. Rows keep {@code k = min(k, student classes)} slots: a dropped entry's slot is absent
 *       ({@link LogitBatch#ABSENT}, log-probability {@code -Infinity}), so the row is the top-k of its other entries and
 *       both tails of {@code topk-kd} are exact (under {@code rest} every class outside the kept entries is part of the
 *       rest). A store holds k entries in every row: store a teacher before aligning it. A row whose entries of positive probability all lie beyond the
 *       student's classes has nothing left to distill and is an error naming the row and sample.</li>
 * </ul>
 *
 * <p>{@link #map} takes an explicit id map instead, for vocabularies in another order or with tokens only one side has:
 * teacher class {@code t} is student class {@code map[t]}, or none ({@code -1}). A teacher class without a student
 * class is dropped as TRUNCATE drops one, a student class without a teacher class has no mass as PAD gives it, for
 * dense and top-k teachers alike (TRUNCATE and PAD are the maps {@code t -> t}).
 */
public final class VocabularyAlignment implements Teacher {
    /** How to reconcile the sizes. */
    public enum Mode {
        /** For a teacher with more classes than the student: the teacher's classes from the student's count on are dropped. */
        TRUNCATE,
        /** For a teacher with fewer classes than the student: the student's extra classes get no teacher mass. */
        PAD
    }

    private final Teacher teacher;
    private final int classes;
    /** TRUNCATE or PAD, or null for an explicit {@link #map}. */
    private final Mode mode;
    /** Teacher class -> student class or -1: TRUNCATE's and PAD's, or the explicit map (a copy). */
    private final int[] map;

    private VocabularyAlignment(Teacher teacher, int classes, Mode mode, int[] map) {
        this.teacher = teacher;
        this.classes = classes;
        this.mode = mode;
        this.map = map;
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
        int[] map = new int[tc];
        for (int t = 0; t < tc; t++) {
            map[t] = t < studentClasses ? t : -1;
        }
        return of(new VocabularyAlignment(teacher, studentClasses, mode, map));
    }

    /** {@link #align(Teacher, int, Mode)} of a top-k teacher, which stays a top-k teacher. */
    public static SparseTeacher align(SparseTeacher teacher, int studentClasses, Mode mode) {
        return (SparseTeacher) align((Teacher) teacher, studentClasses, mode);
    }

    /**
     * {@code teacher} as seen by a student of {@code studentClasses} outputs through an id map.
     *
     * @param studentIds one entry per teacher class: the student class it is, in {@code [0, studentClasses)}, or
     *                   {@code -1} where the student has no such class; no student class twice (copied here)
     * @throws IllegalArgumentException naming the entry, for a map of another length, an entry out of range, a student
     *                                  class given twice, or a map that keeps none of the teacher's classes
     */
    public static Teacher map(Teacher teacher, int[] studentIds, int studentClasses) {
        Objects.requireNonNull(teacher, "teacher");
        Objects.requireNonNull(studentIds, "studentIds");
        int tc = teacher.classes();
        if (studentClasses < 1) {
            throw new IllegalArgumentException("cannot map the teacher's " + tc + " classes to a student with " + studentClasses
                    + " classes; expected >= 1");
        }
        if (studentIds.length != tc) {
            throw new IllegalArgumentException("id map has " + studentIds.length + " entries, expected one per teacher class (" + tc + ")");
        }
        int[] map = studentIds.clone();
        int[] from = new int[studentClasses];
        java.util.Arrays.fill(from, -1);
        int kept = 0;
        for (int t = 0; t < tc; t++) {
            int s = map[t];
            if (s < -1 || s >= studentClasses) {
                throw new IllegalArgumentException("id map entry " + t + " (teacher class " + t + ") is " + s + ", expected a student "
                        + "class in [0, " + studentClasses + ") or -1 for none");
            }
            if (s >= 0) {
                if (from[s] >= 0) {
                    throw new IllegalArgumentException("id map sends teacher classes " + from[s] + " and " + t + " both to student class "
                            + s + "; expected each student class at most once");
                }
                from[s] = t;
                kept++;
            }
        }
        if (kept == 0) {
            throw new IllegalArgumentException("id map sends none of the teacher's " + tc + " classes to the student's " + studentClasses
                    + "; nothing of the teacher would be left");
        }
        return of(new VocabularyAlignment(teacher, studentClasses, null, map));
    }

    /** {@link #map(Teacher, int[], int)} of a top-k teacher, which stays a top-k teacher. */
    public static SparseTeacher map(SparseTeacher teacher, int[] studentIds, int studentClasses) {
        return (SparseTeacher) map((Teacher) teacher, studentIds, studentClasses);
    }

    private static Teacher of(VocabularyAlignment dense) {
        return dense.teacher instanceof SparseTeacher sparse ? new Sparse(dense, sparse) : dense;
    }

    /** How many of the teacher's classes the student has. */
    private int kept() {
        int n = 0;
        for (int s : map) {
            if (s >= 0) {
                n++;
            }
        }
        return n;
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
        return outputs(batch, 1.0);
    }

    /** The wrapped teacher's rows at {@code temperature}, aligned. */
    @Override
    public float[] outputs(Batch batch, double temperature) {
        int n = batch.size();
        int tc = teacher.classes();
        float[] in = teacher.outputs(batch, temperature);
        float[] out = new float[n * classes];
        float zeroMass = teacher.values() == TeacherValues.LOGITS ? Float.NEGATIVE_INFINITY : 0f;
        if (mode == null) {
            // the mapped classes' values as they are (the losses renormalize), zero mass where the teacher has no class
            java.util.Arrays.fill(out, zeroMass);
            for (int r = 0; r < n; r++) {
                for (int t = 0; t < tc; t++) {
                    if (map[t] >= 0) {
                        out[r * classes + map[t]] = in[r * tc + t];
                    }
                }
            }
            return out;
        }
        if (mode == Mode.TRUNCATE) {
            for (int r = 0; r < n; r++) {
                System.arraycopy(in, r * tc, out, r * classes, classes);
            }
            return out;
        }
        // PAD: the teacher's values as they are, and zero mass in the student's extra classes
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

    @Override
    public boolean readsFeatures() {
        return teacher.readsFeatures();
    }

    /** As checkpoints and store headers recorded it (so "padd", unlike {@link #describe}): they must still match. */
    @Override
    public String identity() {
        if (mode == null) {
            // the map is what the outputs depend on: its digest
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * map.length);
            for (int s : map) {
                b.putInt(s);
            }
            try {
                byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(b.array());
                return "[" + teacher.identity() + "], mapped from " + teacher.classes() + " to " + classes + " classes by the id map of "
                        + "sha-256 " + java.util.HexFormat.of().formatHex(d);
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 is missing from this Java runtime", e);
            }
        }
        return "[" + teacher.identity() + "], " + mode.name().toLowerCase() + "d from " + teacher.classes() + " to " + classes + " classes";
    }

    @Override
    public String describe() {
        if (mode == null) {
            return teacher.describe() + ", mapped from " + teacher.classes() + " to " + classes + " classes (" + kept()
                    + " of the teacher's kept)";
        }
        return teacher.describe() + ", " + (mode == Mode.PAD ? "padded" : "truncated") + " from " + teacher.classes() + " to "
                + classes + " classes";
    }

    /** A top-k teacher aligned: its entries through the map, as the class comment says. */
    private static final class Sparse implements SparseTeacher {
        private final VocabularyAlignment dense;
        private final SparseTeacher teacher;
        /** The student classes no teacher class maps to, ascending: entries of probability 0 in every row. */
        private final int[] unmapped;
        /** Entries per row for the teacher's own entries (kept, then the dropped ones' slots): at most the mapped classes. */
        private final int own;
        private final int k;

        Sparse(VocabularyAlignment dense, SparseTeacher teacher) {
            this.dense = dense;
            this.teacher = teacher;
            boolean[] image = new boolean[dense.classes];
            for (int s : dense.map) {
                if (s >= 0) {
                    image[s] = true;
                }
            }
            int kept = dense.kept();
            this.unmapped = new int[dense.classes - kept];
            for (int c = 0, u = 0; c < dense.classes; c++) {
                if (!image[c]) {
                    unmapped[u++] = c;
                }
            }
            this.own = Math.min(teacher.k(), kept);
            this.k = own + unmapped.length;
        }

        @Override
        public int k() {
            return k;
        }

        @Override
        public boolean hasDenseOutputs() {
            return teacher.hasDenseOutputs();
        }

        @Override
        public TopK topK(Batch batch) {
            return topK(batch, 1.0);
        }

        /** The wrapped teacher's top-k at {@code temperature}, aligned. */
        @Override
        public TopK topK(Batch batch, double temperature) {
            int n = batch.size();
            int tc = teacher.classes();
            int tk = teacher.k();
            TopK in = teacher.topK(batch, temperature);
            if (in.k() != tk || in.ids().length != (long) n * tk || in.logProbs().length != (long) n * tk) {
                throw new IllegalStateException(teacher.describe() + " gave top-k rows of k " + in.k() + " with " + in.ids().length
                        + " ids and " + in.logProbs().length + " log-probabilities for " + n + " rows; expected k " + tk + " and "
                        + n + " x " + tk + " of each");
            }
            int[] ids = new int[n * k];
            float[] lps = new float[n * k];
            boolean[] inTeacherRow = new boolean[tc];
            boolean[] inRow = new boolean[dense.classes];
            for (int r = 0; r < n; r++) {
                for (int j = 0; j < tk; j++) {
                    int id = in.ids()[r * tk + j];
                    if (id == LogitBatch.ABSENT && in.logProbs()[r * tk + j] == Float.NEGATIVE_INFINITY) {
                        continue; // a slot of no class, as an aligned teacher's dropped entries: aligned to nothing
                    }
                    if (id < 0 || id >= tc) {
                        throw new IllegalArgumentException(teacher.describe() + ": top-k id at row " + r + " (sample "
                                + batch.indices()[r] + "), entry " + j + " is " + id + ", expected a class in [0, " + tc + ")");
                    }
                    if (inTeacherRow[id]) {
                        throw new IllegalArgumentException(teacher.describe() + ": top-k ids of row " + r + " (sample "
                                + batch.indices()[r] + ") repeat class " + id);
                    }
                    inTeacherRow[id] = true;
                }
                alignRow(in, r, batch, inRow, ids, lps);
                for (int j = 0; j < tk; j++) {
                    if (in.ids()[r * tk + j] != LogitBatch.ABSENT) {
                        inTeacherRow[in.ids()[r * tk + j]] = false;
                    }
                }
                for (int j = 0; j < k; j++) {
                    if (ids[r * k + j] != LogitBatch.ABSENT) {
                        inRow[ids[r * k + j]] = false;
                    }
                }
            }
            return new TopK(ids, lps, k);
        }

        /**
         * Row {@code r} of {@code in} through the map: the kept entries renamed and renormalized, the dropped ones' slots
         * filled, then the unmapped student classes; {@code inRow} (all false) marks the row's student classes.
         */
        private void alignRow(TopK in, int r, Batch batch, boolean[] inRow, int[] ids, float[] lps) {
            int[] map = dense.map;
            int tk = teacher.k();
            double kept = 0;
            double dropped = 0;
            int nk = 0;
            for (int j = 0; j < tk; j++) {
                if (in.ids()[r * tk + j] == LogitBatch.ABSENT) {
                    continue; // no class, no mass (checked by the caller)
                }
                int s = map[in.ids()[r * tk + j]];
                double p = LossMath.exp(in.logProbs()[r * tk + j]);
                if (s >= 0) {
                    ids[r * k + nk] = s;
                    lps[r * k + nk] = in.logProbs()[r * tk + j];
                    inRow[s] = true;
                    nk++;
                    kept += p;
                } else {
                    dropped += p;
                }
            }
            if (!(kept > 0) && !(dropped > 0)) {
                throw new IllegalArgumentException(teacher.describe() + ": row " + r + " (sample " + batch.indices()[r] + ") has no "
                        + "top-k entry of positive probability; expected at least one");
            }
            if (!(kept > 0)) {
                throw new IllegalArgumentException(teacher.describe() + ": every top-k entry of positive probability of row " + r
                        + " (sample " + batch.indices()[r] + ") is of a class " + (dense.mode == Mode.TRUNCATE
                        ? ">= " + dense.classes + " that TRUNCATE drops" : "the id map drops") + " (ids "
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
            for (int u : unmapped) {
                inRow[u] = true; // taken by the entries appended below
            }
            // the dropped entries' slots hold no class: the row is the top-k of its other entries (under the rest tail
            // every class outside them is part of the rest)
            for (int j = nk; j < own; j++) {
                ids[r * k + j] = LogitBatch.ABSENT;
                lps[r * k + j] = Float.NEGATIVE_INFINITY;
            }
            for (int u = 0; u < unmapped.length; u++) {
                ids[r * k + own + u] = unmapped[u];
                lps[r * k + own + u] = Float.NEGATIVE_INFINITY;
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
        public float[] outputs(Batch batch, double temperature) {
            return dense.outputs(batch, temperature);
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
        public boolean readsFeatures() {
            return dense.readsFeatures();
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
