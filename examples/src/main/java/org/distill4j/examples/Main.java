package org.distill4j.examples;

import org.distill4j.backend.Availability;
import org.distill4j.backend.Backends;
import org.distill4j.backend.ComputeBackendProvider;
import org.distill4j.loss.FeatureLosses;
import org.distill4j.loss.Losses;
import org.distill4j.train.StepEngines;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The {@code distill} command line. Exit codes: 0 success, 1 the run failed, 2 bad usage (an option, a recipe, a
 * backend setting that names an unknown or unavailable backend, a step engine setting that names an unknown engine or
 * one that declines the run, --resume onto checkpoints a run with other settings wrote, a store path holding another
 * teacher's or settings' store, or an output folder another run is writing).
 *
 * <pre>
 * distill demo [options]   the Hinton-style table on Fashion-MNIST (see --help)
 * distill list             registered losses and compute backends (with availability)
 * </pre>
 */
public final class Main {
    static final int OK = 0;
    static final int FAILED = 1;
    static final int USAGE = 2;

    private Main() {
    }

    /**
     * JavaCPP's system property choosing where its log goes: "slf4j" sends it through SLF4J (slf4j-simple here) instead of
     * straight to stderr, where every command that loads ND4J printed "Warning: Versions of org.bytedeco:javacpp:1.5.13 and
     * org.bytedeco:openblas:0.3.19-1.5.7 do not match." (DJL's JavaCPP beside ND4J's OpenBLAS build; harmless).
     */
    static final String JAVACPP_LOGGER = "org.bytedeco.javacpp.logger";

    public static void main(String[] args) {
        if (System.getProperty(JAVACPP_LOGGER) == null) { // before anything loads ND4J; -D on the command line wins
            System.setProperty(JAVACPP_LOGGER, "slf4j");
        }
        // Ctrl-C or SIGTERM runs the shutdown hooks: a long command that did not finish says how to go on
        java.util.concurrent.atomic.AtomicBoolean finished = new java.util.concurrent.atomic.AtomicBoolean();
        String hint = interruptedHint(args);
        if (hint != null) {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                if (!finished.get()) {
                    System.err.println(hint);
                }
            }, "distill-interrupted"));
        }
        int code;
        try {
            code = run(args, System.out, System.err);
        } finally {
            finished.set(true); // an Error (out of memory, a class that cannot load) ends the command too: no hint
        }
        if (code != OK) {
            System.exit(code); // the CLI entry point alone decides the process exit code
        }
    }

    /**
     * What an interrupted command prints (the JVM's shutdown, before the command returned), or {@code null} for a
     * command that has nothing to resume: demo and run go on from their checkpoints with {@code --resume}, label and
     * store import from their store's complete chunks with the same command.
     */
    static String interruptedHint(String[] args) {
        if (args.length == 0 || Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
            return null;
        }
        boolean resume = Arrays.asList(args).contains("--resume");
        return switch (args[0]) {
            case "demo", "run" -> "distill " + args[0] + ": interrupted. Each row goes on from its last checkpoint when you"
                    + " run the same command " + (resume ? "again (it has --resume)"
                    : "with --resume") + "; without --resume every row starts over";
            case "label" -> "distill label: interrupted. The store's .partial file keeps its complete chunks: the same"
                    + " command goes on from there";
            case "store" -> args.length > 1 && args[1].equals("import") ? "distill store import: interrupted. The store's"
                    + " .partial file keeps its complete chunks: the same command goes on from there" : null;
            default -> null;
        };
    }

    /** Runs a command; returns the exit code. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            usage(out);
            return args.length == 0 ? USAGE : OK;
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        // what errors are prefixed with: "distill store import:", not "distill store:", for a store subcommand
        String command = args[0].equals("store") && args.length > 1 && List.of("import", "info", "verify").contains(args[1])
                ? "store " + args[1] : args[0];
        try {
            return switch (args[0]) {
                case "demo" -> demo(rest, out, err);
                case "list" -> {
                    if (rest.length == 1 && (rest[0].equals("--help") || rest[0].equals("-h"))) {
                        out.println("usage: distill list\n  the registered losses and feature losses (names and settings for recipes),"
                                + " the shipped recipes, and the compute backends with their availability");
                        yield OK;
                    }
                    if (rest.length > 0) {
                        throw new UsageException("list takes no arguments (see distill list --help)");
                    }
                    yield list(out);
                }
                case "label" -> StoreCommands.label(rest, out, err);
                case "run" -> runRecipe(rest, out);
                case "eval" -> EvalCommand.run(rest, out);
                case "bench" -> {
                    err.println("distill bench: the benchmark suite runs through the launcher script: ./distill bench --help"
                            + " (or benchmarks/run-cpu.sh)");
                    yield USAGE;
                }
                case "store" -> StoreCommands.store(rest, out, err);
                default -> {
                    err.println("distill: unknown command '" + args[0] + "'; commands: demo, run, eval, list, label, store, bench (see distill --help)");
                    yield USAGE;
                }
            };
        } catch (org.distill4j.examples.recipe.RecipeException e) {
            err.println("distill " + command + ": " + e.getMessage());
            return USAGE;
        } catch (UsageException e) {
            err.println("distill " + command + ": " + e.getMessage());
            return USAGE;
        } catch (Backends.UnavailableBackendException | Backends.UnknownBackendException
                 | StepEngines.UnavailableEngineException | StepEngines.UnknownEngineException e) {
            // a setting to change (-Ddistill.backend, DISTILL_BACKEND, training.backend, -Ddistill.engine, DISTILL_ENGINE), not
            // a failure of the run: the message names the setting, why the backend or engine cannot run and what can
            err.println("distill " + command + ": " + e.getMessage());
            return USAGE;
        } catch (RunFolder.NotAFolderException e) {
            // --out under a file, or where the folder cannot be made: nothing was written; a path to change
            err.println("distill " + command + ": " + e.getMessage());
            return USAGE;
        } catch (RunFolder.InUseException e) {
            // another run holds the output folder: nothing was changed; wait for it, or give another --out
            err.println("distill " + command + ": " + e.getMessage());
            return USAGE;
        } catch (org.distill4j.store.StoreMismatchException e) {
            // a store of another teacher or settings at the output path: nothing was changed; a choice to make
            err.println("distill " + command + ": " + e.getMessage());
            return USAGE;
        } catch (org.distill4j.checkpoint.CheckpointMismatchException e) {
            // --resume with changed settings: a choice to make, not a failure
            err.println("distill " + command + ": " + withoutApiAdvice(e.getMessage()) + " (distill: rerun with the settings the run"
                    + " was started with, or without --resume to train every row from the start)");
            return USAGE;
        } catch (Exception e) {
            // a file that is not what it should be, data that is not there, an empty split: one line saying so; a genuine bug
            // (an exception no user input explains) keeps its stack trace, as does any failure with DISTILL_DEBUG=1
            return failed(command, e, err);
        }
    }

    /** A failure the command did not expect: one line, and the stack trace for a bug or with DISTILL_DEBUG=1; exit code 1. */
    static int failed(String command, Exception e, PrintStream err) {
        err.println("distill " + command + " failed: " + oneLine(ioMessage(e)));
        if (debug() || isBug(e)) {
            e.printStackTrace(err);
        }
        return FAILED;
    }

    /** The environment variable that makes every failure print its stack trace (a bug report's details). */
    static final String DEBUG_ENV = "DISTILL_DEBUG";

    /** Whether DISTILL_DEBUG=1 (or -Ddistill.debug=true) asks for every failure's stack trace. */
    static boolean debug() {
        return "1".equals(System.getenv(DEBUG_ENV)) || Boolean.getBoolean("distill.debug");
    }

    /**
     * Whether {@code e} is a programming error rather than a failure user input explains: its stack trace is what a bug
     * report needs. Inverted on purpose: only known user-input failures (I/O errors, bad arguments and our own user-facing
     * exception types) print one line; anything else (our own IllegalStateExceptions, ND4J's "Op [..] execution failed", a
     * DL4J NullPointerException) keeps its trace. The cause chain is walked, so that a user-type wrapper around a bug-type
     * cause (a NullPointerException wrapped in an IOException) still shows the trace; a wrapper that diagnosed its cause
     * (a file that is not a model at all) ends the walk. Exceptions without a message say nothing to a user either.
     */
    static boolean isBug(Throwable e) {
        if ((e.getMessage() == null || e.getMessage().isBlank()) && !(e instanceof java.nio.file.FileSystemException)) {
            return true;
        }
        if (!isUserError(e)) {
            return true;
        }
        java.util.Set<Throwable> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Throwable t = e; t != null && seen.add(t); t = t.getCause()) {
            if (t instanceof ModelFiles.NotAModelException) {
                return false; // the file is not a model: whatever the reader threw on the way is explained
            }
            if (bugType(t)) {
                return true;
            }
        }
        return false;
    }

    /** Failures that user input explains: a file, a path, an argument, a store or checkpoint that is not what it should be. */
    static boolean isUserError(Throwable t) {
        return t instanceof java.io.IOException || t instanceof java.io.UncheckedIOException || t instanceof IllegalArgumentException
                || t instanceof org.distill4j.examples.recipe.RecipeException || t instanceof org.distill4j.store.StoreMismatchException
                || t instanceof org.distill4j.store.StoreFormatException || t instanceof org.distill4j.store.StoreBusyException
                || t instanceof org.distill4j.checkpoint.CheckpointMismatchException || t instanceof RunFolder.InUseException
                || t instanceof Backends.UnavailableBackendException || t instanceof StepEngines.UnavailableEngineException
                || t instanceof org.distill4j.data.FashionMnist.NotFoundException
                || t instanceof java.util.concurrent.CancellationException || t instanceof InterruptedException
                || t instanceof java.nio.channels.ClosedByInterruptException;
    }

    /** Causes that are programming errors wherever they sit in the chain: the JDK's bug types, our own state errors, Errors. */
    static boolean bugType(Throwable t) {
        if (isUserError(t)) {
            return false;
        }
        return t instanceof Error || t instanceof NullPointerException || t instanceof ClassCastException
                || t instanceof IndexOutOfBoundsException || t instanceof ArithmeticException || t instanceof IllegalStateException
                || t instanceof UnsupportedOperationException || t instanceof ArrayStoreException
                || t instanceof java.util.ConcurrentModificationException || t instanceof java.util.NoSuchElementException
                || t.getClass() == RuntimeException.class;
    }

    /** A message as one line: its line breaks (and the indentation after them) become single spaces. */
    static String oneLine(String message) {
        return String.valueOf(message).strip().replaceAll("\\s*\\R\\s*", " ");
    }

    /**
     * An I/O failure as one line for the command's error output: the message of a store writer's or reader's error, which
     * names the file and what to do; for the system's own errors, the file and the reason ("afile: Not a directory"), which
     * {@code getMessage()} ran together or left out.
     */
    static String ioMessage(Exception e) {
        // new UncheckedIOException(cause) says only cause.toString(): the cause tells more; a wrapper with its own message
        // ("cannot save the checkpoint ...: No space left on device") names the file and the action, so it stays
        Throwable t = e instanceof java.io.UncheckedIOException u && u.getCause() != null
                && (u.getMessage() == null || u.getMessage().equals(u.getCause().toString())) ? u.getCause() : e;
        if (t instanceof java.nio.file.FileSystemException fs) {
            return fs.getFile() + (fs.getOtherFile() != null ? " -> " + fs.getOtherFile() : "") + ": "
                    + (fs.getReason() != null ? fs.getReason() : reason(fs));
        }
        return t.getMessage() != null ? t.getMessage() : t.getClass().getSimpleName();
    }

    /** In words, what a file-system exception without a reason text means (not its Java class name). */
    static String reason(java.nio.file.FileSystemException fs) {
        if (fs instanceof java.nio.file.NoSuchFileException) {
            return "no such file or folder";
        } else if (fs instanceof java.nio.file.AccessDeniedException) {
            return "permission denied";
        } else if (fs instanceof java.nio.file.FileAlreadyExistsException) {
            return "already exists";
        } else if (fs instanceof java.nio.file.NotDirectoryException) {
            return "not a folder";
        } else if (fs instanceof java.nio.file.DirectoryNotEmptyException) {
            return "the folder is not empty";
        } else if (fs instanceof java.nio.file.NotLinkException) {
            return "not a symbolic link";
        } else if (fs instanceof java.nio.file.FileSystemLoopException) {
            return "a loop of symbolic links";
        }
        return "cannot be used";
    }

    /**
     * A checkpoint mismatch's message without the library's advice, which names a Java API (Checkpoints.startOver()) that a
     * command-line user cannot call: the command's own advice replaces it.
     */
    static String withoutApiAdvice(String message) {
        int cut = message.indexOf(". Resume with ");
        if (cut >= 0) {
            return message.substring(0, cut);
        }
        return message.replace("Checkpoints.startOver()", "a run without --resume");
    }

    static void usage(PrintStream out) {
        out.println("""
                usage: distill <command> [options]

                commands:
                  demo    train a teacher, a student alone and the same student distilled on Fashion-MNIST,
                          print the table, write results.json and provenance.json (distill demo --help)
                  run     run a recipe (YAML): teacher, student alone, student distilled, and a report (distill run --help)
                  eval    MODEL: accuracy, per-class accuracy, NLL and samples/s of a model (DL4J zip, ONNX, TorchScript);
                          with --teacher also agreement and KL to the teacher (distill eval --help)
                  list    show the registered losses, feature losses, recipes and compute backends
                  label   run a saved teacher over a dataset once into a soft-target store (distill label --help)
                  store   info|verify PATH: print a store's header, or check every chunk's checksum; import: teacher
                          outputs made elsewhere (.npy, JSON Lines) into a store (distill store --help)
                  bench   run the JMH benchmark suite (launcher only; distill bench --help)

                environment: DISTILL_DATA (dataset directory), DISTILL_BACKEND or -Ddistill.backend (cpu, cuda, auto),
                             DISTILL_ENGINE or -Ddistill.engine (what runs the training steps: auto, dl4j, cuda-mlp),
                             DISTILL_DEBUG=1 (a Java stack trace with every error, for a bug report)
                exit codes: 0 success, 1 the run failed, 2 bad usage (a bad option, recipe, backend or engine setting,
                            an output path checked before the work: one under a file, or an --out that cannot be made;
                            an output folder another run is writing; a store of another teacher or other settings
                            already at the output path; --resume onto checkpoints written with other settings)""");
    }

    static int list(PrintStream out) {
        out.println("losses:");
        for (Losses.Entry e : Losses.entries()) {
            out.printf(Locale.ROOT, "  %-12s %s  [settings: %s]%n", e.name(), e.description(), String.join(", ", e.settings()));
        }
        out.println("feature losses (on intermediate activations):");
        for (FeatureLosses.Entry e : FeatureLosses.entries()) {
            out.printf(Locale.ROOT, "  %-12s %s  [settings: %s]%n", e.name(), e.description(), String.join(", ", e.settings()));
        }
        Path recipes = recipesDir(codeLocation(), Path.of("").toAbsolutePath());
        if (recipes != null) {
            out.println("recipes (distill run FILE):");
            Path cwd = Path.of("").toAbsolutePath();
            try (java.util.stream.Stream<Path> files = java.nio.file.Files.walk(recipes)) {
                // as paths to give distill run from here: relative below the working directory, else absolute
                files.filter(f -> f.toString().endsWith(".yaml")).sorted()
                        .forEach(f -> out.println("  " + (f.startsWith(cwd) ? cwd.relativize(f) : f)));
            } catch (java.io.IOException e) {
                out.println("  (cannot list " + recipes + ": " + e.getMessage() + ")");
            }
        } else {
            out.println("recipes: none found (they ship in the source tree, examples/recipes)");
        }
        out.println("backends (highest priority first):");
        for (ComputeBackendProvider p : Backends.providers()) {
            Availability a = p.probe();
            out.printf(Locale.ROOT, "  %-12s priority %-4d %s%n", p.name(), p.priority(),
                    a.available() ? "available: " + a.detail() : "unavailable: " + a.reasonText());
        }
        return OK;
    }

    /**
     * The shipped recipes: {@code examples/recipes} of the source tree this code runs from (found upwards from
     * its jar or classes folder, so from any working directory), else below the working directory; null when
     * neither has them (an installed jar).
     */
    static Path recipesDir(Path codeLocation, Path cwd) {
        for (Path d = codeLocation == null ? null : codeLocation.toAbsolutePath(); d != null; d = d.getParent()) {
            Path r = d.resolve("examples").resolve("recipes");
            if (java.nio.file.Files.isDirectory(r) && java.nio.file.Files.isRegularFile(d.resolve("examples").resolve("pom.xml"))) {
                return r.normalize(); // a Distill4J source tree, not any folder named examples/recipes above the jar
            }
        }
        Path r = cwd.resolve("examples").resolve("recipes");
        return java.nio.file.Files.isDirectory(r) ? r.normalize() : null;
    }

    /** The jar or classes folder this class was loaded from, or null when unknown. */
    static Path codeLocation() {
        try {
            var src = Main.class.getProtectionDomain().getCodeSource();
            return src == null ? null : Path.of(src.getLocation().toURI());
        } catch (java.net.URISyntaxException | RuntimeException e) {
            return null;
        }
    }

    static int demo(String[] args, PrintStream out, PrintStream err) throws Exception {
        Demo.Settings s = new Demo.Settings();
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                demoUsage(out, s);
                return OK;
            }
            if (a.equals("--quiet")) {
                s.progress = false;
                continue;
            }
            if (a.equals("--resume")) {
                s.resume = true;
                continue;
            }
            if (a.equals("--flip")) {
                s.flip = true;
                continue;
            }
            if (!a.startsWith("--")) {
                throw new UsageException("unexpected argument '" + a + "'");
            }
            if (i + 1 >= args.length) {
                throw new UsageException(a + " needs a value");
            }
            String v = args[++i];
            once(seen, a);
            switch (a) {
                case "--data" -> {
                    s.embedded = v.equals("embedded");
                    s.data = s.embedded ? null : path(a, v);
                }
                case "--out" -> s.out = path(a, v);
                case "--seed" -> s.seed = parseLong(a, v);
                case "--seeds" -> s.seeds = seedList(a, v);
                case "--teacher-samples" -> s.teacherSamples = positive(a, v);
                case "--teacher-epochs" -> s.teacherEpochs = positive(a, v);
                case "--teacher-hidden" -> s.teacherHidden = sizes(a, v);
                case "--teacher-conv" -> s.teacherConv = sizes(a, v);
                case "--teacher-dropout" -> s.teacherDropout = dropout(a, v);
                case "--transfer-samples" -> s.transferSamples = positive(a, v);
                case "--unlabeled-samples" -> s.unlabeledSamples = nonNegative(a, v);
                case "--mixup" -> s.mixup = positiveDouble(a, v);
                case "--shift" -> s.shift = positive(a, v);
                case "--student-epochs" -> s.studentEpochs = positive(a, v);
                case "--student-hidden" -> s.studentHidden = sizes(a, v);
                case "--student-conv" -> s.studentConv = sizes(a, v);
                case "--test-samples" -> s.testSamples = positive(a, v);
                case "--batch-size" -> s.batchSize = positive(a, v);
                case "--lr" -> s.learningRate = positiveDouble(a, v);
                case "--temperature" -> s.temperature = positiveDouble(a, v);
                case "--alpha" -> s.alpha = fraction(a, v);
                case "--compare" -> s.compare = compareList(a, v);
                case "--save-teacher" -> s.saveTeacher = path(a, v);
                case "--store" -> s.store = path(a, v);
                default -> throw new UsageException("unknown option " + a + " (see distill demo --help)");
            }
        }
        // where the results go, checked before anything trains (each is written only after rows have trained)
        outputDirectory("--out", s.out);
        outputFile("--save-teacher", s.saveTeacher, "the model's file name");
        outputFile("--store", s.store, "the store's file name");
        for (String spec : s.compare) {
            // each row's loss is built now, with the final --temperature and --alpha, so a bad setting is a usage error
            // before any training (topk-kd:k=11 on 10 classes, dkd:beta=x)
            Demo.Method m;
            try {
                m = Demo.method(spec, s);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--compare " + spec + ": " + e.getMessage());
            }
            int classes = org.distill4j.data.FashionMnist.CLASS_NAMES.size();
            if (m.topK() < 1 && spec.startsWith(org.distill4j.loss.TopKKd.NAME) || m.topK() > classes) {
                throw new UsageException("--compare " + spec + ": k must be 1 to " + classes + " (the classes of Fashion-MNIST), got "
                        + m.topK());
            }
        }
        Demo.run(s, out);
        return OK;
    }

    static int runRecipe(String[] args, PrintStream out) throws Exception {
        Path recipe = null;
        Path outDir = null;
        boolean progress = true;
        boolean resume = false;
        List<String> sets = new java.util.ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--help", "-h" -> {
                    out.println("""
                            usage: distill run RECIPE.yaml [--set key.path=value ...] [--out DIR] [--resume] [--quiet]
                              trains the recipe's teacher (or loads its model), the student alone and the student distilled with
                              the recipe's loss terms (or, with loss as a mapping of row names, one distilled row per name);
                              writes results.json, metrics.csv, provenance.json, curves.png, accuracy.png and report.html to
                              DIR (default distill-out/<recipe name>), and each trained model as <row>.zip (e.g.
                              student-distilled.zip or distilled-<name>.zip, for distill eval)
                              --set key.path=value   override a field, e.g. --set training.epochs=5 --set data.path=embedded,
                                                     --set 'loss.kd=[{name: kd, temperature: 2}]' (a named row),
                                                     --set 'loss.kd[0].temperature=2' (a list entry by index)
                              --resume               continue an interrupted run in DIR: each row goes on from its last
                                                     checkpoint (DIR/checkpoints/<row>, saved at epoch ends at most every
                                                     30 s, and at the end; the recipe's training.checkpoint sets
                                                     everySteps and minSeconds), a finished row is restored without
                                                     training; a row whose settings changed is refused, naming the
                                                     setting. Without it every row starts over
                            recipes: examples/recipes/<dataset>/<method>/<student>_from_<teacher>.yaml""");
                    return OK;
                }
                case "--quiet" -> progress = false;
                case "--resume" -> resume = true;
                case "--set", "--out" -> {
                    if (i + 1 >= args.length) {
                        throw new UsageException(a + " needs a value");
                    }
                    if (a.equals("--set")) {
                        sets.add(args[++i]); // repeatable: one field per --set
                    } else {
                        if (outDir != null) {
                            throw new UsageException("--out is given twice; give it once");
                        }
                        outDir = path(a, args[++i]);
                    }
                }
                default -> {
                    if (a.startsWith("--") || recipe != null) {
                        throw new UsageException("unexpected argument '" + a + "' (see distill run --help)");
                    }
                    recipe = path("RECIPE", a);
                }
            }
        }
        if (recipe == null) {
            throw new UsageException("a recipe file is required (see distill run --help)");
        }
        outputDirectory("--out", outDir);
        org.distill4j.examples.recipe.Recipe r = org.distill4j.examples.recipe.RecipeLoader.load(recipe, sets);
        Path dir = outDir != null ? outDir : Path.of("distill-out", r.name());
        if (outDir == null) {
            outputDirectory("the default output folder (--out)", dir); // the recipe's name made it: checked once it is known
        }
        org.distill4j.examples.recipe.RecipeRunner.run(r, dir, progress, resume, out);
        return OK;
    }

    static void demoUsage(PrintStream out, Demo.Settings d) {
        out.printf(Locale.ROOT, """
                usage: distill demo [options]
                  --data DIR|embedded    Fashion-MNIST directory (idx files, raw or .gz), or 'embedded' for the
                                         subset in the jar; default: $DISTILL_DATA, then
                                         /usr/share/datasets/fashion-mnist, then the embedded subset
                  --out DIR              where results.json and provenance.json go (default %s)
                  --seed N               (default %d)
                  --seeds A,B,...        train every student row once per seed (1 to 20 distinct integers; the
                                         student's initial weights and batch order) and report mean ± std;
                                         --seed still seeds the teacher and the transfer set. Default: one run
                  --teacher-samples N    training samples for the teacher (default %d)
                  --teacher-epochs N     (default %d)
                  --teacher-hidden A,B   teacher hidden layer sizes (default %s)
                  --teacher-conv C1,C2   convolution blocks before the teacher's hidden layers, their channels
                                         (3x3 convolution, ReLU, 2x2 max pool each; default: none, an MLP)
                  --teacher-dropout P    probability of dropping a hidden unit, in [0, 1) (default %s)
                  --transfer-samples N   the students' training set (default %d)
                  --unlabeled-samples N  N more training samples, after the transfer set's, that the distilled
                                         students get without labels: the teacher's outputs are their only
                                         targets (the student alone leaves them out; default 0)
                  --mixup A              mix the distilled rows' training batches (weights ~ Beta(A, A)), the
                                         student and the teacher seeing the same mixed inputs; a mixed sample
                                         has no label (default: none; 0.2 to 1 are usual)
                  --shift N              move every student row's training images by up to N pixels along each
                                         axis (drawn per image; the student and the teacher see the same moved
                                         images; teachers train on them unmoved; default: none; 2 is usual)
                  --flip                 mirror half of every student row's training images left to right, as
                                         --shift (for classes that do not depend on facing; default: none)
                  --student-epochs N     (default %d)
                  --student-hidden A,B   student hidden layer sizes (default %s)
                  --student-conv C1,C2   convolution blocks before the students' hidden layers, as --teacher-conv
                  --test-samples N       (default %d)
                  --batch-size N         (default %d)
                  --lr X                 Adam learning rate (default %s)
                  --temperature T        KD temperature (default %s)
                  --alpha A              hard-label weight in the KD loss (default %s)
                  --compare L1,L2,...    distilled-student rows, one per loss (default kd), e.g. kd,dkd,logit-std;
                                         settings as name:key=value, e.g. dkd:beta=2 or topk-kd:k=3
                  --save-teacher FILE    also save the trained teacher as a DL4J model (for distill label)
                  --store FILE           label the transfer set into this soft-target store (f16) and add a row
                                         for the student distilled from the store
                  --resume               continue an interrupted demo in the same --out directory: each row goes on
                                         from its last checkpoint (DIR/checkpoints/<row>, saved at epoch ends at
                                         most every 30 s, and at the end), a finished row is restored without
                                         training; without it every row starts over
                  --quiet                no progress bars
                """, d.out, d.seed, d.teacherSamples, d.teacherEpochs, join(d.teacherHidden), d.teacherDropout,
                d.transferSamples, d.studentEpochs, join(d.studentHidden), d.testSamples, d.batchSize, d.learningRate,
                d.temperature, d.alpha);
    }

    private static List<String> compareList(String opt, String v) throws UsageException {
        List<String> out = new java.util.ArrayList<>();
        for (String part : v.split(",", -1)) {
            String spec = part.trim();
            if (spec.isEmpty()) { // "kd," or ",": refused, not dropped
                throw new UsageException(opt + ": '" + v + "' has an empty entry; expected losses separated by commas, e.g. kd,dkd");
            }
            String name = spec.split(":")[0];
            if (!Losses.names().contains(name) || name.equals("ce")) {
                throw new UsageException(opt + ": '" + name + "' is not a distillation loss; registered: "
                        + String.join(", ", Losses.names().stream().filter(n -> !n.equals("ce")).toList()));
            }
            if (out.contains(spec)) { // one row name: one checkpoint directory, one entry in results.json
                throw new UsageException(opt + ": '" + spec + "' is given twice; expected distinct losses");
            }
            out.add(spec);
        }
        return List.copyOf(out);
    }

    /** A directory a command writes into ({@code null}: none given): an existing file there is bad usage. */
    private static void outputDirectory(String option, Path dir) throws UsageException {
        if (dir != null && java.nio.file.Files.exists(dir) && !java.nio.file.Files.isDirectory(dir)) {
            throw new UsageException(option + " " + dir + " is a file; expected a directory for the results");
        }
    }

    /**
     * A file a command writes ({@code null}: none given), checked before any work: an existing directory there, or a file
     * where a folder above it must be (so that it could only fail once the work is done), is bad usage.
     */
    static void outputFile(String option, Path file, String expected) throws UsageException {
        String problem = outputFileProblem(option, file, expected);
        if (problem != null) {
            throw new UsageException(option + " " + problem);
        }
    }

    /**
     * Why {@code file}, which a command or a recipe writes, cannot be written, or {@code null} (also for a {@code null}
     * file): "FILE is a directory; expected EXPECTED", or "FILE: PARENT is a file, not a folder; give OPTION a path in a
     * folder (...)". The option or field that named the file goes before it ({@link #outputFile}, a recipe's error).
     */
    public static String outputFileProblem(String option, Path file, String expected) {
        if (file == null) {
            return null;
        }
        if (java.nio.file.Files.isDirectory(file)) {
            return file + " is a directory; expected " + expected;
        }
        Path inTheWay = RunFolder.fileInTheWay(file.getParent());
        if (inTheWay != null) {
            return file + ": " + inTheWay + " is a file, not a folder; give " + option + " a path in a folder (or move " + inTheWay
                    + " away)";
        }
        return null;
    }

    /** --seeds 1,2,3: 1 to 20 distinct integers. */
    static List<Long> seedList(String opt, String v) throws UsageException {
        List<Long> out = new java.util.ArrayList<>();
        for (String part : v.split(",", -1)) {
            long seed = parseLong(opt, part.trim());
            if (out.contains(seed)) {
                throw new UsageException(opt + ": seed " + seed + " is given twice; the seeds must be distinct");
            }
            out.add(seed);
        }
        if (out.size() > org.distill4j.examples.recipe.RecipeLoader.MAX_SEEDS) {
            throw new UsageException(opt + ": at most " + org.distill4j.examples.recipe.RecipeLoader.MAX_SEEDS + " seeds, got " + out.size());
        }
        return List.copyOf(out);
    }

    private static String join(int[] a) {
        return String.join(",", Arrays.stream(a).mapToObj(Integer::toString).toList());
    }

    /**
     * A path given on the command line, {@code option} naming it in the error: a value no file can be named by (one with a
     * NUL character), or one with another control character (a line break, a tab, an escape: a name the file system would
     * take, but never what was meant), is bad usage, not a failed run or a file of that name, as in a recipe's path fields.
     * Every command reads its path arguments through here.
     */
    static Path path(String option, String value) throws UsageException {
        if (value.isEmpty()) { // '' (an unset shell variable): the working directory, or a file of no name, never what was meant
            throw new UsageException(option + ": the path is empty; expected a file or directory name");
        }
        Path p;
        try {
            p = Path.of(value);
        } catch (java.nio.file.InvalidPathException e) {
            throw new UsageException(option + ": '" + printable(value) + "' is not a valid path (" + e.getReason()
                    + "); expected a file or directory name");
        }
        for (int i = 0; i < value.length(); i++) {
            if (Character.isISOControl(value.charAt(i))) {
                throw new UsageException(option + ": '" + printable(value) + "' is not a valid path (control character "
                        + printable(String.valueOf(value.charAt(i))) + " at index " + i + "); expected a file or directory name");
            }
        }
        return p;
    }

    /** {@code s} with each control character (NUL, a line break) written as a Java escape of its code, for one readable line. */
    public static String printable(String s) {
        StringBuilder b = new StringBuilder(s.length());
        s.chars().forEach(c -> {
            if (Character.isISOControl(c)) {
                b.append(String.format(Locale.ROOT, "\\u%04x", c));
            } else {
                b.append((char) c);
            }
        });
        return b.toString();
    }

    /**
     * Records that {@code option} was given; a second time is bad usage: the last value silently winning hides a mistake (a
     * pasted command line, a variable that already held the option). Options meant to be repeated (--set) do not come here.
     */
    static void once(java.util.Set<String> seen, String option) throws UsageException {
        if (!seen.add(option)) {
            throw new UsageException(option + " is given twice; give it once");
        }
    }

    /** Bad command-line input: reported with exit code 2. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String m) {
            super(m);
        }
    }

    private static long parseLong(String opt, String v) throws UsageException {
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new UsageException(opt + " must be an integer, got '" + v + "'");
        }
    }

    static int nonNegative(String opt, String v) throws UsageException {
        long n = parseLong(opt, v);
        if (n < 0 || n > Integer.MAX_VALUE) {
            throw new UsageException(opt + " must be a whole number >= 0, got '" + v + "'");
        }
        return (int) n;
    }

    static int positive(String opt, String v) throws UsageException {
        long n = parseLong(opt, v);
        if (n <= 0 || n > Integer.MAX_VALUE) {
            throw new UsageException(opt + " must be a positive integer, got '" + v + "'");
        }
        return (int) n;
    }

    private static double number(String opt, String v) throws UsageException {
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new UsageException(opt + " must be a number, got '" + v + "'");
        }
    }

    private static double positiveDouble(String opt, String v) throws UsageException {
        double d = number(opt, v);
        if (!(d > 0) || Double.isInfinite(d)) {
            throw new UsageException(opt + " must be a number > 0, got '" + v + "'");
        }
        return d;
    }

    private static double fraction(String opt, String v) throws UsageException {
        double d = number(opt, v);
        if (!(d >= 0 && d <= 1)) {
            throw new UsageException(opt + " must be in [0, 1], got '" + v + "'");
        }
        return d;
    }

    /** A dropout probability: [0, 1), as the recipe's dropout field; 1 would drop every unit (DL4J keeps a 0 "keep" as none). */
    static double dropout(String opt, String v) throws UsageException {
        double d = number(opt, v);
        if (!(d >= 0 && d < 1)) {
            throw new UsageException(opt + " must be in [0, 1) (the probability of dropping a unit; 0 for none), got '" + v + "'");
        }
        return d;
    }

    static int[] sizes(String opt, String v) throws UsageException {
        String[] parts = v.split(",", -1); // "16," or "," has empty parts: refused, not dropped
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            if (parts[i].isBlank()) {
                throw new UsageException(opt + ": '" + v + "' has an empty size; expected positive whole numbers separated by"
                        + " commas, e.g. 400,400");
            }
            out[i] = positive(opt, parts[i].trim());
        }
        return out;
    }
}
