package org.distill4j.teacher.djl;

import org.distill4j.data.Batch;
import org.distill4j.data.Feature;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.MiniJson;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DjlTeacher on both engines, against a float64 reference computed from the fixture's exact weights
 * (tiny-mlp: hidden = tanh(x A^T + a), logits = hidden B^T + b; made by examples/tools/make_djl_models.py).
 */
class DjlTeacherTest {
    private static final int IN = 13;
    private static final int HIDDEN = 6;
    private static final int CLASSES = 5;

    private static double[][] wa;
    private static double[] ba;
    private static double[][] wb;
    private static double[] bb;

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void weights() throws IOException {
        Map<String, Object> json = (Map<String, Object>) MiniJson.parse(Files.readString(fixture("tiny-mlp.json")));
        wa = MiniJson.matrix(json.get("A"));
        ba = MiniJson.vector(json.get("a"));
        wb = MiniJson.matrix(json.get("B"));
        bb = MiniJson.vector(json.get("b"));
        assertEquals(HIDDEN, wa.length);
        assertEquals(IN, wa[0].length);
        assertEquals(CLASSES, wb.length);
    }

    static Path fixture(String name) {
        try {
            URL url = DjlTeacherTest.class.getResource("/djl/" + name);
            assertTrue(url != null, "test resource /djl/" + name);
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Batch randomBatch(Random rng, int rows, int features) {
        float[] x = new float[rows * features];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rng.nextGaussian() * 1.5);
        }
        int[] idx = new int[rows];
        int[] labels = new int[rows];
        for (int r = 0; r < rows; r++) {
            idx[r] = r;
            labels[r] = rng.nextInt(CLASSES);
        }
        return new Batch(idx, x, features, labels);
    }

    /** float64 reference: [hidden..., logits...] per row, as two arrays. */
    private static double[][] reference(Batch b) {
        int n = b.size();
        double[] hidden = new double[n * HIDDEN];
        double[] logits = new double[n * CLASSES];
        for (int r = 0; r < n; r++) {
            for (int h = 0; h < HIDDEN; h++) {
                double z = ba[h];
                for (int i = 0; i < IN; i++) {
                    z += wa[h][i] * b.features()[r * IN + i];
                }
                hidden[r * HIDDEN + h] = Math.tanh(z);
            }
            for (int c = 0; c < CLASSES; c++) {
                double z = bb[c];
                for (int h = 0; h < HIDDEN; h++) {
                    z += wb[c][h] * hidden[r * HIDDEN + h];
                }
                logits[r * CLASSES + c] = z;
            }
        }
        return new double[][] {hidden, logits};
    }

    private static DjlTeacher.Builder tiny(String file) {
        DjlTeacher.Builder b = DjlTeacher.builder().setModelPath(fixture(file)).setInputShape(IN);
        // TorchScript tuples carry no names
        return file.endsWith(".pt") ? b.optOutputNames("hidden", "logits") : b;
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mlp.onnx", "tiny-mlp.pt"})
    void logitsAndFeaturesMatchTheFloat64Reference(String file) {
        try (DjlTeacher t = tiny(file).build()) {
            assertEquals(CLASSES, t.classes());
            assertEquals(TeacherValues.LOGITS, t.values());
            assertEquals(file.endsWith(".onnx") ? "OnnxRuntime" : "PyTorch", t.engine());
            assertArrayEquals(new int[] {HIDDEN}, t.outputShapes().get("hidden"));
            assertArrayEquals(new int[] {CLASSES}, t.outputShapes().get("logits"));
            Random rng = new Random(file.hashCode());
            for (int rows : new int[] {1, 37, 129}) {
                Batch batch = randomBatch(rng, rows, IN);
                double[][] ref = reference(batch);
                Tolerances.assertEngineClose(ref[1], t.outputs(batch), file + " logits, " + rows + " rows");
                Feature h = t.feature(batch, "hidden");
                assertEquals(rows, h.rows());
                assertArrayEquals(new int[] {HIDDEN}, h.shape());
                Tolerances.assertEngineClose(ref[0], h.values(), file + " hidden, " + rows + " rows");
            }
        }
        assertEquals("true", System.getProperty("ai.djl.offline"), "DjlTeacher runs DJL offline");
    }

    /** The identity a checkpoint compares follows the model's bytes, not its file's name or folder. */
    @Test
    void theIdentityIsTheModelsContentNotItsPath(@TempDir Path tmp) throws IOException {
        Path moved = Files.copy(fixture("tiny-mlp.onnx"), Files.createDirectories(tmp.resolve("elsewhere")).resolve("renamed.onnx"));
        byte[] bytes = Files.readAllBytes(moved);
        // the lowest mantissa bit of the output bias's first value flipped: the same graph and shapes, other weights
        Path changed = tmp.resolve("changed.onnx");
        int bits = Float.floatToIntBits((float) bb[0]);
        int at = -1;
        for (int i = 0; i + 4 <= bytes.length && at < 0; i++) {
            if ((bytes[i] & 0xff | (bytes[i + 1] & 0xff) << 8 | (bytes[i + 2] & 0xff) << 16 | (bytes[i + 3] & 0xff) << 24) == bits) {
                at = i;
            }
        }
        assertTrue(at >= 0, "the bias's float32 bytes are in the model file");
        bytes[at] ^= 1;
        Files.write(changed, bytes);
        try (DjlTeacher a = tiny("tiny-mlp.onnx").build();
             DjlTeacher b = DjlTeacher.builder().setModelPath(moved).setInputShape(IN).build();
             DjlTeacher c = DjlTeacher.builder().setModelPath(changed).setInputShape(IN).build()) {
            assertEquals(a.identity(), b.identity());
            assertTrue(a.identity().contains("model file crc32c "), a.identity());
            assertTrue(b.describe().contains("renamed.onnx"), "the description still names the file: " + b.describe());
            assertTrue(!a.identity().equals(c.identity()), "other bytes, another teacher: " + c.identity());
        }
    }

    @Test
    void extremeInputsStayFinite() {
        // saturated tanh: hidden = +-1, logits = +-sum|B| + b, far from zero
        try (DjlTeacher t = tiny("tiny-mlp.onnx").build()) {
            Random rng = new Random(7);
            Batch batch = randomBatch(rng, 11, IN);
            float[] x = batch.features();
            for (int i = 0; i < x.length; i++) {
                x[i] *= 1e4f;
            }
            Tolerances.assertEngineClose(reference(batch)[1], t.outputs(batch), "saturated logits");
        }
    }

    @Test
    void splitBatchesGiveTheSameRows() {
        Random rng = new Random(3);
        Batch batch = randomBatch(rng, 53, IN);
        try (DjlTeacher whole = tiny("tiny-mlp.onnx").build();
             DjlTeacher split = tiny("tiny-mlp.onnx").optMaxBatch(7).build()) {
            float[] a = whole.outputs(batch);
            float[] b = split.outputs(batch);
            Tolerances.assertEngineClose(toDouble(a), b, "split vs whole");
            float[] hs = split.feature(batch, "hidden").values();
            assertEquals(53 * HIDDEN, hs.length);
        }
    }

    @Test
    void engineAndTransformOptions() {
        Random rng = new Random(11);
        Batch batch = randomBatch(rng, 9, IN);
        // an input transform that doubles and shifts: the reference sees the transformed batch
        float[] moved = new float[batch.features().length];
        for (int i = 0; i < moved.length; i++) {
            moved[i] = (float) ((batch.features()[i] - 0.25) / 0.5);
        }
        Batch transformed = new Batch(batch.indices(), moved, IN, batch.labels());
        try (DjlTeacher t = DjlTeacher.builder().setModelPath(fixture("tiny-mlp.pt")).setInputShape(IN).optEngine("torchscript")
                .optOutputNames("h", "scores").optLogitsOutput("scores").optInputTransform(DjlTeacher.InputTransform.normalize(0.25, 0.5))
                .optClasses(CLASSES).build()) {
            Tolerances.assertEngineClose(reference(transformed)[1], t.outputs(batch), "normalized input");
            assertTrue(t.describe().contains("PyTorch") && t.describe().contains("'scores'"), t.describe());
        }
        // the ONNX input by its name
        try (DjlTeacher t = tiny("tiny-mlp.onnx").optInputName("x").optEngine("ONNX").optEngineOption("intraOpNumThreads", "1")
                .optEngineOption("optLevel", "NO_OPT").build()) {
            Tolerances.assertEngineClose(reference(batch)[1], t.outputs(batch), "named input");
        }
    }

    @Test
    void anOutputTransformPicksAndReordersClasses() {
        Batch batch = randomBatch(new Random(13), 17, IN);
        double[] ref = reference(batch)[1];
        int[] keep = {4, 0, 2};
        try (DjlTeacher t = tiny("tiny-mlp.onnx").optOutputTransform(DjlTeacher.OutputTransform.columns(keep)).optClasses(3).build()) {
            assertEquals(3, t.classes());
            double[] expected = new double[17 * 3];
            for (int r = 0; r < 17; r++) {
                for (int j = 0; j < 3; j++) {
                    expected[r * 3 + j] = ref[r * CLASSES + keep[j]];
                }
            }
            Tolerances.assertEngineClose(expected, t.outputs(batch), "columns 4, 0, 2");
            assertArrayEquals(new int[] {CLASSES}, t.outputShapes().get("logits"), "outputShapes() lists the model's own shapes");
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> tiny("tiny-mlp.onnx").optOutputTransform(DjlTeacher.OutputTransform.columns(1, 7)).build());
        assertTrue(e.getMessage().contains("class id 7 is outside the model's 5 classes") && e.getMessage().contains("tiny-mlp.onnx"),
                e.getMessage());
    }

    /** The outputs of the last batch are kept, but a batch whose features were changed in place is run again. */
    @Test
    void aBatchChangedInPlaceIsRunAgain() {
        try (DjlTeacher t = tiny("tiny-mlp.onnx").build()) {
            Batch batch = randomBatch(new Random(23), 19, IN);
            Tolerances.assertEngineClose(reference(batch)[1], t.outputs(batch), "first run");
            float[] x = batch.features();
            for (int i = 0; i < x.length; i++) {
                x[i] = -0.5f * x[i] + 0.125f;
            }
            Tolerances.assertEngineClose(reference(batch)[1], t.outputs(batch), "after the features changed in place");
            Tolerances.assertEngineClose(reference(batch)[0], t.feature(batch, "hidden").values(), "the feature too");
        }
    }

    /** close() from another thread waits for a forward pass under way instead of freeing the model under it. */
    @Test
    void closeWaitsForAForwardPassUnderWay() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean armed = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.CountDownLatch inside = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        DjlTeacher t = tiny("tiny-mlp.onnx").optInputTransform((x, rows, d) -> {
            if (armed.get()) {
                inside.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return x;
        }).build();
        Batch batch = randomBatch(new Random(29), 6, IN);
        armed.set(true);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            java.util.concurrent.Future<float[]> forward = pool.submit(() -> t.outputs(batch));
            assertTrue(inside.await(30, java.util.concurrent.TimeUnit.SECONDS), "the forward pass started");
            java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
            pool.submit(() -> {
                t.close();
                closed.countDown();
            });
            assertTrue(!closed.await(300, java.util.concurrent.TimeUnit.MILLISECONDS), "close() returned during a forward pass");
            release.countDown();
            Tolerances.assertEngineClose(reference(batch)[1], forward.get(30, java.util.concurrent.TimeUnit.SECONDS),
                    "the forward pass close() waited for");
            assertTrue(closed.await(30, java.util.concurrent.TimeUnit.SECONDS), "close() returned after the forward pass");
            assertThrows(IllegalStateException.class, () -> t.outputs(batch));
        } finally {
            release.countDown();
            pool.shutdownNow();
            t.close();
        }
    }

    @Test
    void closeTwiceIsHarmlessAndUseAfterCloseFails() {
        DjlTeacher t = tiny("tiny-mlp.onnx").build();
        Batch batch = randomBatch(new Random(1), 2, IN);
        t.outputs(batch);
        t.close();
        t.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.outputs(randomBatch(new Random(2), 2, IN)));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    // ---- bad input: each error names the file / engine / shape and what was expected ----

    @Test
    void missingFileAndDirectory(@TempDir Path dir) {
        Path missing = dir.resolve("nope.onnx");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(missing).setInputShape(IN).build());
        assertTrue(e.getMessage().contains("nope.onnx") && e.getMessage().contains("does not exist")
                && e.getMessage().contains("ONNX"), e.getMessage());
        Path sub = dir.resolve("model.pt");
        assertTrue(sub.toFile().mkdir());
        e = assertThrows(IllegalArgumentException.class, () -> DjlTeacher.builder().setModelPath(sub).setInputShape(IN).build());
        assertTrue(e.getMessage().contains("is a directory") && e.getMessage().contains("TorchScript"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"corrupt.onnx", "corrupt.pt"})
    void corruptFile(String name, @TempDir Path dir) throws IOException {
        Path f = dir.resolve(name);
        byte[] junk = new byte[4096];
        new Random(5).nextBytes(junk);
        Files.write(f, junk);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(f).setInputShape(IN).build());
        String engine = name.endsWith(".onnx") ? "OnnxRuntime" : "PyTorch";
        assertTrue(e.getMessage().contains("cannot load teacher model") && e.getMessage().contains(name)
                && e.getMessage().contains(engine), e.getMessage());
    }

    @Test
    void truncatedOnnxFile(@TempDir Path dir) throws IOException {
        byte[] whole = Files.readAllBytes(fixture("tiny-mlp.onnx"));
        Path f = dir.resolve("cut.onnx");
        Files.write(f, java.util.Arrays.copyOf(whole, whole.length / 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(f).setInputShape(IN).build());
        assertTrue(e.getMessage().contains("cut.onnx"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mlp.onnx", "tiny-mlp.pt"})
    void wrongInputShape(String file) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> tiny(file).setInputShape(12).build());
        assertTrue(e.getMessage().contains(file) && e.getMessage().contains("[2, 12]") && e.getMessage().contains("input shape"),
                e.getMessage());
    }

    @Test
    void batchOfTheWrongWidth() {
        try (DjlTeacher t = tiny("tiny-mlp.onnx").build()) {
            Batch wide = randomBatch(new Random(4), 3, 784);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.outputs(wide));
            assertTrue(e.getMessage().contains("784 features") && e.getMessage().contains("[13]"), e.getMessage());
        }
    }

    @Test
    void outputChoiceErrors() {
        // TorchScript outputs have no names, and none is called logits
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(fixture("tiny-mlp.pt")).setInputShape(IN).build());
        assertTrue(e.getMessage().contains("output0 [rows, 6]") && e.getMessage().contains("output1 [rows, 5]")
                && e.getMessage().contains("optLogitsOutput"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> tiny("tiny-mlp.onnx").optLogitsOutput("probs").build());
        assertTrue(e.getMessage().contains("no output 'probs'") && e.getMessage().contains("hidden"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> tiny("tiny-mlp.onnx").optClasses(10).build());
        assertTrue(e.getMessage().contains("5 classes, expected 10") && e.getMessage().contains("tiny-mlp.onnx"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> tiny("tiny-mlp.onnx").optValues(TeacherValues.PROBABILITIES).build());
        assertTrue(e.getMessage().contains("PROBABILITIES"), e.getMessage());
        try (DjlTeacher t = tiny("tiny-mlp.onnx").build()) {
            e = assertThrows(IllegalArgumentException.class, () -> t.feature(randomBatch(new Random(1), 2, IN), "conv1"));
            assertTrue(e.getMessage().contains("no output 'conv1'") && e.getMessage().contains("logits [rows, 5]"), e.getMessage());
        }
    }

    /** What the ONNX Runtime engine's root manager holds open (each loaded model's manager is attached there until closed). */
    private static int openOrtResources() throws ReflectiveOperationException {
        return openResources("OnnxRuntime");
    }

    /** What DJL engine {@code engine}'s root manager holds open (each model's manager is attached there until closed). */
    private static int openResources(String engine) throws ReflectiveOperationException {
        ai.djl.ndarray.NDManager root = ai.djl.engine.Engine.getEngine(engine).newBaseManager();
        ai.djl.ndarray.NDManager system = root.getParentManager();
        root.close();
        java.lang.reflect.Field f = ai.djl.ndarray.BaseNDManager.class.getDeclaredField("resources");
        f.setAccessible(true);
        return ((Map<?, ?>) f.get(system)).size();
    }

    /** A model refused after it loaded (its probe shows it is not what the settings say) is closed, not left open. */
    @Test
    void aModelRefusedAfterLoadingIsClosed() throws ReflectiveOperationException {
        try (DjlTeacher warm = tiny("tiny-mlp.onnx").build()) {
            assertEquals(CLASSES, warm.classes()); // the engine is loaded
        }
        int before = openOrtResources();
        java.util.List<java.util.function.Supplier<DjlTeacher>> refused = java.util.List.of(
                () -> tiny("tiny-mlp.onnx").optValues(TeacherValues.PROBABILITIES).build(),
                () -> tiny("tiny-mlp.onnx").optClasses(10).build(),
                () -> tiny("tiny-mlp.onnx").optLogitsOutput("probs").build(),
                () -> tiny("tiny-mlp.onnx").setInputShape(12).build());
        for (java.util.function.Supplier<DjlTeacher> build : refused) {
            assertThrows(IllegalArgumentException.class, build::get);
        }
        assertEquals(before, openOrtResources(), "every refused model was closed");
        DjlTeacher open = tiny("tiny-mlp.onnx").build();
        assertEquals(before + 1, openOrtResources(), "the count sees an open model");
        open.close();
        assertEquals(before, openOrtResources());
    }

    /**
     * A file that fails to load (random bytes, an ONNX file cut short) leaves no model open. Through DJL's Criteria the
     * loader made the model and lost it when the load failed: its manager stayed attached to the engine's until the garbage
     * collector finalized it, with DJL's warning "Model: ... was not closed explicitly" (and ONNX Runtime's session options
     * never freed).
     */
    @ParameterizedTest
    @ValueSource(strings = {"corrupt.onnx", "corrupt.pt", "cut.onnx"})
    void aModelThatFailsToLoadIsClosed(String name, @TempDir Path dir) throws IOException, ReflectiveOperationException {
        boolean onnx = name.endsWith(".onnx");
        try (DjlTeacher warm = tiny(onnx ? "tiny-mlp.onnx" : "tiny-mlp.pt").build()) {
            assertEquals(CLASSES, warm.classes()); // the engine is loaded
        }
        Path f = dir.resolve(name);
        if (name.startsWith("cut")) {
            byte[] whole = Files.readAllBytes(fixture("tiny-mlp.onnx"));
            Files.write(f, java.util.Arrays.copyOf(whole, whole.length / 2));
        } else {
            byte[] junk = new byte[4096];
            new Random(5).nextBytes(junk);
            Files.write(f, junk);
        }
        String engine = onnx ? "OnnxRuntime" : "PyTorch";
        int before = openResources(engine);
        for (int i = 0; i < 3; i++) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DjlTeacher.builder().setModelPath(f).setInputShape(IN).build());
            assertTrue(e.getMessage().startsWith("cannot load teacher model " + f + " with DJL's " + engine + " engine"), e.getMessage());
        }
        assertEquals(before, openResources(engine), "no model of a failed load is left open");
    }

    /**
     * An engine that cannot make a model (here TensorFlow, whose engine is not on the test class path; DjlTeacher checks
     * that first, but an engine can also fail as it starts) fails before there is a model to close: still the
     * IllegalArgumentException naming the file and the engine, with DJL's reason, and no NullPointerException (suppressed)
     * from closing a model that was never made. (A mutant that closed the model whether or not one was made survived.)
     */
    @Test
    void anEngineThatCannotMakeAModelIsTheErrorNamingTheFile() {
        org.junit.jupiter.api.Assumptions.assumeFalse(ai.djl.engine.Engine.hasEngine("TensorFlow"), "TensorFlow is on the class path");
        Path f = fixture("tiny-mlp.onnx");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DjlSession.open(f, DjlEngine.TENSORFLOW, null, Map.of()));
        assertTrue(e.getMessage().startsWith("cannot load teacher model " + f + " with DJL's TensorFlow engine; expected a TensorFlow"
                + " SavedModel file: "), e.getMessage());
        assertTrue(e.getCause() != null && e.getCause().getMessage().contains("TensorFlow"), "DJL's reason is the cause: " + e.getCause());
        assertEquals(0, e.getCause().getSuppressed().length, () -> "nothing was closed: " + java.util.Arrays.toString(e.getCause().getSuppressed()));
    }

    @Test
    void settingsErrors(@TempDir Path dir) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DjlTeacher.builder().setInputShape(IN).build());
        assertTrue(e.getMessage().contains("setModelPath"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DjlTeacher.builder().setModelPath(fixture("tiny-mlp.onnx")).build());
        assertTrue(e.getMessage().contains("setInputShape"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(dir.resolve("teacher.bin")).setInputShape(IN).build());
        assertTrue(e.getMessage().contains("teacher.bin") && e.getMessage().contains(".onnx"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(fixture("tiny-mlp.onnx")).setInputShape(IN).optEngine("caffe").build());
        assertTrue(e.getMessage().contains("unknown DJL engine 'caffe'") && e.getMessage().contains("OnnxRuntime"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(fixture("tiny-mlp.onnx")).setInputShape(0, 13).build());
        assertTrue(e.getMessage().contains("non-positive"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> DjlTeacher.builder().setModelPath(fixture("tiny-mlp.onnx")).setInputShape(65536, 32768, 3).build());
        assertEquals("DjlTeacher for " + fixture("tiny-mlp.onnx") + ": input shape [65536, 32768, 3] has 6442450944 values per "
                + "sample, more than a batch row holds (2147483647)", e.getMessage());
    }

    @Test
    void engineNotOnTheClasspath() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> DjlTeacher.builder().setModelPath(fixture("tiny-mlp.onnx")).setInputShape(IN).optEngine("tensorflow").build());
        assertTrue(e.getMessage().contains("DJL engine TensorFlow is not on the classpath")
                && e.getMessage().contains("OnnxRuntime") && e.getMessage().contains("PyTorch")
                && e.getMessage().contains("ai.djl.tensorflow"), e.getMessage());
    }

    /**
     * With DJL hidden from the class loader, the core's classes (the training loop, the other teachers
     * and DjlTeacher itself) still load, and building a DjlTeacher says which artifacts to add.
     */
    @Test
    void withoutDjlOnTheClasspath() throws Exception {
        URL classes = DjlTeacher.class.getProtectionDomain().getCodeSource().getLocation();
        ClassLoader app = DjlTeacherTest.class.getClassLoader();
        ClassLoader hiding = new ClassLoader(app.getParent()) {
            @Override
            protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
                if (name.startsWith("ai.djl.") || name.startsWith("org.distill4j.")) {
                    throw new ClassNotFoundException(name + " (hidden by the test)");
                }
                return app.loadClass(name);
            }
        };
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes}, hiding)) {
            assertThrows(ClassNotFoundException.class, () -> Class.forName("ai.djl.engine.Engine", false, loader));
            for (String core : new String[] {"org.distill4j.train.Distiller", "org.distill4j.teacher.Dl4jTeacher",
                    "org.distill4j.store.StoredTeacher", "org.distill4j.loss.Losses"}) {
                assertEquals(loader, Class.forName(core, true, loader).getClassLoader(), core);
            }
            Class<?> teacher = Class.forName("org.distill4j.teacher.djl.DjlTeacher", true, loader);
            Object builder = teacher.getMethod("builder").invoke(null);
            Class<?> bc = builder.getClass();
            bc.getMethod("setModelPath", Path.class).invoke(builder, fixture("tiny-mlp.onnx"));
            bc.getMethod("setInputShape", long[].class).invoke(builder, (Object) new long[] {IN});
            Method build = bc.getMethod("build");
            InvocationTargetException e = assertThrows(InvocationTargetException.class, () -> build.invoke(builder));
            IllegalStateException cause = assertInstanceOf(IllegalStateException.class, e.getCause());
            assertTrue(cause.getMessage().contains("DJL is not on the classpath") && cause.getMessage().contains("ai.djl:api")
                    && cause.getMessage().contains("onnxruntime-engine"), cause.getMessage());
        }
    }

    /** The ONNX teacher in the training loop: soft targets plus a feature loss on its named "hidden" output. */
    @Test
    void distillsIntoADl4jStudentWithAFeatureLoss() {
        try (DjlTeacher t = tiny("tiny-mlp.onnx").build()) {
            Batch all = randomBatch(new Random(21), 700, IN);
            float[] logits = t.outputs(all);
            int[] labels = new int[all.size()];
            for (int r = 0; r < labels.length; r++) {
                for (int c = 1; c < CLASSES; c++) {
                    if (logits[r * CLASSES + c] > logits[r * CLASSES + labels[r]]) {
                        labels[r] = c;
                    }
                }
            }
            org.distill4j.data.Dataset data = new org.distill4j.data.Dataset("tiny-mlp-labeled", all.features(), IN, labels, CLASSES);
            org.distill4j.data.Dataset train = data.head(500);
            org.distill4j.data.Dataset test = data.subset(java.util.stream.IntStream.range(500, 700).toArray(), "tiny-test");
            org.deeplearning4j.nn.graph.ComputationGraph g = org.distill4j.student.Dl4jStudent.withFeatureOutputs(
                    org.distill4j.testing.Nets.logitsMlp(IN, 16, CLASSES, new org.nd4j.linalg.learning.config.Adam(2e-2), 3, 0)
                            .toComputationGraph(), "0");
            org.distill4j.loss.RelationalKd rkd = new org.distill4j.loss.RelationalKd(25, 50);
            org.distill4j.train.DistillResult r = org.distill4j.train.Distiller.builder().teacher(t)
                    .student(org.distill4j.student.Dl4jStudent.of(g)).loss(new org.distill4j.loss.SoftTargetKd(2, 0.1))
                    .featureLoss(0.5, rkd, "0", "hidden").trainData(train).testData(test).epochs(12).batchSize(50).seed(4)
                    .backend(new org.distill4j.backend.CpuBackend()).build().run();
            double first = r.epochs().get(0).teacherAgreement();
            double last = r.teacherAgreement();
            assertTrue(last > first + 0.3 && last > 0.7, "agreement with the ONNX teacher grows: " + first + " -> " + last);
            assertTrue(r.epochs().get(11).terms().get(rkd.name()) < r.epochs().get(0).terms().get(rkd.name()), "rkd falls");

            // a student whose output size does not match the teacher's
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> org.distill4j.train.Distiller.builder()
                    .teacher(t).student(org.distill4j.student.Dl4jStudent.of(org.distill4j.testing.Nets.logitsMlp(IN, 8, 10,
                            new org.nd4j.linalg.learning.config.Adam(1e-3), 1, 0)))
                    .loss(new org.distill4j.loss.SoftTargetKd(2, 0.1)).trainData(train).epochs(1).build());
            assertTrue(e.getMessage().contains("teacher has 5 classes but the student has 10"), e.getMessage());
        }
    }

    private static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    @Test
    void fixtureChecksumsMatchTheirJson() throws IOException, java.security.NoSuchAlgorithmException {
        // the JSON beside the models records their SHA-256; a model regenerated without its JSON is caught here
        String json = Files.readString(fixture("tiny-mlp.json"), StandardCharsets.UTF_8);
        for (String f : new String[] {"tiny-mlp.onnx", "tiny-mlp.pt"}) {
            byte[] digest = java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(fixture(f)));
            assertTrue(json.contains(java.util.HexFormat.of().formatHex(digest)), f + " checksum not in tiny-mlp.json");
        }
    }
}
