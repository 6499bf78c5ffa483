package org.distill4j.cuda;

import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;
import org.distill4j.backend.Availability;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pinned host memory and the context it was made in. The driver frees a context's pinned memory when the context
 * goes (its last release), so a view of such memory afterwards reads freed pages (a JVM crash on a GPU). Unlike the
 * other GPU tests this class holds no context of its own between tests, so that a context a test closes can be the
 * last one, as in an application.
 */
class PinnedBufferGpuTest {
    private static final Availability DEVICE = CudaProbe.probeDevice();

    @BeforeEach
    void needsADevice() {
        Assumptions.assumeTrue(DEVICE.available(), () -> "no usable CUDA device: " + DEVICE.reasonText());
    }

    /**
     * Closing a context frees the pinned buffers made in it ({@link DeviceContext#pinned}); they then refuse a view,
     * saying why, instead of handing out memory the driver freed, and closing them afterwards is harmless. A buffer
     * closed before its context is freed once.
     */
    @Test
    void closingAContextClosesItsPinnedBuffers() {
        DeviceContext c = DeviceContext.open(0);
        PinnedBuffer kept = c.pinned(4096);
        PinnedBuffer closedFirst = c.pinned(8192);
        kept.view().putInt(4092, 42);
        assertEquals(42, kept.view().getInt(4092));
        closedFirst.close();
        c.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, kept::view);
        assertTrue(e.getMessage().contains("4096 bytes") && e.getMessage().contains("context") && e.getMessage().contains("closed"),
                e.getMessage());
        assertThrows(IllegalStateException.class, () -> kept.at(0));
        assertDoesNotThrow(kept::close);
        assertDoesNotThrow(kept::close);
        assertDoesNotThrow(closedFirst::close);
        IllegalStateException after = assertThrows(IllegalStateException.class, () -> c.pinned(16));
        assertTrue(after.getMessage().contains("closed"), after.getMessage());
    }

    /**
     * The emulator frees pinned memory with the last release of its primary context, as the driver does: the test
     * above fails on it where a context forgets its pinned buffers. (Skipped where another context of this JVM still
     * holds the primary context, and on a GPU.)
     */
    @Test
    void theEmulatorFreesPinnedMemoryWithTheContextsLastRelease() {
        int[] flags = new int[1];
        int[] active = new int[1];
        DeviceContext c = DeviceContext.open(0);
        BytePointer m;
        try {
            Assumptions.assumeTrue(c.describe().contains("emulator"), "checks the emulator");
            try (PointerPointer<BytePointer> p = new PointerPointer<>(1)) {
                Cu.check(cudart.cuMemHostAlloc(p, 4096, cudart.CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc");
                m = p.get(BytePointer.class, 0);
            }
        } finally {
            c.close();
        }
        Cu.check(cudart.cuDevicePrimaryCtxGetState(0, flags, active), "cuDevicePrimaryCtxGetState");
        Assumptions.assumeTrue(active[0] == 0, "another context of this JVM holds the primary context");
        assertEquals(cudart.CUDA_ERROR_INVALID_VALUE, cudart.cuMemFreeHost(m), "the pinned memory went with the context");
    }
}
