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
        return new VocabularyAlignment(teacher, studentClasses, mode);
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

    @Override
    public String identity() {
        return "[" + teacher.identity() + "], " + mode.name().toLowerCase() + "d from " + teacher.classes() + " to " + classes + " classes";
    }

    @Override
    public String describe() {
        return teacher.describe() + ", " + mode.name().toLowerCase() + "d from " + teacher.classes() + " to " + classes + " classes";
    }
}
