package org.distill4j.store;

import org.distill4j.data.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Damaged JSON Lines imports ({@link StoreImport#topK(Path, Dataset, Path, StoreImport.Options, java.util.function.LongConsumer)}),
 * from a valid file of both record shapes: truncated at every length, bytes changed at random (invalid UTF-8, control
 * characters, newlines among them), JSON text inserted and deleted (deep nesting, huge numbers, NaN and Infinity
 * spellings, escapes). Each import either writes a store that reads back (the rows written, when the change hit no
 * value) or is refused with an exception naming the file, leaving no {@code .partial} behind; nothing else escapes, and
 * none takes long. Seed: {@code -Ddistill.fuzz.seed}; cases: {@code -Ddistill.fuzz.cases}.
 */
class JsonlFuzzTest {
    static final long SEED = Long.getLong("distill.fuzz.seed", 20261122L);
    static final int CASES = Integer.getInteger("distill.fuzz.cases", 150);
    static final int ROWS = 6;
    static final int V = 7;

    static Dataset data() {
        Random rng = new Random(3);
        float[] x = new float[ROWS * 2];
        int[] y = new int[ROWS];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        for (int i = 0; i < ROWS; i++) {
            y[i] = i % V;
        }
        return new Dataset("jsonl-fuzz", x, 2, y, V);
    }

    static String valid() {
        return "{\"ids\": [3, 1], \"logprobs\": [-0.25, -1.75], \"row\": 0}\n"
                + "{\"top_logprobs\": [{\"id\": 4, \"logprob\": -0.5}, {\"token\": \"token_id:6\", \"logprob\": -2.0}]}\n"
                + "\n"
                + "{\"ids\": [0, 2], \"logprobs\": [-1e-1, -3E0], \"text\": \"caf\\u00e9 \u00e9\"}\r\n"
                + "{\"ids\": [5, 6], \"logprobs\": [-0.125, -Infinity]}\n"
                + "{\"top_logprobs\": [{\"id\": 2.0, \"logprob\": -0.75, \"bytes\": [1, 2]}, {\"id\": 1, \"logprob\": -1.0}]}\n"
                + "{\"ids\": [6, 0], \"logprobs\": [-0.0625, -4.5], \"meta\": {\"a\": [null, true, false, {}]}}\n";
    }

    enum Outcome { SAME, OTHER, REFUSED }

    static SoftTargetStore.TopKRows rows(Path store) throws IOException {
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            return s.topK(StoreFuzzTest.all(ROWS));
        }
    }

    static Outcome check(Path dir, byte[] bytes, SoftTargetStore.TopKRows expected, String what) throws IOException {
        Path file = dir.resolve("in.jsonl");
        Path out = dir.resolve("out.d4j");
        Files.deleteIfExists(out);
        Files.write(file, bytes);
        Dataset data = data();
        StoreImport.Options o = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(4).withTeacherId("fuzz");
        try {
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> StoreImport.topK(file, data, out, o, null), what);
        } catch (IllegalArgumentException | StoreFormatException e) {
            return refused(file, out, e, what);
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            throw new AssertionError(what + ": " + e + " escaped", e);
        } catch (Exception e) { // thrown on as it is by assertTimeoutPreemptively
            if (e instanceof IOException) {
                return refused(file, out, e, what);
            }
            throw new AssertionError(what + ": " + e + " escaped", e);
        }
        SoftTargetStore.TopKRows got = rows(out);
        if (expected != null && Arrays.equals(expected.ids(), got.ids()) && Arrays.equals(expected.logProbs(), got.logProbs())) {
            return Outcome.SAME;
        }
        return Outcome.OTHER;
    }

    static Outcome refused(Path file, Path out, Exception e, String what) {
        assertTrue(e.getMessage() != null && e.getMessage().contains(file.toString()), what + ": the message names no file: " + e);
        assertFalse(Files.exists(StoreWriter.partialPath(out)), what + ": a refused import left a .partial");
        assertFalse(Files.exists(out), what + ": a refused import left a store");
        return Outcome.REFUSED;
    }

    static SoftTargetStore.TopKRows reference(Path dir) throws IOException {
        assertTrue(check(dir, valid().getBytes(StandardCharsets.UTF_8), null, "the valid file") == Outcome.OTHER);
        SoftTargetStore.TopKRows r = rows(dir.resolve("out.d4j"));
        assertArrayEquals(new int[]{3, 1, 4, 6, 0, 2, 5, 6, 2, 1, 6, 0}, r.ids());
        return r;
    }

    @Test
    void everyTruncationIsReadOrRefused(@TempDir Path tmp) throws IOException {
        SoftTargetStore.TopKRows ref = reference(tmp);
        byte[] valid = valid().getBytes(StandardCharsets.UTF_8);
        for (int len = 0; len < valid.length; len++) {
            Outcome o = check(tmp, Arrays.copyOf(valid, len), ref, "cut to " + len + " bytes");
            // the last line without its closing brace is refused; only its newline (or \r\n) may go
            assertTrue(o == Outcome.REFUSED || len >= valid.length - 1, "cut to " + len + " bytes: " + o);
        }
    }

    @Test
    void randomByteChangesAreReadOrRefused(@TempDir Path tmp) throws IOException {
        SoftTargetStore.TopKRows ref = reference(tmp);
        byte[] valid = valid().getBytes(StandardCharsets.UTF_8);
        Random rnd = new Random(SEED);
        byte[] special = {0, '\n', '\r', '\t', '\f', 0x7f, (byte) 0x80, (byte) 0xbf, (byte) 0xc0, (byte) 0xc3, (byte) 0xe2, (byte) 0xed,
                (byte) 0xf0, (byte) 0xf8, (byte) 0xff, '"', '\\', ',', '[', ']', '{', '}', '-', '.', 'e', '0', '9'};
        for (int c = 0; c < CASES; c++) {
            byte[] b = valid.clone();
            StringBuilder what = new StringBuilder("seed " + SEED + ", case " + c + ":");
            for (int j = 1 + rnd.nextInt(3); j > 0; j--) {
                int at = rnd.nextInt(b.length);
                b[at] = rnd.nextBoolean() ? special[rnd.nextInt(special.length)] : (byte) rnd.nextInt(256);
                what.append(" byte ").append(at).append(" = ").append(b[at] & 0xff);
            }
            check(tmp, b, ref, what.toString());
        }
    }

    @Test
    void editedTextIsReadOrRefused(@TempDir Path tmp) throws IOException {
        SoftTargetStore.TopKRows ref = reference(tmp);
        Random rnd = new Random(SEED);
        String deep = "[".repeat(5000) + "]".repeat(5000);
        String[] inserts = {"NaN", "-NaN", "Infinity", "+Infinity", "-Infinity", "inf", "nan", "1e999999999", "-1e-999999999",
                "9".repeat(400), "0." + "0".repeat(400) + "1", "-0", "1.", ".5", "01", "2147483648", "-2147483649", "4294967299",
                "1e19", "3.0000000000000001", "\"token_id:99999999999\"", "\"token_id:-1\"", "\"\\ud800\"", "\"\\u0000\"", "\"\\x41\"",
                deep, "{\"a\":" + deep + "}", "{\"row\": 1}", "\"row\": 2, ", "\"ids\": [1], ", "\"logprobs\": [], ", "null", "true",
                "{}", "[]", ",", ":", "\"", "\\", "\u2028", "\uFEFF", "\u00e9", "\uD83D\uDE00", "\n", "\r", "\t", " ", "\0", "\u0085"};
        String valid = valid();
        for (int c = 0; c < CASES; c++) {
            StringBuilder s = new StringBuilder(valid);
            for (int j = 1 + rnd.nextInt(2); j > 0; j--) {
                int at = rnd.nextInt(s.length() + 1);
                if (rnd.nextInt(3) == 0 && at < s.length()) {
                    s.delete(at, Math.min(s.length(), at + 1 + rnd.nextInt(6)));
                } else {
                    s.insert(at, inserts[rnd.nextInt(inserts.length)]);
                }
            }
            check(tmp, s.toString().getBytes(StandardCharsets.UTF_8), ref, "seed " + SEED + ", case " + c + ": "
                    + (s.length() > 600 ? s.substring(0, 600) + "..." : s));
        }
    }
}
