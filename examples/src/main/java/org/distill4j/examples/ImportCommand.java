package org.distill4j.examples;

import org.distill4j.data.Dataset;
import org.distill4j.store.Labeler;
import org.distill4j.store.StoreFormatException;
import org.distill4j.store.StoreImport;
import org.distill4j.store.ValueCodec;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** {@code distill store import}: teacher outputs made elsewhere (.npy, JSON Lines) into a soft-target store. */
final class ImportCommand {
    private ImportCommand() {
    }

    static void usage(PrintStream out) {
        out.print("""
                usage: distill store import (--npy FILE | --jsonl FILE | --topk-npy IDS LOGPROBS) --out STORE [options]
                  imports teacher outputs computed elsewhere (PyTorch, an LLM server) into a soft-target store that
                  'distill run' (teacher.store) and StoredTeacher read like a labeled one. Row i of the source is the
                  teacher's output for sample i of the dataset (--data, --split, --limit); rerun the same command to
                  resume after an interruption.
                  --npy FILE             dense rows: a NumPy array [rows, V] or [batch, seq, V] of float16/32/64
                  --values KIND          what --npy holds: logits (default), log-probs or probs
                  --jsonl FILE           top-k rows, one JSON object per line: {"ids": [...], "logprobs": [...]}
                                         or {"top_logprobs": [{"id": 3, "logprob": -0.1}, ...]}
                  --topk-npy IDS LOGPROBS  top-k rows as two NumPy arrays [rows, K]: integer ids, log-probabilities
                  --topk K               keep the K most probable entries of each top-k row (default: all)
                  --vocab V              classes per row of a top-k source (default: the dataset's classes)
                  --data DIR|embedded    dataset the rows belong to (default: as 'distill demo')
                  --split train|test     which split (default train)
                  --limit N              only the first N samples
                  --dtype f32|f16|bf16   value encoding (default f16)
                  --chunk-rows N         rows per checksummed chunk (default 1024, or fewer to keep a chunk <= 64 MiB)
                  --teacher-id ID        the teacher's name in the store's provenance (default: a CRC32C of the
                                         source's content); the source's CRC32C and size are recorded either way,
                                         so a changed source is never resumed into (or reused as) the old store
                  --quiet                no progress display
                """);
    }

    /** The options besides the data options; each takes a value ({@code --topk-npy} two). */
    private static final java.util.Set<String> OPTIONS = java.util.Set.of("--npy", "--jsonl", "--topk-npy", "--values", "--topk", "--vocab",
            "--dtype", "--chunk-rows", "--teacher-id", "--out");

    static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
        Path npy = null;
        Path jsonl = null;
        Path ids = null;
        Path logProbs = null;
        Path outPath = null;
        StoreImport.Values values = null;
        DataOptions data = new DataOptions("train");
        StoreImport.Options o = StoreImport.Options.defaults();
        boolean progress = true;
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                usage(out);
                return Main.OK;
            }
            if (a.equals("--quiet")) {
                progress = false;
                continue;
            }
            if (!a.startsWith("--")) {
                throw new Main.UsageException("unexpected argument '" + a + "' (see distill store import --help)");
            }
            if (!DataOptions.isOption(a) && !OPTIONS.contains(a)) {
                throw new Main.UsageException("unknown option " + a + " (see distill store import --help)");
            }
            if (i + 1 >= args.length) {
                throw new Main.UsageException(a + " needs a value");
            }
            String v = args[++i];
            Main.once(seen, a);
            if (data.accept(a, v)) {
                continue;
            }
            switch (a) {
                case "--npy" -> npy = Main.path(a, v);
                case "--jsonl" -> jsonl = Main.path(a, v);
                case "--topk-npy" -> {
                    if (i + 1 >= args.length) {
                        throw new Main.UsageException("--topk-npy needs two files: the ids and the log-probabilities");
                    }
                    if (args[i + 1].startsWith("--")) { // an option, not the log-probabilities' file
                        throw new Main.UsageException("--topk-npy needs two files, the ids and the log-probabilities; got '" + v
                                + "' and then option " + args[i + 1]);
                    }
                    ids = Main.path(a, v);
                    logProbs = Main.path(a, args[++i]);
                }
                case "--values" -> {
                    try {
                        values = StoreImport.Values.parse(v);
                    } catch (IllegalArgumentException e) {
                        throw new Main.UsageException("--values: " + e.getMessage());
                    }
                }
                case "--topk" -> o = o.withTopK(Main.positive(a, v));
                case "--vocab" -> o = o.withVocab(Main.positive(a, v));
                case "--dtype" -> {
                    try {
                        o = o.withCodec(ValueCodec.parse(v));
                    } catch (IllegalArgumentException e) {
                        throw new Main.UsageException("--dtype: " + e.getMessage());
                    }
                }
                case "--chunk-rows" -> o = o.withChunkRows(Main.positive(a, v));
                case "--teacher-id" -> o = o.withTeacherId(StoreCommands.teacherId(a, v));
                case "--out" -> outPath = Main.path(a, v);
                default -> throw new Main.UsageException("unknown option " + a + " (see distill store import --help)");
            }
        }
        int sources = (npy != null ? 1 : 0) + (jsonl != null ? 1 : 0) + (ids != null ? 1 : 0);
        if (sources != 1 || outPath == null) {
            throw new Main.UsageException("give one of --npy, --jsonl or --topk-npy, and --out (see distill store import --help)");
        }
        if (npy == null && values != null) {
            throw new Main.UsageException("--values applies to --npy; top-k sources hold log-probabilities");
        }
        if (npy != null && (o.topK() != 0 || o.vocab() != 0)) {
            throw new Main.UsageException("--topk and --vocab apply to top-k sources; a dense .npy keeps every class of its last axis");
        }
        // a directory there, or a file where a folder above it must be: refused before any source is read, as distill label
        Main.outputFile("--out", outPath, "the store's file name");
        for (Path p : new Path[]{npy, jsonl, ids, logProbs}) {
            if (p != null && !Files.isRegularFile(p)) {
                throw new Main.UsageException(p + ": no such file");
            }
        }
        DataOptions.Loaded loaded = data.load();
        Dataset d = loaded.data();
        if (d.size() == 0) { // before the source is read; the store writer would refuse 0 rows naming neither data nor file
            err.println("distill store import: no samples to import: " + d.name() + " from " + loaded.source()
                    + " is empty; expected at least one sample");
            return Main.FAILED;
        }
        long total = d.size();
        boolean show = progress && System.console() != null;
        java.util.function.LongConsumer tell = rows -> {
            if (show) {
                System.err.printf(Locale.ROOT, "\r%,d / %,d rows", rows, total);
            }
        };
        Labeler.Result r;
        try {
            r = npy != null ? StoreImport.dense(npy, values == null ? StoreImport.Values.LOGITS : values, d, outPath, o, tell)
                    : jsonl != null ? StoreImport.topK(jsonl, d, outPath, o, tell)
                    : StoreImport.topK(ids, logProbs, d, outPath, o, tell);
        } catch (org.distill4j.store.StoreMismatchException e) {
            // a store of another source or settings at --out: nothing was changed; a choice to make (as distill label)
            err.println("distill store import: " + e.getMessage());
            return Main.USAGE;
        } catch (IllegalArgumentException | IllegalStateException | StoreFormatException e) {
            // a wrong source or settings: the message names the file, row and value; no stack trace helps
            err.println("distill store import: " + e.getMessage());
            return Main.FAILED;
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            // a full disk, a file size limit, a folder that is a file, an unreadable source: the message names the file (and,
            // for the store, that a rerun resumes it)
            err.println("distill store import: " + Main.ioMessage(e));
            return Main.FAILED;
        } finally {
            if (show) {
                System.err.println();
            }
        }
        if (r.alreadyComplete()) {
            out.println(outPath + " is already complete; nothing to do");
        } else {
            out.printf(Locale.ROOT, "imported %,d rows for %s%s into %s in %.1f s (%,.0f rows/s), %,d bytes%n", r.rows() - r.resumedFrom(),
                    d.name(), r.resumedFrom() > 0 ? " (resumed at row " + r.resumedFrom() + ")" : "", outPath, r.seconds(),
                    r.rowsPerSecond(), Files.size(outPath));
        }
        return Main.OK;
    }
}
