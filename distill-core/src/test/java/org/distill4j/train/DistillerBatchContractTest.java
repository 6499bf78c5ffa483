package org.distill4j.train;

import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Augmentation;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.BadRowException;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LossResult;
import org.distill4j.testing.ForwardingLoss;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * What the Distiller holds a batch's helpers to, with stubs (no network): an augmentation must keep the rows, their
 * order and indices and the feature count, and each way of breaking that is named; a loss's bad row is traced to a
 * sample only when it is a row of the batch; the run seeds ND4J's generator with its seed before the first forward.
 */
class DistillerBatchContractTest {
    private static final int K = 4;
    private static final int D = 3;

    private static Distiller.Builder ce(org.distill4j.student.Student student) {
        return Distiller.builder().student(student).loss(new CrossEntropy())
                .trainData(DistillerValidationTest.data("train", 10, D, K)).epochs(1).batchSize(4).seed(3)
                .backend(new CpuBackend()).stepEngines(List.of());
    }

    private static Augmentation returning(UnaryOperator<Batch> f) {
        return new Augmentation() {
            @Override
            public Batch apply(Batch batch, Random rng) {
                return f.apply(batch);
            }

            @Override
            public boolean removesLabels() {
                return false;
            }

            @Override
            public String describe() {
                return "broken";
            }
        };
    }

    private static String failure(UnaryOperator<Batch> f) {
        return assertThrows(IllegalStateException.class,
                () -> ce(new DistillerValidationTest.Plain(K)).augmentation(returning(f)).build().run()).getMessage();
    }

    @Test
    void anAugmentationThatBreaksTheBatchIsNamedWithWhatItReturned() {
        String rule = ": it must keep the rows, their order and indices, and the feature count";
        assertEquals("augmentation broken returned no batch for batch 1 of epoch 1 (4 rows of 3 features)" + rule,
                failure(b -> null));
        assertEquals("augmentation broken returned 3 rows of 3 features for batch 1 of epoch 1 (4 rows of 3 features)" + rule,
                failure(b -> new Batch(Arrays.copyOf(b.indices(), 3), Arrays.copyOf(b.features(), 3 * D), D,
                        Arrays.copyOf(b.labels(), 3))));
        assertEquals("augmentation broken returned 4 rows of 2 features for batch 1 of epoch 1 (4 rows of 3 features)" + rule,
                failure(b -> new Batch(b.indices(), Arrays.copyOf(b.features(), 4 * 2), 2, b.labels())));
        int[] reversed = new int[4];
        assertEquals("augmentation broken returned 4 rows of 3 features for batch 1 of epoch 1 (4 rows of 3 features)" + rule,
                failure(b -> {
                    for (int i = 0; i < 4; i++) {
                        reversed[i] = b.indices()[3 - i];
                    }
                    return new Batch(reversed, b.features(), D, b.labels());
                }));
        // the same batch, or a copy with other features, is taken
        ce(new DistillerValidationTest.Plain(K)).augmentation(returning(b -> b)).build().run();
        ce(new DistillerValidationTest.Plain(K)).augmentation(returning(b -> new Batch(b.indices().clone(), new float[b.size() * D],
                D, b.labels()))).build().run();
    }

    /** A loss that names a row past the batch (its own bug, or another matrix's row): no sample is named for it. */
    @Test
    void aBadRowOutsideTheBatchNamesNoSample() {
        for (int row : new int[]{3, 4, 5}) {
            ForwardingLoss bad = new ForwardingLoss(new CrossEntropy()) {
                @Override
                public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
                    throw new BadRowException("bad: row ", row, "");
                }
            };
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ce(new DistillerValidationTest.Plain(K)).loss(bad).build().run());
            int[] order = Dataset.permutation(10, new Random(3));
            assertEquals("epoch 1, batch 1 of 3: bad: row " + row + (row < 4 ? "; row 3 of this batch is sample " + order[3] + " of train" : ""),
                    e.getMessage());
        }
    }

    /** A student that records ND4J's next draw at its first forward. */
    static final class Drawing extends org.distill4j.testing.ForwardingStudent {
        Long first;

        Drawing() {
            super(new DistillerValidationTest.Plain(K));
        }

        @Override
        public float[] forward(Batch batch, boolean training) {
            if (first == null) {
                first = Nd4j.getRandom().nextLong();
            }
            return super.forward(batch, training);
        }
    }

    /**
     * Dropout draws from ND4J's generator: the run seeds it with its own seed (seed 0 with the state that stands for it),
     * whatever was drawn before, so the student's first draw is the seed's.
     */
    @Test
    void theRunSeedsNd4jsGeneratorWithItsSeed() {
        for (long seed : new long[]{7, 0}) {
            org.nd4j.linalg.api.rng.Random r = Nd4j.getRandom();
            r.setSeed(seed);
            if (seed == 0) {
                r.setStates(Distiller.SEED_ZERO_ROOT, r.nodeState());
            }
            long expected = r.nextLong();
            r.setSeed(12345); // what another run left
            r.nextLong();
            Drawing student = new Drawing();
            ce(student).seed(seed).build().run();
            assertEquals(expected, student.first, "seed " + seed);
        }
    }
    /** What {@code run} logged (slf4j-simple writes to the System.err of the moment). */
    private static String logOf(Runnable run) {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            run.run();
        } finally {
            System.setErr(err);
        }
        return bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** The run's first INFO line says how many samples train, and of which kinds where not all are labeled. */
    @Test
    void theLogSaysWhichSamplesTrain() {
        int u = Dataset.UNLABELED;
        int x = Dataset.IGNORE_INDEX;
        DistillerValidationTest.Stub teacher = new DistillerValidationTest.Stub(K, null);
        String[][] cases = {
                {"all", "10 training samples"},
                {"ignored", "8 labeled of 10 training samples"},
                {"unlabeled, ce", "6 labeled + 2 unlabeled (the unlabeled ones left out: no term reads the teacher) of 10 training samples"},
                {"unlabeled, kd", "6 labeled + 2 unlabeled of 10 training samples"},
        };
        Dataset[] data = {
                DistillerValidationTest.labeled("d", 10, 0, 1, 2, 3, 0),
                DistillerValidationTest.labeled("d", 10, 0, 1, x, 3, 0),
                DistillerValidationTest.labeled("d", 10, 0, 1, u, 3, x),
                DistillerValidationTest.labeled("d", 10, 0, 1, u, 3, x),
        };
        for (int i = 0; i < cases.length; i++) {
            Distiller.Builder b = ce(new DistillerValidationTest.Plain(K)).trainData(data[i]);
            if (i == 3) {
                b.teacher(teacher).loss(new org.distill4j.loss.SoftTargetKd(2, 0.5));
            }
            String log = logOf(() -> b.build().run());
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("distilling: .*?, loss .*?\\}, (.*), 1 epochs, batch 4")
                    .matcher(log);
            org.junit.jupiter.api.Assertions.assertTrue(m.find(), cases[i][0] + ": " + log);
            assertEquals(cases[i][1], m.group(1), cases[i][0]);
        }
    }
    /** A student that counts its epoch ends. */
    static final class Counting extends org.distill4j.testing.ForwardingStudent {
        int epochEnds;

        Counting() {
            super(new DistillerValidationTest.Plain(K));
        }

        @Override
        public void endEpoch() {
            epochEnds++;
        }
    }

    /** On the DL4J path the student's epoch ends once per epoch (its schedules count them); throughput sums every epoch. */
    @Test
    void eachEpochEndsOnTheStudentAndThroughputCountsEveryEpoch() {
        Counting student = new Counting();
        DistillResult r = ce(student).epochs(3).build().run();
        assertEquals(3, student.epochEnds);
        double trainSeconds = 0;
        for (EpochMetrics m : r.epochs()) {
            trainSeconds += m.trainSeconds();
        }
        org.junit.jupiter.api.Assertions.assertTrue(trainSeconds > 0 && r.wallSeconds() >= trainSeconds, r.toString());
        assertEquals(3 * 10 / trainSeconds, r.samplesPerSecond(), 1e-6 * 3 * 10 / trainSeconds, "30 samples over the epochs' training time");
    }
}
