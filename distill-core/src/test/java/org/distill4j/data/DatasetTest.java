package org.distill4j.data;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shuffling by seed, subsets and the content fingerprint that checkpoints and stores compare. */
class DatasetTest {
    private static final int D = 3;

    /** Sample i has features {i, i + 0.25, i + 0.5} and label i % 7, so a row's origin can be read back. */
    static Dataset numbered(int n) {
        float[] x = new float[n * D];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < D; j++) {
                x[i * D + j] = i + 0.25f * j;
            }
            y[i] = i % 7;
        }
        return new Dataset("numbered", x, D, y, 7);
    }

    @Test
    void theSameSeedGivesTheSameOrderAndRowsKeepTheirLabels() {
        Dataset data = numbered(257);
        Dataset a = data.shuffled(9);
        Dataset b = data.shuffled(9);
        assertArrayEquals(a.features(), b.features(), 0f);
        assertArrayEquals(a.labels(), b.labels());
        assertFalse(Arrays.equals(a.features(), data.shuffled(10).features()), "another seed, another order");
        boolean[] seen = new boolean[data.size()];
        boolean moved = false;
        for (int r = 0; r < a.size(); r++) {
            int src = (int) a.features()[r * D];
            assertFalse(seen[src], "sample " + src + " appears once");
            seen[src] = true;
            moved |= src != r;
            assertEquals(src % 7, a.labels()[r], "row " + r + " keeps its label");
            assertEquals(src + 0.5f, a.features()[r * D + 2], 0f, "row " + r + " keeps its features together");
        }
        assertTrue(moved);
        assertEquals(data.name(), a.name());
    }

    /**
     * The shuffle a seed gives is part of what a checkpoint resumes: a resumed run replays the epochs' permutations from the
     * seed, and checkpoints do not record the algorithm. This pins Fisher-Yates over java.util.Random (whose sequence the
     * JDK specifies), so a change to it shows here rather than as a resumed run that no longer matches its first part.
     */
    @Test
    void thePermutationOfASeedIsFixed() {
        assertArrayEquals(new int[]{4, 6, 2, 1, 7, 9, 8, 5, 3, 0}, Dataset.permutation(10, new Random(42)));
        assertArrayEquals(new int[0], Dataset.permutation(0, new Random(1)));
        assertArrayEquals(new int[]{0}, Dataset.permutation(1, new Random(1)));
        // each permutation of n draws n - 1 numbers: the next epoch's permutation from the same generator is fixed too
        Random rng = new Random(42);
        Dataset.permutation(10, rng);
        Random after = new Random(42);
        for (int i = 10; i > 1; i--) {
            after.nextInt(i);
        }
        assertEquals(after.nextLong(), rng.nextLong(), "permutation(10) draws 9 numbers");
    }

    @Test
    void subsetsAndHeads() {
        Dataset data = numbered(20);
        Dataset s = data.subset(new int[]{19, 0, 5, 5}, "picked");
        assertEquals("picked", s.name());
        assertArrayEquals(new int[]{19 % 7, 0, 5, 5}, s.labels());
        assertEquals(19f, s.features()[0], 0f);
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> data.subset(new int[]{3, 20}, "x"));
        assertTrue(e.getMessage().contains("numbered: sample index 20 outside [0, 20)"), e.getMessage());
        assertEquals(7, data.head(7).size());
        assertArrayEquals(Arrays.copyOf(data.labels(), 7), data.head(7).labels());
        assertSame(data, data.head(20));
        assertSame(data, data.head(1000));
        assertEquals(0, data.head(0).size());
        assertThrows(IllegalArgumentException.class, () -> data.head(-1));
    }

    @Test
    void theFingerprintFollowsContentAndOrderNotTheName() {
        Dataset data = numbered(50);
        assertEquals(data.fingerprint(), numbered(50).fingerprint());
        assertEquals(data.fingerprint(), new Dataset("other name", data.features(), D, data.labels(), 7).fingerprint());
        assertNotEquals(data.fingerprint(), data.shuffled(3).fingerprint(), "another order");
        float[] x = data.features().clone();
        x[77] = Math.nextUp(x[77]);
        assertNotEquals(data.fingerprint(), new Dataset("numbered", x, D, data.labels(), 7).fingerprint(), "one feature, one ulp");
        int[] y = data.labels().clone();
        y[49] = (y[49] + 1) % 7;
        assertNotEquals(data.fingerprint(), new Dataset("numbered", data.features(), D, y, 7).fingerprint(), "one label");
    }

    @Test
    void badShapesAndLabelsNameTheDataset() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Dataset("d", new float[7], 3, new int[2], 4));
        assertTrue(e.getMessage().contains("d: 7 feature values for 2 labels"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Dataset("d", new float[6], 3, new int[]{1, 4}, 4));
        assertTrue(e.getMessage().contains("d: label of sample 1 is 4, expected a class in [0, 4)"), e.getMessage());
        assertTrue(e.getMessage().contains("UNLABELED (-1) for a sample without one, or IGNORE_INDEX (-100) for a sample to leave"
                + " out"), e.getMessage());
        for (int bad : new int[]{-2, -99, -101, Integer.MIN_VALUE}) {
            e = assertThrows(IllegalArgumentException.class, () -> new Dataset("d", new float[6], 3, new int[]{0, bad}, 4));
            assertTrue(e.getMessage().contains("d: label of sample 1 is " + bad + ", expected a class in [0, 4), UNLABELED"),
                    e.getMessage());
        }
    }

    /** IGNORE_INDEX marks a sample to leave out (padding): accepted, counted apart, and kept through subsets and heads. */
    @Test
    void ignoredSamplesAreAcceptedAndCountedApart() {
        Dataset data = numbered(20);
        int[] y = data.labels().clone();
        for (int i : new int[]{0, 7, 8, 19}) {
            y[i] = Dataset.IGNORE_INDEX;
        }
        Dataset padded = new Dataset("padded", data.features(), D, y, 7);
        assertEquals(-100, Dataset.IGNORE_INDEX);
        assertEquals(org.distill4j.loss.LogitBatch.IGNORE_INDEX, Dataset.IGNORE_INDEX);
        assertEquals(20, padded.size());
        assertEquals(16, padded.labeledSize());
        assertEquals(20, data.labeledSize());
        assertFalse(padded.isLabeled(7));
        assertTrue(padded.isLabeled(6));
        assertTrue(padded.toString().contains("20 samples, 16 labeled"), padded.toString());
        Dataset s = padded.subset(new int[]{8, 1, 19}, "picked");
        assertArrayEquals(new int[]{Dataset.IGNORE_INDEX, 1, Dataset.IGNORE_INDEX}, s.labels());
        assertEquals(1, s.labeledSize());
        assertEquals(6, padded.head(9).labeledSize());
        assertEquals(16, padded.shuffled(3).labeledSize());
        assertNotEquals(data.fingerprint(), padded.fingerprint(), "ignored labels are part of the content");
    }

    /**
     * UNLABELED marks a sample without a hard label: accepted, counted apart from labeled and ignored ones, kept through
     * subsets, heads and shuffles; withoutLabels drops every label but IGNORE_INDEX, and concat joins two datasets.
     */
    @Test
    void unlabeledSamplesAreAcceptedAndCountedApart() {
        Dataset data = numbered(20);
        int[] y = data.labels().clone();
        y[3] = Dataset.UNLABELED;
        y[4] = Dataset.UNLABELED;
        y[9] = Dataset.IGNORE_INDEX;
        Dataset mixed = new Dataset("mixed", data.features(), D, y, 7);
        assertEquals(-1, Dataset.UNLABELED);
        assertEquals(org.distill4j.loss.LogitBatch.UNLABELED, Dataset.UNLABELED);
        assertEquals(17, mixed.labeledSize());
        assertEquals(2, mixed.unlabeledSize());
        assertEquals(19, mixed.usedSize());
        assertFalse(mixed.isLabeled(3));
        assertTrue(mixed.isUsed(3));
        assertFalse(mixed.isUsed(9));
        assertTrue(mixed.isLabeled(5) && mixed.isUsed(5));
        assertTrue(mixed.toString().contains("20 samples, 17 labeled, 2 unlabeled"), mixed.toString());
        assertEquals(1, mixed.subset(new int[]{4, 9, 0}, "picked").unlabeledSize());
        assertEquals(2, mixed.head(5).unlabeledSize());
        assertEquals(2, mixed.shuffled(5).unlabeledSize());
        assertNotEquals(mixed.fingerprint(), new Dataset("mixed", data.features(), D, data.labels(), 7).fingerprint());

        Dataset stripped = mixed.withoutLabels("stripped");
        assertEquals(0, stripped.labeledSize());
        assertEquals(19, stripped.unlabeledSize());
        assertEquals(Dataset.IGNORE_INDEX, stripped.labels()[9], "ignored samples stay ignored");
        assertEquals(y[5], mixed.labels()[5], "the original keeps its labels");
        assertArrayEquals(mixed.features(), stripped.features());

        Dataset joined = Dataset.concat("joined", data.head(6), stripped);
        assertEquals(26, joined.size());
        assertEquals(6, joined.labeledSize());
        assertEquals(19, joined.unlabeledSize());
        assertArrayEquals(java.util.Arrays.copyOf(data.labels(), 6), java.util.Arrays.copyOf(joined.labels(), 6));
        assertArrayEquals(data.features(), java.util.Arrays.copyOfRange(joined.features(), 6 * D, 26 * D));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Dataset.concat("j", data, new Dataset("other", new float[4], 2, new int[]{0, 1}, 7)));
        assertTrue(e.getMessage().contains("cannot join numbered") && e.getMessage().contains("other (2 features, 7 classes)"),
                e.getMessage());
    }

    /**
     * The fingerprint is recorded in stores and checkpoints, so it is pinned: a CRC32C over the big-endian sample count,
     * feature count, every feature value and every label, with bit 40 set (never 0). Computed here in one buffer over a
     * dataset larger than the 64 KiB the fingerprint hashes at a time, so every block counts, the first as the last.
     */
    @Test
    void theFingerprintIsTheCrc32cOfTheWholeContent() {
        Random rng = new Random(31);
        int n = 3001;
        int d = 7; // 21,007 values: several 64 KiB blocks, the last one partial
        float[] x = new float[n * d];
        int[] y = new int[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        for (int i = 0; i < n; i++) {
            y[i] = i % 11 == 0 ? Dataset.IGNORE_INDEX : rng.nextInt(5);
        }
        Dataset data = new Dataset("big", x, d, y, 5);
        assertEquals(reference(x, d, y), data.fingerprint());
        assertEquals(data.fingerprint(), data.fingerprint(), "cached");
        for (int at : new int[]{0, 16382, 16383, 16384, x.length - 1}) { // in the first block, across a block's end, the last
            float[] changed = x.clone();
            changed[at] = Math.nextUp(changed[at]);
            Dataset other = new Dataset("big", changed, d, y, 5);
            assertEquals(reference(changed, d, y), other.fingerprint(), "value " + at);
            assertNotEquals(data.fingerprint(), other.fingerprint(), "value " + at);
        }
        int[] first = y.clone();
        first[1] = (first[1] + 1) % 5;
        assertNotEquals(data.fingerprint(), new Dataset("big", x, d, first, 5).fingerprint(), "the first label");
        // labels past a block's end too: one feature a sample, 20,001 samples
        float[] one = new float[20_001];
        int[] many = new int[one.length];
        for (int i = 0; i < one.length; i++) {
            one[i] = i * 0.5f;
            many[i] = i % 5;
        }
        Dataset tall = new Dataset("tall", one, 1, many, 5);
        assertEquals(reference(one, 1, many), tall.fingerprint());
        int[] firstLabel = many.clone();
        firstLabel[0] = 4;
        assertNotEquals(tall.fingerprint(), new Dataset("tall", one, 1, firstLabel, 5).fingerprint(), "the first label of many");
        Dataset empty = new Dataset("empty", new float[0], 4, new int[0], 2);
        assertEquals(reference(new float[0], 4, new int[0]), empty.fingerprint());
        assertNotEquals(empty.fingerprint(), new Dataset("empty", new float[0], 5, new int[0], 2).fingerprint(), "the feature count");
    }

    /**
     * The feature fingerprint (what a store serves by) is pinned too: the CRC32C of the counts and the features alone, with
     * bit 40 set. Labels, removed, changed or ignored, leave it as it is; a feature value (one ulp, in any 64 KiB block),
     * the order, the sample count or the feature count change it; and it is not the full fingerprint.
     */
    @Test
    void theFeatureFingerprintCoversTheFeaturesButNotTheLabels() {
        Random rng = new Random(47);
        int n = 2503;
        int d = 9; // 22,527 values: several 64 KiB blocks
        float[] x = new float[n * d];
        int[] y = new int[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        for (int i = 0; i < n; i++) {
            y[i] = rng.nextInt(6);
        }
        Dataset data = new Dataset("feat", x, d, y, 6);
        long f = data.featureFingerprint();
        assertEquals(referenceFeatures(x, d, n), f);
        assertEquals(f, data.featureFingerprint(), "cached");
        assertNotEquals(0L, f);
        assertNotEquals(data.fingerprint(), f, "not the full fingerprint");
        assertEquals(f, data.withoutLabels("stripped").featureFingerprint(), "labels removed");
        assertNotEquals(data.fingerprint(), data.withoutLabels("stripped").fingerprint());
        int[] other = y.clone();
        int[] ignored = y.clone();
        for (int i = 0; i < n; i += 3) {
            other[i] = (other[i] + 1) % 6;
            ignored[i] = Dataset.IGNORE_INDEX;
        }
        assertEquals(f, new Dataset("relabeled", x, d, other, 6).featureFingerprint(), "other labels");
        assertEquals(f, new Dataset("ignored", x, d, ignored, 6).featureFingerprint(), "some ignored");
        assertEquals(f, new Dataset("classes", x, d, y, 11).featureFingerprint(), "another class count: not what a teacher reads");
        for (int at : new int[]{0, 16383, 16384, x.length - 1}) {
            float[] changed = x.clone();
            changed[at] = Math.nextUp(changed[at]);
            long g = new Dataset("feat", changed, d, y, 6).featureFingerprint();
            assertEquals(referenceFeatures(changed, d, n), g, "value " + at);
            assertNotEquals(f, g, "value " + at);
        }
        assertNotEquals(f, data.shuffled(5).featureFingerprint(), "another order");
        int[] swap = new int[n];
        for (int i = 0; i < n; i++) {
            swap[i] = i;
        }
        swap[0] = 1;
        swap[1] = 0;
        assertNotEquals(f, data.subset(swap, "swapped").featureFingerprint(), "two rows swapped");
        assertNotEquals(f, data.head(n - 1).featureFingerprint(), "one sample fewer");
        // the same values read as rows of 3 features: only the feature count differs
        assertNotEquals(f, new Dataset("wide", x, 3, new int[n * 3], 6).featureFingerprint(), "the feature count");
        assertNotEquals(new Dataset("e", new float[0], 4, new int[0], 2).featureFingerprint(),
                new Dataset("e", new float[0], 5, new int[0], 2).featureFingerprint(), "the feature count, no samples");
    }

    private static long referenceFeatures(float[] x, int d, int n) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8 + 4 * x.length);
        b.putInt(n).putInt(d);
        for (float v : x) {
            b.putFloat(v);
        }
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b.array());
        return crc.getValue() | (1L << 40);
    }

    private static long reference(float[] x, int d, int[] y) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8 + 4 * x.length + 4 * y.length);
        b.putInt(y.length).putInt(d);
        for (float v : x) {
            b.putFloat(v);
        }
        for (int l : y) {
            b.putInt(l);
        }
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b.array());
        return crc.getValue() | (1L << 40);
    }

    @Test
    void aFeatureCountOrClassCountBelowOneIsNamed() {
        for (int bad : new int[]{0, -3}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Dataset("d", new float[0], bad, new int[0], 4));
            assertEquals("d: featureCount must be > 0, got " + bad, e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new Dataset("d", new float[6], 3, new int[2], bad));
            assertEquals("d: classes must be > 0, got " + bad, e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Dataset("d", new float[8], 3, new int[2], 4));
        assertEquals("d: 8 feature values for 2 labels, expected labels x featureCount = 2 x 3", e.getMessage());
        new Dataset("one", new float[2], 1, new int[]{0, 0}, 1); // one feature, one class: the smallest there is
    }

    /** Subsets, heads and shuffles keep each row's features whole and with its label. */
    @Test
    void subsetsAndHeadsCopyWholeRows() {
        Dataset data = numbered(20);
        int[] picked = {19, 0, 5, 5, 12};
        Dataset s = data.subset(picked, "picked");
        assertEquals(picked.length, s.size());
        assertEquals(D, s.featureCount());
        assertEquals(7, s.classes());
        for (int i = 0; i < picked.length; i++) {
            for (int j = 0; j < D; j++) {
                assertEquals(picked[i] + 0.25f * j, s.features()[i * D + j], 0f, "row " + i + ", feature " + j);
            }
        }
        Dataset h = data.head(7);
        assertEquals("numbered[:7]", h.name());
        assertArrayEquals(Arrays.copyOf(data.features(), 7 * D), h.features(), 0f);
        assertEquals(7, h.classes());
        assertEquals(D, h.featureCount());
        assertEquals(6, data.head(6).size());
        assertEquals("numbered (20 samples, 3 features, 7 classes)", data.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> data.head(-1));
        assertEquals("head size must be >= 0, got -1", e.getMessage());
        IndexOutOfBoundsException o = assertThrows(IndexOutOfBoundsException.class, () -> data.subset(new int[]{-1}, "x"));
        assertTrue(o.getMessage().contains("numbered: sample index -1 outside [0, 20)"), o.getMessage());
    }

    /** A subset of more values than a Java array holds is refused naming the dataset, not a NegativeArraySizeException. */
    @Test
    void aSubsetTooLargeForOneArrayIsNamed() {
        Dataset wide = new Dataset("wide", new float[1024], 1024, new int[]{0}, 1);
        int[] many = new int[(1 << 21) + 1]; // 2^31 + 1024 values: an int product wraps to a negative size
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> wide.subset(many, "many"));
        assertTrue(e.getMessage().contains("wide: " + many.length + " samples of 1024 features") && e.getMessage().contains("too many"),
                e.getMessage());
    }
}
