package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link KdKernelSuite} end to end on the CUDA emulator (3 GiB of device memory), with shapes small enough for a CPU and
 * one too large for the device: a lent GPU's few minutes must not be lost to a suite that stops at its first failure,
 * times the L2 cache instead of memory, or reports memory it did not measure.
 */
class KdKernelSuiteEmulatedTest {
    /** The emulator's device reports 50 MiB of L2 cache, as an H100. */
    private static final long L2 = 50L << 20;
    private static final int HUGE = 400_000_000; // 1.6 GB a buffer: the second one does not fit
    private static final int LARGE = 24_000_000; // 96 MB a buffer: a set of three is above the rotation's 256 MiB

    @TempDir
    static Path dir;
    private static EmulatedSuite.Result result;
    private static List<Map<String, String>> rows;

    @BeforeAll
    static void runTheSuite() throws Exception {
        Path csv = dir.resolve("kd-suite.csv");
        result = EmulatedSuite.run(KdKernelSuite.class, Map.of("DISTILL_EMU_MEMORY_MIB", "3072"), "--out", csv.toString(),
                "--rows", "1", "--vocab", "10," + HUGE + "," + LARGE + ",40", "--dtype", "f32", "--iters", "1", "--warmup", "0",
                "--methods", "two-pass,unfused");
        rows = Files.exists(csv) ? read(csv) : List.of();
    }

    @Test
    void aShapeThatFailsIsRecordedInItsRowsAndTheShapesAfterItStillRun() {
        for (String method : List.of("two-pass", "unfused")) {
            String status = row(method, HUGE).get("status");
            assertTrue(status.startsWith("failed: ") && status.contains("CUDA_ERROR_OUT_OF_MEMORY"), status);
            assertEquals("", row(method, HUGE).get("ms_median"));
            for (int v : new int[] {10, LARGE, 40}) {
                Map<String, String> r = row(method, v);
                assertEquals("ok", r.get("status"), r.toString());
                assertTrue(Double.parseDouble(r.get("ms_median")) > 0, r.toString());
            }
        }
        // the exit status still says that something failed, and names how much
        assertNotEquals(0, result.exit(), result.out());
        assertTrue(result.out().contains("2 of 8 rows failed"), result.out());
    }

    @Test
    void smallShapesRotateThroughInputSetsThatTogetherExceedTheL2Cache() {
        // each set's s, t and gradient at 128-byte lines: 10 floats = 40 bytes -> 128; 40 floats = 160 bytes -> 256
        long rotation = Math.max(256L << 20, 4 * L2);
        assertEquals(ceil(rotation, 3 * 128), Long.parseLong(row("two-pass", 10).get("input_sets")));
        assertEquals(ceil(rotation, 3 * 256), Long.parseLong(row("unfused", 40).get("input_sets")));
        // a set larger than the rotation is read cold anyway: one set
        assertEquals(1, Long.parseLong(row("two-pass", LARGE).get("input_sets")));
        assertTrue(result.out().contains("L2 cache 50.0 MiB"), result.out());
    }

    @Test
    void theDeviceMemoryIsMeasuredForOneSetAndTheComputedFigureKeptApart() {
        // the emulator counts device memory as the driver does: what the pool asked (its buckets), one set of inputs
        for (int v : new int[] {10, LARGE, 40}) {
            long nv = v;
            long twoPass = 3 * bucket(4 * nv) + bucket(12);
            assertEquals(twoPass, Long.parseLong(row("two-pass", v).get("device_bytes_measured")), "V " + v);
            long unfused = twoPass + 2 * bucket(4 * nv) + bucket(4 * nv) + bucket(4);
            assertEquals(unfused, Long.parseLong(row("unfused", v).get("device_bytes_measured")), "V " + v);
            assertEquals(3 * 4 * nv + 12, Long.parseLong(row("two-pass", v).get("device_bytes_computed")), "V " + v);
        }
    }

    private static long ceil(long a, long b) {
        return (a + b - 1) / b;
    }

    /** DeviceContext's pool buckets: powers of two from 256 bytes below 1 MiB, multiples of 2 MiB from there. */
    private static long bucket(long bytes) {
        if (bytes >= 1 << 20) {
            return (bytes + (2 << 20) - 1) / (2 << 20) * (2 << 20);
        }
        long b = 256;
        while (b < bytes) {
            b <<= 1;
        }
        return b;
    }

    private static Map<String, String> row(String method, int v) {
        return rows.stream().filter(r -> r.get("method").equals(method) && r.get("vocab").equals(Integer.toString(v))).findFirst()
                .orElseThrow(() -> new AssertionError("no row " + method + " V " + v + "; the suite printed:\n" + result.out()));
    }

    /** The CSV's rows by column name (fields in double quotes may hold commas). */
    static List<Map<String, String>> read(Path csv) throws java.io.IOException {
        List<String> lines = Files.readAllLines(csv, StandardCharsets.UTF_8);
        List<String> header = fields(lines.get(0));
        List<Map<String, String>> out = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            List<String> f = fields(line);
            assertEquals(header.size(), f.size(), "fields of " + line);
            Map<String, String> m = new HashMap<>();
            for (int i = 0; i < f.size(); i++) {
                m.put(header.get(i), f.get(i));
            }
            out.add(m);
        }
        return out;
    }

    private static List<String> fields(String line) {
        List<String> f = new ArrayList<>();
        StringBuilder sb = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quoted) {
                if (c == '"' && i + 1 < line.length() && line.charAt(i + 1) == '"') {
                    sb.append('"');
                    i++;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    sb.append(c);
                }
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                f.add(sb.toString());
                sb.setLength(0);
            } else {
                sb.append(c);
            }
        }
        f.add(sb.toString());
        return f;
    }
}
