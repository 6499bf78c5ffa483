package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Augmentation;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.EnsembleTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.learning.config.Adam;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A training-batch augmentation in the Distiller: the student and the teacher see the same transformed batch, every
 * batch of every epoch and no evaluation; the draws depend on the seed, epoch and batch alone, so a resumed run equals
 * an uninterrupted one bit for bit; a teacher that does not read the features (a stored one, also inside an ensemble
 * or a top-k view) is refused; the settings record it; a batch of another shape is an error naming the augmentation.
 */
class AugmentationTest {
    private static final int D = IgnoredSamplesTest.D;
    private static final int K = IgnoredSamplesTest.K;
    private static final int BATCH = 64;
    private static final Dataset DATA = DistillerTest.blobs(300, 31, "blobs");

    static Distiller.Builder run(MultiLayerNetwork net, Teacher teacher, Augmentation a) {
        return Distiller.builder().teacher(teacher).student(Dl4jStudent.of(net)).loss(new SoftTargetKd(4, 0.2)).trainData(DATA)
                .epochs(3).batchSize(BATCH).seed(5).augmentation(a).backend(new CpuBackend()).stepEngines(List.of());
    }

    static MultiLayerNetwork student() {
        return Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2);
    }

    /** Records the features and labels of every batch it is asked for. */
    static final class RecordingTeacher implements Teacher {
        final Teacher inner;
        final List<Batch> seen = new ArrayList<>();

        RecordingTeacher(Teacher inner) {
            this.inner = inner;
        }

        @Override
        public int classes() {
            return inner.classes();
        }

        @Override
        public org.distill4j.loss.TeacherValues values() {
            return inner.values();
        }

        @Override
        public float[] outputs(Batch batch) {
            seen.add(batch);
            return inner.outputs(batch);
        }

        @Override
        public String describe() {
            return "recording " + inner.describe();
        }
    }

    @Test
    void theStudentAndTheTeacherSeeTheSameAugmentedBatches() {
        RecordingTeacher teacher = new RecordingTeacher(Dl4jTeacher.of(IgnoredSamplesTest.TEACHER));
        List<int[]> studentLabels = new ArrayList<>();
        List<float[]> studentFeatures = new ArrayList<>();
        Dl4jStudent inner = Dl4jStudent.of(student());
        org.distill4j.testing.ForwardingStudent student = new org.distill4j.testing.ForwardingStudent(inner) {
            @Override
            public float[] forward(Batch batch, boolean training) {
                if (training) {
                    studentLabels.add(batch.labels().clone());
                    studentFeatures.add(batch.features().clone());
                }
                return super.forward(batch, training);
            }
        };
        Distiller.builder().teacher(teacher).student(student).loss(new SoftTargetKd(4, 0.2)).trainData(DATA).epochs(2)
                .batchSize(BATCH).seed(5).augmentation(Augmentation.mixup(0.4)).backend(new CpuBackend()).stepEngines(List.of())
                .build().run();
        int batches = (DATA.size() + BATCH - 1) / BATCH;
        assertEquals(2 * batches, teacher.seen.size(), "the teacher is asked once a training batch (no test data here)");
        assertEquals(teacher.seen.size(), studentFeatures.size());
        int mixed = 0;
        for (int i = 0; i < teacher.seen.size(); i++) {
            Batch t = teacher.seen.get(i);
            assertArrayEquals(t.features(), studentFeatures.get(i), "batch " + i + ": the same inputs for both");
            assertArrayEquals(t.labels(), studentLabels.get(i), "batch " + i + ": the same labels");
            Batch original = Batch.of(DATA, t.indices());
            assertFalse(Arrays.equals(original.features(), t.features()), "batch " + i + " was augmented");
            for (int r = 0; r < t.size(); r++) {
                if (t.labels()[r] == Dataset.UNLABELED) {
                    mixed++;
                } else {
                    assertEquals(original.labels()[r], t.labels()[r], "an unmixed row keeps its label");
                }
            }
        }
        assertTrue(mixed > DATA.size(), "most rows of both epochs were mixed: " + mixed);
        assertFalse(Arrays.equals(teacher.seen.get(0).features(), teacher.seen.get(batches).features()),
                "another epoch draws other mixes");
    }

    @Test
    void aResumedRunWithAugmentationEqualsAnUninterruptedOne(@TempDir Path tmp) {
        Teacher teacher = Dl4jTeacher.of(IgnoredSamplesTest.TEACHER);
        MultiLayerNetwork whole = student();
        DistillResult expected = run(whole, teacher, Augmentation.mixup(0.4)).build().run();
        MultiLayerNetwork plain = student();
        run(plain, teacher, null).build().run();
        assertFalse(Arrays.equals(plain.params().toFloatVector(), whole.params().toFloatVector()), "mixup changed the run");

        Checkpoints c = Checkpoints.in(tmp).everySteps(3);
        assertThrows(DistillerCheckpointTest.Crash.class,
                () -> run(student(), teacher, Augmentation.mixup(0.4)).checkpoints(c).listener(DistillerCheckpointTest.crashAfter(1, 3))
                        .build().run());
        assertTrue(Files.exists(c.file()));
        MultiLayerNetwork resumedNet = student();
        DistillResult resumed = run(resumedNet, teacher, Augmentation.mixup(0.4)).checkpoints(c).build().run();
        DistillerCheckpointTest.assertSameRun(expected, whole, resumed, resumedNet);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(student(), teacher, Augmentation.mixup(0.8)).checkpoints(c).build().run());
        assertTrue(e.getMessage().contains("augmentation"), "another augmentation is another run: " + e.getMessage());
    }

    @Test
    void aTeacherThatDoesNotReadTheFeaturesIsRefused(@TempDir Path tmp) {
        Teacher stored = IgnoredSamplesTest.stored(DATA, tmp);
        Teacher live = Dl4jTeacher.of(IgnoredSamplesTest.TEACHER);
        for (Teacher t : new Teacher[]{stored, EnsembleTeacher.of(live, stored), TopKTeacher.of(stored, 3)}) {
            assertFalse(t.readsFeatures(), t.describe());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> run(student(), t, Augmentation.mixup(0.4)).build(), t.describe());
            assertTrue(e.getMessage().contains("augmentation mixup(alpha=0.4, probability=1.0) changes the batches' inputs")
                    && e.getMessage().contains("does not read them"), e.getMessage());
        }
        assertTrue(live.readsFeatures() && TopKTeacher.of(live, 3).readsFeatures());
        assertEquals("mixup(alpha=0.4, probability=1.0)", run(student(), live, Augmentation.mixup(0.4)).build().settings().get("augmentation"));
        assertFalse(run(student(), live, null).build().settings().containsKey("augmentation"), "the settings of other runs as they were");
    }

    @Test
    void aBatchOfAnotherShapeNamesTheAugmentation() {
        Augmentation dropsARow = new Augmentation() {
            @Override
            public Batch apply(Batch b, Random rng) {
                return new Batch(Arrays.copyOf(b.indices(), b.size() - 1), Arrays.copyOf(b.features(), (b.size() - 1) * D), D,
                        Arrays.copyOf(b.labels(), b.size() - 1));
            }

            @Override
            public String describe() {
                return "drops-a-row";
            }
        };
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> run(student(), Dl4jTeacher.of(IgnoredSamplesTest.TEACHER), dropsARow).build().run());
        assertTrue(e.getMessage().contains("augmentation drops-a-row returned 63 rows of 12 features for batch 1 of epoch 1 (64 rows"),
                e.getMessage());
    }

    /**
     * A chain of image transforms and mixup: the teacher sees each batch exactly as the chain gives it from the batch's own
     * seed, and the settings record the whole chain.
     */
    @Test
    void aChainOfImageTransformsAndMixupRunsFromEachBatchsSeed() {
        org.distill4j.data.ImageShape shape = org.distill4j.data.ImageShape.grayscale(3, 4); // D = 12 features a row
        Augmentation chain = Augmentation.shift(shape, 1).then(Augmentation.flip(shape)).then(Augmentation.mixup(0.4));
        RecordingTeacher teacher = new RecordingTeacher(Dl4jTeacher.of(IgnoredSamplesTest.TEACHER));
        Distiller d = run(student(), teacher, chain).epochs(2).build();
        assertEquals("shift(max=1 px, fill=0.0, images=1x3x4) then flip(probability=0.5, images=1x3x4) then "
                + "mixup(alpha=0.4, probability=1.0)", d.settings().get("augmentation"));
        d.run();
        int batches = (DATA.size() + BATCH - 1) / BATCH;
        assertEquals(2 * batches, teacher.seen.size());
        for (int i = 0; i < teacher.seen.size(); i++) {
            Batch t = teacher.seen.get(i);
            Batch expected = chain.apply(Batch.of(DATA, t.indices()), new Random(Distiller.augmentationSeed(5, i / batches, i % batches)));
            assertArrayEquals(expected.features(), t.features(), "batch " + i);
            assertArrayEquals(expected.labels(), t.labels(), "batch " + i);
        }
    }

    /**
     * An augmentation that removes labels (mixup, alone or in a chain; one that does not say) is refused before training
     * with a loss that needs every row's label (dkd, also in a weighted sum) and with a loss that reads no teacher; one that
     * keeps them (shift, flip) trains with both; an image transform of another size than the data's rows is refused then too.
     */
    @Test
    void anAugmentationThatRemovesLabelsNeedsALossThatDoesWithoutThem() {
        org.distill4j.data.ImageShape shape = org.distill4j.data.ImageShape.grayscale(3, 4);
        org.distill4j.loss.LogitLoss dkd = org.distill4j.loss.WeightedSum.builder().add(1, new org.distill4j.loss.CrossEntropy())
                .add(1, new org.distill4j.loss.Dkd(1, 8, 4, 1)).build();
        Augmentation undeclared = new Augmentation() { // says nothing of labels: taken to remove them
            @Override
            public Batch apply(Batch b, Random rng) {
                return b;
            }

            @Override
            public String describe() {
                return "undeclared";
            }
        };
        Teacher teacher = Dl4jTeacher.of(IgnoredSamplesTest.TEACHER);
        for (Augmentation a : new Augmentation[]{Augmentation.mixup(0.4), Augmentation.shift(shape, 1).then(Augmentation.mixup(0.4, 0.5)),
                undeclared}) {
            assertTrue(a.removesLabels(), a.describe());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> run(student(), teacher, a).loss(dkd).build(), a.describe());
            assertTrue(e.getMessage().startsWith("loss 'weighted-sum'") && e.getMessage().contains("needs a hard label on every row it"
                    + " trains on, but augmentation " + a.describe() + " removes the labels of the rows it changes"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> run(student(), null, a).loss(new org.distill4j.loss.CrossEntropy()).build(), a.describe());
            assertEquals("augmentation " + a.describe() + " removes the labels of the rows it changes, but loss 'ce' reads no teacher:"
                    + " those rows would train nothing; distil from a teacher, or use an augmentation that keeps the labels (shift,"
                    + " flip)", e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(student(), teacher,
                Augmentation.flip(org.distill4j.data.ImageShape.grayscale(2, 5)).then(Augmentation.mixup(0.4))).build());
        assertEquals("training data blobs cannot take augmentation flip(probability=0.5, images=1x2x5) then mixup(alpha=0.4,"
                + " probability=1.0): flip(probability=0.5, images=1x2x5): a batch row has 12 features, but an image of 1x2x5 has 10",
                e.getMessage(), "refused at build, not at the first batch");
        Augmentation keeps = Augmentation.shift(shape, 1).then(Augmentation.flip(shape));
        assertFalse(keeps.removesLabels());
        assertTrue(run(student(), teacher, keeps).loss(dkd).epochs(1).build().run().epochs().get(0).loss() > 0);
        assertTrue(run(student(), null, keeps).loss(new org.distill4j.loss.CrossEntropy()).epochs(1).build().run().epochs().get(0).loss() > 0);
    }

    /** The seed of a batch's draws: fixed for a (seed, epoch, batch), different for a neighbour in any of them. */
    @Test
    void eachBatchHasASeedOfItsOwn() {
        long s = Distiller.augmentationSeed(5, 1, 2);
        assertEquals(s, Distiller.augmentationSeed(5, 1, 2));
        java.util.Set<Long> seen = new java.util.HashSet<>();
        for (long seed : new long[]{0, 5, -5}) {
            for (int e = 0; e < 20; e++) {
                for (int b = 0; b < 50; b++) {
                    assertTrue(seen.add(Distiller.augmentationSeed(seed, e, b)), seed + "/" + e + "/" + b);
                }
            }
        }
    }
    /**
     * The seed is SplitMix64's output for the batch's place in the run (as documented, and as a checkpoint of an earlier
     * version resumes with): output {@code (epoch << 32 | batch) + 1} of a SplitMix64 started at the run's seed, which
     * {@link java.util.SplittableRandom} (SplitMix64, golden gamma) computes independently; seed 0's first two outputs are
     * the published ones.
     */
    @Test
    void theSeedIsSplitMix64AtTheBatchsPlaceInTheRun() {
        assertEquals(0xE220A8397B1DCDAFL, Distiller.augmentationSeed(0, 0, 0));
        assertEquals(0x6E789E6AA1B965F4L, Distiller.augmentationSeed(0, 0, 1));
        long gamma = 0x9E3779B97F4A7C15L;
        for (long seed : new long[]{0, 5, -5, Long.MAX_VALUE}) {
            for (int epoch : new int[]{0, 1, 3, 1000}) {
                for (int b : new int[]{0, 1, 7, 65535, Integer.MAX_VALUE}) {
                    long place = ((long) epoch << 32) + b; // outputs before this one
                    long expected = new java.util.SplittableRandom(seed + gamma * place).nextLong();
                    assertEquals(expected, Distiller.augmentationSeed(seed, epoch, b), seed + "/" + epoch + "/" + b);
                }
            }
        }
    }
}
