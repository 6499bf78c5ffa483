package org.distill4j.examples;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Zips that would exhaust the heap inside ModelSerializer, which reads every entry of a model zip into a byte array (by
 * the size a local header declares, or by inflating all there is when it declares none): each is refused by
 * {@link ModelFiles#checkArrays} naming the file and the entry, before ModelSerializer sees it, while models that are
 * what they say still load.
 */
class ModelFilesZipBombTest {
    private static MultiLayerNetwork net() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(3).updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(4).nOut(3).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(3).nOut(2).activation(Activation.SOFTMAX).build())
                .build());
        net.init();
        return net;
    }

    /** A saved model's entries. */
    private static Map<String, byte[]> model(Path dir) throws IOException {
        Path p = dir.resolve("model.zip");
        ModelSerializer.writeModel(net(), p.toFile(), false);
        return ModelFilesFuzzTest.entries(Files.readAllBytes(p));
    }

    /** Writes {@code entries} deflated as ModelSerializer does (sizes in data descriptors). */
    private static void writeEntries(ZipOutputStream z, Map<String, byte[]> entries) throws IOException {
        for (Map.Entry<String, byte[]> e : entries.entrySet()) {
            z.putNextEntry(new ZipEntry(e.getKey()));
            z.write(e.getValue());
            z.closeEntry();
        }
    }

    /**
     * A real deflate bomb: a model's entries and an {@code updaterState.bin} of {@code mib} MiB of zeros, deflated as it is
     * written (memory stays at one 1 MiB block) with no size declared, as ModelSerializer writes its own entries.
     */
    private static Path bomb(Path dir, int mib) throws IOException {
        Path p = dir.resolve("bomb.zip");
        try (OutputStream f = Files.newOutputStream(p); ZipOutputStream z = new ZipOutputStream(new java.io.BufferedOutputStream(f))) {
            writeEntries(z, model(dir));
            z.setLevel(Deflater.BEST_SPEED);
            z.putNextEntry(new ZipEntry("updaterState.bin"));
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < mib; i++) {
                z.write(zeros);
            }
            z.closeEntry();
        }
        return p;
    }

    /**
     * A model's entries and a stored {@code updaterState.bin} of 1000 bytes whose local header declares {@code declared}
     * bytes (the central directory keeps the true 1000: ModelSerializer reads local headers, as ZipInputStream does).
     */
    private static Path lying(Path dir, long declared) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] data = new byte[1000];
        new java.util.Random(7).nextBytes(data);
        try (ZipOutputStream z = new ZipOutputStream(out)) {
            writeEntries(z, model(dir));
            ZipEntry e = new ZipEntry("updaterState.bin");
            CRC32 crc = new CRC32();
            crc.update(data);
            e.setMethod(ZipEntry.STORED);
            e.setSize(data.length);
            e.setCrc(crc.getValue());
            z.putNextEntry(e);
            z.write(data);
            z.closeEntry();
        }
        byte[] zip = out.toByteArray();
        ByteBuffer b = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
        byte[] name = "updaterState.bin".getBytes(StandardCharsets.UTF_8);
        for (int at = 0; at + 30 + name.length <= zip.length; at++) {
            if (b.getInt(at) == 0x04034b50 && b.getShort(at + 26) == name.length
                    && java.util.Arrays.equals(zip, at + 30, at + 30 + name.length, name, 0, name.length)) {
                assertEquals(1000, b.getInt(at + 22), "the local header's uncompressed size");
                b.putInt(at + 22, (int) declared);
                return Files.write(dir.resolve("lying.zip"), zip);
            }
        }
        throw new AssertionError("no local header for updaterState.bin");
    }

    /**
     * A stored entry whose local header declares 2^31 - 1 bytes, or 1 GiB from the 1000 bytes it holds, is one ModelSerializer
     * would allocate an array of that size for; read through by the array check in front of it, it was refused as "not a
     * whole zip (unexpected EOF)", which said nothing of the entry. Both are now refused naming the entry and its declared
     * size, through {@link ModelFiles#load} and the teacher loader, before anything is read of it.
     */
    @Test
    void aLocalHeaderDeclaringMoreThanItCanHoldIsRefused(@TempDir Path tmp) throws Exception {
        Path huge = lying(tmp, Integer.MAX_VALUE);
        IOException e = assertThrows(IOException.class, () -> ModelFiles.load(huge, new ModelFiles.Options("--"), 4, 2));
        assertTrue(e.getMessage().startsWith(huge + ": entry updaterState.bin declares 2147483647 bytes; ModelSerializer reads each"
                + " entry into one byte array, which holds at most 2147483639"), e.getMessage());
        IllegalArgumentException teacher = assertThrows(IllegalArgumentException.class, () -> Demo.dl4jTeacherNet(huge, 4, 2, null));
        assertTrue(teacher.getMessage().contains(huge + ": entry updaterState.bin declares 2147483647 bytes"), teacher.getMessage());

        Path gib = lying(tmp, 1L << 30);
        e = assertThrows(IOException.class, () -> ModelFiles.load(gib, new ModelFiles.Options("--"), 4, 2));
        assertTrue(e.getMessage().startsWith(gib + ": entry updaterState.bin declares 1073741824 bytes from 1000 stored bytes,"
                + " more than they can give"), e.getMessage());
        // the same file with the true size loads
        Path honest = lying(tmp, 1000);
        try (ModelFiles.Loaded l = ModelFiles.load(honest, new ModelFiles.Options("--"), 4, 2)) {
            assertEquals(net().numParams(), l.parameters());
        }
    }

    /**
     * A zip of 1.4 MB whose updaterState.bin (not an array label and eval read, but one ModelSerializer reads into memory all
     * the same) inflates to 300 MiB is refused once the bytes inflated pass the budget, without inflating the rest; the
     * budget counts every entry, so a model passes at its own inflated size and is refused a byte below it.
     */
    @Test
    void aDeflateBombIsRefusedAtTheBudgetWithoutInflatingItAll(@TempDir Path tmp) throws Exception {
        Path bomb = bomb(tmp, 300);
        assertTrue(Files.size(bomb) < 2_000_000, "a small file: " + Files.size(bomb));
        long budget = 64L << 20;
        long t0 = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> ModelFiles.checkArrays(bomb, false, budget));
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(e.getMessage().startsWith(bomb + ": entry updaterState.bin: the entries inflate to more than 67108864 bytes in"
                + " all; ModelSerializer holds every entry in memory at once"), e.getMessage());
        assertTrue(seconds < 5, "refused at the budget, not after inflating 300 MiB: " + seconds + " s");

        Map<String, byte[]> entries = model(tmp);
        // configuration.json counts CONFIGURATION_WEIGHT times (a String and a JSON tree are made of it)
        long inflated = entries.values().stream().mapToLong(v -> v.length).sum()
                + (ModelFiles.CONFIGURATION_WEIGHT - 1L) * entries.get(ModelSerializer.CONFIGURATION_JSON).length;
        Path model = tmp.resolve("model.zip");
        ModelFiles.checkArrays(model, false, inflated);
        e = assertThrows(IOException.class, () -> ModelFiles.checkArrays(model, false, inflated - 1));
        assertTrue(e.getMessage().contains("inflate to more than " + (inflated - 1) + " bytes in all"), e.getMessage());
        assertArrayEquals(net().params().toFloatVector(), Demo.dl4jTeacherNet(model, 4, 2, null).params().toFloatVector(),
                "a model within the budget loads");
    }

    /**
     * A {@code preprocessor.bin} entry is read by ModelSerializer with {@code ObjectInputStream.readObject}: a 27-byte
     * serialized {@code long[]} declaring 2^31 - 16 elements made it allocate 16 GiB and fail with an OutOfMemoryError, and
     * it would build any serializable class on the class path. Refused by name; DL4J 1.0.0-M2.1 never writes it.
     */
    @Test
    void aSerializedPreprocessorEntryIsRefused(@TempDir Path tmp) throws Exception {
        Path p = tmp.resolve("pre.zip");
        ByteArrayOutputStream ser = new ByteArrayOutputStream();
        try (java.io.ObjectOutputStream o = new java.io.ObjectOutputStream(ser)) {
            o.writeObject(new long[]{1, 2, 3});
        }
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(p))) {
            writeEntries(z, model(tmp));
            z.putNextEntry(new ZipEntry(ModelSerializer.PREPROCESSOR_BIN));
            z.write(ser.toByteArray());
            z.closeEntry();
        }
        IOException e = assertThrows(IOException.class, () -> ModelFiles.load(p, new ModelFiles.Options("--"), 4, 2));
        assertTrue(e.getMessage().startsWith(p + ": entry preprocessor.bin holds a Java-serialized object, which ModelSerializer "
                + "would deserialize"), e.getMessage());
    }

    /**
     * configuration.json becomes a String and a JSON tree, several times its bytes: it counts {@code CONFIGURATION_WEIGHT}
     * times against the budget, so 12 MiB of padding is refused at a 64 MiB budget that 12 MiB of another entry fits in.
     */
    @Test
    void configurationJsonCountsSeveralTimesAgainstTheBudget(@TempDir Path tmp) throws Exception {
        Map<String, byte[]> entries = new java.util.LinkedHashMap<>(model(tmp));
        byte[] config = entries.get(ModelSerializer.CONFIGURATION_JSON);
        byte[] padded = new byte[config.length + (12 << 20)];
        System.arraycopy(config, 0, padded, 0, config.length - 1);
        java.util.Arrays.fill(padded, config.length - 1, padded.length - 1, (byte) ' ');
        padded[padded.length - 1] = config[config.length - 1]; // the closing brace after the spaces
        long budget = 64L << 20;
        Path big = tmp.resolve("config.zip");
        entries.put(ModelSerializer.CONFIGURATION_JSON, padded);
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(big))) {
            writeEntries(z, entries);
        }
        IOException e = assertThrows(IOException.class, () -> ModelFiles.checkArrays(big, false, budget));
        assertTrue(e.getMessage().startsWith(big + ": entry configuration.json: the entries inflate to more than 67108864 bytes in"
                + " all (this one counted 8 times: ModelSerializer reads it into a String and parses it)"), e.getMessage());
        entries.put(ModelSerializer.CONFIGURATION_JSON, config);
        entries.put("extra.bin", new byte[12 << 20]);
        Path other = tmp.resolve("other.zip");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(other))) {
            writeEntries(z, entries);
        }
        ModelFiles.checkArrays(other, false, budget);
    }

    /** A zip that breaks off inside an entry is named with that entry. */
    @Test
    void aZipCutInsideAnEntryNamesIt(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole.zip");
        byte[] noise = new byte[200_000];
        new java.util.Random(5).nextBytes(noise); // does not deflate: the entry is most of the file
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(whole))) {
            writeEntries(z, model(tmp));
            z.putNextEntry(new ZipEntry("extra.bin"));
            z.write(noise);
            z.closeEntry();
        }
        byte[] bytes = Files.readAllBytes(whole);
        Path cut = tmp.resolve("cut.zip");
        Files.write(cut, java.util.Arrays.copyOf(bytes, bytes.length - 100_000));
        IOException e = assertThrows(IOException.class, () -> ModelFiles.checkArrays(cut, false, 1L << 30));
        assertTrue(e.getMessage().startsWith(cut + ": not a whole zip (") && e.getMessage().endsWith(
                ", in entry extra.bin); expected a DL4J ModelSerializer zip"), e.getMessage());
    }

    /** A directory entry, which ModelSerializer refuses with a bare IllegalArgumentException (message null), is named. */
    @Test
    void aDirectoryEntryIsNamed(@TempDir Path tmp) throws Exception {
        Path p = tmp.resolve("dir.zip");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(p))) {
            writeEntries(z, model(tmp));
            z.putNextEntry(new ZipEntry("extra/"));
            z.closeEntry();
        }
        IOException e = assertThrows(IOException.class, () -> ModelFiles.load(p, new ModelFiles.Options("--"), 4, 2));
        assertEquals(p + ": entry extra/ is a directory; expected a DL4J ModelSerializer zip, which holds files only", e.getMessage());
    }
}
