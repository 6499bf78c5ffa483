package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.store.SoftTargetStore;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.djl.DjlTeacher;
import org.distill4j.train.Evaluation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** distill eval, distill label with foreign teachers, and --help on every command. */
public class EvalAndLabelCommandTest extends CliCommandTest {
    static final Path ONNX = Path.of("models", "fashion-mnist", "cnn-teacher.onnx");
    static final Path PT = Path.of("models", "fashion-mnist", "cnn-teacher.pt");

    private static double number(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\": ([0-9.eE+-]+)").matcher(json);
        assertTrue(m.find(), key + " in " + json);
        return Double.parseDouble(m.group(1));
    }

    /** eval's numbers equal an independent computation: Evaluation's accuracy and agreement, CrossEntropy's mean NLL. */
    @Test
    void evalOfASavedStudentAgainstTheOnnxTeacher(@TempDir Path tmp) throws Exception {
        Dataset test = FashionMnist.loadEmbedded(Main.class.getClassLoader()).test().head(300);
        MultiLayerNetwork student = DemoModels.mlp(784, new int[] {24}, 10, 0, 1e-3, 5);
        Dataset train = FashionMnist.loadEmbedded(Main.class.getClassLoader()).train().head(500);
        org.distill4j.train.Distiller.builder().student(org.distill4j.student.Dl4jStudent.of(student)).loss(new CrossEntropy())
                .trainData(train).epochs(3).seed(1).backend(new org.distill4j.backend.CpuBackend()).build().run();
        Path zip = tmp.resolve("student.zip");
        StoreCommands.saveModel(student, zip);
        Path json = tmp.resolve("eval.json");
        assertEquals(0, run("eval", zip.toString(), "--data", "embedded", "--limit", "300", "--teacher", ONNX.toString(),
                "--json", json.toString()), err());
        assertTrue(out().contains("DL4J student.zip on fashion-mnist-subset/test[:300] (300 test samples") && out().contains("Ankle boot"), out());
        String j = Files.readString(json);

        Dl4jTeacher model = Dl4jTeacher.of(student);
        try (DjlTeacher teacher = DjlTeacher.builder().setModelPath(ONNX).setInputShape(784).build()) {
            int[] pm = Evaluation.predict(model, test);
            int[] pt = Evaluation.predict(teacher, test);
            assertEquals(Evaluation.accuracy(pm, test), number(j, "accuracy"), 1e-6);
            assertEquals(Evaluation.accuracy(pt, test), number(j, "teacherAccuracy"), 1e-6);
            int same = 0;
            for (int i = 0; i < pm.length; i++) {
                same += pm[i] == pt[i] ? 1 : 0;
            }
            assertEquals(same / 300.0, number(j, "agreement"), 1e-6);
            float[] logits = model.outputs(Batch.range(test, 0, 300));
            double ce = new CrossEntropy().compute(LogitBatch.ofLabels(300, 10, logits, test.labels()), new float[300 * 10], 1f).value();
            assertEquals(ce, number(j, "meanNll"), 1e-5 * ce);
            assertTrue(number(j, "klTeacherModel") > 0.05, j);
        }
        // a model against itself: no disagreement, no divergence
        assertEquals(0, run("eval", PT.toString(), "--output-names", "logits,embedding", "--data", "embedded", "--limit", "200",
                "--teacher", ONNX.toString(), "--json", json.toString()), err());
        String self = Files.readString(json);
        assertEquals(1.0, number(self, "agreement"), 1e-6, self);
        assertEquals(0.0, number(self, "klTeacherModel"), 1e-6, self);
    }

    /**
     * eval's numbers against a float64 computation from the networks' raw logits: accuracy, each class's accuracy and
     * count, mean NLL, the teacher's accuracy, agreement and mean KL(teacher || model), over 700 samples (a full batch of 512
     * and a partial one), the teacher another DL4J network.
     */
    @Test
    void evalNumbersEqualAFloat64ComputationFromTheLogits(@TempDir Path tmp) throws Exception {
        Dataset test = FashionMnist.loadEmbedded(Main.class.getClassLoader()).test().head(700);
        Dataset train = FashionMnist.loadEmbedded(Main.class.getClassLoader()).train().head(400);
        MultiLayerNetwork student = DemoModels.mlp(784, new int[] {13}, 10, 0, 1e-3, 7);
        MultiLayerNetwork teacher = DemoModels.mlp(784, new int[] {29}, 10, 0, 1e-3, 8);
        for (MultiLayerNetwork net : new MultiLayerNetwork[] {student, teacher}) {
            org.distill4j.train.Distiller.builder().student(org.distill4j.student.Dl4jStudent.of(net)).loss(new CrossEntropy())
                    .trainData(train).epochs(net == student ? 1 : 3).seed(3).backend(new org.distill4j.backend.CpuBackend()).build().run();
        }
        Path s = tmp.resolve("s.zip");
        Path t = tmp.resolve("t.zip");
        StoreCommands.saveModel(student, s);
        StoreCommands.saveModel(teacher, t);
        Path json = tmp.resolve("eval.json");
        assertEquals(0, run("eval", s.toString(), "--teacher", t.toString(), "--data", "embedded", "--limit", "700",
                "--json", json.toString()), err());
        String j = Files.readString(json);

        double[][] lm = logSoftmax(student, test);
        double[][] lt = logSoftmax(teacher, test);
        int n = test.size();
        int right = 0;
        int teacherRight = 0;
        int agree = 0;
        double nll = 0;
        double kl = 0;
        int[] count = new int[10];
        int[] correct = new int[10];
        for (int i = 0; i < n; i++) {
            int y = test.labels()[i];
            int pm = argmax(lm[i]);
            int pt = argmax(lt[i]);
            count[y]++;
            if (pm == y) {
                right++;
                correct[y]++;
            }
            teacherRight += pt == y ? 1 : 0;
            agree += pm == pt ? 1 : 0;
            nll -= lm[i][y];
            for (int c = 0; c < 10; c++) {
                kl += Math.exp(lt[i][c]) * (lt[i][c] - lm[i][c]);
            }
        }
        assertTrue(agree < n && right > 0 && kl > 0.01, "a check that can fail: agreement " + agree + ", KL " + kl);
        assertEquals((double) right / n, number(j, "accuracy"), 1e-9);
        assertEquals((double) teacherRight / n, number(j, "teacherAccuracy"), 1e-9);
        assertEquals((double) agree / n, number(j, "agreement"), 1e-9);
        assertEquals(nll / n, number(j, "meanNll"), 1e-5 * nll / n); // float32 logits, 6 digits in the JSON
        assertEquals(kl / n, number(j, "klTeacherModel"), 1e-5 * kl / n);
        // each perClass entry, its keys in any order
        Matcher pc = Pattern.compile("\\{([^{}]*\"class\"[^{}]*)}").matcher(j);
        int classes = 0;
        while (pc.find()) {
            String entry = "{" + pc.group(1) + "}";
            int c = (int) number(entry, "class");
            assertEquals(count[c], (int) number(entry, "samples"), "class " + c);
            assertEquals((double) correct[c] / count[c], number(entry, "accuracy"), 1e-6, "class " + c);
            classes++;
        }
        assertEquals(10, classes, j);
        // the same file on every run: each entry's keys in one order (not an immutable map's, which changes per JVM)
        for (int c = 0; c < 10; c++) {
            assertTrue(j.matches("(?s).*\\{\\s*\"class\": " + c + ",\\s*\"accuracy\": [^,]+,\\s*\"samples\": \\d+\\s*}.*"), j);
        }
    }

    /** Row-wise log-softmax in float64 of the network's logits (identity output layer) on every sample of {@code d}. */
    private static double[][] logSoftmax(MultiLayerNetwork net, Dataset d) {
        org.nd4j.linalg.api.ndarray.INDArray x = org.nd4j.linalg.factory.Nd4j.create(d.features(), new long[] {d.size(), d.featureCount()});
        double[][] z = net.output(x, false).castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).toDoubleMatrix();
        for (double[] row : z) {
            double m = java.util.Arrays.stream(row).max().orElseThrow();
            double lse = m + Math.log(java.util.Arrays.stream(row).map(v -> Math.exp(v - m)).sum());
            for (int c = 0; c < row.length; c++) {
                row[c] -= lse;
            }
        }
        return z;
    }

    private static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            best = v[i] > v[best] ? i : best;
        }
        return best;
    }

    /**
     * A model (or teacher) of another number of classes or inputs than the data is refused, naming the file, what it has
     * and what the data needs: not read with the data's row stride (wrong numbers, exit 0, or an index out of bounds), and
     * not labeled into a store of another vocabulary.
     */
    @Test
    void aModelThatDoesNotFitTheDataIsRefusedByName(@TempDir Path tmp) throws Exception {
        Path ten = tmp.resolve("ten.zip");
        StoreCommands.saveModel(DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 1), ten);
        for (int classes : new int[] {5, 12}) {
            Path m = tmp.resolve("c" + classes + ".zip");
            StoreCommands.saveModel(DemoModels.mlp(784, new int[] {8}, classes, 0, 1e-3, 1), m);
            String expected = m + ": a DL4J model of " + classes + " classes, but the data fashion-mnist-subset/test[:100] has 10";
            assertEquals(1, run("eval", m.toString(), "--data", "embedded", "--limit", "100"), out());
            assertTrue(err().contains(expected), err());
            assertEquals(1, run("eval", ten.toString(), "--teacher", m.toString(), "--data", "embedded", "--limit", "100"), out());
            assertTrue(err().contains(expected), err());
            Path store = tmp.resolve("c" + classes + ".d4j");
            assertEquals(1, run("label", "--teacher", m.toString(), "--data", "embedded", "--limit", "100", "--out", store.toString()), out());
            assertTrue(err().contains(m + ": a DL4J model of " + classes + " classes, but the data fashion-mnist-subset/train[:100] has 10"),
                    err());
            assertTrue(Files.notExists(store) && Files.notExists(org.distill4j.store.StoreWriter.partialPath(store)));
        }
        Path wide = tmp.resolve("in100.zip");
        StoreCommands.saveModel(DemoModels.mlp(100, new int[] {8}, 10, 0, 1e-3, 1), wide);
        assertEquals(1, run("eval", wide.toString(), "--data", "embedded", "--limit", "10"), out());
        assertEquals("distill eval failed: " + wide + ": a DL4J model of 100 inputs, but the data fashion-mnist-subset/test[:10]"
                + " has 784 features\n", err(), "one line, no stack trace");
    }

    /**
     * A model file that is not a model (no zip, an empty zip, a zip of something else, a store, garbage under .onnx or .pt)
     * and data that is not there are one line naming the file and what it is, exit code 1: no stack trace, not DL4J's
     * "Model wasnt found within file: gotConfig: [false]". DISTILL_DEBUG=1 (here -Ddistill.debug=true) adds the trace.
     */
    @Test
    void aFileThatIsNotAModelOrDataIsOneLineNamingIt(@TempDir Path tmp) throws Exception {
        Path notZip = Files.writeString(tmp.resolve("notzip.zip"), "not a zip");
        Path emptyZip = tmp.resolve("empty.zip");
        new java.util.zip.ZipOutputStream(Files.newOutputStream(emptyZip)).close();
        Path otherZip = tmp.resolve("other.zip");
        try (var z = new java.util.zip.ZipOutputStream(Files.newOutputStream(otherZip))) {
            z.putNextEntry(new java.util.zip.ZipEntry("a.txt"));
            z.write(1);
        }
        Path store = Files.write(tmp.resolve("s.store"), "D4JSTORE\1\0\0\1 and more".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        Path empty = Files.writeString(tmp.resolve("nothing.zip"), "");
        String expected = "; expected a ModelSerializer zip (configuration.json and coefficients.bin), or for ONNX or TorchScript a"
                + " .onnx / .pt name or --engine\n";
        Object[][] cases = {
                {notZip, "it is not a zip file"}, {emptyZip, "it is an empty zip"},
                {otherZip, "it is a zip of 1 entry (a.txt) without configuration.json or coefficients.bin"},
                {store, "it is a soft-target store (distill store info shows it)"}, {empty, "the file is empty"}};
        for (Object[] c : cases) {
            assertEquals(1, run("eval", c[0].toString(), "--data", "embedded", "--limit", "10"), c[0] + ": " + err());
            assertEquals("distill eval failed: " + c[0] + " is not a DL4J model: " + c[1] + expected, err());
        }
        for (Path garbage : new Path[] {Files.writeString(tmp.resolve("g.onnx"), "garbage"), Files.writeString(tmp.resolve("g.pt"), "garbage")}) {
            assertEquals(1, run("eval", garbage.toString(), "--data", "embedded", "--limit", "10"), err());
            assertTrue(err().startsWith("distill eval failed: cannot load teacher model " + garbage), err());
            assertEquals(1, err().lines().count(), "one line, no stack trace: " + err());
        }
        Path ok = tmp.resolve("m.zip");
        StoreCommands.saveModel(DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 1), ok);
        String files = "expected a folder of Fashion-MNIST's idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte,"
                + " t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or .gz)\n";
        assertEquals(1, run("eval", ok.toString(), "--data", tmp.resolve("nowhere").toString()));
        assertEquals("distill eval failed: the given data directory " + tmp.resolve("nowhere") + " does not exist; " + files, err());
        assertEquals(1, run("eval", ok.toString(), "--data", notZip.toString()));
        assertEquals("distill eval failed: the given data directory " + notZip + " is a file, not a folder; " + files, err());
        // --json under a file: refused before the evaluation, not after it
        assertEquals(2, run("eval", ok.toString(), "--data", "embedded", "--limit", "10", "--json", notZip.resolve("e.json").toString()));
        assertEquals("distill eval: --json " + notZip.resolve("e.json") + ": " + notZip + " is a file, not a folder; give --json a"
                + " path in a folder (or move " + notZip + " away)\n", err());
        assertEquals("", out(), "nothing evaluated");
        // options for a teacher without --teacher, an option given twice, an empty path: refused, not silently ignored
        assertEquals(2, run("eval", ok.toString(), "--teacher-engine", "onnxruntime"));
        assertEquals("distill eval: --teacher-engine, --teacher-input-shape, --teacher-logits and --teacher-output-names apply to a"
                + " --teacher model, and none is given; add --teacher MODEL or leave them out\n", err());
        assertEquals(2, run("eval", ok.toString(), "--limit", "10", "--limit", "20"));
        assertEquals("distill eval: --limit is given twice; give it once\n", err());
        assertEquals(2, run("eval", ok.toString(), "--json", ""));
        assertEquals("distill eval: --json: the path is empty; expected a file or directory name\n", err());
        assertEquals(2, run("label", "--teacher", ok.toString(), "--out", "a.d4j", "--teacher", ok.toString()));
        assertEquals("distill label: --teacher is given twice; give it once\n", err());
        assertEquals(2, run("eval", ok.toString(), "--input-shape", "784,"));
        assertTrue(err().contains("--input-shape: '784,' has an empty size"), err());
        System.setProperty("distill.debug", "true");
        try {
            assertEquals(1, run("eval", notZip.toString(), "--data", "embedded", "--limit", "10"));
            assertTrue(err().contains("\tat org.distill4j.examples.ModelFiles"), "DISTILL_DEBUG: the stack trace: " + err());
        } finally {
            System.clearProperty("distill.debug");
        }
    }

    /**
     * A model whose outputs are not numbers (weights gone NaN in a diverged training) is an error naming the file and the
     * sample, for the model and for a teacher: not an accuracy of 10% (every row's argmax "class 0") with exit code 0.
     */
    @Test
    void evalRefusesOutputsThatAreNotNumbers(@TempDir Path tmp) throws Exception {
        MultiLayerNetwork nan = DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 1);
        nan.params().getScalar(nan.params().length() - 3).assign(Double.NaN); // one output bias: class 7 of every row
        Path bad = tmp.resolve("diverged.zip");
        StoreCommands.saveModel(nan, bad);
        Path ok = tmp.resolve("ok.zip");
        StoreCommands.saveModel(DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 2), ok);
        Path json = tmp.resolve("e.json");
        assertEquals(1, run("eval", bad.toString(), "--data", "embedded", "--limit", "50", "--json", json.toString()));
        assertTrue(err().contains(bad + ": its output for sample 0 of fashion-mnist-subset/test[:50] is NaN at class 7; expected finite class scores"), err());
        assertTrue(Files.notExists(json));
        assertEquals(1, run("eval", ok.toString(), "--teacher", bad.toString(), "--data", "embedded", "--limit", "50"));
        assertTrue(err().contains(bad + ": its output for sample 0 of fashion-mnist-subset/test[:50] is NaN at class 7; expected finite class scores"), err());
    }

    /** A raw idx3 image file of {@code count} 28x28 images (pixels i % 251) and its idx1 labels (i % 10). */
    private static void writeIdx(Path dir, String prefix, int count) throws Exception {
        writeIdx(dir, prefix, count, 28, 28);
    }

    /** A raw idx3 image file of {@code count} images of {@code height x width} (pixels i % 251) and its idx1 labels (i % 10). */
    public static void writeIdx(Path dir, String prefix, int count, int height, int width) throws Exception {
        java.io.ByteArrayOutputStream im = new java.io.ByteArrayOutputStream();
        java.io.DataOutputStream d = new java.io.DataOutputStream(im);
        d.writeInt(0x803);
        d.writeInt(count);
        d.writeInt(height);
        d.writeInt(width);
        for (int i = 0; i < count * height * width; i++) {
            d.writeByte(i % 251);
        }
        Files.write(dir.resolve(prefix + "-images-idx3-ubyte"), im.toByteArray());
        java.io.ByteArrayOutputStream lb = new java.io.ByteArrayOutputStream();
        d = new java.io.DataOutputStream(lb);
        d.writeInt(0x801);
        d.writeInt(count);
        for (int i = 0; i < count; i++) {
            d.writeByte(i % 10);
        }
        Files.write(dir.resolve(prefix + "-labels-idx1-ubyte"), lb.toByteArray());
    }

    /**
     * Data with no samples (a test split of 0 images) is an error naming the data and what was expected, not "NaN%" for
     * every number with exit code 0 and NaN written to --json; a class without samples in the data (here --limit 5 covers 5
     * of the 10 classes) has no accuracy: it is shown as such, never as "NaN% of 0".
     */
    @Test
    void evalOfNoSamplesIsAnErrorAndAClassWithoutSamplesHasNoAccuracy(@TempDir Path tmp) throws Exception {
        Path zip = tmp.resolve("m.zip");
        StoreCommands.saveModel(DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 1), zip);
        Path data = Files.createDirectories(tmp.resolve("data"));
        writeIdx(data, "train", 3);
        writeIdx(data, "t10k", 0);
        Path json = tmp.resolve("e.json");
        assertEquals(1, run("eval", zip.toString(), "--data", data.toString(), "--json", json.toString()));
        assertEquals("distill eval failed: no samples to evaluate: fashion-mnist/test from " + data
                + " is empty; expected at least one sample\n", err(), "one line, no stack trace");
        assertTrue(!out().contains("NaN") && Files.notExists(json), out());
        // the train split of the same files has samples: the same model evaluates
        assertEquals(0, run("eval", zip.toString(), "--data", data.toString(), "--split", "train"), err());
        assertTrue(out().contains("(3 train samples from"), out());

        assertEquals(0, run("eval", zip.toString(), "--data", "embedded", "--limit", "5", "--json", json.toString()), err());
        assertTrue(!out().contains("NaN"), out());
        int[] count = new int[10];
        for (int y : FashionMnist.loadEmbedded(Main.class.getClassLoader()).test().head(5).labels()) {
            count[y]++;
        }
        int empty = 0;
        for (int c = 0; c < 10; c++) {
            String name = FashionMnist.CLASS_NAMES.get(c);
            if (count[c] == 0) {
                empty++;
                assertTrue(out().contains("    " + String.format("%-12s", name) + " no samples\n"), name + "\n" + out());
            } else {
                assertTrue(out().matches("(?s).*\n    " + Pattern.quote(String.format("%-12s", name)) + " +\\d+\\.\\d\\d% of " + count[c] + "\n.*"),
                        name + "\n" + out());
            }
        }
        assertTrue(empty > 0, "a check that can fail: some class has no sample among the first 5");
        assertTrue(Files.readString(json).matches("(?s).*\\{\\s*\"class\": \\d,\\s*\"accuracy\": null,\\s*\"samples\": 0\\s*}.*"),
                "a class without samples has accuracy null in the JSON: " + Files.readString(json));
    }

    /**
     * label and store import of data with no samples: an error naming the data and where it came from, before the teacher
     * loads or the source is read; not the store writer's "store rows and chunkRows must be > 0, got 0 and 1024", which names
     * neither, after the model loaded.
     */
    @Test
    void labelAndImportOfNoSamplesIsAnErrorNamingTheData(@TempDir Path tmp) throws Exception {
        Path data = Files.createDirectories(tmp.resolve("data"));
        writeIdx(data, "train", 3);
        writeIdx(data, "t10k", 0);
        Path npy = tmp.resolve("rows.npy");
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        String header = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 10), }";
        header += " ".repeat(63 - (10 + header.length()) % 64) + "\n";
        b.write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (byte) header.length(), 0});
        b.write(header.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        Files.write(npy, b.toByteArray());
        String empty = "fashion-mnist/test from " + data + " is empty; expected at least one sample";
        Path store = tmp.resolve("s.d4j");
        assertEquals(1, run("label", "--teacher", ONNX.toString(), "--data", data.toString(), "--split", "test", "--out", store.toString()));
        assertEquals("distill label failed: no samples to label: " + empty + "\n", err(), "one line, no stack trace");
        assertEquals("", out());
        assertEquals(1, run("store", "import", "--npy", npy.toString(), "--data", data.toString(), "--split", "test", "--out", store.toString()));
        assertTrue(err().startsWith("distill store import: no samples to import: " + empty), err());
        try (var left = Files.list(tmp)) {
            assertEquals(java.util.List.of(data, npy), left.sorted().toList(), "no store or part of one written");
        }
    }

    @Test
    void evalErrors(@TempDir Path tmp) throws Exception {
        assertEquals(2, run("eval"));
        assertTrue(err().contains("a model file is required"), err());
        assertEquals(2, run("eval", tmp.resolve("none.zip").toString()));
        assertTrue(err().contains("none.zip: no such model file"), err());
        Path zip = tmp.resolve("m.zip");
        StoreCommands.saveModel(DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 1), zip);
        assertEquals(2, run("eval", zip.toString(), "--data", "embedded", "--logits", "out"));
        assertTrue(err().contains("m.zip is read as a DL4J model; --engine, --input-shape, --logits and --output-names apply to"), err());
        assertEquals(2, run("eval", zip.toString(), "--frobnicate", "1"));
        assertTrue(err().contains("unknown option --frobnicate"), err());
        // a TorchScript model whose outputs are not named: the error says what to do
        assertEquals(1, run("eval", PT.toString(), "--data", "embedded", "--limit", "10"));
        assertTrue(err().contains("optLogitsOutput") && err().contains("output0 [rows, 10]"), err());
        // a wrong per-sample input shape
        assertEquals(1, run("eval", ONNX.toString(), "--data", "embedded", "--limit", "10", "--input-shape", "1,28,27"));
        assertTrue(err().contains("cnn-teacher.onnx") && err().contains("input shape"), err());
    }

    /**
     * Usage errors name the argument and what was expected, with exit code 2, before anything is loaded or run: an unknown
     * option or a stray argument last on the line is not "needs a value"; a blank --teacher-id (an unset shell variable)
     * would make every model the same teacher, so resume mixes two models' rows; a directory where a file goes is named.
     */
    @Test
    void usageErrorsNameTheArgumentAndWhatWasExpected(@TempDir Path tmp) throws Exception {
        Path zip = tmp.resolve("m.zip");
        StoreCommands.saveModel(DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 1), zip);
        Path store = tmp.resolve("s.d4j");
        String[][] cases = {
                {"eval", zip.toString(), "--frobnicate"}, {"unknown option --frobnicate (see distill eval --help)"},
                {"eval", zip.toString(), "--teacher"}, {"--teacher needs a value"},
                {"eval", zip.toString(), "--json", tmp.toString(), "--data", "embedded", "--limit", "5"},
                {"--json " + tmp + " is a directory; expected a file name"},
                {"eval", PT.toString(), "--output-names", "logits,,embedding"},
                {"--output-names: 'logits,,embedding' has a blank name; expected distinct output names separated by commas"},
                {"eval", PT.toString(), "--output-names", ","}, {"--output-names: ',' has a blank name; expected distinct output names"},
                {"eval", PT.toString(), "--output-names", "logits,logits"},
                {"--output-names: 'logits,logits' names 'logits' twice; expected distinct output names"},
                {"eval", PT.toString(), "--engine", " "}, {"--engine: ' ' is blank; expected an engine name"},
                {"eval", PT.toString(), "--teacher-logits", ""}, {"--teacher-logits: '' is blank; expected an output name"},
                {"label", "--teacher", zip.toString(), "--out", store.toString(), "extra"}, {"unexpected argument 'extra' (see distill label --help)"},
                {"label", "--teacher", zip.toString(), "--frob", "x"}, {"unknown option --frob (see distill label --help)"},
                {"label", "--teacher", zip.toString(), "--out", store.toString(), "--frob"}, {"unknown option --frob (see distill label --help)"},
                {"label", "--teacher", zip.toString(), "--out", store.toString(), "--limit"}, {"--limit needs a value"},
                {"label", "--teacher", zip.toString(), "--out", store.toString(), "--teacher-id", " "},
                {"--teacher-id: ' ' is blank; expected a name for the teacher"},
                {"label", "--teacher", zip.toString(), "--out", store.toString(), "--teacher-id", "a\nb"},
                {"--teacher-id: 'a\\u000ab' holds a control character; expected a name for the teacher"},
                {"label", "--teacher", zip.toString(), "--out", tmp.toString(), "--data", "embedded", "--limit", "5"},
                {"--out " + tmp + " is a directory; expected the store's file name"},
        };
        for (int i = 0; i < cases.length; i += 2) {
            assertEquals(2, run(cases[i]), String.join(" ", cases[i]) + ": " + err());
            assertTrue(err().startsWith("distill " + cases[i][0] + ": " + cases[i + 1][0]), String.join(" ", cases[i]) + ": " + err());
        }
        assertTrue(Files.notExists(store), "nothing labeled");
        // a directory as STORE: named, exit 1 as for a missing store, no stack trace
        for (String cmd : new String[] {"info", "verify"}) {
            assertEquals(1, run("store", cmd, tmp.toString()));
            assertTrue(err().contains(tmp + ": ") && err().contains("directory") && !err().contains("\tat "), err());
        }
    }

    /**
     * An --engine (or --teacher-engine) that names no engine, or one whose DJL engine is not on the CLI's class path
     * (tensorflow), is bad usage like every other option: exit 2, one line naming the option, the reason and the engines that
     * are available, before any data is loaded; not exit 1 with a stack trace from inside DjlTeacher.
     */
    @Test
    void anUnknownOrUnavailableEngineIsAUsageErrorListingTheAvailableOnes(@TempDir Path tmp) throws Exception {
        Path store = tmp.resolve("s.d4j");
        String available = "; available: onnxruntime (or onnx, ort), pytorch (or torchscript, pt)\n";
        String[][] cases = {
                {"eval", ONNX.toString(), "--engine", "tensorflow", "--data", "embedded", "--limit", "10"},
                {"--engine: 'tensorflow' is not an available engine" + available},
                {"eval", ONNX.toString(), "--engine", "frobnitz", "--data", "embedded", "--limit", "10"},
                {"--engine: 'frobnitz' is not an available engine" + available},
                {"eval", ONNX.toString(), "--teacher", PT.toString(), "--teacher-engine", "tf", "--data", "embedded", "--limit", "10"},
                {"--teacher-engine: 'tf' is not an available engine" + available},
                {"label", "--teacher", ONNX.toString(), "--engine", "mxnet", "--data", "embedded", "--limit", "10", "--out", store.toString()},
                {"--engine: 'mxnet' is not an available engine" + available},
        };
        for (int i = 0; i < cases.length; i += 2) {
            assertEquals(2, run(cases[i]), String.join(" ", cases[i]) + ": " + err());
            assertEquals("distill " + cases[i][0] + ": " + cases[i + 1][0], err(), String.join(" ", cases[i]));
            assertEquals("", out(), "nothing loaded or run: " + String.join(" ", cases[i]));
        }
        assertTrue(Files.notExists(store), "nothing labeled");
        // an alias in any case still names its engine
        assertEquals(0, run("eval", ONNX.toString(), "--engine", "ORT", "--data", "embedded", "--limit", "10"), err());
        assertTrue(out().startsWith("OnnxRuntime cnn-teacher.onnx on "), out());
        // auto, as a recipe's engine and provenance write it: the engine the extension implies
        assertEquals(0, run("eval", ONNX.toString(), "--engine", "auto", "--data", "embedded", "--limit", "10"), err());
        assertTrue(out().startsWith("OnnxRuntime cnn-teacher.onnx on "), out());
    }

    @Test
    void labelWithAnOnnxTeacherWritesATopKStore(@TempDir Path tmp) throws Exception {
        Path store = tmp.resolve("cnn-top3.d4j");
        assertEquals(0, run("label", "--teacher", ONNX.toString(), "--data", "embedded", "--limit", "200", "--topk", "3",
                "--out", store.toString()), err());
        assertTrue(out().contains("OnnxRuntime cnn-teacher.onnx") && out().contains("wrote 200 rows"), out());
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            assertEquals(200, s.rows());
            assertEquals(3, s.header().k());
        }
        assertEquals(0, run("store", "info", store.toString()));
        assertTrue(out().contains("top-k, k = 3"), out());
    }

    /**
     * A retrained model saved under the same file name is another teacher: its rows must not be mixed into (or
     * served from) a store the first model labeled, whether that store is complete or interrupted.
     */
    @Test
    void labelRefusesAStoreOfAnotherModelSavedUnderTheSameName(@TempDir Path tmp) throws Exception {
        MultiLayerNetwork a = DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 1);
        MultiLayerNetwork b = DemoModels.mlp(784, new int[] {8}, 10, 0, 1e-3, 2);
        Path model = tmp.resolve("teacher.zip");
        Path store = tmp.resolve("s.d4j");
        Path partial = org.distill4j.store.StoreWriter.partialPath(store);
        String[] label = {"label", "--teacher", model.toString(), "--data", "embedded", "--limit", "300", "--chunk-rows", "100",
                "--out", store.toString()};
        StoreCommands.saveModel(a, model);
        assertEquals(0, run(label), err());
        byte[] byA = Files.readAllBytes(store);
        org.distill4j.store.StoreHeader h;
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            h = s.header();
            assertTrue(h.provenance().contains("\"teacher\":\"" + Demo.teacherId(a) + "\""), "the default id is the content hash: "
                    + h.provenance());
        }

        // the complete store is not reused for model b
        StoreCommands.saveModel(b, model);
        // a choice to make, not a failed run: exit 2 and one line (no stack trace), nothing changed
        assertEquals(2, run(label), out());
        assertTrue(err().startsWith("distill label: " + store + " already holds a store with other settings or another teacher: it"
                + " was made by a different teacher") && err().lines().count() == 1, err());
        assertArrayEquals(byA, Files.readAllBytes(store));

        // an interrupted store (chunk 0 on disk) is not resumed with model b
        Files.delete(store);
        byte[] chunk0 = java.util.Arrays.copyOf(byA, (int) (h.dataOffset() + 100 * h.rowBytes() + 4));
        Files.write(partial, chunk0);
        assertEquals(2, run(label), out());
        assertTrue(err().startsWith("distill label: " + partial + " was started with different settings; it was made by a different"
                + " teacher") && err().lines().count() == 1, err());
        assertArrayEquals(chunk0, Files.readAllBytes(partial), "the partial is kept");
        assertTrue(Files.notExists(store));

        // model a again (same bytes, same name) resumes it to the very store an uninterrupted run writes
        StoreCommands.saveModel(a, model);
        assertEquals(0, run(label), err());
        assertTrue(out().contains("wrote 200 rows (resumed at row 100)"), out());
        assertArrayEquals(byA, Files.readAllBytes(store));

        // an explicit --teacher-id still names the teacher
        Path named = tmp.resolve("named.d4j");
        assertEquals(0, run("label", "--teacher", model.toString(), "--data", "embedded", "--limit", "50", "--teacher-id", "my-teacher",
                "--out", named.toString()), err());
        try (SoftTargetStore s = SoftTargetStore.open(named)) {
            assertTrue(s.header().provenance().contains("\"teacher\":\"my-teacher\""), s.header().provenance());
        }
    }

    @Test
    void everyCommandHasHelp() {
        for (String cmd : new String[] {"demo", "run", "eval", "list", "label", "store"}) {
            assertEquals(0, run(cmd, "--help"), cmd + ": " + err());
            assertTrue(out().startsWith("usage: distill " + cmd), cmd + ":\n" + out());
        }
        assertEquals(2, run("bench"));
        assertTrue(err().contains("./distill bench --help"), err());
    }
    /**
     * label's teacher batch divides its default chunk of 1024 rows: a batch of 1000 left a short batch of 24 in every chunk
     * (and, before batches stopped at chunk boundaries, made a resumed store differ from an uninterrupted one).
     */
    @Test
    void labelsTeacherBatchFillsItsChunks() {
        assertEquals(1024, StoreCommands.teacherBatch(1024));
        assertEquals(100, StoreCommands.teacherBatch(100), "a smaller chunk is one batch");
        assertEquals(1024, StoreCommands.teacherBatch(4096), "a larger chunk is batches of 1024");
    }
    /**
     * A label --out under a file (the file itself or a folder above it) is bad usage, refused before the data and the
     * teacher load, as demo --store and eval --json: exit 2, one line naming the path and the file in the way. It was found
     * only when the store was created (exit 1, "cannot create folder ..."), after the teacher had loaded.
     */
    @Test
    void labelRefusesAStorePathUnderAFileBeforeLoading(@TempDir Path tmp) throws Exception {
        Path afile = Files.writeString(tmp.resolve("afile"), "x");
        for (Path under : new Path[] {afile.resolve("s.d4j"), afile.resolve("sub/s.d4j")}) {
            assertEquals(2, run("label", "--teacher", ONNX.toString(), "--data", "embedded", "--limit", "10", "--out", under.toString(),
                    "--quiet"), err());
            assertEquals("distill label: --out " + under + ": " + afile + " is a file, not a folder; give --out a path in a folder"
                    + " (or move " + afile + " away)\n", err());
            assertEquals("", out(), "nothing loaded or labeled");
        }
        assertEquals("x", Files.readString(afile));
    }

    /**
     * label whose store cannot be written (a store another labeling is writing) says so in one line naming the file, with
     * exit code 1 (an environment error) and no stack trace: label printed a trace for the refusal.
     */
    @Test
    void labelAndImportThatCannotWriteTheStoreSaySoInOneLine(@TempDir Path tmp) throws Exception {

        Path busy = tmp.resolve("busy.d4j");
        try (org.distill4j.store.StoreWriter w = org.distill4j.store.StoreWriter.open(busy, new org.distill4j.store.StoreHeader(
                org.distill4j.store.StoreHeader.Layout.DENSE, org.distill4j.store.ValueCodec.F32,
                org.distill4j.store.StoreHeader.ValueKind.LOGITS, 10, 0, 10, 4, 1.0, "{}"))) {
            assertEquals(1, run("label", "--teacher", ONNX.toString(), "--data", "embedded", "--limit", "10", "--out", busy.toString(),
                    "--quiet"), err());
            assertTrue(err().startsWith("distill label: " + org.distill4j.store.StoreWriter.partialPath(busy)
                    + " is being written by another writer"), err());
            assertEquals(1, err().lines().count(), err());
        }
    }
}
