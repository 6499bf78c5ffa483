package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link MlpStepSuite} end to end on the CUDA emulator (256 MiB of device memory), batches of 2 and 3 and one of 100,000
 * rows that does not fit: the configurations that fail must say so in their rows and in the exit status, the others must
 * still run, every row must be on disk as soon as it is measured (a lent GPU's call ends at its time limit), and the
 * device memory must be measured, not computed.
 */
class MlpStepSuiteEmulatedTest {
    private static final String TORCH_ROW = "mlp-step,torch,eager,f32,2,ms_median,1.0000,ms,ok,fake,0.0,\"python3 torch_mlp_step.py\"";
    private static final List<String> MODES = List.of("f32 fused", "f32 kernels", "bf16 kernels", "f32 fused+graph", "bf16 kernels+graph");

    @TempDir
    static Path dir;
    private static EmulatedSuite.Result result;
    private static List<Map<String, String>> rows;

    @BeforeAll
    static void runTheSuite() throws Exception {
        Path csv = dir.resolve("mlp-step.csv");
        // rows already in the file (another script's) are kept
        Files.writeString(csv, "suite,impl,mode,dtype,batch,metric,value,unit,status,device,torch,command\n" + TORCH_ROW + "\n");
        result = EmulatedSuite.run(MlpStepSuite.class, Map.of("DISTILL_EMU_MEMORY_MIB", "256"), "--out", csv.toString(), "--batch",
                "2,100000,3", "--iters", "2", "--warmup", "1");
        rows = Files.exists(csv) ? KdKernelSuiteEmulatedTest.read(csv) : List.of();
    }

    @Test
    void aConfigurationThatFailsIsRecordedAndTheExitStatusSaysSo() {
        assertEquals("torch", rows.get(0).get("impl"), rows.toString());
        for (String m : MODES) {
            String dtype = m.substring(0, m.indexOf(' '));
            String mode = m.substring(m.indexOf(' ') + 1);
            List<Map<String, String>> huge = rows(dtype, mode, 100_000);
            assertEquals(1, huge.size(), huge.toString());
            String status = huge.get(0).get("status");
            assertTrue(status.startsWith("failed: ") && status.contains("CUDA_ERROR_OUT_OF_MEMORY"), status);
            assertEquals("", huge.get(0).get("value"), huge.toString());
            for (int n : new int[] {2, 3}) {
                List<Map<String, String>> ok = rows(dtype, mode, n);
                assertEquals(List.of("ms_median", "ms_min", "ms_max", "samples_per_s", "full_step_ms", "loop_step_ms", "device_bytes_measured",
                        "device_bytes_computed"), ok.stream().map(r -> r.get("metric")).toList(), ok.toString());
                for (Map<String, String> r : ok) {
                    assertTrue(r.get("status").startsWith("ok"), r.toString());
                    assertTrue(Double.parseDouble(r.get("value")) > 0, r.toString());
                }
            }
        }
        assertNotEquals(0, result.exit(), result.out());
        assertTrue(result.out().contains("5 of 15 configurations failed"), result.out());
    }

    @Test
    void theDeviceMemoryIsMeasuredFromTheDriver() {
        for (String m : MODES) {
            String dtype = m.substring(0, m.indexOf(' '));
            String mode = m.substring(m.indexOf(' ') + 1);
            for (int n : new int[] {2, 3}) {
                long measured = value(dtype, mode, n, "device_bytes_measured");
                long computed = value(dtype, mode, n, "device_bytes_computed");
                // the engine's buffers plus what the computed figure leaves out: cuBLASLt's 32 MiB workspace, the pool's
                // rounding of each buffer up to its bucket
                assertTrue(measured >= computed + (32L << 20), m + " " + n + ": measured " + measured + ", computed " + computed);
                assertTrue(measured <= computed + (96L << 20), m + " " + n + ": measured " + measured + ", computed " + computed);
            }
        }
    }

    @Test
    void rowsAreOnDiskAsSoonAsTheyAreMeasured() throws Exception {
        Path lib = EmulatedSuite.emulatorLib();
        assumeTrue(Files.exists(lib.resolve("libcuda.so.1")), "no CUDA emulator at " + lib);
        Path csv = dir.resolve("killed.csv");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xss4m",
                "-Dorg.bytedeco.javacpp.platform.linkpath=" + lib,
                "-Dorg.bytedeco.javacpp.cachedir=" + Path.of("target", "cuda-emu-javacpp-cache").toAbsolutePath(),
                "-cp", System.getProperty("java.class.path"), MlpStepSuite.class.getName(), "--out", csv.toString(), "--batch", "2",
                "--iters", "1", "--warmup", "0"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("LD_LIBRARY_PATH", lib.toString());
        pb.environment().put("OMP_NUM_THREADS", "1");
        Process p = pb.start();
        StringBuilder seen = new StringBuilder();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                seen.append(line).append('\n');
                if (line.startsWith("f32 fused ")) {
                    break; // the first configuration's table line: the run is now stopped, as a time limit stops it
                }
            }
        } finally {
            p.destroyForcibly();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        }
        assertTrue(seen.toString().contains("f32 fused "), seen.toString());
        assertTrue(Files.exists(csv), "nothing written by a run stopped after its first configuration:\n" + seen);
        List<Map<String, String>> got = KdKernelSuiteEmulatedTest.read(csv);
        assertEquals(8, got.size(), got.toString());
        assertTrue(got.stream().allMatch(r -> r.get("dtype").equals("f32") && r.get("mode").equals("fused") && r.get("status").startsWith("ok")),
                got.toString());
    }

    private static List<Map<String, String>> rows(String dtype, String mode, int n) {
        return rows.stream().filter(r -> r.get("impl").equals("distill4j") && r.get("dtype").equals(dtype) && r.get("mode").equals(mode)
                && r.get("batch").equals(Integer.toString(n))).toList();
    }

    private static long value(String dtype, String mode, int n, String metric) {
        return Long.parseLong(rows(dtype, mode, n).stream().filter(r -> r.get("metric").equals(metric)).findFirst()
                .orElseThrow(() -> new AssertionError("no " + metric + " for " + dtype + " " + mode + " " + n + "; the suite printed:\n"
                        + result.out())).get("value"));
    }
}
