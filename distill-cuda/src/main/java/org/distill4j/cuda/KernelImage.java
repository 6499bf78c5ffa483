package org.distill4j.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

/**
 * The kernels as they ship in the jar, under {@code org/distill4j/cuda/kernels/}: the fatbin that nvcc
 * built (SASS for sm_80, sm_86, sm_89, sm_90 and compute_90 PTX), its {@code kernels.properties}, and the
 * {@code .cu}/{@code .cuh} sources for NVRTC when no fatbin fits the device. No native code here.
 */
final class KernelImage {
    static final String DIR = "/org/distill4j/cuda/kernels/";
    static final String FATBIN = "distill_losses.fatbin";
    static final String SOURCE = "distill_losses.cu";
    /** The headers the kernel source includes, by the names it includes them. */
    static final java.util.List<String> HEADERS = java.util.List.of("row_math.cuh", "store_rows.cuh", "mlp_math.cuh");

    private KernelImage() {
    }

    /** The fatbin's bytes, or null when the build had no nvcc. */
    static byte[] fatbin() {
        return resource(FATBIN);
    }

    /** The kernel source, for NVRTC. */
    static String source() {
        return text(SOURCE);
    }

    /** Each header's text by its include name, in {@link #HEADERS} order. */
    static java.util.Map<String, String> headers() {
        java.util.Map<String, String> m = new java.util.LinkedHashMap<>();
        for (String h : HEADERS) {
            m.put(h, text(h));
        }
        return m;
    }

    /** nvcc's version and the targets of the fatbin ({@code nvcc=none} when the build had no nvcc). */
    static Properties info() {
        Properties p = new Properties();
        byte[] b = resource("kernels.properties");
        if (b != null) {
            try {
                p.load(new java.io.StringReader(new String(b, StandardCharsets.UTF_8)));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return p;
    }

    private static String text(String name) {
        byte[] b = resource(name);
        if (b == null) {
            throw new IllegalStateException("distill-cuda is missing its kernel resource " + DIR + name + "; the jar is incomplete");
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    private static byte[] resource(String name) {
        try (InputStream in = KernelImage.class.getResourceAsStream(DIR + name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + DIR + name, e);
        }
    }
}
