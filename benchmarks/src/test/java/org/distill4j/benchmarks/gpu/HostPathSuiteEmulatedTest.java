package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link HostPathSuite} end to end on the CUDA emulator with 64 MiB of device memory: a shape whose one row does not fit
 * the device (8 million classes, 32 MB a buffer, s, t and the gradient on the device at once) fails on the GPU, and the
 * rows before and after it, the CPU backend's at that shape included, must still be measured and written.
 */
class HostPathSuiteEmulatedTest {
    private static final int HUGE = 8_000_000;

    @TempDir
    static Path dir;
    private static EmulatedSuite.Result result;
    private static List<Map<String, String>> rows;

    @BeforeAll
    static void runTheSuite() throws Exception {
        Path csv = dir.resolve("host-path.csv");
        result = EmulatedSuite.run(HostPathSuite.class, Map.of("DISTILL_EMU_MEMORY_MIB", "64"), "--out", csv.toString(), "--rows", "3",
                "--vocab", "10," + HUGE / 3 * 3 + ",37", "--iters", "2", "--warmup", "0", "--methods", "cuda-backend,cpu-backend");
        rows = Files.exists(csv) ? KdKernelSuiteEmulatedTest.read(csv) : List.of();
    }

    @Test
    void aShapeThatFailsIsRecordedInItsRowAndTheRowsAfterItStillRun() {
        Map<String, String> huge = row("cuda-backend", HUGE / 3 * 3);
        assertTrue(huge.get("status").startsWith("failed: ") && huge.get("status").contains("OUT_OF_MEMORY"), huge.toString());
        assertEquals("", huge.get("ms_median"), huge.toString());
        assertEquals("", huge.get("host_gb_per_s"), huge.toString());
        for (int v : new int[] {10, HUGE / 3 * 3, 37}) {
            Map<String, String> cpu = row("cpu-backend", v);
            assertEquals("ok", cpu.get("status"), cpu.toString());
            assertTrue(Double.parseDouble(cpu.get("ms_median")) > 0, cpu.toString());
            assertEquals("", cpu.get("host_gb_per_s"), cpu.toString());
        }
        for (int v : new int[] {10, 37}) {
            Map<String, String> gpu = row("cuda-backend", v);
            assertEquals("ok", gpu.get("status"), gpu.toString());
            assertTrue(Double.parseDouble(gpu.get("ms_median")) > 0, gpu.toString());
            // 3 N V fp32 bytes over the median, to the CSV's 2 decimals
            double gbps = 3.0 * 3 * v * 4 / (Double.parseDouble(gpu.get("ms_median")) * 1e-3) / 1e9;
            assertEquals(String.format(java.util.Locale.ROOT, "%.2f", gbps), gpu.get("host_gb_per_s"), gpu.toString());
        }
        assertEquals(6, rows.size(), result.out());
        // the exit status still says that something failed, and how much
        assertNotEquals(0, result.exit(), result.out());
        assertTrue(result.out().contains("1 of 6 rows failed"), result.out());
    }

    @Test
    void aShapeLargerThanAJavaArrayIsARowThatSaysSo() throws Exception {
        Path csv = dir.resolve("too-large.csv");
        EmulatedSuite.Result r = EmulatedSuite.run(HostPathSuite.class, Map.of(), "--out", csv.toString(), "--rows", "65536", "--vocab",
                "65536,5", "--iters", "1", "--warmup", "0", "--methods", "cpu-backend");
        assertEquals(0, r.exit(), r.out());
        List<Map<String, String>> got = KdKernelSuiteEmulatedTest.read(csv);
        assertEquals(2, got.size(), r.out());
        assertTrue(got.get(0).get("status").startsWith("skipped: 65536 x 65536 values are more than a Java array holds"), got.toString());
        assertEquals("ok", got.get(1).get("status"), got.toString());
    }

    private static Map<String, String> row(String method, int v) {
        return rows.stream().filter(r -> r.get("method").equals(method) && r.get("vocab").equals(Integer.toString(v))).findFirst()
                .orElseThrow(() -> new AssertionError("no row " + method + " V " + v + "; the suite printed:\n" + result.out()));
    }
}
