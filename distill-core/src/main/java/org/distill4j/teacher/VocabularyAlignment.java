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
 *   <li>{@link Mode#PAD} (teacher smaller): the student's extra classes get teacher probability 0;
 *       the teacher's rows become probabilities padded with zeros. Losses that need teacher logits
 *       ({@code mse}) or finite teacher log-probabilities ({@code reverse-kl}) cannot use it.</li>
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
        return new VocabularyAlignment(teacher, studentClasses, mode);
    }

    @Override
    public int classes() {
        return classes;
    }

    @Override
    public TeacherValues values() {
        return mode == Mode.PAD ? TeacherValues.PROBABILITIES : teacher.values();
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
        double[] row = new double[tc];
        for (int r = 0; r < n; r++) {
            TeacherRows.logProbabilities(in, teacher.values(), r, tc, row);
            for (int i = 0; i < tc; i++) {
                out[r * classes + i] = (float) Math.exp(row[i]);
            }
        }
        return out;
    }

    /** Exactly the data the wrapped teacher serves (a stored teacher: only the dataset it labeled). */
    @Override
    public boolean serves(org.distill4j.data.Dataset data) {
        return teacher.serves(data);
    }

    @Override
    public String identity() {
        return "[" + teacher.identity() + "], " + mode.name().toLowerCase() + "d from " + teacher.classes() + " to " + classes + " classes";
    }

    @Override
    public String describe() {
        return teacher.describe() + ", " + mode.name().toLowerCase() + "d from " + teacher.classes() + " to " + classes + " classes";
    }
}
