package org.distill4j.store;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One JSON Lines row of a top-k import, as StoreImport.Entries parses and checks it: what each refusal says (the value as
 * it was written, the entry, the bound), the edges of each bound, and that nothing of a refused row is left for the next.
 */
class StoreImportEntriesTest {
    private static final Path FILE = Path.of("t.jsonl");

    /** The import's error for {@code line} read as line 3, row {@code row} (the fast reader first, as the import reads it). */
    private static String error(String line, long row) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.Entries.parse(FILE, 3, line, row, new JsonLine.TopKRecord()));
        IllegalArgumentException general = assertThrows(IllegalArgumentException.class, () -> StoreImport.Entries.parse(FILE, 3, line, row));
        assertEquals(general.getMessage(), e.getMessage(), line);
        return e.getMessage();
    }

    private static String selectError(int[] ids, double[] lps, int k, boolean exact, int vocab, ValueCodec codec) {
        return assertThrows(IllegalArgumentException.class, () -> new StoreImport.Entries(ids, lps).select(FILE, "line 3", k, exact, vocab,
                codec, new int[k], new float[k], 0, new StoreImport.Selection())).getMessage();
    }

    /** A "row" that is not the row's number is shown as written: an integral number without ".0", any other value as it is. */
    @Test
    void aWrongRowIsNamedAsWritten() {
        String rest = ", \"ids\": [1], \"logprobs\": [-0.5]}";
        String tail = " (rows must be in dataset order, one line per sample)";
        assertEquals("t.jsonl line 3: \"row\" is 0, expected 1" + tail, error("{\"row\": 0" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is 1, expected 2" + tail, error("{\"row\": 1.0" + rest, 2));
        assertEquals("t.jsonl line 3: \"row\" is -3, expected 1" + tail, error("{\"row\": -3" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is 1.5, expected 1" + tail, error("{\"row\": 1.5" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is 999999999999999, expected 1" + tail, error("{\"row\": 999999999999999" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is 1.0E15, expected 1" + tail, error("{\"row\": 1e15" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is 1.0E20, expected 1" + tail, error("{\"row\": 1e20" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is NaN, expected 1" + tail, error("{\"row\": NaN" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is null, expected 1" + tail, error("{\"row\": null" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is true, expected 1" + tail, error("{\"row\": true" + rest, 1));
    }

    /** A "row" written as a string is shown quoted: "row" is 1, expected 1 said nothing of what was wrong. */
    @Test
    void aRowWrittenAsAStringIsShownQuoted() {
        String rest = ", \"ids\": [1], \"logprobs\": [-0.5]}";
        assertEquals("t.jsonl line 3: \"row\" is \"1\" (a string), expected 1 (rows must be in dataset order, one line per sample)",
                error("{\"row\": \"1\"" + rest, 1));
        assertEquals("t.jsonl line 3: \"row\" is \"one\" (a string), expected 1 (rows must be in dataset order, one line per sample)",
                error("{\"row\": \"one\"" + rest, 1));
    }

    /** A record with one of "ids" and "logprobs" names the one missing; any other object names the keys it found. */
    @Test
    void aRecordOfNeitherShapeNamesWhatItLacks() {
        assertEquals("t.jsonl line 3: \"ids\" is null, expected an array", error("{\"logprobs\": [-0.5]}", 0));
        assertEquals("t.jsonl line 3: \"logprobs\" is null, expected an array", error("{\"ids\": [1]}", 0));
        assertEquals("t.jsonl line 3: expected \"ids\" and \"logprobs\", or \"top_logprobs\"; found keys [id, logprob]",
                error("{\"id\": 1, \"logprob\": -0.5}", 0));
        assertEquals("t.jsonl line 3: expected \"ids\" and \"logprobs\", or \"top_logprobs\"; found keys []", error("{}", 0));
        // the general parser reads both shapes as the fast reader does
        StoreImport.Entries top = StoreImport.Entries.parse(FILE, 3, "{\"top_logprobs\": [{\"id\": 4, \"logprob\": -0.25}, "
                + "{\"token\": \"token_id:2\", \"logprob\": -2}]}", 0);
        assertArrayEquals(new int[]{4, 2}, top.ids());
        assertArrayEquals(new double[]{-0.25, -2}, top.logProbs(), 0);
        StoreImport.Entries plain = StoreImport.Entries.parse(FILE, 3, "{\"row\": 5, \"ids\": [6, 0], \"logprobs\": [-1.5, -0.5]}", 5);
        assertArrayEquals(new int[]{6, 0}, plain.ids());
        assertArrayEquals(new double[]{-1.5, -0.5}, plain.logProbs(), 0);
    }

    /**
     * A record of both shapes, "ids"/"logprobs" and "top_logprobs", is refused naming the fields it has, whichever comes first
     * and whether or not each shape is whole: which entries are meant cannot be told, and taking one shape's would drop the
     * other's without a word.
     */
    @Test
    void aRecordOfBothShapesIsRefusedNamingTheFields() {
        String top = "\"top_logprobs\": [{\"id\": 5, \"logprob\": -0.01}, {\"id\": 6, \"logprob\": -5}]";
        String both = "t.jsonl line 3: has \"ids\", \"logprobs\" and \"top_logprobs\", both shapes of a record; expected \"ids\" and "
                + "\"logprobs\", or \"top_logprobs\", not both";
        assertEquals(both, error("{\"ids\": [0, 1], \"logprobs\": [-0.1, -2.5], " + top + "}", 0));
        assertEquals(both, error("{" + top + ", \"row\": 0, \"ids\": [0, 1], \"logprobs\": [-0.1, -2.5]}", 0));
        assertEquals(both, error("{\"ids\": [], \"logprobs\": [], \"top_logprobs\": []}", 0));
        assertEquals("t.jsonl line 3: has \"logprobs\" and \"top_logprobs\", both shapes of a record; expected \"ids\" and "
                + "\"logprobs\", or \"top_logprobs\", not both", error("{\"logprobs\": [-0.5], \"top_logprobs\": []}", 0));
        assertEquals("t.jsonl line 3: has \"ids\" and \"top_logprobs\", both shapes of a record; expected \"ids\" and "
                + "\"logprobs\", or \"top_logprobs\", not both", error("{\"ids\": [3], " + top + "}", 0));
        // a wrong "row" is still named first, as for any record
        assertEquals("t.jsonl line 3: \"row\" is 1, expected 0 (rows must be in dataset order, one line per sample)",
                error("{\"row\": 1, \"ids\": [0], \"logprobs\": [-0.1], " + top + "}", 0));
    }

    /** With a top-k given, a row of fewer entries is refused; without one, a row of another count than the first. */
    @Test
    void aRowOfTooFewEntriesIsNamed() {
        assertEquals("t.jsonl line 3: 2 entries, expected at least 3 (every row needs k entries; import with a smaller top-k)",
                selectError(new int[]{1, 2}, new double[]{-1, -2}, 3, false, 7, ValueCodec.F32));
        assertEquals("t.jsonl line 3: 2 entries, but the first row has 3; every row needs the same count (or give top-k to keep "
                + "each row's k most probable entries)", selectError(new int[]{1, 2}, new double[]{-1, -2}, 3, true, 7, ValueCodec.F32));
        assertEquals("t.jsonl line 3: 3 entries, but the first row has 2; every row needs the same count (or give top-k to keep "
                + "each row's k most probable entries)", selectError(new int[]{1, 2, 3}, new double[]{-1, -2, -3}, 2, true, 7, ValueCodec.F32));
        int[] ids = new int[2];
        float[] lps = new float[2];
        new StoreImport.Entries(new int[]{5, 1, 3}, new double[]{-3, -1, -2}).select(FILE, "line 3", 2, false, 7, ValueCodec.F32, ids, lps, 0,
                new StoreImport.Selection());
        assertArrayEquals(new int[]{1, 3}, ids);
        assertArrayEquals(new float[]{-1, -2}, lps, 0f);
    }

    /** Class ids below 0 or from the vocabulary's size on are refused naming the entry, the id and the range. */
    @Test
    void aClassIdOutsideTheVocabularyIsNamed() {
        for (int bad : new int[]{-1, -64, Integer.MIN_VALUE + 1}) {
            assertEquals("t.jsonl line 3, entry 1: class id " + bad + ", expected 0 to 6 (vocabulary of 7; a larger vocabulary is set "
                    + "with vocab / --vocab)", selectError(new int[]{2, bad}, new double[]{-1, -2}, 2, true, 7, ValueCodec.F32));
        }
        assertEquals("t.jsonl line 3, entry 0: class id 7, expected 0 to 6 (vocabulary of 7; a larger vocabulary is set with vocab / "
                + "--vocab)", selectError(new int[]{7, 2}, new double[]{-1, -2}, 2, true, 7, ValueCodec.F32));
        assertEquals("t.jsonl line 3, ids[1]: a number -1.5, expected an integer class id",
                error("{\"ids\": [2, -1.5], \"logprobs\": [-1, -2]}", 0));
    }

    /**
     * A repeated id is named, the smallest repeated one (id 0 among them), after every entry was checked; ids once refused
     * or repeated leave nothing behind for the next row, even in a vocabulary whose last word of the bitmap holds one id.
     */
    @Test
    void aRepeatedIdIsNamedAndTheNextRowStartsClean() {
        StoreImport.Selection sc = new StoreImport.Selection();
        for (int[] ids : new int[][]{{0, 0}, {0, 5, 0}, {1, 2, 5, 5}, {9, 2, 1, 9, 2}, {64, 3, 64}}) {
            double[] lps = new double[ids.length];
            java.util.Arrays.fill(lps, -3);
            int smallest = Integer.MAX_VALUE;
            for (int a = 0; a < ids.length; a++) {
                for (int b = a + 1; b < ids.length; b++) {
                    if (ids[a] == ids[b]) {
                        smallest = Math.min(smallest, ids[a]);
                    }
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new StoreImport.Entries(ids, lps).select(FILE,
                    "line 3", ids.length, true, 65, ValueCodec.F32, null, null, 0, sc));
            assertEquals("t.jsonl line 3: class id " + smallest + " appears twice; expected distinct ids", e.getMessage(),
                    java.util.Arrays.toString(ids));
        }
        // 65 classes: the bitmap's second word holds id 64 alone
        int[] out = new int[3];
        float[] lp = new float[3];
        new StoreImport.Entries(new int[]{64, 0, 63}, new double[]{-2, -1, -3}).select(FILE, "line 4", 3, true, 65, ValueCodec.F32, out, lp, 0,
                sc);
        assertArrayEquals(new int[]{0, 64, 63}, out);
        assertArrayEquals(new float[]{-1, -2, -3}, lp, 0f);
    }

    /** A vocabulary of 2^26 classes: the bitmap of seen ids covers the last id (its size in words does not overflow). */
    @Test
    void theLastIdOfALargeVocabularyIsChecked() {
        int vocab = 1 << 26;
        int[] out = new int[2];
        float[] lp = new float[2];
        new StoreImport.Entries(new int[]{vocab - 1, 0}, new double[]{-0.5, -1}).select(FILE, "line 3", 2, true, vocab, ValueCodec.F32, out,
                lp, 0, new StoreImport.Selection());
        assertArrayEquals(new int[]{vocab - 1, 0}, out);
        assertEquals("t.jsonl line 3: class id " + (vocab - 1) + " appears twice; expected distinct ids", selectError(new int[]{vocab - 1,
                vocab - 1}, new double[]{-1, -2}, 2, true, vocab, ValueCodec.F32));
    }

    /**
     * The entries' probabilities, as the store holds them (f32 here: the values as floats), may sum to 1 + 0.01 and no more:
     * the largest second entry whose sum is at the bound or below is taken, the next float above it refused with the sum
     * named. The store's writer and reader draw the line at the same value ({@code StoreWriterChecksTest}).
     */
    @Test
    void theEntriesMassMaySumToOnePlusTheToleranceAndNoMore() {
        double bound = 1 + StoreImport.SUM_TOLERANCE;
        float lp = (float) Math.log(StoreImport.SUM_TOLERANCE);
        while (1 + org.distill4j.loss.LossMath.exp(lp) > bound) {
            lp = Math.nextDown(lp);
        }
        while (1 + org.distill4j.loss.LossMath.exp(Math.nextUp(lp)) <= bound) {
            lp = Math.nextUp(lp);
        }
        float over = Math.nextUp(lp);
        assertTrue(1 + org.distill4j.loss.LossMath.exp(lp) <= bound && 1 + org.distill4j.loss.LossMath.exp(over) > bound, lp + " is the largest second entry at the bound");
        int[] out = new int[2];
        float[] lps = new float[2];
        new StoreImport.Entries(new int[]{3, 1}, new double[]{0, lp}).select(FILE, "line 3", 2, true, 7, ValueCodec.F32, out, lps, 0,
                new StoreImport.Selection());
        assertArrayEquals(new int[]{3, 1}, out);
        assertEquals("t.jsonl line 3: the entries' probabilities sum to 1.0100, expected at most 1: these are not log-probabilities of "
                + "one distribution", selectError(new int[]{3, 1}, new double[]{0, over}, 2, true, 7, ValueCodec.F32));
    }

    /** -Infinity and log-probabilities below the smallest float's are stored as the log of the smallest float. */
    @Test
    void zeroProbabilitiesAreFlooredAtTheSmallestFloat() {
        int[] out = new int[4];
        float[] lps = new float[4];
        new StoreImport.Entries(new int[]{2, 5, 0, 4}, new double[]{Double.NEGATIVE_INFINITY, -200, -0.25, -103})
                .select(FILE, "line 3", 4, true, 7, ValueCodec.F32, out, lps, 0, new StoreImport.Selection());
        assertArrayEquals(new int[]{0, 4, 5, 2}, out, "ordered most probable first; ties below the floor by id");
        float floor = (float) Labeler.LOG_MIN_FLOAT;
        assertArrayEquals(new float[]{-0.25f, -103f, floor, floor}, lps, 0f);
    }

    /** A value of the wrong kind is named with its kind: null, a boolean, a number, a string, an array, an object. */
    @Test
    void aValueOfAnotherKindIsNamedWithItsKind() {
        String[][] kinds = {{"null", "null"}, {"true", "a boolean"}, {"3", "a number"}, {"\"3\"", "a string"}, {"[3]", "an array"},
                {"{\"a\": 3}", "an object"}};
        for (String[] k : kinds) {
            String v = k[0];
            String kind = k[1];
            if (!kind.equals("an array")) {
                assertEquals("t.jsonl line 3: \"ids\" is " + kind + ", expected an array",
                        error("{\"ids\": " + v + ", \"logprobs\": [-1]}", 0), v);
                assertEquals("t.jsonl line 3: \"logprobs\" is " + kind + ", expected an array",
                        error("{\"ids\": [1], \"logprobs\": " + v + "}", 0), v);
                assertEquals("t.jsonl line 3: \"top_logprobs\" is " + kind + ", expected an array",
                        error("{\"top_logprobs\": " + v + "}", 0), v);
            }
            if (!kind.equals("an object")) {
                assertEquals("t.jsonl line 3: expected a JSON object, found " + kind, error(v, 0), v);
            }
            if (!kind.equals("a number")) {
                assertEquals("t.jsonl line 3, logprobs[1]: " + kind + ", expected a number",
                        error("{\"ids\": [1, 2], \"logprobs\": [-1, " + v + "]}", 0), v);
                assertEquals("t.jsonl line 3, top_logprobs[0].logprob: " + kind + ", expected a number",
                        error("{\"top_logprobs\": [{\"id\": 1, \"logprob\": " + v + "}]}", 0), v);
                String shown = v.equals("\"3\"") ? "3" : v.equals("{\"a\": 3}") ? "{a=3.0}" : v.equals("[3]") ? "[3.0]" : v;
                assertEquals("t.jsonl line 3, ids[0]: " + kind + " " + shown + ", expected an integer class id",
                        error("{\"ids\": [" + v + "], \"logprobs\": [-1]}", 0), v);
                assertEquals("t.jsonl line 3, top_logprobs[0].id: " + kind + " " + shown + ", expected an integer class id",
                        error("{\"top_logprobs\": [{\"id\": " + v + ", \"logprob\": -1}]}", 0), v);
            }
            if (!kind.equals("an object")) {
                assertEquals("t.jsonl line 3, top_logprobs[1]: expected an object {\"id\": ..., \"logprob\": ...}, found " + kind,
                        error("{\"top_logprobs\": [{\"id\": 1, \"logprob\": -1}, " + v + "]}", 0), v);
            }
        }
        assertEquals("t.jsonl line 3, top_logprobs[0].logprob: null, expected a number",
                error("{\"top_logprobs\": [{\"id\": 1}]}", 0));
    }

    /** An entry without "id" takes its id from "token": "token_id:N"; anything else there is named. */
    @Test
    void anEntryWithoutAnIdNamesItsToken() {
        String why = "; expected a class id (\"id\": 3, or \"token\": \"token_id:3\" as vLLM writes with return_tokens_as_token_ids)";
        assertEquals("t.jsonl line 3, top_logprobs[0]: no \"id\", and \"token\" is missing" + why,
                error("{\"top_logprobs\": [{\"logprob\": -1}]}", 0));
        assertEquals("t.jsonl line 3, top_logprobs[0]: no \"id\", and \"token\" is missing" + why,
                error("{\"top_logprobs\": [{\"token\": null, \"logprob\": -1}]}", 0));
        for (String token : new String[]{"token_id:", "token_id:x", "token_id:99999999999", "Token_id:3", "3"}) {
            assertEquals("t.jsonl line 3, top_logprobs[0]: no \"id\", and \"token\" is '" + token + "'" + why,
                    error("{\"top_logprobs\": [{\"token\": \"" + token + "\", \"logprob\": -1}]}", 0), token);
        }
        assertEquals("t.jsonl line 3, top_logprobs[0]: no \"id\", and \"token\" is '3.0'" + why,
                error("{\"top_logprobs\": [{\"token\": 3, \"logprob\": -1}]}", 0));
        StoreImport.Entries e = StoreImport.Entries.parse(FILE, 3, "{\"top_logprobs\": [{\"token\": \"token_id:-0\", \"logprob\": -1}, "
                + "{\"token\": \"token_id:+6\", \"logprob\": -2}]}", 0);
        assertArrayEquals(new int[]{0, 6}, e.ids());
        // an id beyond +-Integer.MAX_VALUE, or not integral, is no class id
        for (String id : new String[]{"2147483648", "-2147483648", "1e10", "0.5", "Infinity", "NaN"}) {
            String shown = Double.toString(Double.parseDouble(id.replace("Infinity", "Infinity")));
            assertEquals("t.jsonl line 3, ids[0]: a number " + shown + ", expected an integer class id",
                    error("{\"ids\": [" + id + "], \"logprobs\": [-1]}", 0), id);
        }
        assertArrayEquals(new int[]{2147483647, -2147483647, 3},
                StoreImport.Entries.parse(FILE, 3, "{\"ids\": [2147483647, -2147483647, 3e0], \"logprobs\": [-1, -2, -3]}", 0).ids());
    }

    /**
     * A log-probability above 0 (beyond the 1e-4 allowed for rounding), +Infinity or NaN is refused as not a log-probability;
     * one that passes as a float but that the store's dtype rounds above the bound is named with its rounding.
     */
    @Test
    void aLogProbabilityAboveZeroIsNamedAsSuch() {
        for (double bad : new double[]{2.5, Double.POSITIVE_INFINITY, Double.NaN, Math.nextUp((double) StoreWriter.MAX_LOG_PROB) * 1.01}) {
            for (ValueCodec c : ValueCodec.values()) {
                assertEquals("t.jsonl line 3, entry 1: log-probability " + bad + ", expected a finite value <= 0 or -Infinity (are these "
                        + "logits? import log-probabilities)", selectError(new int[]{2, 5}, new double[]{-1, bad}, 2, true, 7, c), c + " " + bad);
            }
        }
        float stored = ValueCodec.fromHalf(ValueCodec.toHalf(StoreWriter.MAX_LOG_PROB));
        assertEquals("t.jsonl line 3, entry 0: log-probability " + (double) StoreWriter.MAX_LOG_PROB + ", which f16 rounds to " + stored
                + ", above the " + StoreWriter.MAX_LOG_PROB + " allowed for rounding; expected a value <= 0",
                selectError(new int[]{2, 5}, new double[]{StoreWriter.MAX_LOG_PROB, -9}, 2, true, 7, ValueCodec.F16));
    }
}
