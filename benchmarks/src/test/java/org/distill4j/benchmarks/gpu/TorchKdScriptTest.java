package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code benchmarks/gpu/torch_kd.py}, PyTorch eager beside the suite, run here on a stand-in for torch
 * ({@code src/test/resources/fake-torch}: sizes and counted device memory, no arithmetic) since this machine has neither
 * torch nor a GPU: its rows must have the suite's columns, the memory must be measured for one set of inputs, small
 * shapes must rotate past the L2 cache, and one shape that fails must not lose the others.
 */
class TorchKdScriptTest {
    @TempDir
    Path dir;

    @Test
    void everyShapeGetsItsRowAFailureSaysWhyAndTheExitStatusSaysSomethingFailed() throws Exception {
        assumeTrue(KdSummaryScriptTest.python3(), "no python3 on this machine");
        Path csv = dir.resolve("kd-suite.csv");
        // 64 x 10^7 classes do not fit; a kernel error at 64 x 37
        String out = runScript(csv, "1000,10000000,37,2000", "f32,bf16", Map.of("FAKE_TORCH_MEMORY", Long.toString(1L << 30),
                "FAKE_TORCH_FAIL_VOCAB", "37"));
        assertTrue(out.contains("4 row(s) failed"), out);

        List<Map<String, String>> rows = KdKernelSuiteEmulatedTest.read(csv);
        assertEquals(1 + 8, rows.size(), out); // the copy row kept, then every shape
        long rotation = Math.max(256L << 20, 4 * (50L << 20)); // the stand-in's device has 50 MiB of L2
        for (String dt : new String[] {"f32", "bf16"}) {
            int elem = dt.equals("f32") ? 4 : 2;
            for (int v : new int[] {1000, 2000}) {
                Map<String, String> r = find(rows, dt, v, out);
                assertEquals("ok", r.get("status"), r.toString());
                long tensor = 64L * v * elem; // a multiple of 128: a set is s, t and the gradient
                assertEquals(3 * tensor, Long.parseLong(r.get("device_bytes_measured")), r.toString());
                assertEquals((rotation + 3 * tensor - 1) / (3 * tensor), Long.parseLong(r.get("input_sets")), r.toString());
                assertEquals("1.0000", r.get("ms_median"), r.toString());
            }
            assertEquals("failed: out of memory", find(rows, dt, 10_000_000, out).get("status"));
            String error = find(rows, dt, 37, out).get("status");
            assertTrue(error.startsWith("failed: RuntimeError: CUDA error: an illegal memory access"), error);
            assertEquals("", find(rows, dt, 37, out).get("ms_median"));
        }
    }

    /**
     * An illegal memory access spoils a CUDA context: every later call raises it, the allocator's cache-emptying included.
     * The shapes after it fail with that reason, each in its row, and the script ends with its exit status, not a traceback.
     */
    @Test
    void aSpoiledContextFailsTheLaterShapesInTheirRows() throws Exception {
        assumeTrue(KdSummaryScriptTest.python3(), "no python3 on this machine");
        Path csv = dir.resolve("kd-suite.csv");
        String out = runScript(csv, "1000,37,2000", "f32", Map.of("FAKE_TORCH_FAIL_VOCAB", "37", "FAKE_TORCH_STICKY", "1"));
        assertTrue(!out.contains("Traceback"), out);
        List<Map<String, String>> rows = KdKernelSuiteEmulatedTest.read(csv);
        assertEquals(1 + 3, rows.size(), out);
        assertEquals("ok", find(rows, "f32", 1000, out).get("status"));
        assertTrue(find(rows, "f32", 37, out).get("status").startsWith("failed: RuntimeError: CUDA error: an illegal memory access"));
        assertTrue(find(rows, "f32", 2000, out).get("status").contains("sticky, since rows of 37"), find(rows, "f32", 2000, out).toString());
    }

    /**
     * torch_kd.py on the stand-in torch, appending to {@code csv} (a suite's header and copy row first) at 64 rows and the
     * given vocabularies and dtypes, with the stand-in's settings in {@code env}; asserts it exits 1 (a row failed) and
     * returns what it printed.
     */
    private static String runScript(Path csv, String vocab, String dtype, Map<String, String> env) throws Exception {
        Files.writeString(csv, KdKernelSuite.HEADER + "\ncopy,-,-,-,-,-,-,3000.00,1,-,2147483648,1,ok\n", StandardCharsets.UTF_8);
        ProcessBuilder pb = new ProcessBuilder("python3", Path.of("gpu", "torch_kd.py").toString(), "--out", csv.toString(),
                "--copy-gbps", "3000", "--rows", "64", "--vocab", vocab, "--dtype", dtype, "--iters", "3",
                "--warmup", "1", "--methods", "fused").redirectErrorStream(true);
        pb.environment().put("PYTHONPATH", Path.of("src", "test", "resources", "fake-torch").toAbsolutePath().toString());
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "torch_kd.py did not finish");
        assertEquals(1, p.exitValue(), out);
        return out;
    }

    private static Map<String, String> find(List<Map<String, String>> rows, String dt, int v, String out) {
        return rows.stream().filter(r -> r.get("method").equals("torch-eager") && r.get("dtype").equals(dt)
                && r.get("vocab").equals(Integer.toString(v))).findFirst().orElseThrow(() -> new AssertionError("no row " + dt + " V " + v
                + " in\n" + out));
    }
}
