package org.distill4j.train;

import org.distill4j.loss.LossResult;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Loss terms keep the order the loss gives them (kd before ce, then the feature terms), in a loss's result and in an
 * epoch's metrics, so logs, metrics.csv and reports list them alike in every JVM (Map.copyOf's order changed per run).
 */
class EpochMetricsTest {
    @Test
    void termsKeepTheirOrderAndRefuseNulls() {
        Map<String, Double> terms = new LinkedHashMap<>();
        List<String> names = new ArrayList<>();
        for (int i = 0; i < 23; i++) {
            String n = "term-" + (char) ('z' - i);
            names.add(n);
            terms.put(n, 0.5 + i);
        }
        EpochMetrics m = new EpochMetrics(0, 1, 1.0, terms, Double.NaN, Double.NaN, 0.5, Double.NaN, Double.NaN, 1, 1, 1);
        assertEquals(names, List.copyOf(m.terms().keySet()));
        assertEquals(names, List.copyOf(new LossResult(1, 2, terms).terms().keySet()));
        assertThrows(UnsupportedOperationException.class, () -> m.terms().put("x", 1.0));
        terms.put("late", 9.0);
        assertEquals(23, m.terms().size(), "a copy, not a view");
        Map<String, Double> withNull = new LinkedHashMap<>();
        withNull.put("kd", null);
        assertThrows(NullPointerException.class, () -> new LossResult(1, 1, withNull));
    }
}
