package org.distill4j.teacher;

import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.distill4j.teacher.TeacherCombinatorsTest.Fixed;
import static org.distill4j.teacher.TeacherCombinatorsTest.batch;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * VocabularyAlignment at its edges: a student of one class, PAD of a larger teacher refused, student class 0 in an id
 * map (kept, and refused when given twice), and what the alignment forwards: the data served, and the identity that
 * checkpoints and store headers recorded (so its text must stay as it was), and the description.
 */
class AlignmentChecksTest {
    private static final float NINF = Float.NEGATIVE_INFINITY;

    @Test
    void aStudentOfOneClassIsAnAlignmentTarget() {
        Random rng = new Random(61);
        int v = 5;
        float[] rows = Inputs.logits(rng, 3, v, 2);
        Teacher t = new Fixed(rows, v, TeacherValues.LOGITS);
        assertArrayEquals(new float[]{rows[0], rows[v], rows[2 * v]},
                VocabularyAlignment.align(t, 1, VocabularyAlignment.Mode.TRUNCATE).outputs(batch(3)), 0f);
        assertArrayEquals(new float[]{rows[3], rows[v + 3], rows[2 * v + 3]},
                VocabularyAlignment.map(t, new int[]{-1, -1, -1, 0, -1}, 1).outputs(batch(3)), 0f);
        Teacher one = new Fixed(new float[]{0.7f}, 1, TeacherValues.LOGITS);
        assertArrayEquals(new float[]{0.7f, NINF, NINF}, VocabularyAlignment.align(one, 3, VocabularyAlignment.Mode.PAD).outputs(batch(1)), 0f);
    }

    @Test
    void padRefusesATeacherWithMoreClassesThanTheStudent() {
        Teacher t = new Fixed(new float[]{1, 2, 3, 4, 5, 6}, 6, TeacherValues.LOGITS);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VocabularyAlignment.align(t, 4, VocabularyAlignment.Mode.PAD));
        assertEquals("cannot PAD: the teacher has 6 classes, more than the student's 4; use TRUNCATE", e.getMessage());
        assertThrows(NullPointerException.class, () -> VocabularyAlignment.align(t, 4, null));
    }

    /** Student class 0 is a class like any other: kept alone, and refused when two teacher classes are sent to it. */
    @Test
    void studentClassZeroInAnIdMap() {
        Random rng = new Random(62);
        int v = 4;
        float[] probs = Inputs.probabilities(rng, 2, v, 2);
        Teacher t = new Fixed(probs, v, TeacherValues.PROBABILITIES);
        Teacher onlyZero = VocabularyAlignment.map(t, new int[]{-1, -1, 0, -1}, 3);
        assertArrayEquals(new float[]{probs[2], 0, 0, probs[v + 2], 0, 0}, onlyZero.outputs(batch(2)), 0f,
                "a probability teacher's classes without a teacher class get probability 0");
        assertEquals(t.describe() + ", mapped from 4 to 3 classes (1 of the teacher's kept)", onlyZero.describe());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VocabularyAlignment.map(t, new int[]{0, 2, -1, 0}, 3));
        assertEquals("id map sends teacher classes 0 and 3 both to student class 0; expected each student class at most once",
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> VocabularyAlignment.map(t, new int[]{0, 1, 2, 3}, 0));
        assertEquals("cannot map the teacher's 4 classes to a student with 0 classes; expected >= 1", e.getMessage());
    }

    /** Identity (as recorded: "padd", "truncated") names the wrapped teacher's identity; describe its description. */
    @Test
    void identityDescriptionAndServedDataAreTheWrappedTeachers() {
        Teacher inner = new EnsembleTeacherChecksTest.Named(new Fixed(new float[]{1, 2, 3, 4}, 4, TeacherValues.LOGITS), "t", "train");
        Teacher padded = VocabularyAlignment.align(inner, 6, VocabularyAlignment.Mode.PAD);
        Teacher cut = VocabularyAlignment.align(inner, 3, VocabularyAlignment.Mode.TRUNCATE);
        assertEquals("[id t], padd from 4 to 6 classes", padded.identity());
        assertEquals("[id t], truncated from 4 to 3 classes", cut.identity());
        assertEquals("described t, padded from 4 to 6 classes", padded.describe());
        assertEquals("described t, truncated from 4 to 3 classes", cut.describe());
        Teacher mapped = VocabularyAlignment.map(inner, new int[]{2, -1, 0, 1}, 3);
        assertTrue(mapped.identity().startsWith("[id t], mapped from 4 to 3 classes by the id map of sha-256 "), mapped.identity());
        Dataset train = new Dataset("train", new float[2], 1, new int[]{0, 1}, 4);
        Dataset other = new Dataset("other", new float[2], 1, new int[]{0, 1}, 4);
        for (Teacher t : new Teacher[]{padded, cut, mapped}) {
            assertTrue(t.serves(train), t.describe());
            assertFalse(t.serves(other), "only what the wrapped teacher serves: " + t.describe());
        }
    }
}
