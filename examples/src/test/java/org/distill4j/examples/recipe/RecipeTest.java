package org.distill4j.examples.recipe;

import org.distill4j.examples.Demo;
import org.distill4j.examples.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RecipeTest {
    static final Path KD = Path.of("recipes", "fashion-mnist", "kd", "mlp400_from_mlp1200.yaml");

    static RecipeException fails(String yaml) {
        return assertThrows(RecipeException.class, () -> RecipeLoader.parse(yaml, Path.of("r.yaml"), List.of()));
    }

    static String base(String loss) {
        return "name: t\n"
                + "teacher:\n  hidden: [8]\n  epochs: 1\n"
                + "student:\n  hidden: [4]\n"
                + "training:\n  epochs: 2\n"
                + "loss:\n" + loss;
    }

    @Test
    void everyShippedRecipeValidatesAndSitsWhereTheLayoutSays() throws Exception {
        List<Path> recipes;
        try (Stream<Path> s = Files.walk(Path.of("recipes"))) {
            recipes = s.filter(p -> p.toString().endsWith(".yaml")).toList();
        }
        assertTrue(recipes.size() >= 3, recipes.toString());
        for (Path p : recipes) {
            Recipe r = RecipeLoader.load(p, List.of());
            assertEquals(4, p.getNameCount() - Path.of("recipes").getNameCount() + 1, "recipes/<dataset>/<method>/<file>: " + p);
            assertTrue(p.getFileName().toString().matches("\\w+_from_\\w+\\.yaml"), p.toString());
            r.objectives().forEach(o -> assertTrue(RecipeRunner.loss(o.terms()) != null));
        }
    }

    @Test
    void defaultsAndOverridesResolve() throws Exception {
        Recipe r = RecipeLoader.load(KD, List.of("training.epochs=3", "data.transferSamples=500", "student.hidden=[64]"));
        assertEquals(3, r.training().epochs());
        assertEquals(500, r.data().transferSamples());
        assertEquals(128, r.training().batchSize());
        assertEquals(4.0, ((org.distill4j.loss.SoftTargetKd) RecipeRunner.loss(r.loss())).temperature());
        assertEquals(3, ((java.util.Map<?, ?>) r.resolved().get("training")).get("epochs"));
    }

    /**
     * data.unlabeledSamples and training.mixup: 0 by default and then absent from the resolved recipe (other runs' provenance
     * unchanged); set, they resolve and reach the demo's settings; a value out of range names the field.
     */
    @Test
    void unlabeledSamplesAndMixupLoadResolveAndReachTheDemo() throws Exception {
        Recipe plain = RecipeLoader.load(KD, List.of());
        assertEquals(0, plain.data().unlabeledSamples());
        assertFalse(((java.util.Map<?, ?>) plain.resolved().get("data")).containsKey("unlabeledSamples"));
        Recipe r = RecipeLoader.load(KD, List.of("data.unlabeledSamples=9000"));
        assertEquals(9000, r.data().unlabeledSamples());
        assertEquals(9000, ((java.util.Map<?, ?>) r.resolved().get("data")).get("unlabeledSamples"));
        assertEquals(9000, RecipeRunner.settings(r, Path.of("out"), false, false).unlabeledSamples);
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeLoader.load(KD, List.of("data.unlabeledSamples=-3")));
        assertTrue(e.getMessage().contains("data.unlabeledSamples: expected a whole number >= 0, got -3"), e.getMessage());
        Recipe mixup = RecipeLoader.load(KD, List.of("training.mixup=0.4"));
        assertEquals(0.4, mixup.training().mixup());
        assertEquals(0.4, ((java.util.Map<?, ?>) mixup.resolved().get("training")).get("mixup"));
        assertEquals(0.4, RecipeRunner.settings(mixup, Path.of("out"), false, false).mixup);
        assertFalse(((java.util.Map<?, ?>) plain.resolved().get("training")).containsKey("mixup"));
        e = assertThrows(RecipeException.class, () -> RecipeLoader.load(KD, List.of("training.mixup=0")));
        assertTrue(e.getMessage().contains("training.mixup: expected a number > 0, got 0.0"), e.getMessage());
        Recipe images = RecipeLoader.load(KD, List.of("training.shift=2", "training.flip=true"));
        assertEquals(2, images.training().shift());
        assertTrue(images.training().flip());
        assertEquals(2, ((java.util.Map<?, ?>) images.resolved().get("training")).get("shift"));
        assertEquals(true, ((java.util.Map<?, ?>) images.resolved().get("training")).get("flip"));
        Demo.Settings imageSettings = RecipeRunner.settings(images, Path.of("out"), false, false);
        assertEquals(2, imageSettings.shift);
        assertTrue(imageSettings.flip);
        assertFalse(((java.util.Map<?, ?>) plain.resolved().get("training")).containsKey("shift"));
        assertFalse(((java.util.Map<?, ?>) plain.resolved().get("training")).containsKey("flip"));
        assertFalse(((java.util.Map<?, ?>) RecipeLoader.load(KD, List.of("training.flip=false")).resolved().get("training"))
                .containsKey("flip"), "flip: false is the default, left out");
        e = assertThrows(RecipeException.class, () -> RecipeLoader.load(KD, List.of("training.shift=0")));
        assertTrue(e.getMessage().contains("training.shift: expected a positive whole number, got 0"), e.getMessage());
        e = assertThrows(RecipeException.class, () -> RecipeLoader.load(KD, List.of("training.flip=yes")));
        assertTrue(e.getMessage().contains("training.flip: expected true or false, got 'yes'"), e.getMessage());
        Recipe shipped = RecipeLoader.load(Path.of("recipes", "fashion-mnist", "unlabeled-kd", "mlp400_from_mlp1200.yaml"), List.of());
        assertEquals(1000, shipped.data().transferSamples());
        assertEquals(9000, shipped.data().unlabeledSamples());
    }

    @Test
    void errorsNameFileLineColumnAndField() {
        RecipeException e = fails("name: t\ntrainng:\n  epochs: 3\n");
        assertTrue(e.getMessage().startsWith("r.yaml:2:1: trainng: unknown key 'trainng' (did you mean 'training'?)"), e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  batchSize: abc\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:14: training.batchSize: expected a whole number, got 'abc'"), e.getMessage());
        e = fails("name: t\nteacher:\n  hidden: [8]\ntraining:\n  epochs: 2\nloss:\n  - name: kd\n");
        assertTrue(e.getMessage().contains("student: missing required field"), e.getMessage());
        e = fails(base("  - name: kdd\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:10:11: loss[0].name: unknown loss 'kdd' (did you mean 'kd'?); registered losses: kd, ce,"),
                e.getMessage());
        e = fails(base("  - name: kd\n    temprature: 4\n"));
        assertTrue(e.getMessage().contains("loss[0].temprature: loss 'kd' has no setting 'temprature' (did you mean 'temperature'?)"),
                e.getMessage());
        e = fails(base("  - name: kd\n    alpha: 3\n"));
        assertTrue(e.getMessage().contains("loss[0]: kd alpha (hard-label weight) must be in [0, 1], got 3.0"), e.getMessage());
        e = fails(base("  - name: kd\n").replace("hidden: [4]", "hidden: [4, x]"));
        assertTrue(e.getMessage().contains("student.hidden[1]: expected a positive layer size, got 'x'"), e.getMessage());
        e = fails("name: t\nteacher: !!javax.script.ScriptEngineManager [x]\n"); // refused by the parser already
        assertTrue(e.getMessage().startsWith("r.yaml:2:10: not valid YAML: Global tag is not allowed"), e.getMessage());
        e = fails("name: t\nteacher: !custom {hidden: [8]}\n"); // a local tag reaches our own check
        assertTrue(e.getMessage().contains("r.yaml:2:10: teacher: tag !custom is not allowed: recipes are plain data"), e.getMessage());
        e = fails("name: t\nteacher: [1, 2\n");
        assertTrue(e.getMessage().startsWith("r.yaml:3:1: not valid YAML"), e.getMessage());
    }

    /** YAML keys are unique; the parser would let the last one win, so a repeated key is refused naming both places. */
    @Test
    void aDuplicateKeyIsRefusedWithBothPlaces() {
        RecipeException e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 40\n  epochs: 2\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:3: training.epochs: duplicate key 'epochs' (first at line 8, column 3);"
                + " a key may appear once in training"), e.getMessage());
        e = fails(base("  - name: kd\n") + "training:\n  batchSize: 64\n");
        assertTrue(e.getMessage().startsWith("r.yaml:11:1: training: duplicate key 'training' (first at line 7, column 1)"), e.getMessage());
        e = fails(base("  - {name: kd, temperature: 4, temperature: 2}\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:10:32: loss[0].temperature: duplicate key 'temperature' (first at line 10, column 16)"),
                e.getMessage());
        e = fails(base("  - name: kd\n").replace("  hidden: [8]\n", "  hidden: [8]\n  hidden: [16]\n"));
        assertTrue(e.getMessage().contains("teacher.hidden: duplicate key 'hidden'"), e.getMessage());
        e = assertThrows(RecipeException.class, () -> RecipeLoader.parse("name: t\nname: u\n", Path.of("r.yaml"), List.of("name=v")));
        assertTrue(e.getMessage().startsWith("r.yaml:2:1: name: duplicate key 'name'"), "--set does not hide a duplicate: " + e.getMessage());
    }

    /** A teacher made only of stored outputs has nothing to train or load: the keys that would do so are refused, not ignored. */
    @Test
    void aStoreOnlyTeacherRefusesTheKeysItWouldIgnore() {
        for (String key : new String[]{"epochs: 99", "dropout: 0.5", "engine: pytorch", "inputShape: [1, 28, 28]", "logits: out",
                "outputNames: [a]"}) {
            String k = key.substring(0, key.indexOf(':'));
            RecipeException e = fails(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n",
                    "  store: {path: s.d4j}\n  " + key + "\n"));
            assertTrue(e.getMessage().startsWith("r.yaml:4:") && e.getMessage().contains(": teacher." + k + ": '" + k + "' does not apply to a teacher made only of "
                    + "stored outputs (teacher.store without model or hidden); add teacher.hidden"), e.getMessage());
        }
    }

    /** data.dataset is what the run loads: only Fashion-MNIST, so another name is refused rather than recorded over it. */
    @Test
    void theDatasetIsOneTheRunnerLoads() throws Exception {
        RecipeException e = fails(base("  - name: kd\n") + "data: {dataset: mnist, path: embedded}\n");
        assertTrue(e.getMessage().startsWith("r.yaml:11:17: data.dataset: unknown dataset 'mnist'; supported: fashion-mnist (the only"
                + " dataset distill run loads"), e.getMessage());
        e = fails(base("  - name: kd\n") + "data: {dataset: fashion_mnist}\n");
        assertTrue(e.getMessage().contains("unknown dataset 'fashion_mnist' (did you mean 'fashion-mnist'?)"), e.getMessage());
        Recipe r = RecipeLoader.parse(base("  - name: kd\n") + "data: {dataset: fashion-mnist}\n", Path.of("r.yaml"), List.of());
        assertEquals("fashion-mnist", r.data().dataset());
        assertEquals("fashion-mnist", ((java.util.Map<?, ?>) r.resolved().get("data")).get("dataset"));
    }

    /** teacher.store.path starts at the recipe's folder, like model files and data.path, whatever the working directory. */
    @Test
    void storePathsAreRelativeToTheRecipe(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("recipes/ds/kd"));
        Recipe live = RecipeLoader.parse(base("  - name: kd\n").replace("  epochs: 1\n", "  epochs: 1\n  store: {path: ../stores/s.d4j}\n"),
                dir.resolve("r.yaml"), List.of());
        assertEquals(tmp.resolve("recipes/ds/stores/s.d4j"), live.teacher().store().path());
        assertTrue(live.resolved().toString().contains("path=" + tmp.resolve("recipes/ds/stores/s.d4j")), live.resolved().toString());

        // a store-only teacher: the store next to the recipe is found (the working directory is examples/, not dir)
        org.distill4j.store.StoreHeader h = new org.distill4j.store.StoreHeader(org.distill4j.store.StoreHeader.Layout.TOP_K,
                org.distill4j.store.ValueCodec.F16, org.distill4j.store.StoreHeader.ValueKind.LOG_PROBS, 10, 2, 3, 4, 1.0, "{}");
        try (org.distill4j.store.StoreWriter w = org.distill4j.store.StoreWriter.open(dir.resolve("top2.d4j"), h)) {
            w.writeTopK(new int[]{1, 2, 3, 4, 5, 6}, new float[]{-0.1f, -2.5f, -0.2f, -3, -0.3f, -4}, 3);
            w.finish();
        }
        String storeOnly = base("  - name: topk-kd\n").replace("  hidden: [8]\n  epochs: 1\n", "  store: {path: top2.d4j}\n");
        Recipe r = RecipeLoader.parse(storeOnly, dir.resolve("r.yaml"), List.of());
        assertEquals(dir.resolve("top2.d4j"), r.teacher().store().path());
        assertEquals(2, r.teacher().store().topK());
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeLoader.parse(storeOnly, tmp.resolve("r.yaml"), List.of()));
        assertTrue(e.getMessage().contains("teacher.store.path: a teacher made only of stored outputs needs a complete store")
                && e.getMessage().contains("relative paths start at the recipe's folder") && e.getMessage().contains(tmp.resolve("top2.d4j").toString()),
                e.getMessage());
    }

    /**
     * teacher.store.path of a teacher that trains or loads is where the run labels its outputs: a directory there, or a file
     * where a folder above it must be, is refused when the recipe is read (the file, line and column, the field, the path
     * and the file in the way), not after the teacher has trained. A store-only teacher's store is read, not written: its
     * own check says it is not a store.
     */
    @Test
    void aStorePathTheRunCannotWriteIsRefusedWhenTheRecipeIsRead(@TempDir Path tmp) throws Exception {
        Path afile = Files.writeString(tmp.resolve("afile"), "x");
        Path folder = Files.createDirectories(tmp.resolve("folder"));
        Path recipe = tmp.resolve("r.yaml");
        String live = base("  - name: kd\n").replace("  epochs: 1\n", "  epochs: 1\n  store: {path: STORE}\n");
        for (String store : new String[] {"afile/s.d4j", "afile/sub/s.d4j", afile.resolve("s.d4j").toString()}) {
            Path resolved = tmp.resolve("afile").resolve(store.substring(store.indexOf("afile/") + "afile/".length()));
            RecipeException e = assertThrows(RecipeException.class,
                    () -> RecipeLoader.parse(live.replace("STORE", store), recipe, List.of()), store);
            assertEquals(recipe + ":5:17: teacher.store.path: " + resolved + ": " + afile + " is a file, not a folder; give"
                    + " teacher.store.path a path in a folder (or move " + afile + " away)", e.getMessage());
        }
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeLoader.parse(live.replace("STORE", "folder"), recipe, List.of()));
        assertEquals(recipe + ":5:17: teacher.store.path: " + folder + " is a directory; expected the store's file name (the teacher's"
                + " outputs are labeled into it)", e.getMessage());
        // from the command line: exit 2, one line, nothing trained
        Files.writeString(recipe, live.replace("STORE", "ok.d4j").replace("name: t\n",
                "name: t\ndata: {path: embedded, teacherSamples: 100, transferSamples: 100, testSamples: 100}\n"));
        String err = runFails(2, "run", recipe.toString(), "--quiet", "--out", tmp.resolve("out").toString(), "--set",
                "teacher.store.path=afile/s.d4j");
        assertTrue(err.startsWith("distill run: " + recipe + ": --set teacher.store.path=afile/s.d4j"), err);
        assertTrue(err.endsWith(": teacher.store.path: " + afile.resolve("s.d4j") + ": " + afile + " is a file, not a folder; give"
                + " teacher.store.path a path in a folder (or move " + afile + " away)\n"), err);
        assertEquals(1, err.lines().count(), err);
        assertTrue(Files.notExists(tmp.resolve("out")), "nothing trained or written");
        // a path the recipe only reads (a store-only teacher's) is not an output: the store check names it as before
        e = assertThrows(RecipeException.class, () -> RecipeLoader.parse(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n",
                "  store: {path: afile/s.d4j}\n"), recipe, List.of()));
        assertTrue(e.getMessage().contains("teacher.store.path: a teacher made only of stored outputs needs a complete store"),
                e.getMessage());
    }

    /** Runs the CLI expecting exit code {@code code}; returns stderr. */
    static String runFails(int code, String... args) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int got = Main.run(args, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String e = err.toString(StandardCharsets.UTF_8);
        assertEquals(code, got, e);
        return e;
    }

    /** Values that would fail only at run time, or train on nothing, are usage errors when the recipe is read (exit 2, no trace). */
    @Test
    void badValuesAreNamedWhenTheRecipeIsRead() {
        String err = runFails(2, "run", KD.toString(), "--set", "student.hidden=[1,", "--quiet");
        assertTrue(err.startsWith("distill run: " + KD + ": --set student.hidden=[1,: student.hidden: the value is not valid YAML: "),
                err);
        assertFalse(err.contains("\tat "), "no stack trace: " + err);
        err = runFails(2, "run", KD.toString(), "--quiet", "--set", "training.epoch=5");
        assertTrue(err.startsWith("distill run: " + KD + ": --set training.epoch=5: training.epoch: unknown key 'epoch' (did you mean"
                + " 'epochs'?)"), err);
        err = runFails(2, "run", KD.toString(), "--quiet", "--set");
        assertTrue(err.contains("--set needs a value"), err);
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeLoader.load(KD, List.of("name={a: b")));
        assertTrue(e.getMessage().contains("--set name={a: b: name: the value is not valid YAML"), e.getMessage());

        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  backend: cdua\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:12: training.backend: unknown backend 'cdua' (did you mean 'cuda'?); known: auto, "),
                e.getMessage());
        assertTrue(e.getMessage().contains("cpu") && e.getMessage().contains("cuda"), e.getMessage());
        for (String known : new String[]{"auto", "cpu", "cuda", "CPU"}) {
            Recipe r = RecipeLoader.parse(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  backend: " + known + "\n"),
                    Path.of("r.yaml"), List.of());
            assertEquals(known.toLowerCase(java.util.Locale.ROOT), r.training().backend(), "known whether available here or not");
        }

        e = fails(base("  - {name: kd, weight: Infinity}\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:10:24: loss[0].weight: expected a finite weight >= 0 (0 turns the term off), got Infinity"),
                e.getMessage());
        e = fails(base("  - {name: kd, weight: NaN}\n"));
        assertTrue(e.getMessage().contains("loss[0].weight: expected a finite weight >= 0"), e.getMessage());
        e = fails(base("  - {name: kd, weight: 0}\n  - {name: ce, weight: 0}\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:10:3: loss: every term has weight 0, so the distilled student would learn nothing"),
                e.getMessage());
        Recipe off = RecipeLoader.parse(base("  - {name: kd, weight: 0}\n  - {name: ce}\n"), Path.of("r.yaml"), List.of());
        assertEquals(0.0, off.loss().get(0).weight(), "one term turned off is fine");

        String store = "  store: {path: s.d4j, topk: 11}\n";
        e = fails(base("  - name: topk-kd\n").replace("  epochs: 1\n", "  epochs: 1\n" + store));
        assertTrue(e.getMessage().startsWith("r.yaml:5:30: teacher.store.topk: expected 0 (dense rows) or a k from 1 to 10 (the classes of "
                + "fashion-mnist), got 11"), e.getMessage());
        e = fails(base("  - name: topk-kd\n").replace("  epochs: 1\n", "  epochs: 1\n" + store.replace("11", "4294967299")));
        assertTrue(e.getMessage().contains("got 4294967299"), "not wrapped to an int: " + e.getMessage());
    }

    /**
     * A recipe file that is not UTF-8 text (here Latin-1, as an editor on another system may save it; or cut inside a
     * character) is a usage error naming the file, the line and column and the byte offset of the first byte that is not
     * UTF-8, and what was expected, never a MalformedInputException and exit 1. So are a directory, a missing file and one
     * that cannot be read: one line each, exit 2.
     */
    @Test
    void aRecipeFileThatIsNotUtf8TextOrNotAReadableFileIsAUsageErrorNamingIt(@TempDir Path tmp) throws Exception {
        String text = base("  - name: kd\n").replace("name: t\n", "name: t\ndescription: café au lait\n");
        Path latin1 = Files.write(tmp.resolve("latin1.yaml"), text.getBytes(StandardCharsets.ISO_8859_1));
        String expected = ": not UTF-8 text: byte 0xe9 at byte offset 24 is not valid UTF-8; expected a recipe saved as UTF-8 text";
        assertEquals("distill run: " + latin1 + ":2:17" + expected + "\n", runFails(2, "run", latin1.toString(), "--quiet"));
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeLoader.load(latin1, List.of()));
        assertEquals(latin1 + ":2:17" + expected, e.getMessage());

        byte[] cut = (text.replace("é", "\u00e9").substring(0, 25)).getBytes(StandardCharsets.UTF_8); // "...caf" + the first byte of é
        Path truncated = Files.write(tmp.resolve("cut.yaml"), java.util.Arrays.copyOf(cut, cut.length - 1));
        e = assertThrows(RecipeException.class, () -> RecipeLoader.load(truncated, List.of()));
        assertEquals(truncated + ":2:17: not UTF-8 text: the file ends inside a character (byte 0xc3 at byte offset 24); expected a"
                + " recipe saved as UTF-8 text", e.getMessage());

        assertEquals("distill run: " + tmp + ": is a directory; expected a recipe file (YAML), e.g. examples/recipes/fashion-mnist/kd/"
                + "mlp400_from_mlp1200.yaml\n", runFails(2, "run", tmp.toString(), "--quiet"));
        Path missing = tmp.resolve("missing.yaml");
        assertEquals("distill run: " + missing + ": no such recipe file\n", runFails(2, "run", missing.toString(), "--quiet"));
        Path underAFile = latin1.resolve("r.yaml");
        assertEquals("distill run: " + underAFile + ": no such recipe file\n",
                runFails(2, "run", underAFile.toString(), "--quiet"));

        // a file far larger than any recipe (a model or a dataset named by mistake) is refused by its size, unread
        Path big = tmp.resolve("big.yaml");
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(big, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(base("  - name: kd\n").getBytes(StandardCharsets.UTF_8)));
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {'#'}), RecipeLoader.MAX_RECIPE_BYTES); // sparse: 1 MiB + 1 byte
        }
        assertEquals("distill run: " + big + ": is " + (RecipeLoader.MAX_RECIPE_BYTES + 1) + " bytes; expected a recipe file"
                + " (YAML text) of at most " + RecipeLoader.MAX_RECIPE_BYTES + " bytes\n", runFails(2, "run", big.toString(), "--quiet"));
        Files.write(big, base("  - name: kd\n").replace("name: t\n", "name: t\ndescription: " + "x".repeat(1 << 19) + "\n")
                .getBytes(StandardCharsets.UTF_8));
        assertEquals("t", RecipeLoader.load(big, List.of()).name(), "a large recipe within the limit loads");

        Path locked = Files.writeString(tmp.resolve("locked.yaml"), base("  - name: kd\n"));
        Files.setPosixFilePermissions(locked, java.util.Set.of());
        org.junit.jupiter.api.Assumptions.assumeFalse(Files.isReadable(locked), "running as root: every file is readable");
        assertEquals("distill run: " + locked + ": cannot be read: permission denied; expected a recipe file this user can read\n",
                runFails(2, "run", locked.toString(), "--quiet"));
    }

    /**
     * A path field no file can have (a NUL character, which YAML writes as "\\0") is refused where it is, naming the field,
     * as is a name that cannot be the run's folder (distill-out/NAME); on the command line both exit with 2, no stack trace.
     */
    @Test
    void pathsNoFileCanHaveAreRefusedAtTheirField() {
        String nul = "'x\\u0000y' is not a valid path (Nul character not allowed); expected a file or folder name, relative to the"
                + " recipe's folder or absolute";
        RecipeException e = fails(base("  - name: kd\n").replace("student:", "data: {path: \"x\\0y\"}\nstudent:"));
        assertEquals("r.yaml:5:14: data.path: " + nul, e.getMessage());
        e = fails(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n", "  model: \"x\\0y\"\n"));
        assertEquals("r.yaml:3:10: teacher.model: " + nul, e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 1\n", "  epochs: 1\n  store: {path: \"x\\0y\"}\n"));
        assertEquals("r.yaml:5:17: teacher.store.path: " + nul, e.getMessage());
        e = fails(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n", "  store: {path: \"x\\0y\"}\n"));
        assertEquals("r.yaml:3:17: teacher.store.path: " + nul, e.getMessage());
        e = fails(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n",
                "  ensemble:\n    - {hidden: [8]}\n    - {model: \"x\\0y\"}\n"));
        assertEquals("r.yaml:5:15: teacher.ensemble[1].model: " + nul, e.getMessage());

        for (String name : new String[]{"\"a\\0b\"", "../up", "a/b", "'..'", "'.'"}) {
            e = fails(base("  - name: kd\n").replace("name: t\n", "name: " + name + "\n"));
            assertTrue(e.getMessage().startsWith("r.yaml:1:7: name: '") && e.getMessage().contains("' cannot name the run's folder"
                    + " (distill-out/<name>); expected a name without '/' or control characters, other than '.' and '..'"), e.getMessage());
        }
        assertEquals("my-run.2", RecipeLoader.parse(base("  - name: kd\n").replace("name: t\n", "name: my-run.2\n"), Path.of("r.yaml"),
                List.of()).name());

        String err = runFails(2, "run", KD.toString(), "--quiet", "--set", "data.path=\"x\\0y\"");
        assertTrue(err.startsWith("distill run: " + KD + ":") && err.contains(": data.path: " + nul), err);
        assertFalse(err.contains("\tat "), "no stack trace: " + err);
    }

    /**
     * A control character at the end (or start) of a path or of the name, written as a YAML escape ("x\\0", "x\\n", ...), is
     * refused at its field as one inside it is, not trimmed away so that the recipe names another file than it says; only
     * spaces around a value are trimmed. The same for a --set value a program passes with a raw NUL at its end.
     */
    @Test
    void aControlCharacterAtTheEndOfAPathOrTheNameIsRefusedNotTrimmed() {
        String rest = "; expected a file or folder name, relative to the recipe's folder or absolute";
        // {YAML escape, as printed, Path.of's reason (NUL) or ours}
        String[][] cases = {{"\\0", "\\u0000", "Nul character not allowed"}, {"\\x01", "\\u0001", "control character \\u0001 at index 1"},
                {"\\t", "\\u0009", "control character \\u0009 at index 1"}, {"\\n", "\\u000a", "control character \\u000a at index 1"},
                {"\\e", "\\u001b", "control character \\u001b at index 1"}};
        for (String[] c : cases) {
            String bad = "'x" + c[1] + "' is not a valid path (" + c[2] + ")" + rest;
            RecipeException e = fails(base("  - name: kd\n").replace("student:", "data: {path: \"x" + c[0] + "\"}\nstudent:"));
            assertEquals("r.yaml:5:14: data.path: " + bad, e.getMessage(), c[0]);
            e = fails(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n", "  model: \"x" + c[0] + "\"\n"));
            assertEquals("r.yaml:3:10: teacher.model: " + bad, e.getMessage(), c[0]);
            e = fails(base("  - name: kd\n").replace("  epochs: 1\n", "  epochs: 1\n  store: {path: \"x" + c[0] + "\"}\n"));
            assertEquals("r.yaml:5:17: teacher.store.path: " + bad, e.getMessage(), c[0]);
            e = fails(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n", "  store: {path: \"x" + c[0] + "\"}\n"));
            assertEquals("r.yaml:3:17: teacher.store.path: " + bad, e.getMessage(), c[0]);
            e = fails(base("  - name: kd\n").replace("  hidden: [8]\n  epochs: 1\n",
                    "  ensemble:\n    - {hidden: [8]}\n    - {model: \"x" + c[0] + "\"}\n"));
            assertEquals("r.yaml:5:15: teacher.ensemble[1].model: " + bad, e.getMessage(), c[0]);
            e = fails(base("  - name: kd\n").replace("student:", "data: {path: \"" + c[0] + "x\"}\nstudent:"));
            assertTrue(e.getMessage().startsWith("r.yaml:5:14: data.path: '" + c[1] + "x' is not a valid path ("), "at the start: "
                    + e.getMessage());
            e = fails(base("  - name: kd\n").replace("name: t\n", "name: \"t" + c[0] + "\"\n"));
            assertEquals("r.yaml:1:7: name: 't" + c[1] + "' cannot name the run's folder (distill-out/<name>); expected a name without"
                    + " '/' or control characters, other than '.' and '..', e.g. fmnist-kd-mlp400-from-mlp1200", e.getMessage(), c[0]);
        }
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeLoader.load(KD, List.of("data.path=x\0")));
        assertTrue(e.getMessage().contains("--set data.path=x\\u0000: data.path: ") && !e.getMessage().contains("\0"),
                "a raw NUL is not trimmed away, and shown as an escape: " + e.getMessage());
        // spaces around a value are not part of it
        Recipe r = RecipeLoader.parse(base("  - name: kd\n").replace("name: t\n", "name: \"  my-run \"\ndata: {path: \" embedded \"}\n"),
                Path.of("r.yaml"), List.of());
        assertEquals("my-run", r.name());
        assertEquals("embedded", r.data().path());
    }

    @Test
    void schedulesAndOptimizerResolveAndFitTheLoss() throws Exception {
        Recipe r = RecipeLoader.load(KD, List.of("training.optimizer=nesterovs", "training.schedules={temperature: {from: 4, to: 1}, alpha: 0.3}"));
        assertEquals("nesterovs", r.training().optimizer());
        assertEquals(4.0, r.training().temperature().at(0, 40));
        assertEquals(1.0, r.training().temperature().at(39, 40));
        assertEquals(0.3, r.training().alpha().at(17, 40));
        java.util.Map<?, ?> tr = (java.util.Map<?, ?>) r.resolved().get("training");
        assertEquals("{temperature={from=4.0, to=1.0}, alpha=0.3}", tr.get("schedules").toString());

        RecipeException e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  optimizer: adan\n"));
        assertTrue(e.getMessage().contains("training.optimizer: unknown optimizer 'adan' (did you mean 'adam'?); known: adam, nadam"),
                e.getMessage());
        e = fails(base("  - name: dkd\n").replace("  epochs: 2\n", "  epochs: 2\n  schedules: {alpha: {from: 0.5, to: 0.1}}\n"));
        assertTrue(e.getMessage().contains("training.schedules.alpha: alpha schedules apply to a single kd loss term"), e.getMessage());
        e = fails(base("  - name: mse\n").replace("  epochs: 2\n", "  epochs: 2\n  schedules: {temperature: 2}\n"));
        assertTrue(e.getMessage().contains("training.schedules.temperature: loss 'mse' has no temperature"), e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  schedules: {temperature: {from: 4, to: 0}}\n"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:28: training.schedules.temperature: at epoch 2: kd temperature must be a finite number > 0, got 0.0"), e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  schedules: {temprature: 2}\n"));
        assertTrue(e.getMessage().contains("training.schedules.temprature: unknown key 'temprature' (did you mean 'temperature'?)"),
                e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  schedules: {alpha: {from: 0.5}}\n"));
        assertTrue(e.getMessage().contains("training.schedules.alpha.to: missing required field"), e.getMessage());
    }

    @Test
    void checkpointCadenceResolvesAndReachesTheRows() throws Exception {
        Recipe dflt = RecipeLoader.load(KD, List.of());
        assertEquals(0, dflt.training().checkpointEverySteps());
        assertEquals(java.time.Duration.ofSeconds(30), dflt.training().checkpointMinInterval());
        Recipe r = RecipeLoader.load(KD, List.of("training.checkpoint={everySteps: 250, minSeconds: 0.5}"));
        assertEquals(250, r.training().checkpointEverySteps());
        assertEquals(java.time.Duration.ofMillis(500), r.training().checkpointMinInterval());
        java.util.Map<?, ?> tr = (java.util.Map<?, ?>) r.resolved().get("training");
        assertEquals("{everySteps=250, minSeconds=0.5}", tr.get("checkpoint").toString());
        Demo.Settings s = RecipeRunner.settings(r, Path.of("out"), false, false);
        assertEquals(250, s.checkpointEverySteps);
        assertEquals(java.time.Duration.ofMillis(500), s.checkpointMinInterval);

        RecipeException e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  checkpoint: {everySteps: -1}\n"));
        assertTrue(e.getMessage().contains("training.checkpoint.everySteps: expected 0 (at epoch ends only) or a positive whole"
                + " number of steps, got -1"), e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  checkpoint: {minSeconds: -3}\n"));
        assertTrue(e.getMessage().contains("training.checkpoint.minSeconds: expected a number of seconds from 0 to 1e9, got -3.0"),
                e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  checkpoint: {minSeconds: NaN}\n"));
        assertTrue(e.getMessage().contains("training.checkpoint.minSeconds: expected a number of seconds from 0 to 1e9, got NaN"),
                e.getMessage());
        e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  checkpoint: {everyStep: 5}\n"));
        assertTrue(e.getMessage().contains("training.checkpoint.everyStep: unknown key 'everyStep' (did you mean 'everySteps'?)"),
                e.getMessage());
    }

    /**
     * A row saved within its only epoch (training.checkpoint.everySteps), killed, and resumed with the default cadence:
     * the resume goes on from the mid-epoch save (with one epoch, the only epoch-end save is the last), and the run ends
     * with the numbers and models of an uninterrupted run.
     */
    @Test
    void aRowSavedWithinAnEpochResumesThereUnderAnotherCadence(@TempDir Path tmp) throws Exception {
        String[] args = {"run", KD.toString(), "--quiet", "--set", "teacher.hidden=[32]", "--set", "teacher.epochs=1",
                "--set", "student.hidden=[256, 256]", "--set", "training.epochs=1", "--set", "training.batchSize=8",
                "--set", "data.teacherSamples=300", "--set", "data.transferSamples=4000", "--set", "data.testSamples=200"};
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        run(Stream.concat(Stream.of(args), Stream.of("--out", a.toString())).toArray(String[]::new));

        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("--out", b.toString(), "--set", "training.checkpoint={everySteps: 10, minSeconds: 0}"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile());
        pb.environment().put("OMP_NUM_THREADS", "1");
        Process child = pb.start();
        Path saved = b.resolve("checkpoints/student-distilled/" + org.distill4j.train.Checkpoints.FILE_NAME);
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(180);
        while (!Files.exists(saved) && child.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(2);
        }
        child.destroyForcibly(); // kill -9 in its first epoch, 500 steps long, after a save every 10
        assertTrue(child.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        assertTrue(Files.exists(saved), "the distilled row saved within its epoch:\n" + Files.readString(tmp.resolve("child.log")));
        assertFalse(Files.exists(b.resolve("results.json")), "killed before the end");

        String resumed = run(Stream.concat(Stream.of(args), Stream.of("--out", b.toString(), "--resume")).toArray(String[]::new));
        assertTrue(resumed.contains("student distilled: resumed from its checkpoint " + saved + " at epoch 1 of 1"), resumed);
        assertEquals(withoutTimings(a.resolve("results.json")), withoutTimings(b.resolve("results.json")));
        java.util.Map<String, float[]> ma = models(a);
        java.util.Map<String, float[]> mb = models(b);
        assertEquals(ma.keySet(), mb.keySet());
        ma.forEach((k, v) -> assertArrayEquals(v, mb.get(k), k));
    }

    @Test
    void numbersAreDecimalNotJavaLiterals() throws Exception {
        RecipeException e = fails(base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  learningRate: 0x1p-10\n"));
        assertTrue(e.getMessage().contains("training.learningRate: expected a number, got '0x1p-10'"), e.getMessage());
        e = fails(base("  - {name: kd, temperature: 4f}\n"));
        assertTrue(e.getMessage().contains("loss[0]: loss 'kd' setting 'temperature' must be a number, got '4f'"), e.getMessage());
        e = fails(base("  - {name: kd, weight: 1d}\n"));
        assertTrue(e.getMessage().contains("loss[0].weight") && e.getMessage().contains("1d"), e.getMessage());
        Recipe r = RecipeLoader.parse(base("  - {name: kd, temperature: +2.5e0, alpha: .25}\n").replace("  epochs: 2\n",
                "  epochs: 2\n  learningRate: 5E-4\n"), Path.of("r.yaml"), List.of());
        assertEquals(5e-4, r.training().learningRate());
        assertEquals(2.5, r.objectives().get(0).terms().get(0).settings().get("temperature"));
        assertEquals(0.25, r.objectives().get(0).terms().get(0).settings().get("alpha"));
    }

    /** Runs the CLI; asserts exit code 0 and returns what it printed. */
    static String run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
        return out.toString(StandardCharsets.UTF_8);
    }

    private static List<String> accuracies(Path results) throws Exception {
        return field(results, "testAccuracy");
    }

    /** The rows' training samples/s in results.json: a row restored from its checkpoint keeps its saved times to the bit. */
    private static List<String> speeds(Path results) throws Exception {
        return field(results, "samplesPerSecond");
    }

    /** Every row's numeric {@code key} in results.json, as written. */
    private static List<String> field(Path results, String key) throws Exception {
        Matcher m = Pattern.compile("\"" + key + "\": ([0-9.e-]+)").matcher(Files.readString(results));
        List<String> out = new java.util.ArrayList<>();
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    @Test
    void aResumedRunContinuesEachRowFromItsCheckpoint(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        String[] args = {"run", KD.toString(), "--out", out.toString(), "--quiet", "--set", "teacher.hidden=[48]",
                "--set", "teacher.epochs=2", "--set", "student.hidden=[24]", "--set", "training.epochs=3",
                "--set", "data.teacherSamples=600", "--set", "data.transferSamples=300", "--set", "data.testSamples=400"};
        run(args);
        Path ckpts = out.resolve("checkpoints");
        Path teacher = ckpts.resolve("teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME);
        Path alone = ckpts.resolve("student-alone").resolve(org.distill4j.train.Checkpoints.FILE_NAME);
        Path distilled = ckpts.resolve("student-distilled").resolve(org.distill4j.train.Checkpoints.FILE_NAME);
        for (Path c : List.of(teacher, alone, distilled)) {
            assertTrue(Files.size(c) > 0, c.toString());
        }
        List<String> acc = accuracies(out.resolve("results.json"));
        List<String> wall = speeds(out.resolve("results.json"));
        byte[] teacherCkpt = Files.readAllBytes(teacher);

        // a finished run resumed: every row restored, nothing trained, the same numbers and times
        String[] resume = Stream.concat(Stream.of(args), Stream.of("--resume")).toArray(String[]::new);
        run(resume);
        assertEquals(acc, accuracies(out.resolve("results.json")));
        assertEquals(wall, speeds(out.resolve("results.json")), "restored rows keep their saved training times");
        assertArrayEquals(teacherCkpt, Files.readAllBytes(teacher), "a finished row's checkpoint is not rewritten");

        // the distilled row lost its checkpoint (interrupted before its first save): only it trains again, to the same numbers
        Files.delete(distilled);
        run(resume);
        List<String> wall2 = speeds(out.resolve("results.json"));
        assertEquals(acc, accuracies(out.resolve("results.json")));
        assertEquals(wall.subList(0, 2), wall2.subList(0, 2), "teacher and student alone restored");
        assertTrue(Files.exists(distilled));

        // other settings are refused with the setting's name; without --resume every row starts over
        String[] changed = Stream.concat(Stream.of(resume), Stream.of("--set", "training.batchSize=64")).toArray(String[]::new);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(changed, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        // a setting to change, not a failure: one line (no stack trace), exit 2, and what a command-line user can do
        String e = err.toString(StandardCharsets.UTF_8);
        assertEquals(2, code, e);
        assertTrue(e.contains("batchSize was 128, now 64") && e.endsWith("(distill: rerun with the settings the run was started"
                + " with, or without --resume to train every row from the start)\n") && e.lines().count() == 1, e);
        assertFalse(e.contains("startOver") || e.contains("Checkpoints."), "no Java API advice for a command-line user: " + e);
        assertTrue(e.startsWith("distill run: the checkpoint " + distilled.getParent().getParent()), e);
        run(args);
        assertEquals(acc, accuracies(out.resolve("results.json")), "the same seed, the same numbers");
        assertFalse(java.util.Arrays.equals(teacherCkpt, Files.readAllBytes(teacher)), "the teacher trained again and saved anew");
    }

    /** results.json without the rows' timings, which a row trained again (not restored) does not repeat. */
    private static String withoutTimings(Path results) throws Exception {
        return Files.readAllLines(results).stream().filter(l -> !l.contains("\"samplesPerSecond\"") && !l.contains("\"wallSeconds\""))
                .collect(java.util.stream.Collectors.joining("\n"));
    }

    /** metrics.csv without its timing columns. */
    private static List<String> metricsWithoutTimings(Path csv) throws Exception {
        List<String> lines = Files.readAllLines(csv);
        List<String> header = List.of(lines.get(0).split(","));
        List<Integer> timings = List.of(header.indexOf("samples_per_second"), header.indexOf("train_seconds"), header.indexOf("eval_seconds"));
        assertFalse(timings.contains(-1), lines.get(0));
        List<String> out = new java.util.ArrayList<>();
        for (String line : lines) {
            String[] cells = line.split(",", -1);
            out.add(String.join(",", java.util.stream.IntStream.range(0, cells.length).filter(i -> !timings.contains(i))
                    .mapToObj(i -> cells[i]).toList()));
        }
        return out;
    }

    /** The parameters of every model a run saved (<row>.zip), by file name. */
    private static java.util.Map<String, float[]> models(Path out) throws Exception {
        java.util.Map<String, float[]> m = new java.util.TreeMap<>();
        try (Stream<Path> files = Files.list(out)) {
            for (Path f : files.filter(f -> f.toString().endsWith(".zip")).toList()) {
                m.put(f.getFileName().toString(), org.deeplearning4j.util.ModelSerializer.restoreMultiLayerNetwork(f.toFile(), false)
                        .params().toFloatVector());
            }
        }
        return m;
    }

    /**
     * --resume with training.seeds: a run over seeds [4, -4] interrupted while its distilled rows trained (their checkpoints,
     * their models and the reports are gone) and resumed gives, seed for seed, what the uninterrupted run gave: the same
     * results.json (but timings), metrics.csv lines and models; the rows that had finished are restored, not trained again.
     * Each seed has its own checkpoint (seed -4's is not seed 4's), and one seed's checkpoint is never taken for another's.
     */
    @Test
    void aResumedRunOverSeedsGivesTheUninterruptedRunsNumbersForEverySeed(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        String[] args = {"run", KD.toString(), "--out", out.toString(), "--quiet", "--set", "teacher.hidden=[16]",
                "--set", "teacher.epochs=1", "--set", "student.hidden=[8]", "--set", "training.epochs=2",
                "--set", "data.teacherSamples=300", "--set", "data.transferSamples=200", "--set", "data.testSamples=200",
                "--set", "training.seeds=[4, -4]"};
        run(args);
        List<String> runs = List.of("student-alone-seed-4", "student-alone-seed-minus-4", "student-distilled-seed-4",
                "student-distilled-seed-minus-4");
        java.util.Map<String, float[]> models = models(out);
        assertEquals(Stream.concat(Stream.of("teacher"), runs.stream()).map(r -> r + ".zip").sorted().toList(),
                List.copyOf(models.keySet()), "a model per row and seed");
        Path ckpts = out.resolve("checkpoints");
        for (String r : runs) {
            assertTrue(Files.isRegularFile(ckpts.resolve(r).resolve(org.distill4j.train.Checkpoints.FILE_NAME)), r);
        }
        String results = withoutTimings(out.resolve("results.json"));
        List<String> metrics = metricsWithoutTimings(out.resolve("metrics.csv"));
        List<String> speeds = speeds(out.resolve("results.json"));
        assertEquals(3, speeds.size(), "teacher, student alone, student distilled");
        assertTrue(results.contains("\"testAccuracyRuns\": [") && metrics.size() == 1 + 1 + 4 * 2, metrics.toString());

        // interrupted in the distilled rows: the teacher's and the student alone's seeds had finished
        for (String r : List.of("student-distilled-seed-4", "student-distilled-seed-minus-4")) {
            Files.delete(ckpts.resolve(r).resolve(org.distill4j.train.Checkpoints.FILE_NAME));
            Files.delete(out.resolve(r + ".zip"));
        }
        for (String f : List.of("results.json", "metrics.csv", "provenance.json", "report.html", "curves.png", "accuracy.png")) {
            Files.delete(out.resolve(f));
        }
        String[] resume = Stream.concat(Stream.of(args), Stream.of("--resume")).toArray(String[]::new);
        run(resume);
        assertEquals(results, withoutTimings(out.resolve("results.json")), "every row and seed: accuracies, std, runs, gains");
        assertEquals(metrics, metricsWithoutTimings(out.resolve("metrics.csv")), "every seed's epochs");
        java.util.Map<String, float[]> resumed = models(out);
        assertEquals(models.keySet(), resumed.keySet());
        for (String f : models.keySet()) {
            assertArrayEquals(models.get(f), resumed.get(f), f);
        }
        List<String> speeds2 = speeds(out.resolve("results.json"));
        assertEquals(speeds.subList(0, 2), speeds2.subList(0, 2), "the teacher and the student alone's seeds restored, not trained");

        // a seed's checkpoint in another seed's place is refused, naming the seed
        Files.copy(ckpts.resolve("student-alone-seed-4").resolve(org.distill4j.train.Checkpoints.FILE_NAME),
                ckpts.resolve("student-alone-seed-minus-4").resolve(org.distill4j.train.Checkpoints.FILE_NAME),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        String err = runFails(2, resume);
        assertTrue(err.contains("student-alone-seed-minus-4") && err.contains("seed was 4, now -4"), err);
    }

    @Test
    void anOfflineTopKRecipeLabelsOnceAndTrainsFromTheStore(@TempDir Path tmp) throws Exception {
        Path recipe = Path.of("recipes", "fashion-mnist", "topk-kd", "mlp400_from_mlp1200.yaml");
        Path store = tmp.resolve("top3.d4j");
        String[] args = {"run", recipe.toString(), "--out", tmp.resolve("out").toString(), "--quiet",
                "--set", "teacher.store.path=" + store, "--set", "teacher.hidden=[48]", "--set", "teacher.epochs=2",
                "--set", "student.hidden=[24]", "--set", "training.epochs=3", "--set", "data.teacherSamples=600",
                "--set", "data.transferSamples=300", "--set", "data.testSamples=400"};
        String first = run(args);
        assertTrue(first.contains("labeled 300 rows in " + store) && first.contains("student distilled"), first);
        try (org.distill4j.store.SoftTargetStore s = org.distill4j.store.SoftTargetStore.open(store)) {
            assertEquals(3, s.header().k());
            assertEquals(300, s.rows());
        }
        String prov = Files.readString(tmp.resolve("out").resolve("provenance.json"));
        assertTrue(prov.contains("\"store\": {\n    \"path\": \"" + store + "\",\n    \"use\": \"labeled\",\n    \"teacher\": \"mlp-")
                && prov.contains("\"layout\": \"top-3\"") && prov.contains("datasetFingerprint"), "the store, by content: " + prov);
        String teacherId = prov.replaceAll("(?s).*\"teachers\": \\[.*?\"id\": \"(mlp-[0-9a-f]+)\".*", "$1");
        assertTrue(teacherId.startsWith("mlp-") && prov.contains("\"teacher\": \"" + teacherId + "\""),
                "the store was labeled by the run's teacher: " + teacherId + "\n" + prov);
        String second = run(args);
        assertTrue(second.contains("reusing the stored 300 rows"), second);
        assertTrue(Files.readString(tmp.resolve("out").resolve("provenance.json")).contains("\"use\": \"reused\""));
        // the same 300 images, 200 of them now unlabeled: the teacher labels them into the store it labeled before, which holds
        // its outputs for these images whatever their labels, so it is reused as it is (it was refused as "from other data")
        byte[] labeled = Files.readAllBytes(store);
        String[] unlabeled = java.util.stream.Stream.concat(java.util.Arrays.stream(args).map(a -> a.equals(tmp.resolve("out").toString())
                ? tmp.resolve("out-unlabeled").toString() : a), Stream.of("--set", "data.transferSamples=100", "--set",
                "data.unlabeledSamples=200")).toArray(String[]::new);
        String third = run(unlabeled);
        assertTrue(third.contains("reusing the stored 300 rows in " + store) && third.contains("100 + 200 unlabeled"), third);
        assertArrayEquals(labeled, Files.readAllBytes(store), "the store as it was labeled");
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeLoader.load(recipe, List.of("loss=[{name: kd}]")));
        assertTrue(e.getMessage().contains("teacher.store.topk: a top-3 store feeds topk-kd (and ce); loss[0] is 'kd'"), e.getMessage());
    }

    @Test
    void aRunWritesEveryReportFileAndRepeatsItsNumbers(@TempDir Path tmp) throws Exception {
        String[] small = {"--set", "teacher.hidden=[48]", "--set", "teacher.epochs=2", "--set", "student.hidden=[24]",
                "--set", "training.epochs=3", "--set", "data.teacherSamples=600", "--set", "data.transferSamples=300",
                "--set", "data.testSamples=400", "--quiet"};
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        String[] argsA = Stream.concat(Stream.of("run", KD.toString(), "--out", a.toString(), "--set",
                "training.schedules.temperature={from: 4, to: 2}"), Stream.of(small)).toArray(String[]::new);
        String[] argsB = Stream.concat(Stream.of("run", KD.toString(), "--out", b.toString(), "--set",
                "training.schedules.temperature={from: 4, to: 2}"), Stream.of(small)).toArray(String[]::new);
        String printed = run(argsA);
        assertTrue(printed.contains("student distilled") && printed.contains("report.html"), printed);
        for (String f : new String[]{"results.json", "metrics.csv", "provenance.json", "curves.png", "accuracy.png", "report.html"}) {
            assertTrue(Files.size(a.resolve(f)) > 0, f);
        }
        try (Stream<Path> files = Files.list(a)) {
            List<String> left = files.map(f -> f.getFileName().toString()).filter(f -> f.contains(".tmp")).toList();
            assertEquals(List.of(), left, "the atomic writes' temporary files are gone");
        }
        List<String> csv = Files.readAllLines(a.resolve("metrics.csv"));
        assertTrue(csv.get(0).startsWith("row,epoch,loss,loss_ce,loss_kd"), csv.get(0));
        assertEquals(1 + 2 + 3 + 3, csv.size(), "teacher 2 epochs, two students 3 each");
        List<String> header = List.of(csv.get(0).split(","));
        int kl = header.indexOf("teacher_kl");
        assertTrue(kl > 0 && header.contains("teacher_agreement") && header.contains("samples_per_second"), csv.get(0));
        for (String line : csv.subList(1, csv.size())) {
            String[] cells = line.split(",", -1);
            boolean student = line.startsWith("\"student");
            assertEquals(student, !cells[kl].isEmpty(), "KL to the teacher for the students' epochs only: " + line);
            if (student) {
                assertTrue(Double.parseDouble(cells[kl]) > 0, line);
            }
        }
        int temp = header.indexOf("temperature");
        List<String> distilledTemps = csv.stream().filter(l -> l.startsWith("\"student distilled\"")).map(l -> l.split(",", -1)[temp]).toList();
        assertEquals(List.of("4.00000", "3.00000", "2.00000"), distilledTemps, "the temperature schedule, epoch by epoch");
        for (String png : new String[]{"curves.png", "accuracy.png"}) {
            BufferedImage img = ImageIO.read(a.resolve(png).toFile());
            assertEquals(900, img.getWidth(), png);
            assertEquals(540, img.getHeight(), png);
        }
        String html = Files.readString(a.resolve("report.html"));
        assertTrue(html.contains("<img src=\"curves.png\"") && html.contains("<img src=\"accuracy.png\"")
                && html.contains("<td>student distilled</td>"), html);
        String prov = Files.readString(a.resolve("provenance.json"));
        assertTrue(prov.contains("\"name\": \"fmnist-kd-mlp400-from-mlp1200\"") && prov.contains("\"epochs\": 3")
                && prov.contains("\"temperature\": 4"), prov);
        run(argsB);
        assertEquals(accuracies(a.resolve("results.json")), accuracies(b.resolve("results.json")), "same recipe and seed, same numbers");
        assertEquals(3, accuracies(a.resolve("results.json")).size());
    }

    /**
     * More samples than a split has: the run uses what there is (documented: "at most what the split has"), for every count
     * alike, says so on the console naming the field, and provenance.json records the counts used beside the settings asked.
     */
    @Test
    void countsBeyondTheSplitAreCappedAloudAndRecorded(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        String printed = run("run", KD.toString(), "--out", out.toString(), "--quiet", "--set", "teacher.hidden=[8]",
                "--set", "teacher.epochs=1", "--set", "student.hidden=[8]", "--set", "training.epochs=1",
                "--set", "data.teacherSamples=20000", "--set", "data.transferSamples=999999", "--set", "data.testSamples=5000");
        assertTrue(printed.contains(": teacher trains on 10000 samples, students on a transfer set of 10000, test 2000\n"
                + "note: data.teacherSamples is 20000, but the training split has 10000 samples: the run uses 10000\n"
                + "note: data.transferSamples is 999999, but the training split has 10000 samples: the run uses 10000\n"
                + "note: data.testSamples is 5000, but the test split has 2000 samples: the run uses 2000\n"), printed);
        assertTrue(Files.readString(out.resolve("results.json")).contains("\"testSamples\": 2000"));
        String prov = Files.readString(out.resolve("provenance.json"));
        assertTrue(prov.contains("\"samples\": {\n    \"teacher\": 10000,\n    \"transfer\": 10000,\n    \"test\": 2000\n  }"), prov);
        assertTrue(prov.contains("\"testSamples\": 5000"), "the settings as asked: " + prov);

        String within = run("run", KD.toString(), "--out", tmp.resolve("within").toString(), "--quiet", "--set", "teacher.hidden=[8]",
                "--set", "teacher.epochs=1", "--set", "student.hidden=[8]", "--set", "training.epochs=1",
                "--set", "data.teacherSamples=300", "--set", "data.transferSamples=200", "--set", "data.testSamples=100");
        assertFalse(within.contains("note:"), within);
        assertTrue(Files.readString(tmp.resolve("within").resolve("provenance.json"))
                .contains("\"samples\": {\n    \"teacher\": 300,\n    \"transfer\": 200,\n    \"test\": 100\n  }"));
    }

    /** training.seeds is 1 to 20 distinct whole numbers, each error naming the file, line, column and field. */
    @Test
    void seedsAreDistinctWholeNumbers() throws Exception {
        String withSeeds = base("  - name: kd\n").replace("  epochs: 2\n", "  epochs: 2\n  seeds: SEEDS\n");
        RecipeException e = fails(withSeeds.replace("SEEDS", "[]"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:10: training.seeds: expected a list of 1 to 20 distinct whole numbers, e.g. [1, 2, 3],"
                + " got 0 entries"), e.getMessage());
        e = fails(withSeeds.replace("SEEDS", "[1, 1]"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:14: training.seeds[1]: seed 1 is already training.seeds[0]; the seeds must be distinct"),
                e.getMessage());
        e = fails(withSeeds.replace("SEEDS", "[1.5]"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:11: training.seeds[0]: expected a whole number, got '1.5'"), e.getMessage());
        e = fails(withSeeds.replace("SEEDS", "abc"));
        assertTrue(e.getMessage().startsWith("r.yaml:9:10: training.seeds: expected a list of 1 to 20 distinct whole numbers, e.g. [1, 2, 3],"
                + " got 'abc'"), e.getMessage());
        e = fails(withSeeds.replace("SEEDS", "[" + String.join(", ", java.util.stream.IntStream.rangeClosed(1, 21).mapToObj(Integer::toString)
                .toList()) + "]"));
        assertTrue(e.getMessage().contains("training.seeds: expected a list of 1 to 20 distinct whole numbers, e.g. [1, 2, 3], got 21 entries"),
                e.getMessage());
        e = fails(withSeeds.replace("SEEDS", "[1, [2]]"));
        assertTrue(e.getMessage().contains("training.seeds[1]: expected a whole number, got a list"), e.getMessage());

        Recipe r = RecipeLoader.parse(withSeeds.replace("SEEDS", "[3, 1, 2]"), Path.of("r.yaml"), List.of());
        assertEquals(List.of(3L, 1L, 2L), r.training().seeds());
        assertEquals(42L, r.training().seed(), "training.seed still seeds the teacher and the data draw");
        assertEquals(List.of(3L, 1L, 2L), ((java.util.Map<?, ?>) r.resolved().get("training")).get("seeds"));
        r = RecipeLoader.load(KD, List.of("training.seeds=[1,2]"));
        assertEquals(List.of(1L, 2L), r.training().seeds(), "--set training.seeds=[1,2]");
        assertEquals(null, RecipeLoader.load(KD, List.of()).training().seeds());
        e = assertThrows(RecipeException.class, () -> RecipeLoader.load(KD, List.of("training.seeds=[2,2]")));
        assertTrue(e.getMessage().contains("training.seeds[1]: seed 2 is already training.seeds[0]"), e.getMessage());

        assertTrue(runFails(2, "demo", "--seeds", "1,1").contains("--seeds: seed 1 is given twice; the seeds must be distinct"));
        assertTrue(runFails(2, "demo", "--seeds", "1,x").contains("--seeds must be an integer, got 'x'"));
        assertTrue(runFails(2, "demo", "--seeds", "1,,2").contains("--seeds must be an integer, got ''"));
    }

    /** A setting of a checkpoint's fingerprint: after "D4JCKPT\\n" and the version, a count, then (key, value) strings. */
    private static String checkpointSetting(Path checkpoint, String key) throws Exception {
        try (java.io.DataInputStream in = new java.io.DataInputStream(Files.newInputStream(checkpoint))) {
            in.readNBytes(8 + 4);
            int n = in.readInt();
            for (int i = 0; i < n; i++) {
                String k = new String(in.readNBytes(in.readInt()), StandardCharsets.UTF_8);
                String v = new String(in.readNBytes(in.readInt()), StandardCharsets.UTF_8);
                if (k.equals(key)) {
                    return v;
                }
            }
        }
        return null;
    }

    private static Demo.Outcome runSeeds(Path out, String seeds) throws Exception {
        Recipe r = RecipeLoader.load(KD, List.of("teacher.hidden=[48]", "teacher.epochs=2", "student.hidden=[24]", "training.epochs=3",
                "data.teacherSamples=600", "data.transferSamples=300", "data.testSamples=400", "training.seeds=" + seeds));
        return RecipeRunner.run(r, out, false, false, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    }

    private static Demo.Row row(Demo.Outcome o, String name) {
        return o.rows().stream().filter(r -> r.name().equals(name)).findFirst().orElseThrow();
    }

    /** The one number of {@code "key": {"<recipe name>": N}} in results.json. */
    private static double gainField(Path results, String key) throws Exception {
        Matcher m = Pattern.compile("\"" + key + "\": \\{\\s*\"[^\"]+\": ([-0-9.e]+)").matcher(Files.readString(results));
        assertTrue(m.find(), key);
        return Double.parseDouble(m.group(1));
    }

    /**
     * Each student row over seeds [5, 6] is the two single-seed runs [5] and [6], seed for seed; the std, the paired gain and
     * its std are what the per-seed accuracies give; metrics.csv has each seed's epochs.
     */
    @Test
    void aRunOverSeedsIsTheMeanOfItsSingleSeedRuns(@TempDir Path tmp) throws Exception {
        Demo.Outcome five = runSeeds(tmp.resolve("5"), "[5]");
        Demo.Outcome six = runSeeds(tmp.resolve("6"), "[6]");
        Path out = tmp.resolve("56");
        Demo.Outcome both = runSeeds(out, "[5, 6]");

        assertEquals(row(five, "teacher").testAccuracy(), row(both, "teacher").testAccuracy(), "the teacher is trained once, with training.seed");
        assertEquals(null, row(both, "teacher").seeds());
        assertEquals("42", checkpointSetting(out.resolve("checkpoints/teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME), "seed"));
        for (String name : List.of("student alone", "student distilled")) {
            double a5 = row(five, name).testAccuracy();
            double a6 = row(six, name).testAccuracy();
            Demo.Row r = row(both, name);
            assertEquals(List.of(5L, 6L), r.seeds());
            assertEquals(List.of(a5, a6), r.testAccuracyRuns(), name);
            assertEquals((a5 + a6) / 2, r.testAccuracy(), 0.0, name);
            assertEquals(Math.abs(a5 - a6) / Math.sqrt(2), r.testAccuracyStd(), 1e-12, name);
            assertTrue(Double.isNaN(row(five, name).testAccuracyStd()), "no std for one seed");
            // the seeds really differ: each run starts from its own weights and batch order
            double loss5 = five.runs().get(name).get(5L).epochs().get(2).loss();
            double loss6 = six.runs().get(name).get(6L).epochs().get(2).loss();
            assertTrue(loss5 != loss6, name + ": seed 5 and seed 6 trained alike: " + loss5);
            assertEquals(loss5, both.runs().get(name).get(5L).epochs().get(2).loss(), 0.0, name);
            assertEquals(loss6, both.runs().get(name).get(6L).epochs().get(2).loss(), 0.0, name);
            String file = name.replace(' ', '-');
            for (long seed : new long[]{5, 6}) {
                assertTrue(Files.isRegularFile(out.resolve(file + "-seed-" + seed + ".zip")), file + " seed " + seed);
                Path ckpt = out.resolve("checkpoints").resolve(file + "-seed-" + seed).resolve(org.distill4j.train.Checkpoints.FILE_NAME);
                assertEquals(String.valueOf(seed), checkpointSetting(ckpt, "seed"), "the Distiller's seed is the run's: " + ckpt);
            }
        }

        // results.json: std of each row, the paired gain and its std, computed here from the per-seed accuracies
        Path results = out.resolve("results.json");
        List<Double> a = row(both, "student alone").testAccuracyRuns();
        List<Double> d = row(both, "student distilled").testAccuracyRuns();
        double g5 = d.get(0) - a.get(0);
        double g6 = d.get(1) - a.get(1);
        List<String> stds = field(results, "testAccuracyStd");
        assertEquals(2, stds.size(), "the student rows only: " + stds);
        assertEquals(Math.abs(a.get(0) - a.get(1)) / Math.sqrt(2), Double.parseDouble(stds.get(0)), 1e-6);
        assertEquals(Math.abs(d.get(0) - d.get(1)) / Math.sqrt(2), Double.parseDouble(stds.get(1)), 1e-6);
        assertEquals((g5 + g6) / 2, gainField(results, "distillationGain"), 1e-6);
        assertEquals(Math.abs(g5 - g6) / Math.sqrt(2), gainField(results, "distillationGainStd"), 1e-6);
        // and in the distilled row itself, so a script needs no key to find a row's gain (the map's key is the method's)
        List<String> rowGain = field(results, "distillationGain");
        List<String> rowGainStd = field(results, "distillationGainStd");
        assertEquals(1, rowGain.size(), "only the distilled row has a gain: " + rowGain);
        assertEquals((g5 + g6) / 2, Double.parseDouble(rowGain.get(0)), 1e-6);
        assertEquals(Math.abs(g5 - g6) / Math.sqrt(2), Double.parseDouble(rowGainStd.get(0)), 1e-6);
        String json = Files.readString(results);
        assertTrue(json.contains("\"seeds\": [\n        5,\n        6\n      ]"), json);
        assertTrue(Files.readString(out.resolve("provenance.json")).contains("\"seeds\": [\n    5,\n    6\n  ]"));
        assertTrue(Files.readString(tmp.resolve("5").resolve("results.json")).contains("\"distillationGainStd\""));

        // metrics.csv: a seed column, each seed's three epochs for both student rows, the teacher's two without a seed
        List<String> csv = Files.readAllLines(out.resolve("metrics.csv"));
        assertTrue(csv.get(0).startsWith("row,seed,epoch,loss,"), csv.get(0));
        assertEquals(1 + 2 + 2 * 2 * 3, csv.size(), String.join("\n", csv));
        for (String name : List.of("student alone", "student distilled")) {
            for (String seed : List.of("5", "6")) {
                List<String> epochs = csv.stream().filter(l -> l.startsWith("\"" + name + "\"," + seed + ",")).map(l -> l.split(",")[2]).toList();
                assertEquals(List.of("1", "2", "3"), epochs, name + " seed " + seed);
            }
        }
        assertEquals(2, csv.stream().filter(l -> l.startsWith("\"teacher\",,")).count());
        String html = Files.readString(out.resolve("report.html"));
        assertTrue(html.contains(String.format(java.util.Locale.ROOT, "<td>%.2f ± %.2f%% (2 seeds)</td>",
                100 * row(both, "student alone").testAccuracy(), 100 * row(both, "student alone").testAccuracyStd())), html);
        ByteArrayOutputStream table = new ByteArrayOutputStream();
        Demo.printTable(both.rows(), new PrintStream(table, true, StandardCharsets.UTF_8));
        assertTrue(table.toString(StandardCharsets.UTF_8).contains(row(both, "student distilled").accuracyText("±")), table.toString());
        assertTrue(row(both, "student distilled").accuracyText("±").matches("\\d+\\.\\d\\d±\\d+\\.\\d\\d%"));
    }
}
