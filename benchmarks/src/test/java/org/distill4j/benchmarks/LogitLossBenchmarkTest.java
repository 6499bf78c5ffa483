package org.distill4j.benchmarks;

import org.distill4j.loss.Losses;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.annotations.Param;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU loss benchmark times every registered logit loss, and each one's setup builds a batch it accepts. */
class LogitLossBenchmarkTest {
    @Test
    void everyRegisteredLossIsBenchmarked() throws Exception {
        Param p = LogitLossBenchmark.class.getField("loss").getAnnotation(Param.class);
        assertEquals(Losses.names(), List.of(p.value()), "LogitLossBenchmark's @Param loss, in registration order");
    }

    @Test
    void eachLossRunsOnItsBenchmarkBatch() {
        for (String name : Losses.names()) {
            LogitLossBenchmark b = new LogitLossBenchmark();
            b.rows = 7;
            b.vocab = 13;
            b.loss = name;
            b.setup();
            double v = b.valueAndGradient();
            assertTrue(Double.isFinite(v) && v >= 0, name + ": " + v);
        }
    }
}
