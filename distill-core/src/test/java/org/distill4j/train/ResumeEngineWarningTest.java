package org.distill4j.train;

import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Dataset;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.learning.config.Adam;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The warning a resume gives when its steps run on something other than its checkpoint's: not for a DL4J run resumed on
 * the DL4J path whose description differs only in why (asked for by name, a provider's reason, no provider at all), whose
 * numbers are the same bit for bit; still for a resume that moves between an engine and the DL4J path.
 */
class ResumeEngineWarningTest {
    private static final int D = 12;
    private static final int K = 5;
    private static final Dataset TRAIN = DistillerTest.blobs(230, 1, "blobs/train");
    private static final String WARNING = "the numbers will not match an uninterrupted run bit for bit";

    @Test
    void numbersOfTheDl4jPathDoNotDependOnWhyItWasTaken() {
        for (String d : new String[] {"dl4j", "dl4j (asked for by -Ddistill.engine=dl4j)",
                "dl4j (cuda-mlp: the compute backend is 'cpu', not cuda)", "dl4j (feature losses run on the DL4J path)"}) {
            assertEquals("dl4j", StepEngines.numbersOf(d), d);
        }
        String gpu = "cuda-mlp f32 graphs fused epilogues on NVIDIA H100 80GB HBM3 (sm_90)";
        assertEquals(gpu, StepEngines.numbersOf(gpu));
        assertNotEquals(StepEngines.numbersOf(gpu), StepEngines.numbersOf("cuda-mlp bf16 graphs on NVIDIA H100 80GB HBM3 (sm_90)"));
        assertEquals("dl4jx on the CPU", StepEngines.numbersOf("dl4jx on the CPU"), "an engine whose name starts with dl4j");
    }

    private static Distiller.Builder run(Checkpoints c, List<StepEngineProvider> providers, String engine) {
        Distiller.Builder b = Distiller.builder().teacher(Dl4jTeacher.of(Nets.logitsMlp(D, 24, K, new Adam(1e-2), 7, 0)))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new SoftTargetKd(3, 0.3))
                .trainData(TRAIN).epochs(2).batchSize(64).seed(5).backend(new CpuBackend()).checkpoints(c).stepEngines(providers);
        return engine == null ? b : b.engine(engine);
    }

    private static StepEngineProvider declining() {
        return new StepEngineProvider() {
            @Override
            public String name() {
                return "gpu-like";
            }

            @Override
            public Offer offer(Setup setup) {
                return Offer.decline("no device here");
            }
        };
    }

    /** What {@code r} logged (slf4j-simple writes to the System.err of the moment). */
    private static String logOf(Runnable r) {
        PrintStream err = System.err;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        System.setErr(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            r.run();
        } finally {
            System.setErr(err);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /** Crashed as "dl4j (asked for by ...)", resumed as "dl4j (gpu-like: no device here)" and as "dl4j": no warning. */
    @Test
    void aDl4jRunResumedOnTheDl4jPathDoesNotWarn(@TempDir Path tmp) {
        for (List<StepEngineProvider> onResume : List.of(List.of(declining()), List.<StepEngineProvider>of())) {
            Checkpoints c = Checkpoints.in(tmp.resolve("run" + onResume.size())).everySteps(2);
            assertThrows(DistillerCheckpointTest.Crash.class, () -> run(c, List.of(declining()), "dl4j")
                    .listener(DistillerCheckpointTest.crashAfter(0, 2)).build().run());
            String log = logOf(() -> run(c, onResume, null).build().run());
            assertTrue(log.contains("resumed from"), log);
            assertFalse(log.contains(WARNING), log);
        }
    }

    /** Crashed on an engine, resumed on the DL4J path: the warning, naming both. */
    @Test
    void aResumeOnAnotherEngineWarns(@TempDir Path tmp) {
        StepEngineProvider scripted = new StepEngineProvider() {
            @Override
            public String name() {
                return "scripted";
            }

            @Override
            public Offer offer(Setup setup) {
                return Offer.of(new StepEngineFailureTest.ScriptedEngine());
            }
        };
        Checkpoints c = Checkpoints.in(tmp).everySteps(2);
        assertThrows(DistillerCheckpointTest.Crash.class, () -> run(c, List.of(scripted), null)
                .listener(DistillerCheckpointTest.crashAfter(0, 2)).build().run());
        String log = logOf(() -> run(c, List.of(), null).build().run());
        assertTrue(log.contains("resuming a run whose steps ran on scripted with dl4j: " + WARNING), log);
    }
}
