package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Damaged DL4J model files given to {@code distill label/eval --teacher} ({@link ModelFiles#load}): a ModelSerializer zip
 * truncated, with bytes changed, and rebuilt as a valid zip whose configuration.json or coefficients.bin is cut or has numbers
 * at extremes. Each loads, or is refused with an exception naming the file;
 * nothing else escapes (an Error from a size the file declares, a stack trace without the file). Seed:
 * {@code -Ddistill.fuzz.seed}; cases: {@code -Ddistill.fuzz.cases}.
 */
class ModelFilesFuzzTest {
    static final long SEED = Long.getLong("distill.fuzz.seed", 20261122L);
    static final int CASES = Integer.getInteger("distill.fuzz.cases", 60);
    static final int FEATURES = 6;
    static final int CLASSES = 3;

    static byte[] model(Path dir) throws IOException {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(3).updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(FEATURES).nOut(5).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(5).nOut(CLASSES).activation(Activation.SOFTMAX).build())
                .build());
        net.init();
        Path p = dir.resolve("valid.zip");
        ModelSerializer.writeModel(net, p.toFile(), false);
        return Files.readAllBytes(p);
    }

    static void check(Path dir, byte[] bytes, String what) throws IOException {
        Path file = dir.resolve("teacher.zip");
        Files.write(file, bytes);
        try (ModelFiles.Loaded l = ModelFiles.load(file, new ModelFiles.Options("--"), FEATURES, CLASSES)) {
            assertTrue(l.describe().contains("teacher.zip"), what);
        } catch (IOException | IllegalArgumentException | Main.UsageException e) {
            assertTrue(e.getMessage() != null && e.getMessage().contains(file.toString()), what + ": the message names no file: " + e);
        } catch (RuntimeException | Error e) {
            throw new AssertionError(what + ": " + e + " escaped", e);
        }
    }

    static Map<String, byte[]> entries(byte[] zip) throws IOException {
        Map<String, byte[]> m = new LinkedHashMap<>();
        try (ZipInputStream in = new ZipInputStream(new java.io.ByteArrayInputStream(zip))) {
            for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
                m.put(e.getName(), in.readAllBytes());
            }
        }
        return m;
    }

    static byte[] zip(Map<String, byte[]> entries) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                z.putNextEntry(new ZipEntry(e.getKey()));
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return out.toByteArray();
    }

    @Test
    void truncatedAndChangedZipsLoadOrAreRefusedNamingTheFile(@TempDir Path tmp) throws IOException {
        byte[] valid = model(tmp);
        check(tmp, valid, "the valid model");
        Random rnd = new Random(SEED);
        for (int c = 0; c < CASES; c++) {
            check(tmp, Arrays.copyOf(valid, rnd.nextInt(valid.length)), "seed " + SEED + ", case " + c + ": truncated");
            byte[] b = valid.clone();
            int at = rnd.nextInt(b.length);
            b[at] ^= (byte) (1 + rnd.nextInt(255));
            check(tmp, b, "seed " + SEED + ", case " + c + ": byte " + at + " changed");
        }
    }

    @Test
    void damagedEntriesInAValidZipLoadOrAreRefusedNamingTheFile(@TempDir Path tmp) throws IOException {
        Map<String, byte[]> valid = entries(model(tmp));
        Random rnd = new Random(SEED);
        long[] extremes = {0, -1, 1, Integer.MAX_VALUE, Integer.MIN_VALUE, 1L << 31, 1L << 40, Long.MAX_VALUE, Long.MIN_VALUE};
        for (int c = 0; c < CASES; c++) {
            Map<String, byte[]> m = new LinkedHashMap<>(valid);
            // coefficients.bin's first 96 bytes hold its headers: a length set high there had ND4J (Nd4j.read) allocate it
            // natively before reading, which the OOM killer ended (the JVM, not an exception), until ModelFiles.checkArrays
            // checked the arrays against the entry's bytes first
            String name = rnd.nextBoolean() ? "configuration.json" : "coefficients.bin";
            byte[] b = m.get(name).clone();
            String what;
            if (rnd.nextBoolean()) {
                int width = rnd.nextBoolean() ? 4 : 8;
                int at = rnd.nextInt(Math.min(b.length - width, 96));
                long v = extremes[rnd.nextInt(extremes.length)];
                if (width == 4) {
                    ByteBuffer.wrap(b).putInt(at, (int) v);
                } else {
                    ByteBuffer.wrap(b).putLong(at, v);
                }
                what = name + ": " + width + " bytes at " + at + " set to " + v;
            } else {
                int at = rnd.nextInt(b.length);
                b = Arrays.copyOf(b, at);
                what = name + " cut to " + at + " bytes";
            }
            m.put(name, b);
            check(tmp, zip(m), "seed " + SEED + ", case " + c + ": " + what);
        }
    }
}
