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
}
