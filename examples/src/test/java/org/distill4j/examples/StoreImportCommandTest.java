package org.distill4j.examples;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.loss.TeacherValues;
import org.distill4j.store.SoftTargetStore;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.TopKTeacher;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** distill store import: a teacher's outputs computed outside Distill4J become the same store distill label writes. */
class StoreImportCommandTest extends CliCommandTest {
    private static final Path ONNX = Path.of("models", "fashion-mnist", "cnn-teacher.onnx");

    @Test
    void importedOutputsEqualLabeledOnes(@TempDir Path tmp) throws Exception {
        Dataset d = FashionMnist.loadEmbedded(Main.class.getClassLoader()).train().head(300);
        Path labeled = tmp.resolve("labeled.d4j");
        assertEquals(0, run("label", "--teacher", ONNX.toString(), "--data", "embedded", "--limit", "300", "--out", labeled.toString(),
                "--quiet"), err());

        // what a user computes elsewhere: the same model's outputs for the same 300 samples, saved as NumPy and JSON Lines
        float[] outputs;
        TeacherValues values;
        SparseTeacher.TopK top;
        try (ModelFiles.Loaded t = ModelFiles.load(ONNX, new ModelFiles.Options("--"), d.featureCount(), d.classes())) {
            outputs = t.model().outputs(Batch.range(d, 0, 300));
            values = t.model().values();
            top = TopKTeacher.of(t.model(), 4).topK(Batch.range(d, 0, 300));
        }
        Path npy = writeF32(tmp.resolve("cnn.npy"), outputs, 300, 10);
        Path imported = tmp.resolve("imported.d4j");
        assertEquals(0, run("store", "import", "--npy", npy.toString(), "--values",
                values == TeacherValues.PROBABILITIES ? "probs" : "logits", "--data", "embedded", "--limit", "300",
                "--out", imported.toString(), "--quiet"), err());
        assertTrue(out().contains("imported 300 rows for fashion-mnist-subset/train[:300] into " + imported), out());
        assertEquals(rows(labeled), rows(imported), "the rows on disk equal distill label's");

        StringBuilder jsonl = new StringBuilder();
        for (int r = 0; r < 300; r++) {
            jsonl.append("{\"top_logprobs\": [");
            for (int j = 0; j < 4; j++) {
                jsonl.append(j == 0 ? "" : ", ").append(String.format(Locale.ROOT, "{\"id\": %d, \"logprob\": %s}", top.ids()[r * 4 + j],
                        Float.toString(top.logProbs()[r * 4 + j])));
            }
            jsonl.append("]}\n");
        }
        Path lines = Files.writeString(tmp.resolve("top4.jsonl"), jsonl);
        Path sparse = tmp.resolve("top4.d4j");
        assertEquals(0, run("store", "import", "--jsonl", lines.toString(), "--data", "embedded", "--limit", "300", "--topk", "3",
                "--out", sparse.toString(), "--quiet"), err());
        assertEquals(0, run("store", "info", sparse.toString()), err());
        assertTrue(out().contains("top-k, k = 3") && out().contains("imported: jsonl top-3"), out());
        assertEquals(0, run("store", "verify", sparse.toString()), err());
        assertEquals(0, run("store", "import", "--jsonl", lines.toString(), "--data", "embedded", "--limit", "300", "--topk", "3",
                "--out", sparse.toString(), "--quiet"), err());
        assertTrue(out().contains("is already complete; nothing to do"), out());

        // the same source into that store with another --topk: a choice to make, not a failed run (exit 2, one line,
        // nothing changed), as distill label says it
        byte[] before = Files.readAllBytes(sparse);
        assertEquals(2, run("store", "import", "--jsonl", lines.toString(), "--data", "embedded", "--limit", "300", "--topk", "2",
                "--out", sparse.toString(), "--quiet"), err());
        assertTrue(err().startsWith("distill store import: " + sparse + " already holds a store with other settings or from another"
                + " source: "), err());
        assertFalse(err().contains("\tat "), "no stack trace: " + err());
        assertTrue(Arrays.equals(before, Files.readAllBytes(sparse)), "the store is unchanged");
    }

    @Test
    void mistakesExitWithTheReasonAndNoStackTrace(@TempDir Path tmp) throws Exception {
        Path npy = writeF32(tmp.resolve("short.npy"), new float[299 * 10], 299, 10);
        assertEquals(1, run("store", "import", "--npy", npy.toString(), "--data", "embedded", "--limit", "300",
                "--out", tmp.resolve("s.d4j").toString()));
        assertTrue(err().contains("distill store import: " + npy + ": (299, 10) gives 299 rows, but the dataset "
                + "fashion-mnist-subset/train[:300] has 300 samples"), err());
        assertFalse(err().contains("\tat "), "no stack trace: " + err());

        Path ok = writeF32(tmp.resolve("ok.npy"), new float[300 * 10], 300, 10);
        assertEquals(2, run("store", "import", "--npy", ok.toString(), "--data", "embedded", "--limit", "300",
                "--out", tmp.toString()));
        assertEquals("distill store import: --out " + tmp + " is a directory; expected the store's file name\n", err(),
                "a directory as --out: bad usage, as for distill label");
        // usage errors name the subcommand; an option given twice is refused, not the last one silently kept
        assertEquals(2, run("store", "import", "--npy", ok.toString(), "--out", "a.d4j", "--out", "b.d4j"));
        assertEquals("distill store import: --out is given twice; give it once\n", err());
        assertEquals(2, run("store", "import", "--npy", ok.toString(), "--out", ""));
        assertEquals("distill store import: --out: the path is empty; expected a file or directory name\n", err());

        assertEquals(2, run("store", "import", "--out", tmp.resolve("s.d4j").toString()));
        assertTrue(err().contains("give one of --npy, --jsonl or --topk-npy, and --out"), err());
        assertEquals(2, run("store", "import", "--npy", npy.toString(), "--jsonl", npy.toString(), "--out", "x.d4j"));
        assertEquals(2, run("store", "import", "--npy", npy.toString(), "--values", "scores", "--out", "x.d4j"));
        assertTrue(err().contains("--values: values 'scores': expected logits, log-probs or probs"), err());
        assertEquals(2, run("store", "import", "--npy", npy.toString(), "--topk", "3", "--out", "x.d4j"));
        assertTrue(err().contains("--topk and --vocab apply to top-k sources"), err());
        assertEquals(2, run("store", "import", "--jsonl", tmp.resolve("none.jsonl").toString(), "--out", "x.d4j"));
        assertTrue(err().contains("none.jsonl: no such file"), err());
        // an argument out of place is named as such, not as a value some option lacks or as the second --topk-npy file
        assertEquals(2, run("store", "import", "--npy", npy.toString(), "--out", "x.d4j", "extra"));
        assertTrue(err().contains("unexpected argument 'extra' (see distill store import --help)"), err());
        assertEquals(2, run("store", "import", "--npy", npy.toString(), "--out", "x.d4j", "--frob"));
        assertTrue(err().contains("unknown option --frob (see distill store import --help)"), err());
        assertEquals(2, run("store", "import", "--topk-npy", npy.toString(), "--out", "x.d4j"));
        assertTrue(err().contains("--topk-npy needs two files, the ids and the log-probabilities; got '" + npy + "' and then option --out"), err());
        assertEquals(2, run("store", "import", "--npy", npy.toString(), "--out", "x.d4j", "--teacher-id", ""));
        assertTrue(err().contains("--teacher-id: '' is blank; expected a name for the teacher"), err());
        assertEquals(0, run("store", "import", "--help"));
        assertTrue(out().contains("usage: distill store import"), out());
        assertEquals(0, run("store", "--help"));
        assertTrue(out().contains("distill store import --help"), out());
        for (String sub : new String[] {"info", "verify"}) { // the usage, not "--help: no such store"
            assertEquals(0, run("store", sub, "--help"), err());
            assertTrue(out().contains("usage: distill store info|verify STORE") && err().isEmpty(), out() + err());
        }
    }

    /** store info or verify of a FIFO (or a device) is refused at once: reading it would block forever. */
    @Test
    void storeInfoOfAFifoIsRefusedNotBlocking(@TempDir Path tmp) throws Exception {
        Path fifo = tmp.resolve("fifo.store");
        org.junit.jupiter.api.Assumptions.assumeTrue(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0,
                "needs mkfifo");
        for (String sub : new String[] {"info", "verify"}) {
            java.util.concurrent.CompletableFuture<Integer> code = java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> run("store", sub, fifo.toString()));
            assertEquals(1, code.get(30, java.util.concurrent.TimeUnit.SECONDS));
            assertEquals("distill store " + sub + ": " + fifo + ": not a regular file; expected a store file\n", err());
        }
    }

    /**
     * The user's report: an import under --teacher-id, the source fixed (other logprobs), the same command again. It
     * said "already complete; nothing to do" and kept the old values; the source's CRC32C and size are recorded now, so
     * the rerun exits 2 with one line naming what differs and what to do, and the store stays as it was.
     */
    @Test
    void aFixedSourceIsNotTakenForTheStoreOfTheOldOneUnderATeacherId(@TempDir Path tmp) throws Exception {
        Path lines = tmp.resolve("api.jsonl");
        Files.writeString(lines, topLogprobs(-0.25));
        Path store = tmp.resolve("api.d4j");
        String[] command = {"store", "import", "--jsonl", lines.toString(), "--teacher-id", "qwen-api", "--data", "embedded",
                "--limit", "40", "--out", store.toString(), "--quiet"};
        assertEquals(0, run(command), err());
        assertTrue(out().startsWith("imported 40 rows"), out());
        assertEquals(0, run(command), err());
        assertTrue(out().contains("is already complete; nothing to do"), out());
        byte[] before = Files.readAllBytes(store);

        Files.writeString(lines, topLogprobs(-0.5)); // the fixed source
        assertEquals(2, run(command), err());
        assertEquals("", out());
        assertTrue(err().startsWith("distill store import: " + store + " was imported from another version of " + lines
                + ": its content differs (when imported: CRC32C "), err());
        assertTrue(err().endsWith("; delete " + store + " to import the source as it is now, or import into another store"
                + " (another --out)" + System.lineSeparator()), err());
        assertEquals(1, err().lines().count(), "one line: " + err());
        assertTrue(Arrays.equals(before, Files.readAllBytes(store)), "the store is unchanged");

        Files.delete(store); // as the message says: the fixed source then imports
        assertEquals(0, run(command), err());
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            assertEquals(-0.5f, s.topK(new int[]{7}).logProbs()[0], 0f);
        }
    }

    /** Top-2 JSON Lines for 40 samples: class r % 10 at {@code first}, class (r + 1) % 10 at -2. */
    private static String topLogprobs(double first) {
        StringBuilder b = new StringBuilder();
        for (int r = 0; r < 40; r++) {
            b.append(String.format(Locale.ROOT, "{\"top_logprobs\": [{\"id\": %d, \"logprob\": %s}, {\"id\": %d, \"logprob\": -2.0}]}%n",
                    r % 10, first, (r + 1) % 10));
        }
        return b.toString();
    }

    /** Chunk bytes after the header, less the footer: equal for equal rows, whatever the provenance. */
    private static String rows(Path store) throws Exception {
        long from;
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            from = s.header().dataOffset();
        }
        byte[] all = Files.readAllBytes(store);
        return java.util.HexFormat.of().formatHex(Arrays.copyOfRange(all, (int) from, all.length - 20));
    }

    /** A float32 C-order .npy file, as numpy.save writes it. */
    static Path writeF32(Path p, float[] v, int rows, int cols) throws Exception {
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + rows + ", " + cols + "), }";
        int pad = 64 - (10 + dict.length() + 1) % 64;
        ByteBuffer b = ByteBuffer.allocate(10 + dict.length() + pad + 1 + v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        b.putShort((short) (dict.length() + pad + 1)).put(dict.getBytes(StandardCharsets.US_ASCII));
        for (int i = 0; i < pad; i++) {
            b.put((byte) ' ');
        }
        b.put((byte) '\n');
        for (float x : v) {
            b.putFloat(x);
        }
        Files.write(p, b.array());
        return p;
    }
    /**
     * An import whose --out is under a file (the file itself or a folder above it) is bad usage, refused before the data
     * or the source is read, as demo --store and eval --json: exit 2, one line naming the path and the file in the way. It
     * was found only when the store was created (exit 1, "cannot create folder ..."), after the source had been checked.
     */
    @Test
    void anImportUnderAFileIsRefusedBeforeAnythingIsRead(@TempDir Path tmp) throws Exception {
        Path afile = Files.writeString(tmp.resolve("afile"), "x");
        Path npy = writeF32(tmp.resolve("v.npy"), new float[10 * 10], 10, 10);
        for (Path under : new Path[] {afile.resolve("s.d4j"), afile.resolve("sub/s.d4j")}) {
            assertEquals(2, run("store", "import", "--npy", npy.toString(), "--data", "embedded", "--limit", "10", "--out",
                    under.toString(), "--quiet"), err());
            assertEquals("distill store import: --out " + under + ": " + afile + " is a file, not a folder; give --out a path in a"
                    + " folder (or move " + afile + " away)\n", err());
            assertEquals("", out(), "nothing imported");
        }
        assertEquals("x", Files.readString(afile));
    }
}
