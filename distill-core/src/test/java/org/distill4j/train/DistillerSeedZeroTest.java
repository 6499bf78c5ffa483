package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.student.Dl4jStudent;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * "Same seed, same numbers" holds for seed 0 too. ND4J's native generator takes a root seed of 0 to mean "the current
 * time", so a run seeded 0 drew other dropout masks each time.
 */
class DistillerSeedZeroTest {

    @BeforeAll
    static void setUp() {
        DistillerCheckpointTest.trainTeacher();
    }

    private static float[] trainedWithSeed(long seed) {
        MultiLayerNetwork net = DistillerCheckpointTest.studentNet(); // dropout 0.2: the run draws from ND4J's generator
        DistillerCheckpointTest.run(Dl4jStudent.of(net), null, null).seed(seed).epochs(2).temperature(null).build().run();
        return net.params().toFloatVector();
    }

    @Test
    void seedZeroGivesTheSameStudentEveryRun() throws Exception {
        float[] first = trainedWithSeed(0);
        Thread.sleep(5); // the clock ND4J read for a seed of 0 moves on
        assertArrayEquals(first, trainedWithSeed(0), "two runs seeded 0, bit for bit");
    }

    /** Seed 0 is a seed of its own, not another seed's stream (here: ND4J's replacement of 0 is not one of the seeds 1, 2). */
    @Test
    void seedZeroIsNotTheStreamOfAnotherSeed() {
        float[] zero = trainedWithSeed(0);
        assertFalse(java.util.Arrays.equals(zero, trainedWithSeed(1)));
        assertFalse(java.util.Arrays.equals(zero, trainedWithSeed(2)));
    }
}
