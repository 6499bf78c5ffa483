package org.distill4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MainTest {
    private final ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
    private final ByteArrayOutputStream errBytes = new ByteArrayOutputStream();

    private int run(String... args) {
        return Main.run(args, new PrintStream(outBytes, true, StandardCharsets.UTF_8),
                new PrintStream(errBytes, true, StandardCharsets.UTF_8));
    }

    private String out() {
        return outBytes.toString(StandardCharsets.UTF_8);
    }

    private String err() {
        return errBytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void listShowsRegisteredLossesAndBackendsWithAvailability() {
        assertEquals(0, run("list"));
        String o = out();
        assertTrue(o.contains("  kd ") && o.contains("  ce ") && o.contains("temperature, alpha, reduction"), o);
        for (String name : new String[]{"reverse-kl", "gjsd", "skew-kl", "skew-rkl", "akl", "abkd", "tvd", "mse", "dkd", "dist", "logit-std",
                "topk-kd", "hint", "at", "rkd", "sp", "pkt"}) {
            assertTrue(o.contains("  " + name + " "), name + " is listed\n" + o);
        }
        assertTrue(o.matches("(?s).*  cuda\\s+priority 100\\s+unavailable: .+"), o);
        assertTrue(o.matches("(?s).*  cpu\\s+priority 0\\s+available: \\d+ cores.*"), o);
    }

    /** The shipped recipes are found from the code's source tree, whatever the working directory (here: examples/). */
    @Test
    void listShowsEveryShippedRecipeFromAnyWorkingDirectory(@TempDir Path tmp) throws Exception {
        assertEquals(0, run("list"));
        List<String> shipped;
        try (var files = Files.walk(Path.of("recipes"))) {
            shipped = files.filter(f -> f.toString().endsWith(".yaml")).map(Path::toString).sorted().toList();
        }
        assertEquals(12, shipped.size(), shipped.toString());
        for (String r : shipped) {
            assertTrue(out().contains("\n  " + r + "\n"), r + " is listed as a path distill run takes from here\n" + out());
        }
        // from a jar inside a source tree (examples/target/x.jar), the tree's recipes; else those below the working directory
        Path tree = tmp.resolve("tree");
        Files.createDirectories(tree.resolve("examples/recipes/ds/kd"));
        Files.writeString(tree.resolve("examples/pom.xml"), "<project/>");
        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        assertEquals(tree.resolve("examples/recipes"), Main.recipesDir(tree.resolve("examples/target/distill-examples.jar"), elsewhere));
        assertEquals(null, Main.recipesDir(tmp.resolve("lib/distill-examples.jar"), elsewhere), "an installed jar, no tree");
        assertEquals(tree.resolve("examples/recipes"), Main.recipesDir(tmp.resolve("lib/distill-examples.jar"), tree));
        Files.createDirectories(tmp.resolve("lib/examples/recipes"));
        assertEquals(null, Main.recipesDir(tmp.resolve("lib/x/distill-examples.jar"), elsewhere),
                "a folder named examples/recipes outside a Distill4J tree is not taken");
    }

    @Test
    void badUsageExitsWithTwoAndSaysWhatWasWrong() {
        assertEquals(2, run("distil"));
        assertTrue(err().contains("unknown command 'distil'; commands: demo, run, eval, list, label, store, bench"), err());
        assertEquals(2, run("demo", "--alpha", "1.5"));
        assertTrue(err().contains("--alpha must be in [0, 1], got '1.5'"), err());
        // an empty part of a list is refused, not dropped ("16," was the layers [16]); an option given twice is refused, not
        // the last one silently kept (--set alone repeats); an empty path is no path
        String[][] cases = {
                {"--student-hidden", ","}, {"--student-hidden: ',' has an empty size; expected positive whole numbers separated by"
                        + " commas, e.g. 400,400"},
                {"--teacher-hidden", "16,"}, {"--teacher-hidden: '16,' has an empty size; expected positive whole numbers separated"
                        + " by commas, e.g. 400,400"},
                {"--compare", "kd,"}, {"--compare: 'kd,' has an empty entry; expected losses separated by commas, e.g. kd,dkd"},
                {"--seed", "1", "--seed", "2"}, {"--seed is given twice; give it once"},
                {"--out", ""}, {"--out: the path is empty; expected a file or directory name"},
                {"--store", ""}, {"--store: the path is empty; expected a file or directory name"},
        };
        for (int i = 0; i < cases.length; i += 2) {
            String[] a = new String[cases[i].length + 1];
            a[0] = "demo";
            System.arraycopy(cases[i], 0, a, 1, cases[i].length);
            errBytes.reset();
            assertEquals(2, run(a), String.join(" ", a));
            assertEquals("distill demo: " + cases[i + 1][0] + "\n", err());
        }
        errBytes.reset();
        assertEquals(2, run("run", "r.yaml", "--out", "a", "--out", "b"));
        assertEquals("distill run: --out is given twice; give it once\n", err());
        errBytes.reset();
        for (String p : new String[] {"1", "1.0", "-0.1", "NaN"}) { // 1 was taken, and meant no dropout at all (DL4J's keep 0)
            errBytes.reset();
            assertEquals(2, run("demo", "--teacher-dropout", p));
            assertEquals("distill demo: --teacher-dropout must be in [0, 1) (the probability of dropping a unit; 0 for none), got '"
                    + p + "'\n", err());
        }
        assertEquals(2, run("demo", "--epochs", "3"));
        assertTrue(err().contains("unknown option --epochs"), err());
        assertEquals(2, run("demo", "--compare", "kd,ce"));
        assertTrue(err().contains("'ce' is not a distillation loss; registered: kd, reverse-kl"), err());
        assertEquals(2, run("demo", "--seed"));
        assertTrue(err().contains("--seed needs a value"), err());
        assertEquals(2, run("demo", "--unlabeled-samples", "-1"));
        assertTrue(err().contains("--unlabeled-samples must be a whole number >= 0, got '-1'"), err());
        assertEquals(2, run("demo", "--mixup", "0"));
        assertTrue(err().contains("--mixup must be a number > 0, got '0'"), err());
        assertEquals(2, run("demo", "--shift", "0"));
        assertTrue(err().contains("--shift must be a positive integer, got '0'"), err());
        assertEquals(2, run("demo", "--flip", "--shift"));
        assertTrue(err().contains("--shift needs a value"), err() + ": --flip takes no value");
        assertEquals(2, run());
        assertTrue(out().contains("usage: distill <command>"), out());
    }

    /** --flip (no value) and --shift N reach the run: its provenance records both. */
    @Test
    void shiftAndFlipReachTheRun(@TempDir Path tmp) throws Exception {
        assertEquals(0, run("demo", "--quiet", "--data", "embedded", "--out", tmp.toString(), "--teacher-samples", "60",
                "--teacher-epochs", "1", "--teacher-hidden", "8", "--transfer-samples", "30", "--student-epochs", "1",
                "--student-hidden", "4", "--test-samples", "30", "--flip", "--shift", "3"), err());
        String provenance = Files.readString(tmp.resolve("provenance.json"));
        assertTrue(provenance.contains("\"shift\": 3") && provenance.contains("\"flip\": true"), provenance);
    }

    /**
     * --teacher-conv and --student-conv make CNNs of the demo's models (the table and the provenance say so); blocks the
     * 28x28 images cannot take are a usage error naming the option, before anything trains.
     */
    @Test
    void convOptionsMakeCnnsAndTooManyBlocksAreRefused(@TempDir Path tmp) throws Exception {
        assertEquals(0, run("demo", "--quiet", "--data", "embedded", "--out", tmp.toString(), "--teacher-samples", "60",
                "--teacher-epochs", "1", "--teacher-conv", "3", "--teacher-hidden", "8", "--transfer-samples", "30",
                "--student-epochs", "1", "--student-conv", "2,3", "--student-hidden", "4", "--test-samples", "30"), err());
        assertTrue(out().contains("28x28-conv3-8-10, dropout") && out().contains("28x28-conv2-conv3-4-10"), out());
        String provenance = Files.readString(tmp.resolve("provenance.json"));
        assertTrue(provenance.contains("\"teacherConv\": [\n") && provenance.contains("\"studentConv\": ["), provenance);
        errBytes.reset();
        outBytes.reset();
        assertEquals(2, run("demo", "--quiet", "--data", "embedded", "--out", tmp.resolve("b").toString(), "--student-conv", "2,2,2,2,2"));
        assertEquals("distill demo: --student-conv: 5 convolution blocks, but 1x28x28 images take at most 4 (each block's 2x2 pool"
                + " halves the sides: 28x28, 14x14, 7x7, 3x3, 1x1)\n", err());
        assertFalse(out().contains("teacher"), "nothing trained: " + out());
    }

    /** Top-k beyond the classes is a usage error before any teacher trains or loads (it used to fail in the store header after). */
    @Test
    void aTopKBeyondTheClassesFailsBeforeTheTeacherRuns(@TempDir Path tmp) throws Exception {
        assertEquals(2, run("demo", "--quiet", "--data", "embedded", "--out", tmp.toString(), "--compare", "kd,topk-kd:k=11"));
        assertTrue(err().contains("distill demo: --compare topk-kd:k=11: k must be 1 to 10 (the classes of Fashion-MNIST), got 11"), err());
        assertEquals(2, run("demo", "--quiet", "--compare", "topk-kd:k=x"));
        assertTrue(err().contains("--compare topk-kd:k=x: For input string: \"x\""), err());
        assertTrue(!err().contains("\tat "), "no stack trace: " + err());
        Path notAModel = Files.writeString(tmp.resolve("teacher.zip"), "not read: the option is refused first");
        assertEquals(2, run("label", "--quiet", "--teacher", notAModel.toString(), "--data", "embedded", "--limit", "20", "--topk", "11",
                "--out", tmp.resolve("s.d4j").toString()));
        assertTrue(err().contains("distill label: --topk 11 is more than the 10 classes of the data; expected 1 to 10"), err());
        assertTrue(!Files.exists(tmp.resolve("s.d4j.partial")) && !Files.exists(tmp.resolve("s.d4j")));
    }

    /** The demo's smallest settings: the backend or the paths fail before anything trains. */
    private static final String[] TINY = {"--quiet", "--data", "embedded", "--teacher-samples", "60", "--teacher-epochs", "1",
            "--teacher-hidden", "8", "--transfer-samples", "30", "--student-epochs", "1", "--student-hidden", "4", "--test-samples", "30"};

    /** demo with TINY's settings, an option in {@code more} taking the place of TINY's (an option may be given once). */
    private static String[] demo(Path out, String... more) {
        List<String> a = new java.util.ArrayList<>(List.of("demo", "--out", out.toString()));
        a.addAll(List.of(TINY));
        for (int i = 0; i < more.length; i++) {
            int at = a.indexOf(more[i]);
            if (at > 0 && i + 1 < more.length && more[i].startsWith("--") && !more[i + 1].startsWith("--")) {
                a.set(at + 1, more[++i]);
            } else {
                a.add(more[i]);
            }
        }
        return a.toArray(String[]::new);
    }

    /** Runs with -Ddistill.backend set to {@code value} (restored after). */
    private int runWithBackendProperty(String value, String... args) {
        return runWithProperties(java.util.Map.of(org.distill4j.backend.Backends.PROPERTY, value), args);
    }

    /** Runs with these system properties set (each restored after). */
    private int runWithProperties(java.util.Map<String, String> properties, String... args) {
        java.util.Map<String, String> before = new java.util.HashMap<>();
        properties.forEach((k, v) -> {
            before.put(k, System.getProperty(k));
            System.setProperty(k, v);
        });
        try {
            return run(args);
        } finally {
            before.forEach((k, v) -> {
                if (v == null) {
                    System.clearProperty(k);
                } else {
                    System.setProperty(k, v);
                }
            });
        }
    }

    /**
     * DISTILL_JAVA_OPTS="-Ddistill.engine=tpu" (no such engine) or "=cuda-mlp" where it declines (here: on the cpu backend), for
     * distill demo and distill run: one line naming the setting, the reason and the engines that can be asked for, exit code 2
     * (a setting to change), no stack trace. An unknown name fails before any data is read.
     */
    @Test
    void anUnknownOrDecliningStepEngineSettingIsAUsageErrorNamingTheSetting(@TempDir Path tmp) {
        String engine = org.distill4j.train.StepEngines.PROPERTY;
        String recipe = Path.of("recipes", "fashion-mnist", "kd", "mlp400_from_mlp1200.yaml").toString();
        String[] tinyRun = {"run", recipe, "--quiet", "--out", tmp.resolve("run").toString(), "--set", "data.teacherSamples=60",
                "--set", "data.transferSamples=30", "--set", "data.testSamples=30", "--set", "teacher.hidden=[8]",
                "--set", "teacher.epochs=1", "--set", "student.hidden=[4]", "--set", "training.epochs=1"};
        String unknown = "unknown step engine 'tpu' (from -Ddistill.engine=tpu); known engines: dl4j, auto, cuda-mlp\n";
        String declined = "step engine 'cuda-mlp' was requested (-Ddistill.engine=cuda-mlp) but declined: the compute backend is 'cpu',"
                + " not cuda; available: dl4j, auto (request one of them; auto takes the first engine that offers, else dl4j)\n";

        assertEquals(2, runWithProperties(java.util.Map.of(engine, "tpu"), demo(tmp.resolve("demo"))), err());
        assertEquals("distill demo: " + unknown, err());
        assertEquals("", out(), "an unknown engine is refused before anything is done or printed");
        errBytes.reset();
        assertEquals(2, runWithProperties(java.util.Map.of(engine, "tpu"), tinyRun), err());
        assertEquals("distill run: " + unknown, err());

        // an engine that cannot run on the backend at all (cuda-mlp on cpu) is refused before any data is read, as well
        java.util.Map<String, String> onCpu = java.util.Map.of(engine, "cuda-mlp", org.distill4j.backend.Backends.PROPERTY, "cpu");
        errBytes.reset();
        outBytes.reset();
        assertEquals(2, runWithProperties(onCpu, demo(tmp.resolve("demo"))), err());
        assertEquals("distill demo: " + declined, err());
        assertEquals("", out(), "an engine that cannot run on the backend is refused before anything is done or printed");
        errBytes.reset();
        assertEquals(2, runWithProperties(onCpu, tinyRun), err());
        assertEquals("distill run: " + declined, err());
        assertEquals("", out());
        assertTrue(!Files.exists(tmp.resolve("demo").resolve("checkpoints").resolve("teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME)),
                "the teacher did not train");
    }

    /**
     * DISTILL_JAVA_OPTS="-Ddistill.backend=cuda" ./distill demo on a machine without a GPU: one line naming the backend, the
     * setting, the probe's reason and what is available instead; exit code 2 (a setting to change), no stack trace. The same
     * for a recipe's training.backend.
     */
    @Test
    void anUnavailableBackendIsAUsageErrorThatSaysWhyAndWhatToUse(@TempDir Path tmp) {
        org.distill4j.backend.Availability cuda = org.distill4j.backend.Backends.providers().stream()
                .filter(p -> p.name().equals("cuda")).findFirst().orElseThrow().probe();
        org.junit.jupiter.api.Assumptions.assumeFalse(cuda.available(), "a usable GPU is here: " + cuda.detail());

        // the reason is the CLI's own probe's (a second probe in one JVM may word a failed native load differently)
        assertEquals(2, runWithBackendProperty("cuda", demo(tmp.resolve("demo"))));
        assertTrue(err().matches("distill demo: backend 'cuda' was requested \\(-Ddistill\\.backend=cuda\\) but is unavailable: [^\n]+;"
                + " available here: cpu \\(request one of them, or auto for the best available\\)\n"), "one line: " + err());
        assertEquals("", out(), "the backend is chosen before anything else is done or printed");

        errBytes.reset();
        assertEquals(2, run("run", Path.of("recipes", "fashion-mnist", "kd", "mlp400_from_mlp1200.yaml").toString(), "--quiet",
                "--out", tmp.resolve("run").toString(), "--set", "training.backend=cuda"));
        assertTrue(err().matches("distill run: backend 'cuda' was requested \\(training\\.backend: cuda\\) but is unavailable: [^\n]+;"
                + " available here: cpu \\(request one of them, or auto for the best available\\)\n"), "one line: " + err());
    }

    /** A backend name no provider has, from -Ddistill.backend, is a usage error listing the known ones. */
    @Test
    void anUnknownBackendSettingIsAUsageErrorListingTheKnownOnes(@TempDir Path tmp) {
        assertEquals(2, runWithBackendProperty("tpu", demo(tmp.resolve("demo"))));
        assertEquals("distill demo: unknown backend 'tpu' (from -Ddistill.backend=tpu); known backends: cuda, cpu (or auto)\n", err());
        errBytes.reset();
        assertEquals(0, runWithBackendProperty("CPU", demo(tmp.resolve("cpu"))), err());
        assertTrue(Files.exists(tmp.resolve("cpu").resolve("results.json")));
    }

    /** What errors are prefixed with: the command, and a store command's subcommand ("store info"). */
    private static String commandName(String[] args) {
        return args[0].equals("store") && args.length > 1 ? "store " + args[1] : args[0];
    }

    /**
     * A path no file can have (a NUL character; it reaches here from a program or a YAML escape, not from a shell) is a
     * usage error naming the argument, for every command and path option, never an InvalidPathException and exit 1.
     */
    @Test
    void aPathNoFileCanHaveIsAUsageErrorNamingTheArgument(@TempDir Path tmp) {
        String bad = tmp + "/a\0b";
        String shown = bad.replace("\0", "\\u0000");
        for (List<String> c : pathCases(tmp, bad)) {
            errBytes.reset();
            String[] args = c.subList(1, c.size()).toArray(String[]::new);
            String command = Main.printable(String.join(" ", args));
            assertEquals(2, run(args), command + "\n" + err());
            assertEquals("distill " + commandName(args) + ": " + c.get(0) + ": '" + shown + "' is not a valid path (Nul character not allowed);"
                    + " expected a file or directory name\n", err(), command);
        }
    }

    /**
     * A path with another control character (a line break, a tab, an escape: one a file system takes, but never what was
     * meant, e.g. a value pasted with its line end) is refused as a recipe's path fields refuse it: a usage error naming the
     * argument, the character and where it is, before anything is read, created or run.
     */
    @Test
    void aPathWithAControlCharacterIsAUsageErrorAsInARecipe(@TempDir Path tmp) throws Exception {
        for (char ch : new char[] {'\n', '\t', '\u001b', '\u007f'}) {
            String bad = tmp + "/a" + ch + "b";
            String shown = Main.printable(bad);
            String escape = Main.printable(String.valueOf(ch));
            for (List<String> c : pathCases(tmp, bad)) {
                errBytes.reset();
                outBytes.reset();
                String[] args = c.subList(1, c.size()).toArray(String[]::new);
                String command = Main.printable(String.join(" ", args));
                assertEquals(2, run(args), command + "\n" + err());
                assertEquals("distill " + commandName(args) + ": " + c.get(0) + ": '" + shown + "' is not a valid path (control character "
                        + escape + " at index " + (tmp.toString().length() + 2) + "); expected a file or directory name\n", err(), command);
                assertEquals("", out(), command);
            }
        }
        try (var left = Files.list(tmp)) {
            assertEquals(List.of(), left.toList(), "nothing was created");
        }
    }

    /** (the argument's name, then the command line) for every path argument of every command, each given {@code bad}. */
    private static List<List<String>> pathCases(Path tmp, String bad) {
        String out = tmp.resolve("out").toString();
        String recipe = Path.of("recipes", "fashion-mnist", "kd", "mlp400_from_mlp1200.yaml").toString();
        List<List<String>> cases = List.of(
                List.of("RECIPE", "run", bad),
                List.of("--out", "run", recipe, "--out", bad),
                List.of("--out", "demo", "--out", bad),
                List.of("--data", "demo", "--data", bad),
                List.of("--store", "demo", "--store", bad),
                List.of("--save-teacher", "demo", "--save-teacher", bad),
                List.of("--teacher", "label", "--teacher", bad, "--out", out),
                List.of("--out", "label", "--teacher", out, "--out", bad),
                List.of("--data", "label", "--data", bad),
                List.of("MODEL", "eval", bad),
                List.of("--teacher", "eval", out, "--teacher", bad),
                List.of("--json", "eval", out, "--json", bad),
                List.of("STORE", "store", "info", bad),
                List.of("STORE", "store", "verify", bad),
                List.of("--npy", "store", "import", "--npy", bad, "--out", out),
                List.of("--jsonl", "store", "import", "--jsonl", bad, "--out", out),
                List.of("--topk-npy", "store", "import", "--topk-npy", out, bad, "--out", out),
                List.of("--out", "store", "import", "--npy", out, "--out", bad));
        return cases;
    }

    /**
     * A file where demo or run writes a directory (--out), a directory where they write a file (--save-teacher, --store), or
     * a --compare loss given twice (two rows of one name: one checkpoint directory, one entry in results.json) is bad usage,
     * refused before anything trains: not a failure minutes later, after the teacher trained ("Is a directory", naming no
     * file, for --store), nor a silently repeated row.
     */
    @Test
    void demoAndRunRefuseOutputsTheyCannotWriteAndRepeatedRowsBeforeTraining(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        Path dir = Files.createDirectories(tmp.resolve("a-dir"));
        String recipe = Path.of("recipes", "fashion-mnist", "kd", "mlp400_from_mlp1200.yaml").toString();
        String[][] cases = {
                demo(file), {"--out " + file + " is a file; expected a directory for the results"},
                demo(tmp.resolve("o1"), "--save-teacher", dir.toString()), {"--save-teacher " + dir + " is a directory; expected the model's file name"},
                demo(tmp.resolve("o2"), "--store", dir.toString()), {"--store " + dir + " is a directory; expected the store's file name"},
                demo(tmp.resolve("o3"), "--compare", "kd,tvd,kd"), {"--compare: 'kd' is given twice; expected distinct losses"},
                {"run", recipe, "--quiet", "--out", file.toString()}, {"--out " + file + " is a file; expected a directory for the results"},
                // a file where the output's folder must be: refused now, not once every row (or the teacher) has trained
                demo(tmp.resolve("o4"), "--store", file.resolve("x.store").toString()),
                {"--store " + file.resolve("x.store") + ": " + file + " is a file, not a folder; give --store a path in a folder (or move "
                        + file + " away)"},
                demo(tmp.resolve("o5"), "--save-teacher", file.resolve("sub/t.zip").toString()),
                {"--save-teacher " + file.resolve("sub/t.zip") + ": " + file + " is a file, not a folder; give --save-teacher a path"
                        + " in a folder (or move " + file + " away)"},
        };
        for (int i = 0; i < cases.length; i += 2) {
            outBytes.reset();
            errBytes.reset();
            assertEquals(2, run(cases[i]), String.join(" ", cases[i]) + "\n" + err());
            assertEquals("distill " + cases[i][0] + ": " + cases[i + 1][0] + "\n", err(), String.join(" ", cases[i]));
            assertEquals("", out(), String.join(" ", cases[i]));
        }
        try (var left = Files.list(tmp)) {
            assertEquals(List.of(dir, file), left.sorted().toList(), "nothing trained or written");
        }
    }

    /** Without --out the folder is distill-out/<recipe name>: a file there is refused before anything trains, as for --out. */
    @Test
    void runRefusesADefaultOutputFolderThatIsAFile(@TempDir Path tmp) throws Exception {
        String name = "default-out-is-a-file-" + ProcessHandle.current().pid();
        Path recipe = Files.writeString(tmp.resolve("r.yaml"), "name: " + name + "\n"
                + "data: {path: embedded, teacherSamples: 100, transferSamples: 100, testSamples: 100}\n"
                + "teacher: {hidden: [8], epochs: 1}\nstudent: {hidden: [4]}\ntraining: {epochs: 1}\nloss: [{name: kd}]\n");
        Path clash = Path.of("distill-out", name);
        Files.createDirectories(clash.getParent());
        Files.writeString(clash, "x");
        try {
            assertEquals(2, run("run", recipe.toString(), "--quiet"), err());
            assertEquals("distill run: the default output folder (--out) " + clash + " is a file; expected a directory for the"
                    + " results\n", err());
            assertEquals("", out());
        } finally {
            Files.deleteIfExists(clash);
        }
    }

    /**
     * A layer too large to allocate (a 784x100000000 weight matrix: ND4J's native allocation crashed the JVM with SIGSEGV) is
     * refused before any network is built, for the demo's options and a recipe's fields alike, naming the option or field,
     * the model's shape and the limit: one line, exit code 2, no stack trace, nothing trained.
     */
    @Test
    void aModelTooLargeToAllocateIsRefusedBeforeAnythingTrains(@TempDir Path tmp) throws Exception {
        assertEquals(2, run(demo(tmp.resolve("d"), "--teacher-hidden", "100000000")), err());
        assertEquals("distill demo: --teacher-hidden: the 784-100000000-10 model's 784x100000000 weight matrix has"
                + " 78,400,000,000 elements, more than ND4J can address in one matrix (2,147,483,647); use smaller layers\n", err());
        assertEquals("", out());
        errBytes.reset();
        // every matrix (46000x46000 = 2,116,000,000 elements) under ND4J's 2^31 - 1, but 1000 of them: about 2.1e12
        // parameters, 8.5 TB as float32, more than any machine's memory (so the JVM's heap size cannot let it fit)
        String layers = String.join(",", java.util.Collections.nCopies(1000, "46000"));
        long params = 784L * 46000 + 46000 + 999L * (46000L * 46000 + 46000) + 46000L * 10 + 10;
        assertEquals(2, run(demo(tmp.resolve("d2"), "--student-hidden", layers)), err());
        assertTrue(err().startsWith(String.format(java.util.Locale.ROOT, "distill demo: --student-hidden: the 784-%s-10 model has"
                + " %,d parameters (", layers.replace(',', '-'), params)), err());
        assertTrue(err().contains(" as float32; ") && err().contains(" with the gradients and the optimizer's state training needs),"
                + " more than the ") && err().contains(" ND4J may allocate here; use smaller layers"), err());
        assertEquals(1, err().lines().count(), err());
        assertFalse(err().contains("\tat ") || err().contains("Exception"), err());
        errBytes.reset();
        Path recipe = Files.writeString(tmp.resolve("r.yaml"), "name: huge\n"
                + "data: {path: embedded, teacherSamples: 100, transferSamples: 100, testSamples: 100}\n"
                + "teacher: {hidden: [8], epochs: 1}\nstudent: {hidden: [100000000]}\ntraining: {epochs: 1}\nloss: [{name: kd}]\n");
        assertEquals(2, run("run", recipe.toString(), "--quiet", "--out", tmp.resolve("r").toString()), err());
        assertEquals("distill run: " + recipe + ": student.hidden: the 784-100000000-10 model's 784x100000000 weight matrix has"
                + " 78,400,000,000 elements, more than ND4J can address in one matrix (2,147,483,647); use smaller layers\n", err());
        assertFalse(out().contains("teacher"), "nothing trained: " + out());
    }

    /** Parameters whose training needs more than ND4J may allocate are refused, naming the bytes and the limit. */
    @Test
    void aModelWhoseTrainingDoesNotFitTheMemoryLimitIsRefused() {
        var adam = new org.nd4j.linalg.learning.config.Adam(1e-3);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> DemoModels.checkFits("--teacher-hidden", 784, new int[]{1200, 1200}, 10, adam, 10_000_000));
        assertEquals("--teacher-hidden: the 784-1200-1200-10 model has 2,395,210 parameters (9.6 MB as float32; 38.3 MB with the"
                + " gradients and the optimizer's state training needs), more than the 10.0 MB ND4J may allocate here; use smaller"
                + " layers or give the JVM more memory (-Xmx, or -Dorg.bytedeco.javacpp.maxBytes, in DISTILL_JAVA_OPTS)", e.getMessage());
        // the demo's own sizes fit what this JVM gives ND4J, and plain SGD (no state) needs less than Adam
        DemoModels.checkFits("--teacher-hidden", 784, new int[]{1200, 1200}, 10, adam, DemoModels.nd4jMemoryLimit());
        DemoModels.checkFits("--teacher-hidden", 784, new int[]{1200, 1200}, 10, new org.nd4j.linalg.learning.config.Sgd(0.1),
                2_395_210L * 4 * 2);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> DemoModels.checkFits("x", 784,
                new int[]{1200, 1200}, 10, adam, 2_395_210L * 4 * 2));
    }

    /**
     * An --out that cannot be made (a file in its path) is bad usage naming --out, one line, exit code 2; a run that fails
     * before writing anything (data that is not there) leaves no new folder holding only its lock file.
     */
    @Test
    void anOutFolderThatCannotBeMadeIsAUsageErrorAndAFailedRunLeavesNoEmptyFolder(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("afile"), "x");
        assertEquals(2, run(demo(file.resolve("out"))), err());
        assertEquals("distill demo: --out " + file.resolve("out") + ": cannot create the folder: " + file + " is a file, not a"
                + " folder; give --out a path in a folder\n", err());
        errBytes.reset();
        Path out = tmp.resolve("new-out");
        assertEquals(1, run("demo", "--quiet", "--data", tmp.resolve("nowhere").toString(), "--out", out.toString()), err());
        assertEquals(1, err().lines().count(), err());
        assertFalse(Files.exists(out), "no folder left holding only " + RunFolder.LOCK_FILE);
    }

    /**
     * JavaCPP's "Warning: Versions of org.bytedeco:javacpp:... and org.bytedeco:openblas:... do not match." went straight to
     * stderr in every command that loads ND4J: the CLI's main sends JavaCPP's log through SLF4J, where it is kept at error.
     */
    @Test
    void theCliPrintsNoJavaCppVersionWarning(@TempDir Path tmp) throws Exception {
        Path zip = tmp.resolve("m.zip");
        StoreCommands.saveModel(DemoModels.mlp(784, new int[] {4}, 10, 0, 1e-3, 1), zip);
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), Main.class.getName(), "eval", zip.toString(), "--data", "embedded", "--limit", "5");
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.redirectOutput(tmp.resolve("out.txt").toFile()).redirectError(tmp.resolve("err.txt").toFile());
        Process p = pb.start();
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "eval ends");
        String stderr = Files.readString(tmp.resolve("err.txt"));
        assertEquals(0, p.exitValue(), stderr);
        assertTrue(Files.readString(tmp.resolve("out.txt")).contains("accuracy"), "it ran: ND4J loaded");
        assertFalse(stderr.contains("Versions of org.bytedeco") || stderr.contains("do not match"), stderr);
    }

    @Test
    void helpExitsZero() {
        assertEquals(0, run("demo", "--help"));
        assertTrue(out().contains("--transfer-samples N"), out());
        assertEquals(0, run("--help"));
    }

    @Test
    void aMissingDataDirectoryFailsWithItsName(@TempDir Path tmp) {
        assertEquals(1, run("demo", "--quiet", "--data", tmp.resolve("nowhere").toString(), "--out", tmp.toString()));
        assertEquals("distill demo failed: the given data directory " + tmp.resolve("nowhere") + " does not exist; expected a folder"
                + " of Fashion-MNIST's idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,"
                + " t10k-labels-idx1-ubyte, each raw or .gz)\n", err(), "one line, no stack trace");
    }

    @Test
    void demoRunsEndToEndOnTheEmbeddedSubsetAndWritesItsRecords(@TempDir Path tmp) throws Exception {
        Path outDir = tmp.resolve("demo");
        int code = run("demo", "--quiet", "--data", "embedded", "--out", outDir.toString(),
                "--teacher-samples", "600", "--teacher-epochs", "2", "--teacher-hidden", "48",
                "--transfer-samples", "300", "--student-epochs", "3", "--student-hidden", "24,24", "--test-samples", "500",
                "--compare", "kd,dkd:beta=2,topk-kd:k=2", "--save-teacher", tmp.resolve("teacher.zip").toString());
        assertEquals(0, code, err());
        String table = out();
        assertTrue(table.contains("embedded subset"), table);
        for (String row : new String[]{"teacher ", "student alone ", "distilled: kd ", "distilled: dkd:beta=2 ", "distilled: topk-kd:k=2 "}) {
            assertTrue(table.contains(row), "table row " + row + "\n" + table);
        }
        String results = Files.readString(outDir.resolve("results.json"));
        assertTrue(results.contains("\"row\": \"distilled: dkd:beta=2\"") && results.contains("\"testAccuracy\": 0."), results);
        assertTrue(results.contains("\"distillationGain\"") && results.contains("\"topk-kd:k=2\":"), results);
        assertTrue(results.contains("\"loss\": \"ce + dkd(alpha=1.0, beta=2.0, warmup=20, temperature=4.0)\""),
                "dkd runs as ce + dkd: " + results);
        String prov = Files.readString(outDir.resolve("provenance.json"));
        assertTrue(prov.contains("\"backend\": \"cpu\"") && prov.contains("\"seed\": 42") && prov.contains("\"data\": \"embedded\"")
                && prov.contains("\"deeplearning4j\": \"1.0.0-M2.1\"") && prov.contains("\"java\""), prov);
        assertTrue(prov.contains("\"engines\": {") && prov.contains("\"distilled: kd\": \"dl4j"), "each row says what ran its steps: " + prov);
        assertTrue(prov.contains("\"store\": null") && prov.contains("\"backend\": \"auto\"") && prov.contains("\"DISTILL_BACKEND\": ")
                && prov.contains("\"distill.backend\": "), "the settings and what 'auto' obeyed: " + prov);
        assertTrue(prov.matches("(?s).*\"teachers\": \\[\\s*\\{\\s*\"row\": \"teacher\",\\s*\"model\": \"trained here\",\\s*\"id\": \"mlp-[0-9a-f]+\".*"),
                "the teacher by content: " + prov);
        try (var files = Files.list(outDir)) {
            assertEquals(List.of(".distill.lock", "checkpoints", "provenance.json", "results.json"), // the lock file stays (RunFolder)
                    files.map(f -> f.getFileName().toString()).sorted().toList(), "no temporary files left behind");
        }
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(outDir.resolve("results.json"))), "records others can read (not createTempFile's 0600)");

        // label with the saved teacher, inspect and verify the store, then corrupt it
        Path store = tmp.resolve("fm-top3.d4j");
        assertEquals(0, run("label", "--teacher", tmp.resolve("teacher.zip").toString(), "--data", "embedded", "--limit", "300",
                "--topk", "3", "--chunk-rows", "64", "--out", store.toString()), err());
        assertTrue(out().contains("wrote 300 rows"), out());
        assertEquals(0, run("store", "info", store.toString()), err());
        assertTrue(out().contains("top-k, k = 3, 2-byte ids") && out().contains("300 in 5 chunks of 64")
                && out().contains("\"teacher\":\"mlp-"), "the teacher is named by its content hash: " + out());
        assertEquals(0, run("store", "verify", store.toString()), err());
        assertTrue(out().contains(store + ": OK, 5 chunks, 300 rows"), out());
        assertEquals(0, run("label", "--quiet", "--teacher", tmp.resolve("teacher.zip").toString(), "--data", "embedded", "--limit", "300",
                "--topk", "3", "--chunk-rows", "64", "--out", store.toString()));
        assertTrue(out().contains("is already complete; nothing to do"), out());
        byte[] bytes = Files.readAllBytes(store);
        bytes[bytes.length - 100] ^= 0x10; // inside the last chunk
        Files.write(store, bytes);
        assertEquals(1, run("store", "verify", store.toString()));
        assertTrue(err().contains("checksum mismatch in chunk 4 (rows 256 to 299)") && err().contains("1 problem found in " + store), err());
        assertEquals(2, run("label", "--out", store.toString()));
        assertTrue(err().contains("--teacher and --out are required"), err());
    }

    /** --seeds: every student row (alone, distilled, from the store) once per seed, the teacher once; mean ± std printed. */
    @Test
    void demoOverSeedsTrainsEachStudentRowPerSeed(@TempDir Path tmp) throws Exception {
        Path outDir = tmp.resolve("demo");
        assertEquals(0, run("demo", "--quiet", "--data", "embedded", "--out", outDir.toString(), "--seeds", "3,4",
                "--teacher-samples", "600", "--teacher-epochs", "2", "--teacher-hidden", "48", "--transfer-samples", "300",
                "--student-epochs", "2", "--student-hidden", "24", "--test-samples", "400", "--store", tmp.resolve("s.d4j").toString()), err());
        String table = out();
        for (String row : new String[]{"student alone", "student distilled", "distilled: kd, stored f16"}) {
            assertTrue(table.matches("(?s).*\\n" + java.util.regex.Pattern.quote(row) + " .*\\d+\\.\\d\\d±\\d+\\.\\d\\d% .*"), row + "\n" + table);
            String file = row.replaceAll("[^a-z0-9]+", "-");
            for (String seed : new String[]{"3", "4"}) {
                assertTrue(Files.isDirectory(outDir.resolve("checkpoints").resolve(file + "-seed-" + seed)), file + " seed " + seed);
            }
        }
        assertTrue(table.matches("(?s).*\\nteacher .* \\d+\\.\\d\\d% .*"), "the teacher: one run\n" + table);
        assertTrue(Files.isDirectory(outDir.resolve("checkpoints").resolve("teacher")));
        String results = Files.readString(outDir.resolve("results.json"));
        assertTrue(results.matches("(?s).*\"distillationGainStd\": \\{\\s*\"kd\": [0-9.e-]+,\\s*\"kd \\(stored f16\\)\": [0-9.e-]+\\s*}.*"), results);
        assertTrue(results.contains("\"testAccuracyRuns\": [") && results.contains("\"testAccuracyStd\": "), results);
        String prov = Files.readString(outDir.resolve("provenance.json"));
        assertTrue(prov.contains("\"seeds\": [\n    3,\n    4\n  ]") && prov.contains("\"student alone seed 4\": \"dl4j"), prov);
    }

    /**
     * An UncheckedIOException with its own message (which names the file and the action) keeps it; one made by
     * new UncheckedIOException(cause) shows the cause; a file-system error without a reason says it in words.
     */
    @Test
    void anIoFailureKeepsTheWrappersMessageAndSaysTheReasonInWords() {
        var full = new java.io.UncheckedIOException("cannot save the checkpoint /r/distill.ckpt: No space left on device",
                new java.io.IOException("No space left on device"));
        assertEquals("cannot save the checkpoint /r/distill.ckpt: No space left on device", Main.ioMessage(full));
        assertEquals("/r/a: Not a directory", Main.ioMessage(new java.io.UncheckedIOException(
                new java.nio.file.FileSystemException("/r/a", null, "Not a directory"))));
        assertEquals("/r/x: no such file or folder", Main.ioMessage(new java.io.UncheckedIOException(new java.nio.file.NoSuchFileException("/r/x"))));
        assertEquals("/r/x: permission denied", Main.ioMessage(new java.nio.file.AccessDeniedException("/r/x")));
        assertEquals("/r/x: already exists", Main.ioMessage(new java.nio.file.FileAlreadyExistsException("/r/x")));
        assertEquals("/r/x: not a folder", Main.ioMessage(new java.nio.file.NotDirectoryException("/r/x")));
        Main.failed("demo", full, new PrintStream(errBytes, true, StandardCharsets.UTF_8));
        assertEquals("distill demo failed: cannot save the checkpoint /r/distill.ckpt: No space left on device\n", err());
    }

    /**
     * No Fashion-MNIST anywhere the lookup tries is the environment's state, not a bug: one line with FashionMnist's advice,
     * no stack trace (it was an IllegalStateException, which the CLI prints with its trace). The CLI cannot reach it (the
     * embedded subset is on its class path, and --data or $DISTILL_DATA naming no dataset is its own error), so the
     * library's own exception is made here with a class loader that has no subset.
     */
    @Test
    void noDatasetFoundIsOneLineWithoutATrace(@TempDir Path tmp) throws Exception {
        java.lang.reflect.Method load = org.distill4j.data.FashionMnist.class.getDeclaredMethod("load", Path.class,
                java.util.function.Function.class, Path.class, ClassLoader.class);
        load.setAccessible(true);
        java.util.function.Function<String, String> noEnv = k -> null;
        Throwable thrown = org.junit.jupiter.api.Assertions.assertThrows(java.lang.reflect.InvocationTargetException.class,
                () -> load.invoke(null, null, noEnv, tmp.resolve("absent"), new ClassLoader(null) {
                })).getCause();
        assertTrue(thrown.getMessage().startsWith("no Fashion-MNIST found: pass a data directory, set $DISTILL_DATA"), thrown.getMessage());
        assertEquals(1, Main.failed("label", (Exception) thrown, new PrintStream(errBytes, true, StandardCharsets.UTF_8)));
        assertEquals("distill label failed: " + thrown.getMessage() + "\n", err());
    }

    /**
     * A bug escaping a command (a NullPointerException, our own IllegalStateException, ND4J's plain RuntimeException, or
     * one wrapped in an IOException) prints its stack trace by default; a user error (a file, an argument) is one line.
     */
    @Test
    void aBugEscapingACommandPrintsItsTraceAndAUserErrorDoesNot() {
        PrintStream errStream = new PrintStream(errBytes, true, StandardCharsets.UTF_8);
        Exception[] bugs = {new NullPointerException("Cannot invoke \"Object.toString()\" because \"x\" is null"),
                new IllegalStateException("store writer is closed"), new RuntimeException("Op [matmul] execution failed"),
                new java.io.IOException("cannot read m.zip as a DL4J MultiLayerNetwork: null", new NullPointerException()),
                new IllegalArgumentException("bad", new ClassCastException("x"))};
        for (Exception bug : bugs) {
            errBytes.reset();
            assertEquals(1, Main.failed("eval", bug, errStream));
            assertTrue(err().startsWith("distill eval failed: " + bug.getMessage() + "\n") && err().contains("\tat org.distill4j"),
                    "the trace of a bug: " + err());
        }
        Exception[] userErrors = {new java.io.IOException("m.zip: no such model file"), new NumberFormatException("For input string: \"x\""),
                new IllegalArgumentException("m.zip: a DL4J model of 3 classes, but the data has 10"),
                new org.distill4j.store.StoreFormatException("s.d4j: chunk 3 checksum mismatch"),
                new java.io.UncheckedIOException("cannot write r.json: disk full", new java.io.IOException("disk full")),
                new ModelFiles.NotAModelException("m.zip is not a DL4J model: it is an empty zip", new IllegalStateException("Model wasnt found"))};
        for (Exception user : userErrors) {
            errBytes.reset();
            assertEquals(1, Main.failed("eval", user, errStream));
            assertEquals("distill eval failed: " + Main.ioMessage(user) + "\n", err());
        }
        System.setProperty("distill.debug", "true");
        try {
            errBytes.reset();
            Main.failed("eval", userErrors[0], errStream);
            assertTrue(err().contains("\tat org.distill4j"), "DISTILL_DEBUG: every trace: " + err());
        } finally {
            System.clearProperty("distill.debug");
        }
    }
}
