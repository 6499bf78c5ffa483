package org.distill4j.store;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * What a refused resume (or the reuse of a complete store) says differs between the store found and the one wanted:
 * each setting by name, and for the provenance which case it is (another teacher, the same one retrained, the same one on
 * other data, a store from before the weights were recorded).
 */
class StoreWriterDifferencesTest {
    private static StoreHeader dense(ValueCodec codec, StoreHeader.ValueKind kind, int vocab, long rows, int chunkRows, double t,
                                     String prov) {
        return new StoreHeader(StoreHeader.Layout.DENSE, codec, kind, vocab, 0, rows, chunkRows, t, prov);
    }

    private static final String P = "{\"teacher\":\"a\"}";
    private static final StoreHeader BASE = dense(ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 11, 20, 4, 1.0, P);

    @Test
    void eachSettingIsNamedAloneWithBothValues() {
        StoreHeader.ValueKind logits = StoreHeader.ValueKind.LOGITS;
        assertEquals("dtype F32 vs BF16", StoreWriter.differences(BASE, dense(ValueCodec.BF16, logits, 11, 20, 4, 1.0, P)));
        assertEquals("values LOGITS vs LOG_PROBS",
                StoreWriter.differences(BASE, dense(ValueCodec.F32, StoreHeader.ValueKind.LOG_PROBS, 11, 20, 4, 1.0, P)));
        assertEquals("vocab 11 vs 13", StoreWriter.differences(BASE, dense(ValueCodec.F32, logits, 13, 20, 4, 1.0, P)));
        assertEquals("rows 20 vs 21", StoreWriter.differences(BASE, dense(ValueCodec.F32, logits, 11, 21, 4, 1.0, P)));
        assertEquals("chunk rows 4 vs 5", StoreWriter.differences(BASE, dense(ValueCodec.F32, logits, 11, 20, 5, 1.0, P)));
        assertEquals("temperature 1.0 vs 2.5", StoreWriter.differences(BASE, dense(ValueCodec.F32, logits, 11, 20, 4, 2.5, P)));
        StoreHeader top = new StoreHeader(StoreHeader.Layout.TOP_K, ValueCodec.F32, StoreHeader.ValueKind.LOG_PROBS, 11, 3, 20, 4, 1.0, P);
        assertEquals("layout DENSE vs TOP_K; values LOGITS vs LOG_PROBS; k 0 vs 3", StoreWriter.differences(BASE, top));
        assertEquals("dtype F32 vs F16; vocab 11 vs 7; rows 20 vs 3",
                StoreWriter.differences(BASE, dense(ValueCodec.F16, logits, 7, 3, 4, 1.0, P)));
        assertEquals("", StoreWriter.differences(BASE, BASE));
    }

    private static String provenance(String a, String b) {
        return StoreWriter.differences(dense(ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 11, 20, 4, 1.0, a),
                dense(ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 11, 20, 4, 1.0, b));
    }

    private static String labeled(String description, String weights) {
        return "{\"teacher\":\"mlp\",\"description\":\"" + description + "\"" + (weights == null ? "" : ",\"teacherWeights\":\"" + weights + "\"")
                + ",\"dataset\":\"fm\",\"datasetRows\":20,\"datasetFingerprint\":77}";
    }

    @Test
    void theProvenanceSaysWhichCaseItIs() {
        String tail = " (provenance %s, now %s)";
        String[][] cases = {
                {"{\"teacher\":\"a\"}", "{\"teacher\":\"b\"}", "it was made by a different teacher"},
                // no teacher id on either side: not "the same teacher"
                {"from elsewhere", "from somewhere else", "it was made by a different teacher"},
                {"{\"x\":1,\"teacherWeights\":\"00aa\"}", "{\"x\":1,\"teacherWeights\":\"11bb\"}", "it was made by a different teacher"},
                {labeled("mlp 10", "00aa"), labeled("mlp 10", "11bb"), "it was made by a teacher with the same id ('mlp') but other weights "
                        + "or another model (content 00aa, now 11bb): give a retrained teacher its own id or store"},
                // other weights and another description: the hash covers the description, so it says nothing about the weights
                {labeled("mlp 10", "00aa"), labeled("mlp 12", "11bb"), "it was made by the same teacher from other data (or with "
                        + "another description)"},
                {labeled("mlp 10", null), labeled("mlp 10", "11bb"), "it was started by an older Distill4J, which recorded no hash of "
                        + "the teacher's weights, so it cannot tell whether this is the same teacher"},
                {labeled("mlp 10", "00aa"), labeled("mlp 10", null), "it was started by an older Distill4J, which recorded no hash of "
                        + "the teacher's weights, so it cannot tell whether this is the same teacher"},
                {labeled("mlp 10", null), labeled("mlp 12", "11bb"), "it was made by the same teacher from other data (or with "
                        + "another description)"},
                {labeled("mlp 10", "00aa"), labeled("mlp 10", "00aa").replace("\"fm\"", "\"mnist\""),
                        "it was made by the same teacher from other data (or with another description)"},
        };
        for (String[] c : cases) {
            assertEquals(c[2] + String.format(tail, c[0], c[1]), provenance(c[0], c[1]), c[0] + " vs " + c[1]);
        }
    }
}
