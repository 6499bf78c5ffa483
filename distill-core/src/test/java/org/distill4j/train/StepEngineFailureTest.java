package org.distill4j.train;

import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.BadRowException;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.learning.config.Adam;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A step engine's run that fails or is cancelled: the engine's state is written back before it closes, with its steps
 * still pending (the student then holds the engine's last state, as on the DL4J path), and an engine's bad row is
 * reported as the DL4J path reports one, with the epoch, the batch and the training sample.
 */
class StepEngineFailureTest {
    private static final int D = 12;
    private static final int K = 5;
    private static final Dataset TRAIN = DistillerTest.blobs(230, 1, "blobs/train");

    /** Computes nothing; records what the Distiller asks of it; step {@code failAt}'s result (or submit) throws {@code failure}. */
    static final class ScriptedEngine implements StepEngine {
        final List<String> events = new ArrayList<>();
        final List<int[]> samples = new ArrayList<>();
        int failAt = -1;
        boolean failAtSubmit;
        RuntimeException failure;
        RuntimeException syncFailure;
        int submitted;
        int collected;

        @Override
        public String describe() {
            return "scripted";
        }

        @Override
        public LossResult step(Batch batch, LogitLoss loss) {
            return submit(batch, loss).result();
        }

        @Override
        public Pending submit(Batch batch, LogitLoss loss) {
            int mine = submitted;
            if (failAtSubmit && mine == failAt) {
                throw failure;
            }
            submitted++;
            samples.add(batch.indices().clone());
            events.add("submit " + mine);
            return () -> {
                collected++;
                events.add("result " + mine);
                if (!failAtSubmit && mine == failAt) {
                    throw failure;
                }
                return new LossResult(1.0, batch.size(), Map.of());
            };
        }

        @Override
        public void syncToStudent() {
            events.add("sync, " + (submitted - collected) + " pending");
            if (syncFailure != null) {
                throw syncFailure;
            }
        }

        @Override
        public void endEpoch() {
            events.add("endEpoch");
        }

        @Override
        public void close() {
            events.add("close");
        }
    }

    private static Distiller.Builder run(ScriptedEngine engine) {
        StepEngineProvider p = new StepEngineProvider() {
            @Override
            public String name() {
                return "scripted";
            }

            @Override
            public Offer offer(Setup setup) {
                return Offer.of(engine);
            }
        };
        return Distiller.builder().teacher(Dl4jTeacher.of(Nets.logitsMlp(D, 24, K, new Adam(1e-2), 7, 0)))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new SoftTargetKd(3, 0.3))
                .trainData(TRAIN).epochs(3).batchSize(64).seed(5).backend(new CpuBackend()).stepEngines(List.of(p));
    }

    /** A bad row in a pending step's result: the message and the write-back are the DL4J path's. */
    @Test
    void aBadRowOfAPendingStepNamesItsSampleAndTheStateIsWrittenBackBeforeClose() {
        ScriptedEngine e = new ScriptedEngine();
        e.failAt = 5; // epoch 2 (4 batches an epoch), batch 2
        e.failure = new BadRowException("student logit at row ", 3, ", class 1 is NaN");
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> run(e).build().run());
        assertEquals("epoch 2, batch 2 of 4: student logit at row 3, class 1 is NaN; row 3 of this batch is sample "
                + e.samples.get(5)[3] + " of blobs/train", x.getMessage());
        assertSame(e.failure, x.getCause());
        assertEquals(List.of("submit 6", "result 5", "sync, 1 pending", "close"), e.events.subList(e.events.size() - 4, e.events.size()));
    }

    /** An argument error of submit (a label out of range, say) is wrapped with its batch too. */
    @Test
    void aBadRowAtSubmitNamesItsSample() {
        ScriptedEngine e = new ScriptedEngine();
        e.failAt = 2;
        e.failAtSubmit = true;
        e.failure = new BadRowException("label of row ", 0, " is 9, expected a class in [0, 5)");
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> run(e).build().run());
        assertEquals("epoch 1, batch 3 of 4: label of row 0 is 9, expected a class in [0, 5); row 0 of this batch is sample ",
                x.getMessage().substring(0, x.getMessage().lastIndexOf("sample ") + "sample ".length()));
        assertEquals(List.of("submit 0", "submit 1", "result 0"), e.events.subList(e.events.size() - 5, e.events.size() - 2));
        assertEquals(List.of("sync, 1 pending", "close"), e.events.subList(e.events.size() - 2, e.events.size()));
    }

    /** A cancelled run writes back (its pending step included) before it closes; a failing write-back is suppressed. */
    @Test
    void aCancelledRunWritesBackBeforeItClosesAndKeepsItsOwnError() {
        ScriptedEngine e = new ScriptedEngine();
        TrainingListener stop = new TrainingListener() {
            @Override
            public void batchFinished(int epoch, int batch, int batches, long samplesDone, long nanos, double loss) {
                if (epoch == 1 && batch == 0) {
                    Thread.currentThread().interrupt();
                    e.syncFailure = new IllegalStateException("device lost");
                }
            }
        };
        CancellationException x;
        try {
            x = assertThrows(CancellationException.class, () -> run(e).listener(stop).build().run());
        } finally {
            Thread.interrupted();
        }
        assertEquals(List.of(e.syncFailure), List.of(x.getSuppressed()));
        assertEquals(List.of("submit 5", "result 4", "sync, 1 pending", "close"), e.events.subList(e.events.size() - 4, e.events.size()));
    }
}
