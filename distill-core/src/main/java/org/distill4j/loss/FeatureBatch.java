package org.distill4j.loss;

import java.util.Arrays;
import java.util.Objects;

/**
 * The inputs of a feature loss for one batch: a student feature and a teacher feature for each of
 * {@code rows} samples, row-major. Each sample's feature has a shape: {@code {D}} for a vector, or
 * {@code {C, H, W}} for an activation map (channel-major, as DL4J's NCHW). Student and teacher shapes
 * may differ; each loss says which differences it accepts.
 */
public final class FeatureBatch {
    private final int rows;
    private final float[] student;
    private final int[] studentShape;
    private final float[] teacher;
    private final int[] teacherShape;

    private FeatureBatch(int rows, float[] student, int[] studentShape, float[] teacher, int[] teacherShape) {
        this.rows = rows;
        this.student = student;
        this.studentShape = studentShape;
        this.teacher = teacher;
        this.teacherShape = teacherShape;
    }

    /**
     * @throws IllegalArgumentException when a buffer's length is not rows x the product of its shape; a
     *                                  {@link BadRowException} naming the row of the batch when a value is not finite
     */
    public static FeatureBatch of(int rows, float[] student, int[] studentShape, float[] teacher, int[] teacherShape) {
        if (rows <= 0) {
            throw new IllegalArgumentException("rows must be > 0, got " + rows);
        }
        check("student feature", rows, Objects.requireNonNull(student, "student feature"), studentShape);
        check("teacher feature", rows, Objects.requireNonNull(teacher, "teacher feature"), teacherShape);
        return new FeatureBatch(rows, student, studentShape.clone(), teacher, teacherShape.clone());
    }

    private static void check(String what, int rows, float[] x, int[] shape) {
        Objects.requireNonNull(shape, what + " shape");
        long size = 1;
        for (int d : shape) {
            if (d <= 0) {
                throw new IllegalArgumentException(what + " shape " + Arrays.toString(shape) + " has a dimension <= 0");
            }
            size *= d;
        }
        if (shape.length == 0 || x.length != rows * size) {
            throw new IllegalArgumentException(what + " has " + x.length + " values, expected rows x " + Arrays.toString(shape)
                    + " = " + rows * size);
        }
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) {
                // the row of the batch, as data: the trainer names the training sample it holds (batches are shuffled)
                throw new BadRowException(what + " of row ", (int) (i / size), " has " + x[i] + " at offset " + (i % size));
            }
        }
    }

    /** The number of samples in the batch, {@code > 0}. */
    public int rows() {
        return rows;
    }

    /**
     * The student features, row-major: {@code rows() * studentSize()} finite values, sample {@code r} at
     * {@code [r * studentSize(), (r + 1) * studentSize())}. The array given to {@link #of}, not a copy: do not modify it.
     */
    public float[] student() {
        return student;
    }

    /**
     * The teacher features, row-major: {@code rows() * teacherSize()} finite values, sample {@code r} at
     * {@code [r * teacherSize(), (r + 1) * teacherSize())}. The array given to {@link #of}, not a copy: do not modify it.
     */
    public float[] teacher() {
        return teacher;
    }

    /** A copy of the per-sample student shape. */
    public int[] studentShape() {
        return studentShape.clone();
    }

    /** A copy of the per-sample teacher shape. */
    public int[] teacherShape() {
        return teacherShape.clone();
    }

    /** Values per sample of the student feature. */
    public int studentSize() {
        return student.length / rows;
    }

    /** Values per sample of the teacher feature. */
    public int teacherSize() {
        return teacher.length / rows;
    }

    /** The largest batch a loss over every pair of samples takes: b^2 values must fit in one array. */
    static final int MAX_PAIRWISE_ROWS = 46_340;

    /** Refuses, naming {@code loss}, a batch of more samples than {@link #MAX_PAIRWISE_ROWS}. */
    static void requirePairwiseFits(String loss, int b) {
        if (b > MAX_PAIRWISE_ROWS) {
            throw new IllegalArgumentException(loss + " compares every pair of a batch's samples in b x b matrices; a batch of " + b
                    + " samples needs " + (long) b * b + " values each, more than an array holds; use batches of at most "
                    + MAX_PAIRWISE_ROWS);
        }
    }
}
