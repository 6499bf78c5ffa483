package org.distill4j.train;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ScheduleTest {
    @Test
    void constantAndLinear() {
        assertEquals(3.5, Schedule.constant(3.5).at(7, 10));
        Schedule s = Schedule.linear(4, 1);
        assertEquals(4.0, s.at(0, 7), 1e-12);
        assertEquals(2.5, s.at(3, 7), 1e-12);
        assertEquals(1.0, s.at(6, 7), 1e-12);
        assertEquals(4.0, s.at(0, 1), 1e-12, "a one-epoch run uses the start value");
        assertEquals("linear(4.0 -> 1.0)", s.describe());
    }

    /** The first and the last epoch get the given values exactly, not start + (end - start), which can miss end by an ulp. */
    @Test
    void linearHitsBothEndsExactly() {
        double[][] pairs = {{0.4, 0.1}, {0.2, 0.9}, {0.3, 0.9}, {0.4, 1.7}, {4, 1}, {1, 1}, {0.9, 0.0}};
        for (double[] p : pairs) {
            Schedule s = Schedule.linear(p[0], p[1]);
            for (int epochs : new int[]{2, 3, 7, 60}) {
                assertEquals(p[0], s.at(0, epochs), 0.0, s.describe() + " at the first of " + epochs + " epochs");
                assertEquals(p[1], s.at(epochs - 1, epochs), 0.0, s.describe() + " at the last of " + epochs + " epochs");
                assertEquals(p[1], s.at(epochs + 3, epochs), 0.0, s.describe() + " after the last epoch");
                assertEquals(p[0], s.at(-1, epochs), 0.0, s.describe() + " before the first epoch");
            }
        }
    }

    /** Every epoch between the ends moves by the same step, (end - start) / (epochs - 1); a constant names its value. */
    @Test
    void linearMovesInEqualStepsAndConstantNamesItsValue() {
        java.util.Random rng = new java.util.Random(81);
        for (int trial = 0; trial < 20; trial++) {
            double start = 10 * rng.nextDouble();
            double end = 10 * rng.nextDouble();
            int epochs = 2 + rng.nextInt(40);
            Schedule s = Schedule.linear(start, end);
            for (int e = 0; e < epochs; e++) {
                double expected = start + (end - start) * e / (epochs - 1);
                assertEquals(expected, s.at(e, epochs), 1e-12 * Math.max(1, Math.abs(expected)), s.describe() + ", epoch " + e + " of " + epochs);
            }
        }
        assertEquals(2.5, Schedule.linear(2.5, 7).at(0, 0), 0.0, "a run of no epochs: the start value, not 0/0");
        Schedule c = Schedule.constant(0.125);
        assertEquals("constant(0.125)", c.describe());
        assertEquals(0.125, c.at(0, 1), 0.0);
        assertEquals(0.125, c.at(99, 100), 0.0);
    }
}
