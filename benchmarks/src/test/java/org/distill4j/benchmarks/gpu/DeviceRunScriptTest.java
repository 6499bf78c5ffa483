package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code benchmarks/gpu/device-run.sh suite} with a stand-in bundle: its "java" writes what KdKernelSuite writes when a row
 * failed (the copy row, a failed row, an ok row) and exits 1, as the suite does; torch runs on the stand-in of
 * TorchKdScriptTest. PyTorch eager and the summary must still run on those rows, and the stage must exit non-zero.
 */
class DeviceRunScriptTest {
    @TempDir
    Path dir;

    @Test
    void aSuiteWithFailedRowsStillGetsPyTorchAndTheSummaryAndTheStageExitsNonZero() throws Exception {
        assumeTrue(KdSummaryScriptTest.python3(), "no python3 on this machine");
        String java = """
                #!/usr/bin/env bash
                if [ "${1:-}" = "-version" ]; then echo 'stand-in java'; exit 0; fi
                while [ "$#" -gt 0 ] && [ "$1" != "--out" ]; do shift; done
                cat > "$2" <<'CSV'
                %s
                copy,-,-,-,-,-,-,3000.00,1,-,2147483648,1,ok
                fused,f32,64,1000,,,,,,,768012,,"failed: org.distill4j.cuda.CudaException: cuLaunchKernel failed, no luck"
                two-pass,f32,64,1000,0.1000,0.0900,0.1100,7.68,0.003,786432,768012,350,ok
                CSV
                echo "1 of 2 rows failed" >&2
                exit 1
                """.formatted(KdKernelSuite.HEADER);
        Path root = staged("repo", java);
        Path out = dir.resolve("out");
        ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("benchmarks/gpu/device-run.sh").toString(), "suite", "--rows", "64",
                "--vocab", "1000", "--dtype", "f32", "--iters", "1", "--warmup", "0", "--methods", "fused,two-pass").redirectErrorStream(true);
        pb.environment().put("OUT", out.toString());
        pb.environment().put("TMPDIR", dir.toString());
        pb.environment().put("PYTHONPATH", Path.of("src", "test", "resources", "fake-torch").toAbsolutePath().toString());
        Process p = pb.start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "device-run.sh did not finish");

        assertEquals(1, p.exitValue(), log);
        List<Map<String, String>> rows = KdKernelSuiteEmulatedTest.read(out.resolve("kd-suite.csv"));
        assertTrue(rows.stream().anyMatch(r -> r.get("method").equals("torch-eager") && r.get("status").equals("ok")), log);
        String summary = Files.readString(out.resolve("kd-summary.md"), StandardCharsets.UTF_8);
        assertTrue(summary.contains("| f32 | 64 | 1000 | failed |") && summary.contains("fused f32 64 x 1000: failed: "), summary);
        assertTrue(log.contains("KdKernelSuite failed or recorded failed rows"), log);
    }

    @Test
    void allExitsNonZeroWhenAStageFailedAndStillRunsTheStagesAfterIt() throws Exception {
        // a stand-in java that fails every stage: the tests, the suite (no rows), the sweep and host
        Path root = staged("repo-all", """
                #!/usr/bin/env bash
                if [ "${1:-}" = "-version" ]; then echo 'stand-in java'; exit 0; fi
                echo "stand-in java: no device" >&2
                exit 1
                """);
        Files.createDirectories(root.resolve("distill-cuda"));
        Path out = dir.resolve("out-all");
        ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("benchmarks/gpu/device-run.sh").toString(), "all").redirectErrorStream(true);
        pb.environment().put("OUT", out.toString());
        pb.environment().put("TMPDIR", dir.toString());
        pb.environment().put("PYTHONPATH", Path.of("src", "test", "resources", "fake-torch").toAbsolutePath().toString());
        Process p = pb.start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "device-run.sh did not finish");

        for (String stage : new String[] {"suite", "sweep", "host"}) {
            assertTrue(log.contains("== " + stage + ": exit 1"), log);
        }
        assertEquals(1, p.exitValue(), log);
        assertTrue(log.contains("device-run all: stages that failed: tests suite sweep host"), log);
    }

    /**
     * A copy of the scripts' folder at {@code dir/<name>} with a bundle whose java is the stand-in {@code java} (a bash
     * script): device-run.sh reads the bundle from the repository's .device, so the stand-in goes beside a copy of it.
     */
    private Path staged(String name, String java) throws Exception {
        Path repo = Path.of("..").toAbsolutePath().normalize();
        Path bundle = dir.resolve("bundle-" + name);
        Path bin = bundle.resolve("jre").resolve("bin");
        Files.createDirectories(bin);
        Files.writeString(bin.resolve("java"), java, StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(bin.resolve("java"), PosixFilePermissions.fromString("rwxr-xr-x"));
        Path root = dir.resolve(name);
        Files.createDirectories(root.resolve("benchmarks").resolve("gpu"));
        for (String f : new String[] {"device-run.sh", "torch_kd.py", "kd_summary.py"}) {
            Files.copy(repo.resolve("benchmarks/gpu").resolve(f), root.resolve("benchmarks/gpu").resolve(f));
        }
        Files.createDirectories(root.resolve(".device").resolve("lib"));
        Process tar = new ProcessBuilder("tar", "czf", root.resolve(".device/jre.tgz").toString(), "-C", bundle.toString(), "jre")
                .inheritIO().start();
        assertTrue(tar.waitFor(60, TimeUnit.SECONDS) && tar.exitValue() == 0, "tar");
        return root;
    }
}
