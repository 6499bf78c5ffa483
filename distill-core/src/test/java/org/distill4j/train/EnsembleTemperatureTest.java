package org.distill4j.train;

import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Reduction;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.TemperatureScaled;
import org.distill4j.loss.TopKKd;
import org.distill4j.loss.WeightedSum;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.EnsembleTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.distill4j.teacher.VocabularyAlignment;
import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Nets;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.learning.config.Adam;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The soft targets the {@link Distiller} gives a tempered loss from an {@link EnsembleTeacher} are those of Hinton et al.
 * (section 2) and You et al. (KDD 2017): the weighted average of the members' distributions softened at the loss's
 * temperature, {@code m_T = sum_k w_k softmax(x_k / T)} (a member giving probabilities p: {@code softmax(log p / T)}),
 * not the average at T = 1 softened afterwards. Checked on the {@link LogitBatch} the Distiller builds, batch by batch,
 * against a float64 reference of {@code m_T}, with members of unequal weights, one of logits (|x| ~ 300, a logit of 900,
 * a class PAD'ded to -inf) and one of probabilities (zero and tiny masses), 13 classes, batches of 16, 16 and 5.
 *
 * <p>Two steps, as for half inputs (see {@link Tolerances}): the teacher rows the Distiller built, softened at T by the
 * loss's own rule, equal {@code log m_T} of the reference ({@link Tolerances#assertLogProbsClose}: the rows are rounded to
 * float32 once; a class of zero mass in every member is -inf);
 * then the loss's value and gradient on those rows, at an upstream gradient of 0.7, equal the float64 formula on them
 * ({@link Tolerances#assertValueClose}, {@link Tolerances#assertGradClose}).
 */
class EnsembleTemperatureTest {
    private static final int V = 13;
    private static final int N = 37;
    private static final int D = 5;
    private static final int BATCH = 16;
    private static final float UPSTREAM = 0.7f;

    /** A teacher whose rows are looked up by sample index; remembers the last batch it was asked for. */
    static class Table implements Teacher {
        final float[] rows;
        final int classes;
        final TeacherValues values;
        int[] lastIndices;

        Table(float[] rows, int classes, TeacherValues values) {
            this.rows = rows;
            this.classes = classes;
            this.values = values;
        }

        @Override
        public int classes() {
            return classes;
        }

        @Override
        public TeacherValues values() {
            return values;
        }

        @Override
        public float[] outputs(Batch batch) {
            lastIndices = batch.indices().clone();
            float[] out = new float[batch.size() * classes];
            for (int r = 0; r < batch.size(); r++) {
                System.arraycopy(rows, batch.indices()[r] * classes, out, r * classes, classes);
            }
            return out;
        }

        @Override
        public String describe() {
            return "table of " + classes + " " + values;
        }

        /** Log-probabilities of sample {@code i} softened at {@code t}, in float64. */
        double[] logTargets(int i, double t) {
            return Float64Reference.teacherLogTargets(rows, values == TeacherValues.PROBABILITIES, i * classes, classes, t);
        }
    }

    /** One batch as a loss saw it: the epoch, the loss's temperature, the samples and a copy of the inputs. */
    record Seen(int epoch, double temperature, int[] samples, LogitBatch batch) {
    }

    /** Log-targets at T of one sample, in float64: the reference. */
    interface Reference {
        double[] logTargets(int sample, double temperature);
    }

    /**
     * A tempered loss that records each batch it is given (with the samples {@code source} was last asked for: the
     * run has no test data, so that is the batch's) and computes {@code inner} on it.
     */
    static final class Recording extends org.distill4j.testing.ForwardingLoss implements TemperatureScaled {
        final List<Seen> seen;
        final Table source;
        final AtomicInteger epoch;

        Recording(LogitLoss inner, List<Seen> seen, Table source, AtomicInteger epoch) {
            super(inner);
            this.seen = seen;
            this.source = source;
            this.epoch = epoch;
        }

        @Override
        public String name() {
            return "recorded-" + inner.name();
        }

        @Override
        public LossResult compute(LogitBatch b, float[] gradOut, float upstream) {
            LogitBatch copy = b.topkIds() != null
                    ? LogitBatch.ofTopK(b.rows(), b.classes(), b.student().clone(), b.topkIds().clone(), b.topkLogProbs().clone(), b.k(),
                    b.labels().clone())
                    : LogitBatch.of(b.rows(), b.classes(), b.student().clone(), b.teacher().clone(), b.teacherValues(), b.labels().clone());
            seen.add(new Seen(epoch.get(), temperature(), source.lastIndices.clone(), copy));
            return inner.compute(b, gradOut, upstream);
        }

        @Override
        public double temperature() {
            return ((TemperatureScaled) inner).temperature();
        }

        @Override
        public LogitLoss withTemperature(double t) {
            return new Recording(((TemperatureScaled) inner).withTemperature(t), seen, source, epoch);
        }
    }

    /** Member A: 12 logits, |x| ~ 300 in some rows, a logit of 900 in others. */
    static Table logitsMember(Random rng) {
        int c = V - 1;
        float[] x = Inputs.logits(rng, N, c, 2.5);
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < c; j++) {
                if (i % 4 == 0) {
                    x[i * c + j] += 300; // the shift must not matter
                } else if (i % 4 == 1) {
                    x[i * c + j] = (float) (-300 + 150 * rng.nextGaussian());
                }
            }
            if (i % 4 == 1) {
                x[i * c + i % c] = 900;
            }
        }
        return new Table(x, c, TeacherValues.LOGITS);
    }

    /** Member B: 13 probabilities; class 12 of zero mass in even samples (so in every member there), a tiny mass in some. */
    static Table probabilitiesMember(Random rng) {
        float[] p = Inputs.probabilities(rng, N, V, 2);
        for (int i = 0; i < N; i++) {
            if (i % 2 == 0) {
                p[i * V + V - 1] = 0f;
            }
            if (i % 3 == 0) {
                p[i * V + 3] = 1e-30f;
            }
        }
        return new Table(p, V, TeacherValues.PROBABILITIES);
    }

    /** log sum_k w_k exp(lp_k) over one row, in float64 (weights normalized here). */
    static double[] mixture(double[] w, double[]... logTargets) {
        double sum = Arrays.stream(w).sum();
        double[] out = new double[logTargets[0].length];
        for (int i = 0; i < out.length; i++) {
            double m = 0;
            for (int k = 0; k < w.length; k++) {
                m += w[k] / sum * Math.exp(logTargets[k][i]);
            }
            out[i] = Math.log(m);
        }
        return out;
    }

    /** Member A's log-targets PAD'ded to V classes (-inf at the last). */
    static double[] padded(double[] lp) {
        double[] out = Arrays.copyOf(lp, V);
        out[V - 1] = Double.NEGATIVE_INFINITY;
        return out;
    }

    static Dataset data() {
        Random rng = new Random(41);
        float[] x = new float[N * D];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        return new Dataset("ensemble-temperature", x, D, Inputs.labels(rng, N, V), V);
    }

    /** Trains with {@code loss} around a Recording of the tempered loss, and returns what it saw. */
    static List<Seen> run(Teacher teacher, Table source, java.util.function.Function<Recording, LogitLoss> loss, LogitLoss tempered,
                          int epochs, Schedule temperature) {
        List<Seen> seen = new ArrayList<>();
        AtomicInteger epoch = new AtomicInteger();
        Distiller.Builder b = Distiller.builder().teacher(teacher)
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 8, V, new Adam(1e-2), 5, 0)))
                .loss(loss.apply(new Recording(tempered, seen, source, epoch))).trainData(data()).epochs(epochs).batchSize(BATCH)
                .seed(3).backend(new CpuBackend())
                .listener(new TrainingListener() {
                    @Override
                    public void epochStarted(int e, int es, int batches) {
                        epoch.set(e);
                    }
                });
        if (temperature != null) {
            b.temperature(temperature);
        }
        b.build().run();
        assertEquals(epochs * 3, seen.size(), "batches of 16, 16 and 5 per epoch");
        return seen;
    }

    /** Step one: the dense teacher rows, softened at T as the losses do, are the reference's log m_T. */
    static void checkTargets(Seen s, Reference ref) {
        LogitBatch b = s.batch();
        boolean probs = b.teacherValues() == TeacherValues.PROBABILITIES;
        for (int r = 0; r < b.rows(); r++) {
            double[] expected = ref.logTargets(s.samples()[r], s.temperature());
            double[] actual = Float64Reference.teacherLogTargets(b.teacher(), probs, r * V, V, s.temperature());
            Tolerances.assertLogProbsClose(expected, actual, "epoch " + s.epoch() + ", T " + s.temperature() + ", sample " + s.samples()[r]);
        }
    }

    /** Both steps for kd at the batch's T and {@code alpha}. */
    static void checkKd(List<Seen> seen, Reference ref, double alpha) {
        for (Seen s : seen) {
            checkTargets(s, ref);
            LogitBatch b = s.batch();
            double t = s.temperature();
            double[] gRef = new double[b.student().length];
            double vRef = Float64Reference.kd(b.student(), b.teacher(), b.teacherValues() == TeacherValues.PROBABILITIES, b.labels(),
                    b.rows(), V, t, alpha, UPSTREAM, gRef);
            float[] g = new float[gRef.length];
            double value = new SoftTargetKd(t, alpha).compute(b, g, UPSTREAM).value();
            Tolerances.assertValueClose(vRef, value, "kd value, epoch " + s.epoch() + ", T " + t);
            Tolerances.assertGradClose(gRef, g, "kd gradient, epoch " + s.epoch() + ", T " + t);
        }
    }

    private static final double W_A = 1.0;
    private static final double W_B = 2.5;

    /** The ensemble of the two members (A PAD'ded to 13 classes), weights 1 : 2.5, and its float64 reference. */
    record Setup(Teacher ensemble, Table a, Table b, Reference ref) {
        static Setup make() {
            Random rng = new Random(7);
            Table a = logitsMember(rng);
            Table b = probabilitiesMember(rng);
            Teacher e = EnsembleTeacher.of(List.of(VocabularyAlignment.align(a, V, VocabularyAlignment.Mode.PAD), b),
                    new double[]{W_A, W_B}, EnsembleTeacher.Combine.PROBABILITIES);
            return new Setup(e, a, b, (i, t) -> mixture(new double[]{W_A, W_B}, padded(a.logTargets(i, t)), b.logTargets(i, t)));
        }
    }

    @Test
    void kdAtT4TargetsTheWeightedAverageOfTheSoftenedMembers() {
        Setup s = Setup.make();
        List<Seen> seen = run(s.ensemble(), s.b(), r -> r, new SoftTargetKd(4, 0.25), 2, null);
        // the inputs are what the test means them to be: a logit of 900, a zero-mass class in every member, a tiny mass
        assertEquals(900f, s.a().rows[1 * (V - 1) + 1]);
        assertEquals(0f, s.b().rows[V - 1]);
        checkKd(seen, s.ref(), 0.25);
    }

    /** At T = 1 the target is the average of the members' probabilities, as it always was. */
    @Test
    void atT1TheTargetIsTheAverageOfTheMembersProbabilities() {
        Setup s = Setup.make();
        checkKd(run(s.ensemble(), s.b(), r -> r, new SoftTargetKd(1, 0), 1, null), s.ref(), 0);
        Batch all = Batch.range(data(), 0, N);
        float[] rows = s.ensemble().outputs(all);
        for (int i = 0; i < N; i++) {
            double[] actual = Float64Reference.teacherLogTargets(rows, s.ensemble().values() == TeacherValues.PROBABILITIES, i * V, V, 1);
            Tolerances.assertLogProbsClose(s.ref().logTargets(i, 1), actual, "outputs(batch), sample " + i);
        }
    }

    /** Each epoch's batches are softened at that epoch's T of the schedule (4, 3, 2, 1). */
    @Test
    void aTemperatureScheduleSoftensEachEpochAtItsOwnTemperature() {
        Setup s = Setup.make();
        Schedule linear = Schedule.linear(4, 1);
        List<Seen> seen = run(s.ensemble(), s.b(), r -> r, new SoftTargetKd(4, 0.1), 4, linear);
        for (Seen x : seen) {
            assertEquals(linear.at(x.epoch(), 4), x.temperature(), "epoch " + x.epoch());
        }
        assertEquals(List.of(0, 1, 2, 3), seen.stream().map(Seen::epoch).distinct().toList());
        checkKd(seen, s.ref(), 0.1);
    }

    /** ce + kd at T 3: the sum's temperature is kd's, and the ensemble is softened at it. */
    @Test
    void aWeightedSumSoftensAtItsKdTermsTemperature() {
        Setup s = Setup.make();
        List<Seen> seen = run(s.ensemble(), s.b(), r -> WeightedSum.builder().add(0.3, new CrossEntropy()).add(0.7, r).build(),
                new SoftTargetKd(3, 0), 2, null);
        for (Seen x : seen) {
            assertEquals(3.0, x.temperature());
        }
        checkKd(seen, s.ref(), 0);
    }

    /** An ensemble member that is itself an ensemble: its own average at T is what the outer one averages. */
    @Test
    void aNestedEnsembleAveragesItsMembersAtTheSameTemperature() {
        Setup s = Setup.make();
        Table c = new Table(Inputs.logits(new Random(9), N, V, 3), V, TeacherValues.LOGITS);
        Teacher nested = EnsembleTeacher.of(List.of(s.ensemble(), c), new double[]{3, 1}, EnsembleTeacher.Combine.PROBABILITIES);
        Reference ref = (i, t) -> mixture(new double[]{3, 1}, s.ref().logTargets(i, t), c.logTargets(i, t));
        checkKd(run(nested, s.b(), r -> r, new SoftTargetKd(4, 0), 1, null), ref, 0);
    }

    /** The ensemble PAD'ded to a larger student, or TRUNCATEd to its first classes: m_T aligned (the losses renormalize). */
    @Test
    void anAlignedEnsembleIsTheAlignedAverageAtT() {
        Random rng = new Random(8);
        Table a = new Table(Inputs.logits(rng, N, V - 2, 40), V - 2, TeacherValues.LOGITS);
        Table b = new Table(Inputs.probabilities(rng, N, V - 2, 2), V - 2, TeacherValues.PROBABILITIES);
        Teacher small = EnsembleTeacher.of(List.of(a, b), new double[]{2, 1}, EnsembleTeacher.Combine.PROBABILITIES);
        Reference pad = (i, t) -> {
            double[] m = Arrays.copyOf(mixture(new double[]{2, 1}, a.logTargets(i, t), b.logTargets(i, t)), V);
            Arrays.fill(m, V - 2, V, Double.NEGATIVE_INFINITY);
            return m;
        };
        checkKd(run(VocabularyAlignment.align(small, V, VocabularyAlignment.Mode.PAD), b, r -> r, new SoftTargetKd(4, 0), 1, null), pad, 0);

        Random big = new Random(10);
        Table la = new Table(Inputs.logits(big, N, V + 4, 30), V + 4, TeacherValues.LOGITS);
        Table lb = new Table(Inputs.probabilities(big, N, V + 4, 2), V + 4, TeacherValues.PROBABILITIES);
        Teacher large = EnsembleTeacher.of(List.of(la, lb), new double[]{1, 4}, EnsembleTeacher.Combine.PROBABILITIES);
        Reference cut = (i, t) -> {
            double[] m = Arrays.copyOf(mixture(new double[]{1, 4}, la.logTargets(i, t), lb.logTargets(i, t)), V);
            double z = 0;
            for (double x : m) {
                z += Math.exp(x);
            }
            for (int j = 0; j < V; j++) {
                m[j] -= Math.log(z);
            }
            return m;
        };
        checkKd(run(VocabularyAlignment.align(large, V, VocabularyAlignment.Mode.TRUNCATE), lb, r -> r, new SoftTargetKd(4, 0), 1, null),
                cut, 0);
    }

    /**
     * topk-kd (renormalize tail) from the top-k of an ensemble: the k classes of largest m_T, and the loss's tempered
     * top-k distribution is m_T renormalized over them.
     */
    @Test
    void topKOfAnEnsembleIsTheAverageAtTRenormalizedOverItsTopK() {
        Setup s = Setup.make();
        int k = 5;
        double t = 4;
        List<Seen> seen = run(TopKTeacher.of(s.ensemble(), k), s.b(), r -> r, new TopKKd(t, TopKKd.Tail.RENORMALIZE), 1, null);
        for (Seen x : seen) {
            LogitBatch b = x.batch();
            assertEquals(k, b.k());
            for (int r = 0; r < b.rows(); r++) {
                String what = "sample " + x.samples()[r];
                double[] m = s.ref().logTargets(x.samples()[r], t);
                Integer[] order = new Integer[V];
                for (int i = 0; i < V; i++) {
                    order[i] = i;
                }
                Arrays.sort(order, (p, q) -> Double.compare(m[q], m[p]));
                int[] ids = Arrays.copyOfRange(b.topkIds(), r * k, (r + 1) * k);
                assertArrayEquals(Arrays.stream(order).limit(k).mapToInt(Integer::intValue).toArray(), ids, what + ": the top-k of m_T");
                double kept = 0;
                for (int j = 0; j < k; j++) {
                    kept += Math.exp(m[ids[j]]);
                }
                double[] expected = new double[k];
                for (int j = 0; j < k; j++) {
                    expected[j] = m[ids[j]] - Math.log(kept);
                }
                double[] actual = Float64Reference.logSoftmax(b.topkLogProbs(), r * k, k, t);
                Tolerances.assertLogProbsClose(expected, actual, what + ": tempered top-k");
            }
            double[] gRef = new double[b.student().length];
            double vRef = Float64Reference.topKKd(b.student(), b.topkIds(), b.topkLogProbs(), k, b.rows(), V, t, UPSTREAM, gRef);
            float[] g = new float[gRef.length];
            double value = new TopKKd(t, TopKKd.Tail.RENORMALIZE).compute(b, g, UPSTREAM).value();
            Tolerances.assertValueClose(vRef, value, "topk-kd value");
            Tolerances.assertGradClose(gRef, g, "topk-kd gradient");
        }
    }

    /** A table that records each temperature it is asked at, with the epoch and whether the batch was test data. */
    static final class AskedAt extends Table {
        /** {epoch, temperature, 1 for test data}. */
        final List<double[]> asked = new ArrayList<>();
        final AtomicInteger epoch = new AtomicInteger();

        AskedAt(Table t) {
            super(t.rows, t.classes, t.values);
        }

        @Override
        public float[] outputs(Batch batch, double temperature) {
            asked.add(new double[]{epoch.get(), temperature, batch.features()[0] > 500 ? 1 : 0});
            return outputs(batch);
        }
    }

    /**
     * Members are asked at each epoch's temperature of the schedule (4, 2.5, 1) for training, and at T = 1 for the
     * evaluation on test data (teacher agreement and KL compare with the ensemble's own distribution, the T = 1 average).
     */
    @Test
    void membersAreAskedAtTheEpochsTemperatureAndEvaluationAtOne() {
        Setup s = Setup.make();
        AskedAt a = new AskedAt(s.a());
        AskedAt b = new AskedAt(s.b());
        Teacher ensemble = EnsembleTeacher.of(List.of(VocabularyAlignment.align(a, V, VocabularyAlignment.Mode.PAD), b),
                new double[]{W_A, W_B}, EnsembleTeacher.Combine.PROBABILITIES);
        Dataset train = data();
        float[] shifted = train.features().clone();
        for (int i = 0; i < shifted.length; i += D) {
            shifted[i] += 1000; // marks the test data's batches
        }
        Dataset test = new Dataset("ensemble-temperature-test", shifted, D, train.labels(), V);
        Schedule linear = Schedule.linear(4, 1);
        Distiller.builder().teacher(ensemble).student(Dl4jStudent.of(Nets.logitsMlp(D, 8, V, new Adam(1e-2), 5, 0)))
                .loss(WeightedSum.builder().add(0.5, new CrossEntropy()).add(0.5, new SoftTargetKd(4, 0)).build())
                .temperature(linear).trainData(train).testData(test).epochs(3).batchSize(BATCH).seed(3).backend(new CpuBackend())
                .listener(new TrainingListener() {
                    @Override
                    public void epochStarted(int e, int es, int batches) {
                        a.epoch.set(e);
                        b.epoch.set(e);
                    }
                }).build().run();
        for (AskedAt m : List.of(a, b)) {
            int[] trainCalls = new int[3];
            int testCalls = 0;
            for (double[] x : m.asked) {
                int e = (int) x[0];
                if (x[2] == 1) {
                    testCalls++;
                    assertEquals(1.0, x[1], "evaluation in epoch " + e);
                } else {
                    trainCalls[e]++;
                    assertEquals(linear.at(e, 3), x[1], "training in epoch " + e);
                }
            }
            assertArrayEquals(new int[]{3, 3, 3}, trainCalls, "training batches per epoch");
            assertTrue(testCalls > 0, "the teacher's test rows are read (once, before training: it is frozen)");
        }
    }
}
