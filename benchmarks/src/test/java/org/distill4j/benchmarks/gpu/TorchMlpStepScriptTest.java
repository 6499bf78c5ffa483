package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code benchmarks/gpu/torch_mlp_step.py}, PyTorch's side of the whole-step benchmark, on a stand-in for torch
 * ({@code src/test/resources/fake-torch-mlp}: shapes, 1 ms a step, a loss that goes down) since this machine has neither
 * torch nor a GPU: a configuration that fails must be recorded in its rows without losing the others, also where the
 * failure spoils the CUDA context, and the exit status must say that something failed (as {@code torch_kd.py}'s does).
 */
class TorchMlpStepScriptTest {
    @TempDir
    Path dir;

    private record Run(int exit, String out, List<Map<String, String>> rows) {
    }

    private Run run(Map<String, String> env, String... args) throws Exception {
        assumeTrue(KdSummaryScriptTest.python3(), "no python3 on this machine");
        Path csv = dir.resolve("mlp-step-" + env.hashCode() + ".csv");
        List<String> cmd = new java.util.ArrayList<>(List.of("python3", Path.of("gpu", "torch_mlp_step.py").toString(), "--out",
                csv.toString(), "--iters", "3", "--warmup", "1"));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("PYTHONPATH", Path.of("src", "test", "resources", "fake-torch-mlp").toAbsolutePath().toString());
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "torch_mlp_step.py did not finish");
        return new Run(p.exitValue(), out, java.nio.file.Files.exists(csv) ? KdKernelSuiteEmulatedTest.read(csv) : List.of());
    }

    @Test
    void aConfigurationOutOfMemoryIsRecordedTheOthersRunAndTheExitStatusSaysSo() throws Exception {
        Run r = run(Map.of("FAKE_TORCH_OOM_BATCH", "5"), "--batch", "2,5,3", "--modes", "eager,compile", "--dtype", "f32,bf16");
        assertEquals(1, r.exit(), r.out());
        assertTrue(r.out().contains("4 configuration(s) failed"), r.out());
        assertEquals(12 * 6, r.rows().size(), r.out());
        for (String mode : new String[] {"eager", "compile"}) {
            for (String dt : new String[] {"f32", "bf16"}) {
                for (Map<String, String> row : rows(r, mode, dt, 5)) {
                    assertTrue(row.get("status").startsWith("failed: ") && row.get("status").contains("out of memory"), row.toString());
                    assertEquals("", row.get("value"), row.toString());
                }
                for (int n : new int[] {2, 3}) {
                    for (Map<String, String> row : rows(r, mode, dt, n)) {
                        assertEquals("ok", row.get("status"), row.toString());
                        assertTrue(Double.parseDouble(row.get("value")) > 0, row.toString());
                    }
                    assertEquals(String.format(java.util.Locale.ROOT, "%.1f", n / 1e-3), value(r, mode, dt, n, "samples_per_s"));
                }
            }
        }
    }

    @Test
    void aFailureThatSpoilsTheContextStillLeavesARowForEveryConfiguration() throws Exception {
        Run r = run(Map.of("FAKE_TORCH_FAULT_BATCH", "5"), "--batch", "2,5,3", "--modes", "eager", "--dtype", "f32");
        assertEquals(1, r.exit(), r.out());
        assertEquals(3 * 6, r.rows().size(), r.out());
        assertTrue(rows(r, "eager", "f32", 2).stream().allMatch(x -> x.get("status").equals("ok")), r.rows().toString());
        for (int n : new int[] {5, 3}) {
            for (Map<String, String> row : rows(r, "eager", "f32", n)) {
                assertTrue(row.get("status").startsWith("failed: RuntimeError: CUDA error: an illegal memory access"), row.toString());
            }
        }
        assertTrue(r.out().contains("2 configuration(s) failed"), r.out());
    }

    @Test
    void aTorchWithoutCompileIsUnavailableNotAFailure() throws Exception {
        Run r = run(Map.of("FAKE_TORCH_NO_COMPILE", "1"), "--batch", "2", "--modes", "eager,compile", "--dtype", "f32");
        assertEquals(0, r.exit(), r.out());
        assertEquals("ok", rows(r, "eager", "f32", 2).get(0).get("status"));
        assertTrue(rows(r, "compile", "f32", 2).get(0).get("status").startsWith("unavailable: torch.compile needs torch >= 2.0"), r.out());
    }

    @Test
    void aBadBatchListIsRefusedNamingTheOption() throws Exception {
        for (String bad : new String[] {"128,x", "0", "-4"}) {
            Run r = run(Map.of(), "--batch", bad);
            assertEquals(2, r.exit(), r.out());
            assertTrue(r.out().contains("--batch") && r.out().contains(bad), r.out());
            assertTrue(r.rows().isEmpty(), r.rows().toString());
        }
    }

    private static List<Map<String, String>> rows(Run r, String mode, String dt, int n) {
        List<Map<String, String>> got = r.rows().stream().filter(x -> x.get("mode").equals(mode) && x.get("dtype").equals(dt)
                && x.get("batch").equals(Integer.toString(n))).toList();
        assertEquals(6, got.size(), "rows of " + mode + " " + dt + " " + n + " in\n" + r.out());
        return got;
    }

    private static String value(Run r, String mode, String dt, int n, String metric) {
        return rows(r, mode, dt, n).stream().filter(x -> x.get("metric").equals(metric)).findFirst().orElseThrow().get("value");
    }
}
