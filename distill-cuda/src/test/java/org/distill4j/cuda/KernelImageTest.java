package org.distill4j.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which kernel image and sources {@link KernelImage} hands out, and what it says when the jar lacks them. */
class KernelImageTest {

    /**
     * The headers come by their include names in {@link KernelImage#HEADERS} order, each the text NVRTC needs; the
     * fatbin is there exactly when the build's {@code kernels.properties} names the nvcc that made it.
     */
    @Test
    void theHeadersAndTheFatbinMatchWhatTheBuildRecorded() throws Exception {
        assertEquals(KernelImage.HEADERS, List.copyOf(KernelImage.headers().keySet()));
        for (String h : KernelImage.HEADERS) {
            assertEquals(Files.readString(Path.of("src/main/cuda", h)), KernelImage.headers().get(h), h);
        }
        Properties info = KernelImage.info();
        String nvcc = info.getProperty("nvcc");
        assertNotNull(nvcc, "kernels.properties names nvcc (or 'none'): " + info);
        byte[] fatbin = KernelImage.fatbin();
        if (nvcc.equals("none")) {
            assertNull(fatbin, "no nvcc, no fatbin");
        } else {
            assertNotNull(fatbin, "nvcc " + nvcc + " built the kernels: the fatbin ships");
            assertTrue(fatbin.length > 1024, fatbin.length + " bytes");
        }
    }

    /**
     * A jar without the kernel resources (a build that lost them): the source is refused naming the resource that is
     * missing and saying the jar is incomplete, while the fatbin is absent and the build info empty (the NVRTC path is then
     * the only one, and it says why it cannot run). Checked on {@link KernelImage} loaded alone, from a folder that holds
     * only its class.
     */
    @Test
    void aJarWithoutTheKernelResourcesSaysWhichIsMissing(@TempDir Path tmp) throws Exception {
        String classFile = "org/distill4j/cuda/KernelImage.class";
        Path copy = tmp.resolve(classFile);
        Files.createDirectories(copy.getParent());
        try (var in = KernelImage.class.getResourceAsStream("/" + classFile)) {
            assertNotNull(in, classFile);
            Files.write(copy, in.readAllBytes());
        }
        try (URLClassLoader alone = new URLClassLoader(new URL[] {tmp.toUri().toURL()}, ClassLoader.getPlatformClassLoader())) {
            Class<?> image = alone.loadClass(KernelImage.class.getName());
            assertFalse(image == KernelImage.class, "loaded apart from the jar's resources");
            assertNull(call(image, "fatbin"));
            assertTrue(((Properties) call(image, "info")).isEmpty());
            InvocationTargetException e = assertThrows(InvocationTargetException.class, () -> call(image, "source"));
            IllegalStateException missing = assertInstanceOf(IllegalStateException.class, e.getCause());
            assertEquals("distill-cuda is missing its kernel resource /org/distill4j/cuda/kernels/distill_losses.cu; the jar is incomplete",
                    missing.getMessage());
            e = assertThrows(InvocationTargetException.class, () -> call(image, "headers"));
            assertTrue(e.getCause().getMessage().contains("/org/distill4j/cuda/kernels/row_math.cuh"), e.getCause().getMessage());
        }
    }

    private static Object call(Class<?> c, String method) throws Exception {
        Method m = c.getDeclaredMethod(method);
        m.setAccessible(true);
        return m.invoke(null);
    }
}
