package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.distill4j.teacher.TeacherCombinatorsTest.Fixed;
import static org.distill4j.teacher.TeacherCombinatorsTest.batch;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * EnsembleTeacher's argument checks (each refusal names the member or weight and what was expected), a member that
 * breaks its shape contract, a member of weight 0 that is never asked, and the text that names the ensemble: its
 * identity (hashed into store content ids and compared on resume) and its description.
 */
class EnsembleTeacherChecksTest {
    private static final EnsembleTeacher.Combine PROBS = EnsembleTeacher.Combine.PROBABILITIES;
    private static final EnsembleTeacher.Combine LOGITS = EnsembleTeacher.Combine.LOGITS;

    /** A teacher with its own identity and description, serving only a dataset of one name. */
    record Named(Teacher inner, String id, String servesOnly) implements Teacher {
        @Override
        public int classes() {
            return inner.classes();
        }

        @Override
        public TeacherValues values() {
            return inner.values();
        }

        @Override
        public float[] outputs(Batch batch) {
            return inner.outputs(batch);
        }

        @Override
        public String describe() {
            return "described " + id;
        }

        @Override
        public String identity() {
            return "id " + id;
        }

        @Override
        public boolean serves(Dataset data) {
            return servesOnly == null || servesOnly.equals(data.name());
        }
    }

    /** A member that must never be asked for rows. */
    record Unasked(int classes) implements Teacher {
        @Override
        public TeacherValues values() {
            return TeacherValues.LOGITS;
        }

        @Override
        public float[] outputs(Batch batch) {
            throw new AssertionError("a member of weight 0 was asked for rows");
        }

        @Override
        public String describe() {
            return "unasked";
        }
    }

    /** A top-k teacher of entries only (a top-k store, API logprobs), described "api logprobs", never asked for rows here. */
    static SparseTeacher entriesOnly(int classes, int k) {
        return org.distill4j.testing.EntriesTeacher.neverAsked("api logprobs", classes, k);
    }

    private static Teacher logits(Random rng, int n, int v) {
        return new Fixed(Inputs.logits(rng, n, v, 3), v, TeacherValues.LOGITS);
    }

    @Test
    void refusesEmptyMismatchedInfiniteNanAndAllZeroWeights() {
        Random rng = new Random(41);
        Teacher a = logits(rng, 3, 7);
        Teacher b = logits(rng, 3, 7);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EnsembleTeacher.of(List.of(), new double[0], PROBS));
        assertEquals("an ensemble needs at least one teacher", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> EnsembleTeacher.of(List.of(a, b), new double[]{1, 2, 3}, PROBS));
        assertEquals("ensemble has 2 teachers but 3 weights", e.getMessage());
        for (double bad : new double[]{Double.POSITIVE_INFINITY, Double.NaN, -0.5}) {
            for (EnsembleTeacher.Combine c : EnsembleTeacher.Combine.values()) {
                e = assertThrows(IllegalArgumentException.class, () -> EnsembleTeacher.of(List.of(a, b), new double[]{2, bad}, c),
                        bad + " " + c);
                assertEquals("ensemble weight 1 is " + bad + ", expected a finite value >= 0", e.getMessage());
            }
        }
        for (EnsembleTeacher.Combine c : EnsembleTeacher.Combine.values()) {
            e = assertThrows(IllegalArgumentException.class, () -> EnsembleTeacher.of(List.of(a, b), new double[]{0, 0}, c), c.name());
            assertEquals("ensemble weights sum to 0.0, expected > 0", e.getMessage());
        }
        assertThrows(NullPointerException.class, () -> EnsembleTeacher.of(List.of(a, b), new double[]{1, 1}, null));
    }

    /** A top-k-only member is refused when the ensemble is built, naming it; one that also gives dense rows is taken. */
    @Test
    void refusesATopKOnlyMemberUpFront() {
        Random rng = new Random(42);
        Teacher dense = logits(rng, 2, 6);
        SparseTeacher topOnly = entriesOnly(6, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> EnsembleTeacher.of(List.of(dense, topOnly), new double[]{1, 1}, PROBS));
        assertEquals("ensemble teacher 1 (api logprobs) holds only top-3 entries per row; an ensemble combines the members' dense rows",
                e.getMessage());
        // a top-k view of a live teacher gives dense rows too: a member like any other
        EnsembleTeacher ok = EnsembleTeacher.of(List.of(dense, TopKTeacher.of(dense, 3)), new double[]{1, 1}, LOGITS);
        assertArrayEquals(dense.outputs(batch(2)), ok.outputs(batch(2)), 1e-6f);
    }

    @Test
    void refusesAnInfiniteTemperature() {
        Random rng = new Random(43);
        EnsembleTeacher ens = EnsembleTeacher.of(logits(rng, 2, 5), logits(rng, 2, 5));
        for (double bad : new double[]{Double.POSITIVE_INFINITY, Double.NaN, -2}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ens.outputs(batch(2), bad));
            assertEquals("ensemble teacher asked at temperature " + bad + ", expected a finite value > 0", e.getMessage());
        }
    }

    /** A member that gives rows of the wrong size is named with what it gave and what was expected, not read past. */
    @Test
    void aMemberGivingTheWrongNumberOfValuesIsNamed() {
        Random rng = new Random(44);
        int v = 5;
        Teacher good = logits(rng, 3, v);
        Teacher shortRows = new Teacher() {
            @Override
            public int classes() {
                return v;
            }

            @Override
            public TeacherValues values() {
                return TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(Batch batch) {
                return new float[batch.size() * v - 1];
            }

            @Override
            public String describe() {
                return "short";
            }
        };
        for (EnsembleTeacher.Combine c : EnsembleTeacher.Combine.values()) {
            EnsembleTeacher ens = EnsembleTeacher.of(List.of(good, shortRows), new double[]{1, 1}, c);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ens.outputs(batch(3)), c.name());
            assertEquals("ensemble teacher 1 (short) gave 14 values for 3 rows of 5 classes; expected 15", e.getMessage());
        }
    }

    /** A member of weight 0 is never asked (it may be a store that cannot serve, or give -inf logits), at any T. */
    @Test
    void aMemberOfWeightZeroIsNeverAsked() {
        Random rng = new Random(45);
        int v = 7;
        int n = 3;
        Teacher a = logits(rng, n, v);
        Teacher b = new Fixed(Inputs.probabilities(rng, n, v, 2), v, TeacherValues.PROBABILITIES);
        for (double t : new double[]{1, 2.5}) {
            float[] alone = EnsembleTeacher.of(List.of(a, b), new double[]{1, 3}, PROBS).outputs(batch(n), t);
            float[] with = EnsembleTeacher.of(List.of(new Unasked(v), a, b), new double[]{0, 1, 3}, PROBS).outputs(batch(n), t);
            assertArrayEquals(alone, with, 0f, "T " + t);
            float[] logitsAlone = a.outputs(batch(n));
            float[] logitsWith = EnsembleTeacher.of(List.of(a, new Unasked(v)), new double[]{2, 0}, LOGITS).outputs(batch(n), t);
            assertArrayEquals(logitsAlone, logitsWith, 1e-6f, "T " + t);
        }
    }

    @Test
    void servesOnlyWhatEveryMemberServes() {
        Random rng = new Random(46);
        Teacher live = new Named(logits(rng, 2, 4), "live", null);
        Teacher stored = new Named(logits(rng, 2, 4), "stored", "train");
        EnsembleTeacher ens = EnsembleTeacher.of(live, stored);
        Dataset train = new Dataset("train", new float[2], 1, new int[]{0, 1}, 4);
        Dataset other = new Dataset("other", new float[2], 1, new int[]{0, 1}, 4);
        assertTrue(ens.serves(train));
        assertFalse(ens.serves(other), "the stored member cannot serve other data");
        assertFalse(EnsembleTeacher.of(stored, live).serves(other), "whichever member it is");
    }

    /**
     * The identity names the combination, each member's normalized weight (in full) and identity (not its description),
     * so ensembles of other weights, members or combination have other identities; describe names each member's
     * description and weight to three places.
     */
    @Test
    void identityAndDescriptionNameEveryMemberAndWeight() {
        Random rng = new Random(47);
        Teacher a = new Named(logits(rng, 2, 4), "a", null);
        Teacher b = new Named(logits(rng, 2, 4), "b", null);
        EnsembleTeacher ens = EnsembleTeacher.of(List.of(a, b), new double[]{1, 3}, PROBS);
        assertEquals("ensemble, probabilities averaged: 0.25 x [id a]; 0.75 x [id b];", ens.identity());
        assertEquals("ensemble, logits averaged: 0.5 x [id a]; 0.5 x [id b];",
                EnsembleTeacher.of(List.of(a, b), new double[]{4, 4}, LOGITS).identity());
        assertEquals("ensemble of 2 (probabilities averaged): 0.250 x described a; 0.750 x described b;", ens.describe());
        assertEquals("ensemble of 3 (logits averaged): 0.000 x described b; 0.800 x described a; 0.200 x described b;",
                EnsembleTeacher.of(List.of(b, a, b), new double[]{0, 4, 1}, LOGITS).describe());
    }
}
