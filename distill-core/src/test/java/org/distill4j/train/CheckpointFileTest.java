package org.distill4j.train;

import org.distill4j.checkpoint.CheckpointMismatchException;
import org.distill4j.checkpoint.Checkpointable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The checkpoint file on its own: every field of the progress round-trips (each a distinct random value, so a field
 * written or read in another's place shows), loss terms keep the loss's order (kd before ce, as an uninterrupted run
 * lists them), each part's state goes to its part and is applied only after every part accepted, and a damaged file is
 * refused naming the file and what was wrong.
 */
class CheckpointFileTest {

    /** A part whose state is a few numbers; {@code readExtra} reads one number more than it wrote (a broken reader). */
    static final class Part implements Checkpointable {
        double[] state;
        final boolean readExtra;
        final String refuse;

        Part(double[] state, boolean readExtra, String refuse) {
            this.state = state;
            this.readExtra = readExtra;
            this.refuse = refuse;
        }

        Part(double[] state) {
            this(state, false, null);
        }

        @Override
        public void writeState(DataOutputStream out) throws IOException {
            out.writeInt(state.length);
            for (double x : state) {
                out.writeDouble(x);
            }
        }

        @Override
        public Restore readState(DataInputStream in) throws IOException {
            double[] s = new double[in.readInt()];
            for (int i = 0; i < s.length; i++) {
                s[i] = in.readDouble();
            }
            if (readExtra) {
                in.readInt();
            }
            if (refuse != null) {
                throw new IllegalArgumentException(refuse);
            }
            return () -> state = s;
        }
    }

    static Map<String, Double> terms(Random rng, String... names) {
        Map<String, Double> m = new LinkedHashMap<>();
        for (String n : names) {
            m.put(n, rng.nextGaussian());
        }
        return m;
    }

    /** A progress whose every number is a distinct random value, terms in a loss's (not alphabetical) order. */
    static CheckpointFile.Progress progress(Random rng) {
        Map<String, String> fp = new LinkedHashMap<>();
        fp.put("loss", "kd");
        fp.put("epochs", "7");
        fp.put("teacherIdentity", "sha-256 \u00e9t\u00e9 \u2713"); // not ASCII: strings are UTF-8
        List<EpochMetrics> history = new ArrayList<>();
        for (int e = 0; e < 2; e++) {
            history.add(new EpochMetrics(e, 7, rng.nextDouble(), terms(rng, "kd", "ce", "hint"), 1 + rng.nextDouble(), rng.nextDouble(),
                    rng.nextDouble(), rng.nextDouble(), rng.nextDouble(), 1000 * rng.nextDouble(), rng.nextDouble(), rng.nextDouble()));
        }
        return new CheckpointFile.Progress(fp, 2, 3, rng.nextLong(), rng.nextLong(), rng.nextLong(), rng.nextLong(), rng.nextGaussian(),
                terms(rng, "kd", "ce"), rng.nextLong(), rng.nextLong(), "dl4j (recording)", history);
    }

    static void assertSameMetrics(EpochMetrics a, EpochMetrics b) {
        assertEquals(a.epoch(), b.epoch());
        assertEquals(a.epochs(), b.epochs());
        assertEquals(a.loss(), b.loss(), 0.0);
        assertEquals(List.copyOf(a.terms().entrySet()), List.copyOf(b.terms().entrySet()), "terms, in the loss's order");
        assertEquals(a.temperature(), b.temperature(), 0.0);
        assertEquals(a.alpha(), b.alpha(), 0.0);
        assertEquals(a.testAccuracy(), b.testAccuracy(), 0.0);
        assertEquals(a.teacherAgreement(), b.teacherAgreement(), 0.0);
        assertEquals(a.teacherKl(), b.teacherKl(), 0.0);
        assertEquals(a.samplesPerSecond(), b.samplesPerSecond(), 0.0);
        assertEquals(a.trainSeconds(), b.trainSeconds(), 0.0);
        assertEquals(a.evalSeconds(), b.evalSeconds(), 0.0);
    }

    @Test
    void everyFieldAndEveryPartsStateRoundTripsTermsInTheLossesOrder(@TempDir Path tmp) throws IOException {
        Random rng = new Random(71);
        CheckpointFile.Progress p = progress(rng);
        Path file = tmp.resolve("distill.ckpt");
        Part student = new Part(new double[]{rng.nextGaussian(), rng.nextGaussian(), rng.nextGaussian()});
        Part hint = new Part(new double[]{rng.nextGaussian()});
        Part other = new Part(new double[]{rng.nextGaussian(), rng.nextGaussian()});
        CheckpointFile.write(file, p, student, List.of(hint, other));

        Part student2 = new Part(new double[0]);
        Part hint2 = new Part(new double[0]);
        Part other2 = new Part(new double[0]);
        CheckpointFile.Progress[] seen = new CheckpointFile.Progress[1];
        CheckpointFile.Progress q = CheckpointFile.read(file, x -> seen[0] = x, student2, List.of(hint2, other2));
        assertEquals(q, seen[0], "the check saw what read returns");
        assertEquals(List.copyOf(p.fingerprint().entrySet()), List.copyOf(q.fingerprint().entrySet()));
        assertEquals(p.epochsDone(), q.epochsDone());
        assertEquals(p.batchesDone(), q.batchesDone());
        assertEquals(p.trainNanosTotal(), q.trainNanosTotal());
        assertEquals(p.samplesTotal(), q.samplesTotal());
        assertEquals(p.wallNanos(), q.wallNanos());
        assertEquals(p.epochTrainNanos(), q.epochTrainNanos());
        assertEquals(p.epochLossSum(), q.epochLossSum(), 0.0);
        assertEquals(List.copyOf(p.epochTermSums().entrySet()), List.copyOf(q.epochTermSums().entrySet()),
                "the epoch's term sums, in the loss's order: kd, then ce");
        assertEquals(p.randomRootState(), q.randomRootState());
        assertEquals(p.randomNodeState(), q.randomNodeState());
        assertEquals(p.engine(), q.engine());
        assertEquals(p.history().size(), q.history().size());
        for (int e = 0; e < p.history().size(); e++) {
            assertSameMetrics(p.history().get(e), q.history().get(e));
        }
        assertArrayEquals(student.state, student2.state, 0.0);
        assertArrayEquals(hint.state, hint2.state, 0.0);
        assertArrayEquals(other.state, other2.state, 0.0);
        try (var files = Files.list(tmp)) {
            assertEquals(List.of(file), files.toList(), "no temporary file left");
        }
    }

    /** A refusal by the check, or by any part, or another count of parts: no part takes its state; the file is named. */
    /** Nothing is also a value: an empty string, no terms, no epochs of metrics, no trainable parts. */
    @Test
    void emptyStringsTermsAndHistoryRoundTrip(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("distill.ckpt");
        Map<String, String> fp = new LinkedHashMap<>();
        fp.put("", "");
        fp.put("testData", "none");
        CheckpointFile.Progress p = new CheckpointFile.Progress(fp, 0, 2, 5, 6, 7, 8, 0.25, Map.of(), -1, -2, "", List.of());
        CheckpointFile.write(file, p, new Part(new double[0]), List.of());
        CheckpointFile.Progress q = CheckpointFile.read(file, x -> { }, new Part(new double[]{1}), List.of());
        assertEquals(List.copyOf(fp.entrySet()), List.copyOf(q.fingerprint().entrySet()));
        assertEquals("", q.engine());
        assertTrue(q.epochTermSums().isEmpty() && q.history().isEmpty());
        assertEquals(2, q.batchesDone());
    }

    @Test
    void aRefusedCheckpointChangesNoPart(@TempDir Path tmp) throws IOException {
        Random rng = new Random(72);
        Path file = tmp.resolve("distill.ckpt");
        CheckpointFile.write(file, progress(rng), new Part(new double[]{1, 2}), List.of(new Part(new double[]{3})));
        double[] mine = {9, 9};
        Part student = new Part(mine.clone());
        IllegalStateException byCheck = assertThrows(IllegalStateException.class, () -> CheckpointFile.read(file, p -> {
            throw new IllegalStateException("other settings");
        }, student, List.of(new Part(new double[0]))));
        assertEquals("other settings", byCheck.getMessage());
        assertArrayEquals(mine, student.state, 0.0);

        Part refusing = new Part(new double[]{5}, false, "a hint of other sizes");
        CheckpointMismatchException e = assertThrows(CheckpointMismatchException.class,
                () -> CheckpointFile.read(file, p -> { }, student, List.of(refusing)));
        assertEquals("the checkpoint " + file + " does not fit this run: a hint of other sizes. Resume with the same models, or train"
                + " from the start with Checkpoints.startOver() or by deleting the file", e.getMessage());
        assertArrayEquals(mine, student.state, 0.0, "the student, read first, was not changed");
        assertArrayEquals(new double[]{5}, refusing.state, 0.0);

        for (List<Checkpointable> parts : List.<List<Checkpointable>>of(List.of(), List.of(new Part(new double[0]), new Part(new double[0])))) {
            e = assertThrows(CheckpointMismatchException.class, () -> CheckpointFile.read(file, p -> { }, student, parts));
            assertTrue(e.getMessage().contains("it holds the state of 1 trainable feature losses; this run has " + parts.size()),
                    e.getMessage());
            assertArrayEquals(mine, student.state, 0.0);
        }
    }

    /** A part whose reader reads more than its writer wrote is named, not silently misread; nothing is applied. */
    @Test
    void aReaderThatReadsAnotherLengthIsNamed(@TempDir Path tmp) throws IOException {
        Random rng = new Random(73);
        Path file = tmp.resolve("distill.ckpt");
        CheckpointFile.write(file, progress(rng), new Part(new double[]{1, 2}), List.of(new Part(new double[]{3})));
        Part student = new Part(new double[]{7}, true, null);
        IOException e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, student, List.of(new Part(new double[0]))));
        assertEquals(file + ": the student's state did not end where it was written (the reader consumed another number of bytes than"
                + " the writer wrote)", e.getMessage());
        assertArrayEquals(new double[]{7}, student.state, 0.0);
        Part hint = new Part(new double[]{8}, true, null);
        e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of(hint)));
        assertEquals(file + ": trainable feature loss 1's state did not end where it was written (the reader consumed another number"
                + " of bytes than the writer wrote)", e.getMessage());
    }

    /** Rewrites the checksum after a change, so the change itself is what the reader meets. */
    static byte[] withChecksum(byte[] b) {
        CRC32C crc = new CRC32C();
        crc.update(b, 0, b.length - 4);
        ByteBuffer.wrap(b, b.length - 4, 4).putInt((int) crc.getValue());
        return b;
    }

    /** Damage that a checksum cannot see (a bad count or string length under a valid CRC): named, and nothing read. */
    @Test
    void badCountsAndLengthsUnderAValidChecksumAreNamed(@TempDir Path tmp) throws IOException {
        Random rng = new Random(74);
        Path file = tmp.resolve("distill.ckpt");
        CheckpointFile.write(file, progress(rng), new Part(new double[]{1}), List.of());
        byte[] good = Files.readAllBytes(file);
        int countAt = 12; // after the magic (8 bytes) and the version: the fingerprint's entry count
        int[] badCounts = {-1, (1 << 24) + 1};
        for (int bad : badCounts) {
            byte[] b = good.clone();
            ByteBuffer.wrap(b, countAt, 4).putInt(bad);
            Files.write(file, withChecksum(b));
            IOException e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
            assertEquals(file + " is damaged: " + bad + " fingerprint entries", e.getMessage());
        }
        assertEquals(3, ByteBuffer.wrap(good, countAt, 4).getInt(), "the fingerprint's entry count is where this test changes it");
        int lengthAt = countAt + 4; // the first key's byte count
        for (int bad : new int[]{-5, (1 << 24) + 1}) {
            byte[] b = good.clone();
            ByteBuffer.wrap(b, lengthAt, 4).putInt(bad);
            Files.write(file, withChecksum(b));
            IOException e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
            assertEquals(file + " is damaged: a string of " + bad + " bytes", e.getMessage());
        }
        // the largest count and string length are taken (and then the file ends early)
        for (int at : new int[]{countAt, lengthAt}) {
            byte[] b = good.clone();
            ByteBuffer.wrap(b, at, 4).putInt(1 << 24);
            Files.write(file, withChecksum(b));
            IOException e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
            assertEquals(file + " ends early: a truncated checkpoint", e.getMessage(), "at " + at);
        }
        // a string longer than what is left: a truncated checkpoint, not an exception from deep inside
        byte[] b = good.clone();
        ByteBuffer.wrap(b, lengthAt, 4).putInt(1 << 20);
        Files.write(file, withChecksum(b));
        IOException cut = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
        assertEquals(file + " ends early: a truncated checkpoint", cut.getMessage());
    }

    @Test
    void aShortOrForeignFileIsNamedAsSuch(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("distill.ckpt");
        byte[] magic = "D4JCKPT\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        byte[] shortFile = java.util.Arrays.copyOf(magic, magic.length + 3); // the magic and 3 bytes: no room for version and CRC
        Files.write(file, shortFile);
        IOException e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
        assertEquals(file + " is too short to be a checkpoint (11 bytes)", e.getMessage());
        byte[] headerOnly = ByteBuffer.allocate(magic.length + 4).put(magic).putInt(CheckpointFile.VERSION).array();
        Files.write(file, headerOnly); // room for a checksum of the magic, which this one is not
        e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
        assertTrue(e.getMessage().startsWith(file + " is damaged: its CRC32C is "), e.getMessage());
        Files.write(file, magic); // the magic alone
        e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
        assertEquals(file + " is too short to be a checkpoint (8 bytes)", e.getMessage());
        // a later version is named as such before its checksum (which this version may not know how to check) is
        byte[] later = ByteBuffer.allocate(magic.length + 8).put(magic).putInt(CheckpointFile.VERSION + 1).putInt(0).array();
        Files.write(file, later);
        e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
        assertEquals(file + " is a version " + (CheckpointFile.VERSION + 1) + " checkpoint; this Distill4J reads version "
                + CheckpointFile.VERSION, e.getMessage());
        Files.write(file, java.util.Arrays.copyOf(magic, 5));
        e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, new Part(new double[0]), List.of()));
        assertEquals(file + " is not a Distill4J checkpoint (it does not start with \"D4JCKPT\")", e.getMessage());
    }
}
