package org.distill4j.train;

import org.distill4j.backend.CpuBackend;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.learning.config.Adam;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A provider's malformed setting fails the run, under {@code auto} too, where any other error of a provider's offer is a
 * decline: a typo in an engine's option must not quietly move the run to another engine.
 */
class StepEngineSettingTest {

    private static StepEngineProvider throwing(RuntimeException e) {
        return new StepEngineProvider() {
            @Override
            public String name() {
                return "gpu-like";
            }

            @Override
            public Offer offer(Setup setup) {
                throw e;
            }
        };
    }

    private static StepEngineProvider.Setup setup() {
        return new StepEngineProvider.Setup(null, Dl4jStudent.of(Nets.logitsMlp(4, 8, 3, new Adam(1e-3), 1, 0)), new SoftTargetKd(2, 0.5),
                new CpuBackend(), 16, List.of(), 1);
    }

    @Test
    void aMalformedSettingFailsTheRunUnderAutoAndByName() {
        StepEngineProvider.InvalidSettingException bad = new StepEngineProvider.InvalidSettingException("gpu.like.precision", "bf61",
                "f32 or bf16");
        assertEquals("gpu.like.precision is 'bf61'; expected f32 or bf16", bad.getMessage());
        assertEquals(List.of("gpu.like.precision", "bf61", "f32 or bf16"), List.of(bad.setting(), bad.value(), bad.expected()));
        for (String requested : new String[] {"auto", "gpu-like"}) {
            StepEngineProvider.InvalidSettingException e = assertThrows(StepEngineProvider.InvalidSettingException.class,
                    () -> StepEngines.choose(List.of(throwing(bad)), setup(), requested, "test"), requested);
            assertSame(bad, e, requested);
        }
    }

    @Test
    void anyOtherErrorOfAnOfferIsADecline() {
        StepEngines.Choice c = StepEngines.choose(List.of(throwing(new IllegalArgumentException("no such thing"))), setup(), "auto", "test");
        assertNull(c.engine());
        assertEquals("dl4j (gpu-like: failed: java.lang.IllegalArgumentException: no such thing)", c.description());
    }
}
