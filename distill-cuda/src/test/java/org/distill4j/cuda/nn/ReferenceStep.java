package org.distill4j.cuda.nn;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.TeacherValues;

import java.util.Random;

/**
 * The float64 reference of a whole engine step: the teacher's logits from {@link MlpReference}, the
 * student's forward (with given dropout masks), the loss's CPU gradient, the student's backward and the
 * optimizer step. The engine's runs (host and device) are compared with it.
 */
final class ReferenceStep {
    final MlpReference student;
    final MlpReference teacher;
    /** The last step's results. */
    double[] teacherLogits;
    double[] studentLogits;
    double[][][] grads;
    LossResult loss;

    ReferenceStep(MlpSpec studentSpec, MlpWeights studentWeights, MlpSpec teacherSpec, MlpWeights teacherWeights) {
        student = new MlpReference(studentSpec, studentWeights);
        teacher = teacherSpec != null ? new MlpReference(teacherSpec, teacherWeights) : null;
    }

    void step(float[] x, int rows, int[] labels, boolean[][] masks, LogitLoss l) {
        teacherLogits = teacher != null ? teacher.forward(x, rows) : null;
        studentLogits = student.forward(x, rows, masks);
        float[] s = narrow(studentLogits);
        int classes = s.length / rows;
        LogitBatch b = teacherLogits == null ? LogitBatch.ofLabels(rows, classes, s, labels)
                : LogitBatch.of(rows, classes, s, narrow(teacherLogits), TeacherValues.LOGITS, labels);
        float[] g = new float[s.length];
        loss = l.compute(b, g, 1f);
        grads = student.backward(g);
        student.step(grads);
    }

    static float[] narrow(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    /** Weights like DL4J's Xavier init (fresh random, never zero), biases small but not zero. */
    static MlpWeights randomWeights(MlpSpec spec, Random rng) {
        int n = spec.layers().size();
        float[][] w = new float[n][];
        float[][] b = new float[n][];
        for (int li = 0; li < n; li++) {
            MlpSpec.Layer l = spec.layers().get(li);
            double sd = Math.sqrt(2.0 / (l.in() + l.out()));
            w[li] = new float[l.in() * l.out()];
            for (int i = 0; i < w[li].length; i++) {
                w[li][i] = (float) (rng.nextGaussian() * sd);
            }
            b[li] = new float[l.out()];
            for (int i = 0; i < l.out(); i++) {
                b[li][i] = (float) (rng.nextGaussian() * 0.1);
            }
        }
        return new MlpWeights(w, b);
    }

    static float[] gaussian(Random rng, int n, double sd) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (rng.nextGaussian() * sd);
        }
        return f;
    }

    static int[] labels(Random rng, int rows, int classes) {
        int[] y = new int[rows];
        for (int r = 0; r < rows; r++) {
            y[r] = rng.nextInt(classes);
        }
        return y;
    }
}
