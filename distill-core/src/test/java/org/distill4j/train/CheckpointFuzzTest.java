package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.learning.config.Adam;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
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
 * Damaged and hostile checkpoints ({@link CheckpointFile}, with a {@link Dl4jStudent}): truncated, bytes changed, and
 * numbers written at random places with the file's CRC32C recomputed (as a hostile file has it). Each is read, or
 * refused with an IOException or a CheckpointMismatchException naming the file, and a refused one leaves the student as
 * it was; nothing else escapes, and a size in the file is not trusted for an allocation before the bytes are there.
 * Seed: {@code -Ddistill.fuzz.seed}; cases: {@code -Ddistill.fuzz.cases}.
 */
class CheckpointFuzzTest {
    static final long SEED = Long.getLong("distill.fuzz.seed", 20261122L);
    static final int CASES = Integer.getInteger("distill.fuzz.cases", 150);
    static byte[] valid;
    static float[] saved;
    static MultiLayerNetwork reader;
    static float[] before;

    static MultiLayerNetwork net(long seed) {
        return Nets.logitsMlp(7, 5, 3, new Adam(1e-2), seed, 0);
    }

    @BeforeAll
    static void write(@TempDir Path tmp) throws IOException {
        MultiLayerNetwork net = net(1);
        Map<String, String> fingerprint = new LinkedHashMap<>();
        fingerprint.put("loss", "kd(T=4)");
        fingerprint.put("seed", "42");
        EpochMetrics m = new EpochMetrics(1, 3, 0.5, Map.of("kd", 0.25, "ce", 0.25), 4, 0.1, 0.8, 0.9, 0.01, 1000, 1, 0.5);
        CheckpointFile.Progress p = new CheckpointFile.Progress(fingerprint, 1, 2, 10, 20, 30, 5, 1.5, Map.of("kd", 1.0), 7, 8, "cpu",
                List.of(m));
        Path file = tmp.resolve("valid.ckpt");
        CheckpointFile.write(file, p, Dl4jStudent.of(net), List.of());
        valid = Files.readAllBytes(file);
        saved = net.params().toFloatVector();
        reader = net(2);
        before = reader.params().toFloatVector();
    }

    /** Reads {@code bytes} into a fresh student: read (true), or refused naming the file with the student unchanged (false). */
    static boolean check(Path dir, byte[] bytes, String what) throws IOException {
        Path file = dir.resolve("fuzz.ckpt");
        Files.write(file, bytes);
        reader.setParams(org.nd4j.linalg.factory.Nd4j.createFromArray(before).reshape(1, before.length));
        try {
            CheckpointFile.read(file, p -> { }, Dl4jStudent.of(reader), List.of());
            return true;
        } catch (IOException | IllegalArgumentException e) {
            assertTrue(e.getMessage() != null && e.getMessage().contains(file.toString()), what + ": the message names no file: " + e);
            assertArrayEquals(before, reader.params().toFloatVector(), what + ": a refused checkpoint changed the student");
            return false;
        } catch (RuntimeException | OutOfMemoryError e) {
            throw new AssertionError(what + ": " + e + " escaped", e);
        }
    }

    static byte[] withCrc(byte[] b) {
        CRC32C crc = new CRC32C();
        crc.update(b, 0, b.length - 4);
        ByteBuffer.wrap(b).putInt(b.length - 4, (int) crc.getValue());
        return b;
    }

    @Test
    void theValidCheckpointRestoresTheStudent(@TempDir Path tmp) throws IOException {
        assertTrue(check(tmp, valid, "the valid file"));
        assertArrayEquals(saved, reader.params().toFloatVector());
    }

    @Test
    void truncatedCheckpointsAreRefused(@TempDir Path tmp) throws IOException {
        Random rnd = new Random(SEED);
        for (int c = 0; c < CASES; c++) {
            int len = c < 64 ? c : rnd.nextInt(valid.length);
            assertTrue(!check(tmp, Arrays.copyOf(valid, len), "seed " + SEED + ": cut to " + len + " bytes"), "cut to " + len);
        }
    }

    @Test
    void changedBytesAreRefusedByTheChecksum(@TempDir Path tmp) throws IOException {
        Random rnd = new Random(SEED);
        for (int c = 0; c < CASES; c++) {
            byte[] b = valid.clone();
            int at = rnd.nextInt(b.length);
            int x = 1 + rnd.nextInt(255);
            b[at] ^= (byte) x;
            assertTrue(!check(tmp, b, "seed " + SEED + ", case " + c + ": byte " + at + " ^= " + x), "byte " + at);
        }
    }

    @Test
    void hostileNumbersWithAValidChecksumAreReadOrRefused(@TempDir Path tmp) throws IOException {
        Random rnd = new Random(SEED);
        long[] extremes = {0, -1, 1, Integer.MAX_VALUE, Integer.MIN_VALUE, 1 << 24, (1 << 24) + 1, 1 << 28, 0x7ffffff7L,
                Long.MAX_VALUE, Long.MIN_VALUE};
        for (int c = 0; c < CASES; c++) {
            byte[] b = valid.clone();
            int width = rnd.nextBoolean() ? 4 : 8;
            int at = rnd.nextInt(b.length - 4 - width);
            long v = extremes[rnd.nextInt(extremes.length)];
            if (width == 4) {
                ByteBuffer.wrap(b).putInt(at, (int) v);
            } else {
                ByteBuffer.wrap(b).putLong(at, v);
            }
            check(tmp, withCrc(b), "seed " + SEED + ", case " + c + ": " + width + " bytes at " + at + " set to " + v);
        }
    }

    /**
     * The student's parameter count set to 2^31 - 9 float64 values (16 GiB) in a file of a few kilobytes, with a valid
     * checksum: refused as a truncated checkpoint, without allocating an array of that size first.
     */
    @Test
    void anArrayLengthBeyondTheFileIsRefusedBeforeAllocating(@TempDir Path tmp) throws IOException {
        long params = saved.length;
        byte[] pattern = ByteBuffer.allocate(10).put((byte) '}').put((byte) 0).putLong(params).array();
        int at = indexOf(valid, pattern);
        assertTrue(at > 0, "the parameter array's header is in the file");
        byte[] b = valid.clone();
        b[at + 1] = 1; // float64
        ByteBuffer.wrap(b).putLong(at + 2, Integer.MAX_VALUE - 8);
        IOException e = assertThrows(IOException.class, () -> {
            try {
                CheckpointFile.read(writeTo(tmp, withCrc(b)), p -> { }, Dl4jStudent.of(reader), List.of());
            } catch (OutOfMemoryError oom) {
                throw new AssertionError("allocated for the length the file declares: " + oom, oom);
            }
        });
        assertTrue(e.getMessage().contains("ends early"), e.getMessage());
        assertEquals(valid.length, b.length);
    }

    /**
     * The student's state refused by the student itself (another state version, a layer count out of range), with a valid
     * checksum: the IOException names the checkpoint file (it said only "student state version 99, expected 1").
     */
    @Test
    void aStudentStateTheStudentRefusesIsNamedByTheFile(@TempDir Path tmp) throws IOException {
        int key = indexOf(valid, "\"backpropType\"".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        int conf = key;
        while (conf > 0 && valid[conf] != '{') { // the configuration's JSON starts at the brace before its first key
            conf--;
        }
        assertTrue(conf > 8 && ByteBuffer.wrap(valid).getInt(conf - 4) > 0, "the student's configuration is in the file");
        byte[] b = valid.clone();
        ByteBuffer.wrap(b).putInt(conf - 8, 99); // the student state's version
        Path file = writeTo(tmp, withCrc(b));
        IOException e = assertThrows(IOException.class, () -> CheckpointFile.read(file, p -> { }, Dl4jStudent.of(reader), List.of()));
        assertTrue(e.getMessage().startsWith(file + ": ") && e.getMessage().contains("student state version 99, expected 1"),
                e.getMessage());
    }

    static Path writeTo(Path dir, byte[] b) throws IOException {
        return Files.write(dir.resolve("long.ckpt"), b);
    }

    static int indexOf(byte[] b, byte[] pattern) {
        outer:
        for (int i = 0; i + pattern.length <= b.length; i++) {
            for (int j = 0; j < pattern.length; j++) {
                if (b[i + j] != pattern[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
