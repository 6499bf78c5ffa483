package org.distill4j.examples;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

class DemoTest {
    private static float[] initialWeights(Demo.Settings s, Long runSeed) {
        return Demo.initialStudent(s, 12, 3, runSeed).params().toFloatVector();
    }

    /**
     * With --seeds (training.seeds) a student row's initial weights are its run's seed's: the same seed starts every row
     * alike (the rows stay paired), another seed elsewhere, and --seed (the teacher's and the data draw's) plays no part.
     * Without seeds the students start from --seed + 1.
     */
    @Test
    void aStudentsInitialWeightsDependOnItsRunsSeedAlone() {
        Demo.Settings s = new Demo.Settings();
        s.studentHidden = new int[]{5};
        float[] five = initialWeights(s, 5L);
        assertEquals(12 * 5 + 5 + 5 * 3 + 3, five.length, "12-5-3, weights and biases");
        assertArrayEquals(five, initialWeights(s, 5L), "the same seed, the same initial student");
        assertFalse(Arrays.equals(five, initialWeights(s, 6L)), "another seed, another initial student");
        s.seed = 7;
        assertArrayEquals(five, initialWeights(s, 5L), "--seed does not move a seeded run's student");
        assertArrayEquals(initialWeights(s, 8L), initialWeights(s, null), "without seeds: --seed + 1");
        s.seed = 8;
        assertFalse(Arrays.equals(initialWeights(s, 8L), initialWeights(s, null)), "without seeds: --seed + 1, not --seed");
    }

    /** Each run has files of its own: seed -4's checkpoints and model are not seed 4's (a resume would mix them up). */
    @Test
    void aNegativeSeedsRunHasFilesOfItsOwn() {
        assertEquals("student-alone-seed-4", Demo.fileName("student alone seed 4"));
        assertEquals("student-alone-seed-minus-4", Demo.fileName("student alone seed -4"));
        assertEquals("distilled-kd-stored-f16-seed-minus-12", Demo.fileName("distilled: kd, stored f16 seed -12"));
        assertEquals("distilled-dkd-beta-minus-2", Demo.fileName("distilled: dkd:beta=-2"), "not dkd:beta=2's");
        assertEquals("distilled-topk-kd-k-2", Demo.fileName("distilled: topk-kd:k=2"), "a dash between words stays one");
        assertEquals("distilled-kd-temperature-1e-3", Demo.fileName("distilled: kd:temperature=1e-3"));
        Demo.Settings s = new Demo.Settings();
        s.out = Path.of("out");
        assertNotEquals(Demo.checkpointDir(s, "student alone seed -4"), Demo.checkpointDir(s, "student alone seed 4"));
        assertEquals(Path.of("out", "checkpoints", "student-alone-seed-minus-4"), Demo.checkpointDir(s, "student alone seed -4"));
    }

    /**
     * A foreign model's content id is the CRC32C of its bytes, read in pieces (a TorchScript file can exceed the 2 GiB
     * an array holds): the same id as the whole file's, so stores labeled before still match.
     */
    @Test
    void aModelFilesIdIsTheCrcOfItsBytesReadInPieces(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        byte[] bytes = new byte[200_003]; // three pieces and a short one
        new java.util.Random(9).nextBytes(bytes);
        Path f = java.nio.file.Files.write(tmp.resolve("m.onnx"), bytes);
        java.util.zip.CRC32C whole = new java.util.zip.CRC32C();
        whole.update(bytes);
        assertEquals("file-" + Long.toHexString(whole.getValue()), Demo.fileId(f));
        bytes[150_000] ^= 1;
        assertNotEquals(Demo.fileId(f), Demo.fileId(java.nio.file.Files.write(tmp.resolve("n.onnx"), bytes)));
    }
}
