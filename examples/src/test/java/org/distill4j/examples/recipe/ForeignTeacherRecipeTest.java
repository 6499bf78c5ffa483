package org.distill4j.examples.recipe;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.examples.Main;
import org.distill4j.teacher.djl.DjlTeacher;
import org.distill4j.train.Evaluation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Recipes with foreign teachers (ONNX, TorchScript through DJL) and ensembles, and the shipped CNN teacher. */
class ForeignTeacherRecipeTest {
    static final Path MODELS = Path.of("models", "fashion-mnist");
    static final Path ONNX_RECIPE = Path.of("recipes", "fashion-mnist", "onnx-kd", "mlp400_from_cnn.yaml");
    static final Path MULTI_RECIPE = Path.of("recipes", "fashion-mnist", "multi-teacher", "mlp400_from_mlp1200_and_cnn.yaml");

    private static String run(String... args) {
        return RecipeTest.run(args);
    }

    /** Row name to test accuracy, from results.json. */
    static Map<String, Double> accuracies(Path results) throws Exception {
        Matcher m = Pattern.compile("\"row\": \"([^\"]+)\"[^}]*?\"testAccuracy\": ([0-9.eE-]+)", Pattern.DOTALL)
                .matcher(Files.readString(results));
        Map<String, Double> out = new LinkedHashMap<>();
        while (m.find()) {
            out.put(m.group(1), Double.parseDouble(m.group(2)));
        }
        return out;
    }

    /** The acceptance run: the shipped ONNX recipe as is; the distilled student beats the student alone. */
    @Test
    void theOnnxRecipeDistilsAStudentThatBeatsTheStudentAlone(@TempDir Path tmp) throws Exception {
        String printed = run("run", ONNX_RECIPE.toString(), "--out", tmp.toString(), "--quiet");
        assertTrue(printed.contains("OnnxRuntime cnn-teacher.onnx"), printed);
        Map<String, Double> acc = accuracies(tmp.resolve("results.json"));
        assertEquals(List.of("teacher", "student alone", "student distilled"), List.copyOf(acc.keySet()), acc.toString());
        assertTrue(acc.get("teacher") > 0.89, "the CNN teacher: " + acc);
        assertTrue(acc.get("student distilled") > acc.get("student alone") + 0.02, "distillation helps: " + acc);
        String prov = Files.readString(tmp.resolve("provenance.json"));
        assertTrue(prov.contains("cnn-teacher.onnx") && prov.contains("\"engine\": \"auto\"") && prov.contains("\"logits\": \"logits\""), prov);
    }

    @Test
    void anEnsembleOfADl4jAndATorchScriptTeacher(@TempDir Path tmp) throws Exception {
        Path pt = MODELS.resolve("cnn-teacher.pt").toAbsolutePath();
        String printed = run("run", MULTI_RECIPE.toString(), "--out", tmp.toString(), "--quiet",
                "--set", "teacher.ensemble=[{hidden: [48], epochs: 2}, {model: " + pt + ", outputNames: [logits, embedding], weight: 3}]",
                "--set", "student.hidden=[24]", "--set", "training.epochs=3", "--set", "data.teacherSamples=600",
                "--set", "data.transferSamples=300", "--set", "data.testSamples=400");
        assertTrue(printed.contains("PyTorch cnn-teacher.pt") && printed.contains("2 teachers, probabilities averaged"), printed);
        Map<String, Double> acc = accuracies(tmp.resolve("results.json"));
        assertEquals(List.of("teacher 1", "teacher 2", "teacher ensemble", "student alone", "student distilled"),
                List.copyOf(acc.keySet()), acc.toString());
        // the CNN has 3/4 of the weight: the ensemble is far better than the 2-epoch MLP
        assertTrue(acc.get("teacher ensemble") > acc.get("teacher 1") + 0.05, acc.toString());
        String prov = Files.readString(tmp.resolve("provenance.json"));
        assertTrue(prov.contains("\"ensemble\"") && prov.contains("\"combine\": \"probabilities\"") && prov.contains("\"weight\": 3"), prov);
    }

    /** Outputs computed elsewhere (here: distill label with the ONNX teacher) as the whole teacher of a recipe. */
    @Test
    void aTeacherMadeOnlyOfStoredOutputs(@TempDir Path tmp) throws Exception {
        Path store = tmp.resolve("cnn-300.d4j");
        String labeled = run("label", "--teacher", MODELS.resolve("cnn-teacher.onnx").toString(), "--data", "embedded",
                "--limit", "300", "--out", store.toString());
        assertTrue(labeled.contains("wrote 300 rows"), labeled);
        String printed = run("run", ONNX_RECIPE.toString(), "--out", tmp.resolve("out").toString(), "--quiet",
                "--set", "teacher={store: {path: " + store + "}}", "--set", "data.shuffle=false",
                "--set", "data.transferSamples=300", "--set", "data.testSamples=400", "--set", "student.hidden=[32]",
                "--set", "training.epochs=4");
        assertTrue(printed.contains("(stored outputs only)") && printed.contains("cnn-300.d4j"), printed);
        // no teacher trains here: the run does not say one does, and provenance records no teacher samples
        assertTrue(printed.contains(": the teacher is stored outputs (nothing trains it), students on a transfer set of 300, test 400\n")
                && !printed.contains("teacher trains"), printed);
        Map<String, Double> acc = accuracies(tmp.resolve("out").resolve("results.json"));
        assertEquals(List.of("student alone", "student distilled"), List.copyOf(acc.keySet()), acc.toString());
        String prov = Files.readString(tmp.resolve("out").resolve("provenance.json"));
        assertTrue(prov.contains("\"shuffle\": false") && prov.contains("\"dtype\": \"f16\""), prov);
        assertTrue(!prov.contains("teacherSamples") && prov.contains("\"samples\": {\n    \"transfer\": 300,\n    \"test\": 400\n  }"),
                prov);

        // the transfer set must be the labeled one: shuffled, or of another size, it is another dataset, and the run says so
        // in one line (exit 2), with the settings that would make it the store's: the store's own row count
        String where = "distill run: " + ONNX_RECIPE + ": teacher.store.path: " + store + " holds 300 rows, not this run's transfer set (";
        String data = ", embedded subset (classpath:distill4j/datasets/fashion-mnist-subset/))";
        String rows = "; its rows are the training split's first 300 samples (as 'distill label --limit 300' labels them): set ";
        assertEquals(where + "300 samples, drawn from the training split shuffled with seed 42" + data + rows + "data.shuffle: false\n",
                storeRunFails(tmp, store, "data.transferSamples=300"));
        assertEquals(where + "200 samples, the training split's first 200" + data + rows + "data.transferSamples: 300\n",
                storeRunFails(tmp, store, "data.transferSamples=200", "data.shuffle=false"));
        assertEquals(where + "500 samples, drawn from the training split shuffled with seed 42" + data + rows
                + "data.shuffle: false and data.transferSamples: 300\n", storeRunFails(tmp, store, "data.transferSamples=500"));
        // rows of other data (the test split's first 300): no setting of this recipe makes them its transfer set
        Path other = tmp.resolve("cnn-test-300.d4j");
        run("label", "--teacher", MODELS.resolve("cnn-teacher.onnx").toString(), "--data", "embedded", "--split", "test",
                "--limit", "300", "--out", other.toString(), "--quiet");
        String err = storeRunFails(tmp, other, "data.transferSamples=300", "data.shuffle=false");
        assertTrue(err.startsWith("distill run: " + ONNX_RECIPE + ": teacher.store.path: " + other + " holds 300 rows, not this run's"
                + " transfer set (300 samples, the training split's first 300" + data + "; its rows are not the training split's first"
                + " 300 samples either (it was labeled on other data): label this data's first 300 samples into a store") && err.endsWith("\n")
                && err.indexOf('\n') == err.length() - 1, err);

        RecipeException e = fails("  store: {path: " + tmp.resolve("missing.d4j") + "}\n");
        assertTrue(e.getMessage().contains("teacher.store.path: a teacher made only of stored outputs needs a complete store"),
                e.getMessage());
        e = fails("  store: {path: " + store + ", topk: 3}\n");
        assertTrue(e.getMessage().contains("teacher.store.topk: a teacher made only of stored outputs takes 'topk' from the store"),
                e.getMessage());
    }

    /** A run of the ONNX recipe with the store-only teacher {@code store} and {@code sets}: exit 2; returns stderr. */
    private static String storeRunFails(Path tmp, Path store, String... sets) {
        List<String> args = new java.util.ArrayList<>(List.of("run", ONNX_RECIPE.toString(), "--out", tmp.resolve("out2").toString(),
                "--quiet", "--set", "teacher={store: {path: " + store + "}}", "--set", "training.epochs=1", "--set", "student.hidden=[8]",
                "--set", "data.testSamples=100"));
        for (String set : sets) {
            args.add("--set");
            args.add(set);
        }
        return RecipeTest.runFails(2, args.toArray(String[]::new));
    }

    static RecipeException fails(String teacher) {
        String yaml = "name: t\nteacher:\n" + teacher + "student:\n  hidden: [4]\nloss:\n  - name: kd\n";
        return assertThrows(RecipeException.class, () -> RecipeLoader.parse(yaml, Path.of("r.yaml"), List.of()));
    }

    @Test
    void teacherErrorsNameTheFieldAndWhatWasExpected() {
        String onnx = MODELS.resolve("cnn-teacher.onnx").toAbsolutePath().toString();
        RecipeException e = fails("  model: nope.onnx\n");
        assertTrue(e.getMessage().startsWith("r.yaml:3:10: teacher.model: no model file at ") && e.getMessage().contains("nope.onnx"),
                e.getMessage());
        e = fails("  model: " + onnx + "\n  epochs: 3\n");
        assertTrue(e.getMessage().contains("teacher.epochs: a teacher is either loaded (model) or trained"), e.getMessage());
        e = fails("  hidden: [8]\n  logits: out\n");
        assertTrue(e.getMessage().contains("teacher.logits: 'logits' applies to a foreign model"), e.getMessage());
        e = fails("  model: " + onnx + "\n  inputShape: [1, 28, x]\n");
        assertTrue(e.getMessage().contains("teacher.inputShape[2]: expected a positive layer size, got 'x'"), e.getMessage());
        e = fails("  model: " + onnx + "\n  outputNames: logits\n");
        assertTrue(e.getMessage().contains("teacher.outputNames: expected a list of names"), e.getMessage());
        e = fails("  ensemble:\n    - {hidden: [8]}\n");
        assertTrue(e.getMessage().startsWith("r.yaml:4:5: teacher.ensemble: expected a list of at least two teachers"), e.getMessage());
        e = fails("  ensemble:\n    - {hidden: [8]}\n    - {hiden: [8]}\n");
        assertTrue(e.getMessage().contains("teacher.ensemble[1].hiden: unknown key 'hiden' (did you mean 'hidden'?)"), e.getMessage());
        e = fails("  ensemble:\n    - {hidden: [8]}\n    - {hidden: [8], weight: -1}\n");
        assertTrue(e.getMessage().contains("teacher.ensemble[1].weight: expected a weight > 0, got -1.0"), e.getMessage());
        e = fails("  ensemble:\n    - {hidden: [8]}\n    - {hidden: [8]}\n  combine: median\n");
        assertTrue(e.getMessage().contains("teacher.combine: expected probabilities or logits, got 'median'"), e.getMessage());
        e = fails("  ensemble:\n    - {hidden: [8]}\n    - {hidden: [8]}\n  hidden: [8]\n");
        assertTrue(e.getMessage().contains("teacher.hidden: with teacher.ensemble, 'hidden' belongs to each member"), e.getMessage());
        e = fails("  hidden: [8]\n  combine: logits\n");
        assertTrue(e.getMessage().contains("teacher.combine: combine applies to an ensemble"), e.getMessage());
    }

    /**
     * A foreign teacher's engine is checked when the recipe is read (a name DJL would refuse only when the model loads, in an
     * ensemble after the teachers before it trained): one line with the field and the names the docs give, exit 2. {@code auto}
     * (what provenance records for a recipe without engine) takes the engine from the extension, as leaving it out does.
     */
    @Test
    void aForeignTeachersEngineIsCheckedWhenTheRecipeIsRead(@TempDir Path tmp) throws Exception {
        String onnx = MODELS.resolve("cnn-teacher.onnx").toAbsolutePath().toString();
        String pt = MODELS.resolve("cnn-teacher.pt").toAbsolutePath().toString();
        String expected = "; expected auto (from the file's extension, the default), onnxruntime (or onnx, ort), pytorch (or torchscript, pt)";
        RecipeException e = fails("  model: " + onnx + "\n  engine: foo\n");
        assertEquals("r.yaml:4:11: teacher.engine: unknown engine 'foo'" + expected, e.getMessage());
        e = fails("  ensemble:\n    - {hidden: [8]}\n    - {model: " + onnx + ", engine: onnxrt}\n");
        assertTrue(e.getMessage().startsWith("r.yaml:5:") && e.getMessage().contains(": teacher.ensemble[1].engine: unknown engine"
                + " 'onnxrt' (did you mean 'onnx'?)" + expected), e.getMessage());
        e = fails("  model: " + onnx + "\n  engine: pytorch\n");
        assertEquals("r.yaml:4:11: teacher.engine: engine 'pytorch' is pytorch, which cannot load cnn-teacher.onnx (a model for"
                + " onnxruntime); expected onnxruntime or auto", e.getMessage());
        Path zip = Files.write(tmp.resolve("teacher.zip"), new byte[] {1});
        e = fails("  model: " + zip + "\n  engine: auto\n");
        assertTrue(e.getMessage().startsWith("r.yaml:4:11: teacher.engine: 'auto' takes the engine from the model file's extension")
                && e.getMessage().contains("teacher.zip has none of them"), e.getMessage());

        for (String auto : new String[] {"auto", "AUTO"}) {
            Recipe r = RecipeLoader.parse("name: t\nteacher: {model: " + onnx + ", engine: " + auto + "}\nstudent: {hidden: [4]}\n"
                    + "loss: [{name: kd}]\n", Path.of("r.yaml"), List.of());
            assertEquals(null, r.teacher().members().get(0).djl().engine(), "auto: from the extension, as without engine");
            assertEquals("auto", ((Map<?, ?>) r.resolved().get("teacher")).get("engine"));
        }
        Recipe r = RecipeLoader.parse("name: t\nteacher: {model: " + pt + ", engine: TorchScript}\nstudent: {hidden: [4]}\n"
                + "loss: [{name: kd}]\n", Path.of("r.yaml"), List.of());
        assertEquals("pytorch", r.teacher().members().get(0).djl().engine());

        // on the command line: exit 2, one line, before anything trains
        String err = RecipeTest.runFails(2, "run", ONNX_RECIPE.toString(), "--out", tmp.resolve("out").toString(), "--quiet",
                "--set", "teacher.engine=foo");
        assertEquals("distill run: " + ONNX_RECIPE + ": --set teacher.engine=foo (at character 1 of the value): teacher.engine: unknown"
                + " engine 'foo'" + expected + "\n", err);
        err = RecipeTest.runFails(2, "run", MULTI_RECIPE.toString(), "--out", tmp.resolve("out").toString(), "--quiet",
                "--set", "teacher.ensemble=[{hidden: [8], epochs: 1}, {model: " + onnx + ", engine: tensorflow}]");
        assertTrue(err.contains("teacher.ensemble[1].engine: unknown engine 'tensorflow'") && !err.contains("\tat "), err);
        assertTrue(!Files.exists(tmp.resolve("out").resolve("teacher-1.zip")), "nothing trained");
    }

    /**
     * A recipe's model file that cannot be this run's teacher (not a DL4J zip, a model of other classes or inputs, an ONNX
     * output that is not there) is a recipe error: one line naming the field, exit 2, found before any teacher trains (in an
     * ensemble the trained members come first, and took minutes before the file was read).
     */
    @Test
    void aModelFileThatCannotBeTheTeacherIsRefusedBeforeAnythingTrains(@TempDir Path tmp) throws Exception {
        Path garbage = Files.write(tmp.resolve("garbage.zip"), new byte[] {1, 2, 3});
        Path fiveClasses = tmp.resolve("five.zip");
        org.distill4j.examples.DemoModels.mlp(784, new int[] {8}, 5, 0, 1e-3, 1).save(fiveClasses.toFile());
        Path otherInputs = tmp.resolve("inputs.zip");
        org.distill4j.examples.DemoModels.mlp(100, new int[] {8}, 10, 0, 1e-3, 1).save(otherInputs.toFile());
        String onnx = MODELS.resolve("cnn-teacher.onnx").toAbsolutePath().toString();
        String[][] cases = {
                {"{model: " + garbage + "}", "teacher.model: cannot load " + garbage + ": cannot read it as a DL4J MultiLayerNetwork"},
                {"{model: " + fiveClasses + "}", "teacher.model: cannot load " + fiveClasses + ": a DL4J model of 5 classes, but the"
                        + " data has 10"},
                {"{model: " + otherInputs + "}", "teacher.model: cannot load " + otherInputs + ": a DL4J model of 100 inputs, but the"
                        + " data has 784 features"},
                {"{ensemble: [{hidden: [8], epochs: 1}, {model: " + garbage + "}]}", "teacher.ensemble[1].model: cannot load " + garbage},
                {"{ensemble: [{hidden: [8], epochs: 1}, {model: " + onnx + ", logits: nope}]}", "teacher.ensemble[1].model: cannot load "
                        + onnx + ": "},
        };
        for (String[] c : cases) {
            Path out = tmp.resolve("out");
            String err = RecipeTest.runFails(2, "run", ONNX_RECIPE.toString(), "--out", out.toString(), "--quiet", "--set",
                    "teacher=" + c[0], "--set", "data.teacherSamples=200", "--set", "training.epochs=1", "--set", "data.testSamples=100");
            assertTrue(err.startsWith("distill run: " + ONNX_RECIPE + ": " + c[1]) && err.lines().count() == 1, c[0] + ": " + err);
            assertTrue(!Files.exists(out.resolve("teacher-1.zip")) && !Files.exists(out.resolve("checkpoints")),
                    "nothing trained before the file was read: " + c[0]);
        }
    }

    @Test
    void aDl4jModelFileTakesNoDjlSettings(@TempDir Path tmp) throws Exception {
        Path zip = tmp.resolve("teacher.zip");
        Files.write(zip, new byte[] {1});
        RecipeException e = fails("  model: " + zip + "\n  logits: out\n");
        assertTrue(e.getMessage().contains("teacher.logits: 'logits' applies to ONNX / TorchScript models")
                && e.getMessage().contains("teacher.zip is read as a DL4J model"), e.getMessage());
    }

    /**
     * The shipped CNN teacher: its files match the checksums its JSON records, both engines give the same
     * logits, and each classifies exactly 1,811 of the 2,000 embedded test images correctly (90.55%, the figure
     * the READMEs quote; the JSON's 0.904 is PyTorch's on the full 10,000-image test set).
     */
    @Test
    void theShippedCnnTeacherIsTheSameOnBothEngines() throws Exception {
        String json = Files.readString(MODELS.resolve("cnn-teacher.json"));
        for (String f : new String[] {"cnn-teacher.onnx", "cnn-teacher.pt"}) {
            String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(MODELS.resolve(f))));
            assertTrue(json.contains(sha), f + " checksum not in cnn-teacher.json");
        }
        Dataset test = FashionMnist.loadEmbedded(Main.class.getClassLoader()).test();
        try (DjlTeacher onnx = DjlTeacher.builder().setModelPath(MODELS.resolve("cnn-teacher.onnx")).setInputShape(784).build();
             DjlTeacher pt = DjlTeacher.builder().setModelPath(MODELS.resolve("cnn-teacher.pt")).setInputShape(784)
                     .optOutputNames("logits", "embedding").build()) {
            assertArrayEquals(new int[] {128}, onnx.outputShapes().get("embedding"));
            assertArrayEquals(new int[] {128}, pt.outputShapes().get("embedding"));
            Batch b = Batch.range(test, 0, 300);
            float[] a = onnx.outputs(b);
            float[] c = pt.outputs(b);
            double max = 0;
            for (int i = 0; i < a.length; i++) {
                max = Math.max(max, Math.abs(a[i] - c[i]));
            }
            assertTrue(max < 1e-3, "ONNX Runtime and libtorch logits differ by " + max);
            assertEquals(2000, test.size(), "embedded test images");
            assertEquals(1811, correct(Evaluation.predict(onnx, test), test), "ONNX Runtime: correct test images of 2,000");
            assertEquals(1811, correct(Evaluation.predict(pt, test), test), "libtorch: correct test images of 2,000");
        }
    }

    private static int correct(int[] predictions, Dataset data) {
        int[] labels = data.labels();
        int n = 0;
        for (int i = 0; i < labels.length; i++) {
            n += predictions[i] == labels[i] ? 1 : 0;
        }
        return n;
    }
}
