package org.distill4j.examples;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

class DemoTest {
    /** Each run has files of its own: seed -4's checkpoints and model are not seed 4's (a resume would mix them up). */
    @Test
    void aNegativeSeedsRunHasFilesOfItsOwn() {
        assertEquals("student-alone-seed-4", Demo.fileName("student alone seed 4"));
        assertEquals("student-alone-seed-minus-4", Demo.fileName("student alone seed -4"));
        assertEquals("distilled-kd-stored-f16-seed-minus-12", Demo.fileName("distilled: kd, stored f16 seed -12"));
        assertEquals("distilled-dkd-beta-minus-2", Demo.fileName("distilled: dkd:beta=-2"), "not dkd:beta=2's");
        assertEquals("distilled-topk-kd-k-2", Demo.fileName("distilled: topk-kd:k=2"), "a dash between words stays one");
        assertEquals("distilled-kd-temperature-1e-3", Demo.fileName("distilled: kd:temperature=1e-3"));
        Demo.Settings s = new Demo.Settings();
        s.out = Path.of("out");
        assertNotEquals(Demo.checkpointDir(s, "student alone seed -4"), Demo.checkpointDir(s, "student alone seed 4"));
        assertEquals(Path.of("out", "checkpoints", "student-alone-seed-minus-4"), Demo.checkpointDir(s, "student alone seed -4"));
    }
}
