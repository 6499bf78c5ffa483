package org.distill4j.examples;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ModelFiles#checkArrays}: the ND4J arrays of a ModelSerializer zip are checked against the bytes the zip holds
 * before ModelSerializer reads them, since {@code Nd4j.read} allocates what a length field declares (natively: a high one
 * got the JVM killed) and builds an array of the declared shape over whatever data buffer came (out of bounds: a crash).
 * Damaged files are crafted here and given to the check alone, never to ModelSerializer; valid ones load as before.
 */
class ModelFilesArrayCheckTest {
    /** Byte offsets in an {@code Nd4j.write} of a rank-1 FLOAT array (ND4J 1.0.0-M2.1, as written by ModelSerializer). */
    private static final int SHAPE_LENGTH_AT = 2 + "MIXED_DATA_TYPES".length(); // after the mode's UTF
    private static final int SHAPE_TYPE_AT = SHAPE_LENGTH_AT + 8;               // the shape buffer's "LONG" UTF
    private static final int SHAPE_VALUES_AT = SHAPE_TYPE_AT + 2 + 4;           // rank, shape, stride, extras, ews, order
    private static final int DATA_HEADER_AT = SHAPE_VALUES_AT + 6 * 8;
    private static final int DATA_LENGTH_AT = DATA_HEADER_AT + 2 + "MIXED_DATA_TYPES".length();
    private static final int DATA_TYPE_AT = DATA_LENGTH_AT + 8;                 // the data buffer's "FLOAT" UTF
    private static final int DATA_AT = DATA_TYPE_AT + 2 + 5;

    private static MultiLayerNetwork net() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(5).updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(4).nOut(3).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(3).nOut(2).activation(Activation.SOFTMAX).build())
                .build());
        net.init();
        return net;
    }

    private static Map<String, byte[]> entries(Path zip) throws IOException {
        return ModelFilesFuzzTest.entries(Files.readAllBytes(zip));
    }

    /** A zip of {@code entries}, deflated (sizes in a data descriptor, as ModelSerializer writes) or stored (sizes declared). */
    private static Path zip(Path file, Map<String, byte[]> entries, boolean stored) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                if (stored) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    ze.setMethod(ZipEntry.STORED);
                    ze.setSize(e.getValue().length);
                    ze.setCrc(crc.getValue());
                }
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        Files.write(file, out.toByteArray());
        return file;
    }

    /** The saved model with its coefficients.bin replaced by {@code coefficients}. */
    private static Path withCoefficients(Path dir, byte[] coefficients, boolean stored) throws IOException {
        Path valid = dir.resolve("valid.zip");
        ModelSerializer.writeModel(net(), valid.toFile(), false);
        Map<String, byte[]> m = new LinkedHashMap<>(entries(valid));
        m.put("coefficients.bin", coefficients);
        return zip(dir.resolve(stored ? "stored.zip" : "deflated.zip"), m, stored);
    }

    private static byte[] validCoefficients(Path dir) throws IOException {
        Path valid = dir.resolve("valid.zip");
        ModelSerializer.writeModel(net(), valid.toFile(), false);
        return entries(valid).get("coefficients.bin");
    }

    private static byte[] putLong(byte[] b, int at, long v) {
        byte[] c = b.clone();
        ByteBuffer.wrap(c).putLong(at, v);
        return c;
    }

    private static byte[] replace(byte[] b, int at, String ascii) {
        byte[] c = b.clone();
        byte[] s = ascii.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        System.arraycopy(s, 0, c, at, s.length);
        return c;
    }

    /** Refused by the check with an IOException naming the file, the entry and each of {@code expected}. */
    private static IOException refused(Path zip, String... expected) {
        IOException e = assertThrows(IOException.class, () -> ModelFiles.checkArrays(zip, false));
        assertTrue(e.getMessage().contains(zip.toString()), e.getMessage());
        for (String s : expected) {
            assertTrue(e.getMessage().contains(s), "'" + s + "' not in: " + e.getMessage());
        }
        return e;
    }

    @Test
    void theLayoutThisTestCraftsFromIsTheOneNd4jWrites(@TempDir Path tmp) throws IOException {
        byte[] c = validCoefficients(tmp);
        ByteBuffer b = ByteBuffer.wrap(c);
        assertEquals(1, b.getLong(SHAPE_VALUES_AT), "rank");
        long n = b.getLong(SHAPE_VALUES_AT + 8);
        assertEquals(4 * 3 + 3 + 3 * 2 + 2, n, "the parameter count");
        assertEquals(n, b.getLong(DATA_LENGTH_AT));
        assertEquals("FLOAT", new String(c, DATA_TYPE_AT + 2, 5, java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(DATA_AT + 4 * n, c.length);
    }

    @Test
    void modelsSavedByModelSerializerPassAndLoadAsBefore(@TempDir Path tmp) throws Exception {
        MultiLayerNetwork net = net();
        INDArray labels = Nd4j.zeros(DataType.FLOAT, 8, 2);
        for (int i = 0; i < 8; i++) {
            labels.putScalar(i, i % 2, 1);
        }
        net.fit(Nd4j.rand(DataType.FLOAT, 8, 4), labels); // an updater state that is not zeros
        for (boolean updater : new boolean[] {false, true}) {
            Path p = tmp.resolve("saved-" + updater + ".zip");
            ModelSerializer.writeModel(net, p.toFile(), updater);
            ModelFiles.checkArrays(p, false);
            ModelFiles.checkArrays(p, true);
            MultiLayerNetwork back = ModelSerializer.restoreMultiLayerNetwork(p.toFile(), updater);
            assertArrayEquals(net.params().toFloatVector(), back.params().toFloatVector());
            if (updater) {
                assertArrayEquals(net.getUpdater().getStateViewArray().toFloatVector(),
                        back.getUpdater().getStateViewArray().toFloatVector());
            }
            try (ModelFiles.Loaded l = ModelFiles.load(p, new ModelFiles.Options("--"), 4, 2)) {
                assertEquals(net.numParams(), l.parameters());
            }
            assertArrayEquals(net.params().toFloatVector(), Demo.dl4jTeacherNet(p, 4, 2, null).params().toFloatVector());
        }
        // the same arrays in a zip of stored entries (sizes declared in the zip) pass too
        Path stored = zip(tmp.resolve("stored.zip"), entries(tmp.resolve("saved-true.zip")), true);
        ModelFiles.checkArrays(stored, true);
        assertArrayEquals(net.params().toFloatVector(), ModelSerializer.restoreMultiLayerNetwork(stored.toFile(), false).params().toFloatVector());
    }

    @Test
    void arraysOfOtherTypesAndLayoutsThatNd4jWritesPass(@TempDir Path tmp) throws IOException {
        INDArray[] arrays = {Nd4j.rand(DataType.DOUBLE, 2, 3), Nd4j.rand(DataType.HALF, 3), Nd4j.rand(DataType.FLOAT, 3, 2).transpose(),
                Nd4j.scalar(1.5f), Nd4j.create(DataType.FLOAT, 0, 3), Nd4j.createFromArray(1L, 2L), Nd4j.createFromArray(true, false)};
        for (INDArray a : arrays) {
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            Nd4j.write(a, new DataOutputStream(o));
            for (boolean stored : new boolean[] {false, true}) {
                ModelFiles.checkArrays(withCoefficients(tmp, o.toByteArray(), stored), false);
            }
        }
    }

    @Test
    void anOlderAllocationModeWithAnIntLengthIsReadAsNd4jReadsIt(@TempDir Path tmp) throws IOException {
        // DIRECT, HEAP and JAVACPP headers carry an int length (BaseDataBuffer.readHeader), not a long
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(o);
        d.writeUTF("HEAP");
        d.writeInt(8);
        d.writeUTF("LONG");
        for (long v : new long[] {2, 2, 3, 3, 1, 0x2000, 1, 'c'}) {
            d.writeLong(v);
        }
        d.writeUTF("DIRECT");
        d.writeInt(6);
        d.writeUTF("FLOAT");
        for (int i = 0; i < 6; i++) {
            d.writeFloat(i);
        }
        byte[] b = o.toByteArray();
        assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5},
                Nd4j.read(new DataInputStream(new ByteArrayInputStream(b))).reshape(6).toFloatVector(), "ND4J reads it");
        ModelFiles.checkArrays(withCoefficients(tmp, b, false), false);
        // and its int length, set high, is refused like a long one
        Path high = withCoefficients(tmp, ByteBuffer.wrap(b.clone()).putInt(b.length - 6 * 4 - 2 - 5 - 4, Integer.MAX_VALUE).array(),
                false);
        refused(high, "coefficients.bin", "2147483647", "FLOAT");
    }

    @Test
    void aDataLengthBeyondTheEntryIsRefusedBeforeAnyAllocation(@TempDir Path tmp) throws IOException {
        byte[] c = validCoefficients(tmp);
        for (boolean stored : new boolean[] {false, true}) {
            for (long v : new long[] {1L << 40, Long.MAX_VALUE, 24}) {
                refused(withCoefficients(tmp, putLong(c, DATA_LENGTH_AT, v), stored), "coefficients.bin", "data buffer",
                        Long.toString(v), "bytes");
            }
            refused(withCoefficients(tmp, putLong(c, DATA_LENGTH_AT, -1), stored), "coefficients.bin", "-1");
        }
    }

    @Test
    void aShapeBufferLengthBeyondTheEntryIsRefused(@TempDir Path tmp) throws IOException {
        byte[] c = validCoefficients(tmp);
        for (long v : new long[] {1L << 40, Integer.MAX_VALUE, 1L << 31, 7, -1}) {
            refused(withCoefficients(tmp, putLong(c, SHAPE_LENGTH_AT, v), false), "coefficients.bin", "shape buffer", Long.toString(v));
        }
    }

    @Test
    void aTruncatedArrayIsRefusedNamingWhatIsMissing(@TempDir Path tmp) throws IOException {
        byte[] c = validCoefficients(tmp);
        for (int cut : new int[] {1, SHAPE_TYPE_AT + 3, SHAPE_VALUES_AT + 20, DATA_HEADER_AT, DATA_TYPE_AT + 4, DATA_AT + 10, c.length - 1}) {
            refused(withCoefficients(tmp, Arrays.copyOf(c, cut), cut % 2 == 0), "coefficients.bin", Integer.toString(cut));
        }
    }

    @Test
    void namesNd4jDoesNotKnowAreRefused(@TempDir Path tmp) throws IOException {
        byte[] c = validCoefficients(tmp);
        refused(withCoefficients(tmp, replace(c, 2, "MIXED_DATA_TYPEZ"), false), "coefficients.bin", "MIXED_DATA_TYPEZ",
                "MIXED_DATA_TYPES");
        refused(withCoefficients(tmp, replace(c, SHAPE_TYPE_AT + 2, "LONX"), false), "coefficients.bin", "LONX", "LONG");
        refused(withCoefficients(tmp, replace(c, DATA_TYPE_AT + 2, "FLOAX"), false), "coefficients.bin", "FLOAX", "FLOAT");
        // known to ND4J, but not an array of numbers whose size the entry vouches for
        refused(withCoefficients(tmp, replace(c, DATA_TYPE_AT + 2 - 2, "\u0000\u0004UTF8\u0000"), false), "coefficients.bin");
        refused(withCoefficients(tmp, replace(c, SHAPE_TYPE_AT + 2, "HALF"), false), "coefficients.bin", "HALF", "LONG");
    }

    @Test
    void aCompressedDataBufferIsRefused(@TempDir Path tmp) throws IOException {
        byte[] c = validCoefficients(tmp);
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.write(c, 0, DATA_LENGTH_AT + 8);
        DataOutputStream d = new DataOutputStream(o);
        d.writeUTF("COMPRESSED");
        d.writeUTF("GZIP");
        d.writeLong(1L << 40); // compressed length: ND4J allocates it
        d.writeLong(1L << 40);
        d.writeLong(1L << 38);
        d.writeInt(DataType.FLOAT.ordinal());
        refused(withCoefficients(tmp, o.toByteArray(), false), "coefficients.bin", "COMPRESSED");
    }

    @Test
    void aShapeThatDoesNotFitTheDataIsRefused(@TempDir Path tmp) throws IOException {
        byte[] c = validCoefficients(tmp);
        int shape = SHAPE_VALUES_AT + 8;
        int stride = SHAPE_VALUES_AT + 16;
        int extras = SHAPE_VALUES_AT + 24;
        int order = SHAPE_VALUES_AT + 40;
        // a dimension beyond the data: ND4J builds the array over the smaller buffer, and reading it crashes the JVM
        refused(withCoefficients(tmp, putLong(c, shape, 600_000_000L), false), "coefficients.bin", "600000000", "23");
        refused(withCoefficients(tmp, putLong(c, shape, -3), false), "coefficients.bin", "-3");
        refused(withCoefficients(tmp, putLong(c, stride, 1_000_000L), false), "coefficients.bin", "1000000");
        refused(withCoefficients(tmp, putLong(c, stride, -1), false), "coefficients.bin", "-1");
        refused(withCoefficients(tmp, putLong(c, SHAPE_VALUES_AT, 2), false), "coefficients.bin", "rank 2", "8");
        refused(withCoefficients(tmp, putLong(c, SHAPE_VALUES_AT, 1L << 40), false), "coefficients.bin", "rank");
        refused(withCoefficients(tmp, putLong(c, order, 'x'), false), "coefficients.bin", "order");
        // the shape's data type (DOUBLE) is not the data buffer's (FLOAT): ND4J would read 8-byte values from 4-byte ones
        refused(withCoefficients(tmp, putLong(c, extras, 0x4000), false), "coefficients.bin", "DOUBLE", "FLOAT");
        // an unknown type in the shape is one ND4J replaces with the data buffer's: that passes
        ModelFiles.checkArrays(withCoefficients(tmp, putLong(c, extras, 0), false), false);
    }

    @Test
    void theUpdaterStateIsCheckedWhereItIsRead(@TempDir Path tmp) throws IOException {
        Path saved = tmp.resolve("saved.zip");
        ModelSerializer.writeModel(net(), saved.toFile(), true);
        Map<String, byte[]> m = new LinkedHashMap<>(entries(saved));
        m.put("updaterState.bin", putLong(m.get("updaterState.bin"), DATA_LENGTH_AT, 1L << 40));
        Path p = zip(tmp.resolve("updater.zip"), m, false);
        ModelFiles.checkArrays(p, false); // not read without the updater (as label and eval load)
        IOException e = assertThrows(IOException.class, () -> ModelFiles.checkArrays(p, true));
        assertTrue(e.getMessage().contains("updaterState.bin") && e.getMessage().contains(p.toString()), e.getMessage());
    }

    @Test
    void everyEntryOfTheNameIsChecked(@TempDir Path tmp) throws IOException {
        // ZipInputStream (as ModelSerializer reads) goes by the local headers, and ModelSerializer keeps the last entry of a
        // name: a damaged coefficients.bin after a valid one is the one it reads. ZipOutputStream refuses a name twice, so the
        // second is written as coefficients.biX and renamed in the bytes.
        byte[] c = validCoefficients(tmp);
        Map<String, byte[]> m = new LinkedHashMap<>(entries(tmp.resolve("valid.zip")));
        m.put("coefficients.biX", putLong(c, DATA_LENGTH_AT, 1L << 40));
        byte[] b = Files.readAllBytes(zip(tmp.resolve("x.zip"), m, false));
        byte[] from = "coefficients.biX".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        int renamed = 0;
        for (int i = 0; i + from.length <= b.length; i++) {
            if (Arrays.equals(b, i, i + from.length, from, 0, from.length)) {
                b[i + from.length - 1] = 'n';
                renamed++;
            }
        }
        assertEquals(2, renamed, "the local header and the central directory");
        Path p = Files.write(tmp.resolve("twice.zip"), b);
        refused(p, "coefficients.bin", Long.toString(1L << 40));
        m.remove("coefficients.biX");
        ModelFiles.checkArrays(zip(tmp.resolve("once.zip"), m, false), false);
    }

    @Test
    void aZipThatIsNotWholeIsRefusedNamingTheFile(@TempDir Path tmp) throws IOException {
        Path valid = tmp.resolve("valid.zip");
        ModelSerializer.writeModel(net(), valid.toFile(), false);
        byte[] b = Files.readAllBytes(valid);
        Path cut = Files.write(tmp.resolve("cut.zip"), Arrays.copyOf(b, b.length / 2));
        refused(cut);
    }

    @Test
    void bothCallSitesRefuseADamagedFileBeforeModelSerializerReadsIt(@TempDir Path tmp) throws IOException {
        Path p = withCoefficients(tmp, putLong(validCoefficients(tmp), DATA_LENGTH_AT, 1L << 40), false);
        IOException e = assertThrows(IOException.class, () -> ModelFiles.load(p, new ModelFiles.Options("--"), 4, 2));
        assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains("coefficients.bin"), e.getMessage());
        IllegalArgumentException d = assertThrows(IllegalArgumentException.class, () -> Demo.dl4jTeacherNet(p, 4, 2, null));
        assertTrue(d.getMessage().contains(p.toString()) && d.getMessage().contains("coefficients.bin"), d.getMessage());
    }
}
