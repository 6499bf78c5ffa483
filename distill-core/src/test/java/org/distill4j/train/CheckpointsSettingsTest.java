package org.distill4j.train;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints' settings: the defaults, each setter's bounds (the smallest value taken, one below refused, with a
 * message naming the setting and the value), that a setter leaves the others and the original as they were, and the
 * text that names the settings in logs.
 */
class CheckpointsSettingsTest {
    private static final Path DIR = Path.of("runs", "kd");

    @Test
    void defaultsAndTheFile() {
        Checkpoints c = Checkpoints.in(DIR);
        assertEquals(DIR, c.dir());
        assertEquals(DIR.resolve("distill.ckpt"), c.file());
        assertEquals(1, c.everyEpochs());
        assertEquals(0, c.everySteps());
        assertEquals(Duration.ZERO, c.minInterval());
        assertFalse(c.isStartOver());
        assertEquals("checkpoints in " + DIR + " every epoch", c.toString());
        NullPointerException e = assertThrows(NullPointerException.class, () -> Checkpoints.in(null));
        assertEquals("checkpoint directory", e.getMessage());
    }

    @Test
    void eachSetterChangesOnlyItsSettingOnACopy() {
        Checkpoints base = Checkpoints.in(DIR);
        Checkpoints c = base.everySteps(500).everyEpochs(3).minInterval(Duration.ofMinutes(5)).startOver();
        assertEquals(3, c.everyEpochs());
        assertEquals(500, c.everySteps());
        assertEquals(Duration.ofMinutes(5), c.minInterval());
        assertTrue(c.isStartOver());
        assertEquals(DIR, c.dir());
        assertEquals("checkpoints in " + DIR + " every 3 epochs and every 500 steps, at most every PT5M, starting over", c.toString());
        // every setter after startOver keeps it, and the others' values
        Checkpoints d = c.everyEpochs(2).everySteps(0).minInterval(Duration.ZERO);
        assertTrue(d.isStartOver());
        assertEquals(2, d.everyEpochs());
        assertEquals(0, d.everySteps());
        assertEquals("checkpoints in " + DIR + " every 2 epochs, starting over", d.toString());
        Checkpoints e = base.startOver().everyEpochs(1).everySteps(7).minInterval(Duration.ofSeconds(1));
        assertTrue(e.isStartOver());
        assertEquals(7, e.everySteps());
        assertEquals(Duration.ofSeconds(1), e.minInterval());
        assertEquals(1, base.everyEpochs(), "the original is unchanged");
        assertEquals(0, base.everySteps());
        assertFalse(base.isStartOver());
        assertEquals(Duration.ZERO, base.minInterval());
    }

    @Test
    void boundsOfEachSetting() {
        Checkpoints c = Checkpoints.in(DIR);
        assertEquals(1, c.everyEpochs(1).everyEpochs());
        assertEquals(0, c.everySteps(0).everySteps());
        assertEquals(1, c.everySteps(1).everySteps());
        assertEquals(Duration.ZERO, c.minInterval(Duration.ZERO).minInterval());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.everyEpochs(0));
        assertEquals("checkpoint everyEpochs must be > 0, got 0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> c.everySteps(-1));
        assertEquals("checkpoint everySteps must be >= 0 (0: at epoch ends only), got -1", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> c.minInterval(Duration.ofNanos(-1)));
        assertEquals("checkpoint minInterval must be >= 0, got PT-0.000000001S", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> c.minInterval(null));
        assertEquals("checkpoint minInterval must be >= 0, got null", e.getMessage());
    }
}
