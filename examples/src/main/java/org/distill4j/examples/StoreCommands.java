package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.distill4j.data.Dataset;
import org.distill4j.store.Labeler;
import org.distill4j.store.SoftTargetStore;
import org.distill4j.store.StoreHeader;
import org.distill4j.store.StoreWriter;
import org.distill4j.store.ValueCodec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** {@code distill label} and {@code distill store info|verify}. */
final class StoreCommands {
    private StoreCommands() {
    }

    static void labelUsage(PrintStream out) {
        out.print("""
                usage: distill label --teacher MODEL --out STORE [options]
                  runs a saved teacher over a dataset once and writes its outputs to a soft-target store; rerun the
                  same command to resume after an interruption. MODEL: a DL4J zip (e.g. from 'distill demo
                  --save-teacher'), or an ONNX (.onnx) / TorchScript (.pt) file run through DJL
                  --data DIR|embedded    dataset (default: as 'distill demo')
                  --split train|test     which split (default train)
                  --limit N              only the first N samples
                  --topk K               keep the top K classes per row (default: dense rows)
                  --dtype f32|f16|bf16   value encoding (default f16)
                  --chunk-rows N         rows per checksummed chunk (default 1024); the teacher runs in batches
                                         of up to 1024 rows that never cross a chunk
                  --teacher-id ID        the teacher's name in the store's provenance (default: a hash of the model's
                                         content); the store also records a hash of its weights, so a store is
                                         resumed or reused only for the same id and the very same weights (a
                                         retrained model under the same id is refused: give it its own id or store)
                  --quiet                no progress display
                """);
        out.print(new ModelFiles.Options("--").help(22));
    }

    /** The options of {@code label} besides the data and model options; each takes a value. */
    private static final java.util.Set<String> LABEL_OPTIONS = java.util.Set.of("--teacher", "--out", "--topk", "--dtype", "--chunk-rows",
            "--teacher-id");

    /**
     * A {@code --teacher-id}: not blank (an unset shell variable would name every model alike, so a store would be resumed
     * or reused with another model's rows) and without control characters (the store's provenance is one JSON line).
     */
    static String teacherId(String option, String v) throws Main.UsageException {
        if (v.isBlank()) {
            throw new Main.UsageException(option + ": '" + v + "' is blank; expected a name for the teacher (or no " + option
                    + " for a hash of its content)");
        }
        if (v.chars().anyMatch(Character::isISOControl)) {
            throw new Main.UsageException(option + ": '" + Main.printable(v) + "' holds a control character; expected a name for the teacher");
        }
        return v;
    }

    static int label(String[] args, PrintStream out, PrintStream err) throws Exception {
        Path teacherPath = null;
        Path outPath = null;
        DataOptions data = new DataOptions("train");
        int topK = 0;
        ValueCodec codec = ValueCodec.F16;
        int chunkRows = 1024;
        String teacherId = null;
        boolean progress = true;
        ModelFiles.Options model = new ModelFiles.Options("--");
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                labelUsage(out);
                return Main.OK;
            }
            if (a.equals("--quiet")) { // the README's promise for every command with a progress display
                progress = false;
                continue;
            }
            if (!a.startsWith("--")) {
                throw new Main.UsageException("unexpected argument '" + a + "' (see distill label --help)");
            }
            if (!model.isSet(a) && !DataOptions.isOption(a) && !LABEL_OPTIONS.contains(a)) {
                throw new Main.UsageException("unknown option " + a + " (see distill label --help)");
            }
            if (i + 1 >= args.length) {
                throw new Main.UsageException(a + " needs a value");
            }
            String v = args[++i];
            Main.once(seen, a);
            if (model.isSet(a)) {
                model.set(a, v);
                continue;
            }
            if (data.accept(a, v)) {
                continue;
            }
            switch (a) {
                case "--teacher" -> teacherPath = Main.path(a, v);
                case "--out" -> outPath = Main.path(a, v);
                case "--topk" -> topK = Main.positive(a, v);
                case "--dtype" -> {
                    try {
                        codec = ValueCodec.parse(v);
                    } catch (IllegalArgumentException e) {
                        throw new Main.UsageException("--dtype: " + e.getMessage());
                    }
                }
                case "--chunk-rows" -> chunkRows = Main.positive(a, v);
                case "--teacher-id" -> teacherId = teacherId(a, v);
                default -> throw new Main.UsageException("unknown option " + a + " (see distill label --help)");
            }
        }
        if (teacherPath == null || outPath == null) {
            throw new Main.UsageException("--teacher and --out are required (see distill label --help)");
        }
        if (!Files.isRegularFile(teacherPath)) {
            throw new Main.UsageException("--teacher " + teacherPath + ": no such model file");
        }
        // a directory there, or a file where a folder above it must be: refused now, not once the data and the teacher loaded
        Main.outputFile("--out", outPath, "the store's file name");
        DataOptions.Loaded loaded = data.load();
        Dataset d = loaded.data();
        if (d.size() == 0) { // before the teacher loads; the store writer would refuse 0 rows naming neither data nor file
            throw new IllegalArgumentException("no samples to label: " + d.name() + " from " + loaded.source()
                    + " is empty; expected at least one sample");
        }
        if (topK > d.classes()) { // before the teacher is loaded and run
            throw new Main.UsageException("--topk " + topK + " is more than the " + d.classes() + " classes of the data; expected 1 to "
                    + d.classes() + " (or no --topk for dense rows)");
        }
        try (ModelFiles.Loaded teacher = ModelFiles.load(teacherPath, model, d, loaded.image())) {
            if (topK > teacher.model().classes()) {
                throw new Main.UsageException("--topk " + topK + " is more than the " + teacher.model().classes() + " classes of "
                        + teacherPath.getFileName());
            }
            return label(teacher, teacherId, d, loaded.source(), outPath, topK, codec, chunkRows, progress, out, err);
        }
    }

    /** Rows per teacher call for chunks of {@code chunkRows}: the chunk, up to 1024 rows (which divide the default chunk). */
    static int teacherBatch(int chunkRows) {
        return Math.min(chunkRows, 1024);
    }

    private static int label(ModelFiles.Loaded teacher, String teacherId, Dataset d, String source, Path outPath,
                             int topK, ValueCodec codec, int chunkRows, boolean progress, PrintStream out, PrintStream err)
            throws Exception {
        // the content hash, not the file name: a retrained model saved under the same name must not resume (or reuse) a
        // store with the old model's rows; the header check on resume compares this id
        String id = teacherId != null ? teacherId : teacher.id();
        // teacher batches never cross a chunk (Labeler.Options): a batch the size of the chunk, or 1024 rows of a larger
        // one, gives each default chunk of 1024 one full batch instead of 1000 rows and a short batch of 24
        Labeler.Options o = new Labeler.Options(topK, codec, chunkRows, teacherBatch(chunkRows), id);
        out.printf(Locale.ROOT, "labeling %s (%d samples from %s) with %s (%s) into %s%n", d.name(), d.size(), source, id,
                teacher.describe(), outPath);
        long total = d.size();
        boolean show = progress && System.console() != null;
        Labeler.Result r;
        try {
            r = Labeler.label(teacher.model(), d, outPath, o, rows -> {
                if (show) {
                    System.err.printf(Locale.ROOT, "\r%,d / %,d rows", rows, total);
                }
            });
        } catch (org.distill4j.store.StoreBusyException e) {
            // another labeling or import of this store is running: the state of things, not a bug; the message says what to do
            err.println("distill label: " + e.getMessage());
            return Main.FAILED;
        } catch (IOException | java.io.UncheckedIOException e) {
            // a full disk, a file size limit, a folder that is a file: the message names the file and what to do, no trace helps
            err.println("distill label: " + Main.ioMessage(e));
            return Main.FAILED;
        } finally {
            if (show) {
                System.err.println();
            }
        }
        if (r.alreadyComplete()) {
            out.println(outPath + " is already complete; nothing to do");
        } else {
            out.printf(Locale.ROOT, "wrote %,d rows%s in %.1f s (%,.0f rows/s), %,d bytes%n", r.rows() - r.resumedFrom(),
                    r.resumedFrom() > 0 ? " (resumed at row " + r.resumedFrom() + ")" : "", r.seconds(), r.rowsPerSecond(),
                    Files.size(outPath));
        }
        return Main.OK;
    }

    static void storeUsage(PrintStream out) {
        out.println("""
                usage: distill store info|verify STORE
                       distill store import (--npy FILE | --jsonl FILE | --topk-npy IDS LOGPROBS) --out STORE [options]
                  info     the header (layout, values, vocabulary, rows, chunks, bytes per row, provenance)
                  verify   read every chunk and check its CRC32C and values, and the file's size and footer; prints
                           each problem and how many, with exit code 1 (OK with the chunks and rows: exit code 0)
                  import   teacher outputs made elsewhere (NumPy .npy, JSON Lines logprobs) into a store
                           (distill store import --help)
                  an unfinished store (an interrupted 'distill label') is reported as such: rerun the label command""");
    }

    static int store(String[] args, PrintStream out, PrintStream err) throws Exception {
        if (args.length > 0 && args[0].equals("import")) {
            return ImportCommand.run(java.util.Arrays.copyOfRange(args, 1, args.length), out, err);
        }
        if (args.length == 1 && (args[0].equals("--help") || args[0].equals("-h"))) {
            storeUsage(out);
            return Main.OK;
        }
        boolean sub = args.length > 0 && (args[0].equals("info") || args[0].equals("verify"));
        if (sub && args.length == 2 && (args[1].equals("--help") || args[1].equals("-h"))) { // not a store named --help
            storeUsage(out);
            return Main.OK;
        }
        if (args.length != 2 || !sub) {
            throw new Main.UsageException("usage: distill store info|verify PATH, or distill store import --help");
        }
        Path p = Main.path("STORE", args[1]);
        String name = "distill store " + args[0] + ": ";
        if (!Files.exists(p) && !Files.exists(StoreWriter.partialPath(p))) {
            err.println(name + p + ": no such store");
            return Main.FAILED;
        }
        if (Files.isDirectory(p)) {
            err.println(name + p + ": a directory, not a store");
            return Main.FAILED;
        }
        if (Files.exists(p) && !Files.isRegularFile(p)) { // a FIFO or a device would block the read forever, or never end
            err.println(name + p + ": not a regular file; expected a store file");
            return Main.FAILED;
        }
        if (args[0].equals("verify")) {
            return verify(p, out, err);
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            StoreHeader h = s.header();
            out.printf(Locale.ROOT, """
                    store        %s
                    format       version %d
                    layout       %s%s
                    values       %s, %s
                    vocabulary   %,d
                    rows         %,d in %,d chunks of %,d
                    bytes/row    %,d%s
                    file size    %,d bytes
                    temperature  %s
                    provenance   %s
                    """, p, StoreHeader.VERSION, h.layout() == StoreHeader.Layout.TOP_K ? "top-k, k = " + h.k() : "dense",
                    h.layout() == StoreHeader.Layout.TOP_K ? ", " + h.idBytes() + "-byte ids" : "",
                    h.values() == StoreHeader.ValueKind.LOGITS ? "logits" : "log-probabilities", h.codec().name().toLowerCase(),
                    h.vocab(), h.rows(), h.chunks(), h.chunkRows(), h.rowBytes(),
                    h.layout() == StoreHeader.Layout.TOP_K
                            ? String.format(Locale.ROOT, " (%.1f per entry)", h.rowBytes() / (double) h.k()) : "",
                    Files.size(p), h.temperature(), h.provenance());
            return Main.OK;
        } catch (org.distill4j.store.StoreFormatException e) {
            err.println("distill store info: " + e.getMessage());
            return Main.FAILED;
        }
    }

    /**
     * {@code distill store verify}: each problem {@link SoftTargetStore#verify(Path)} finds (a damaged chunk, bad values, the
     * footer, the file's size, or a file that cannot be opened: truncated, a corrupt header) on its own line of {@code err},
     * then how many there are, with exit code 1; a good store is one line on {@code out}: its chunks and rows.
     */
    static int verify(Path p, PrintStream out, PrintStream err) throws IOException {
        List<String> problems = SoftTargetStore.verify(p);
        if (problems.isEmpty()) {
            StoreHeader h;
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                h = s.header();
            }
            out.printf(Locale.ROOT, "%s: OK, %,d chunks, %,d rows%n", p, h.chunks(), h.rows());
            return Main.OK;
        }
        problems.forEach(err::println);
        err.printf(Locale.ROOT, "%,d problem%s found in %s%n", problems.size(), problems.size() == 1 ? "" : "s", p);
        return Main.FAILED;
    }

    /** Saves a trained teacher as a DL4J model file, atomically. */
    static void saveModel(MultiLayerNetwork net, Path path) throws IOException {
        AtomicFiles.write(path, ".tmp", tmp -> ModelSerializer.writeModel(net, tmp.toFile(), false));
    }
}
