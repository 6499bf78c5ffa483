package org.distill4j.cuda;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link DeviceContext}'s copies and fills: the ranges they are given are checked before anything is queued. */
class DeviceContextGpuTest extends GpuTest {

    private static void refused(Runnable call, String... named) {
        String msg = assertThrows(IllegalArgumentException.class, call::run).getMessage();
        for (String n : named) {
            assertTrue(msg.contains(n), "'" + msg + "' should name " + n);
        }
    }

    /**
     * A fill, a copy or a pinned copy whose size is negative, or whose end lies past its buffer only once the sum or
     * product is taken without overflow, is refused with an IllegalArgumentException naming the buffer's size, and
     * queues nothing: the context's stream still runs the calls in range, with their values.
     */
    @Test
    void sizesAndRangesAreCheckedWithoutOverflow() {
        int words = 37;
        try (DeviceBuffer a = ctx.alloc(4L * words); DeviceBuffer b = ctx.alloc(4L * words); PinnedBuffer host = ctx.pinned(4L * words)) {
            long cap = a.capacity();
            DevicePtr pa = new DevicePtr(a.address());
            refused(() -> ctx.fill32(a, 7, -1), "-1", cap + "-byte");
            refused(() -> ctx.fill32(a, 7, Long.MAX_VALUE / 4 + 1), cap + "-byte"); // 4 x count wraps to Long.MIN_VALUE
            refused(() -> ctx.fill32(a, 7, cap / 4 + 1), cap + "-byte");
            refused(() -> ctx.copy(b, a, -4), "-4", cap + "-byte");
            long pinnedBytes = host.bytes();
            refused(() -> ctx.uploadAsync(pa, host, 8, Long.MAX_VALUE), pinnedBytes + "-byte"); // 8 + MAX wraps
            refused(() -> ctx.downloadAsync(pa, host, 8, Long.MAX_VALUE), pinnedBytes + "-byte");
            refused(() -> ctx.uploadAsync(pa, host, Long.MAX_VALUE, 2), pinnedBytes + "-byte");

            // in range: a random fill, copied over, read back through the pinned buffer
            Random rng = new Random(53);
            float v = (float) (rng.nextGaussian() * 9 + 0.3);
            ctx.fill32(a, Float.floatToIntBits(v), words);
            ctx.fill32(b, 0, cap / 4); // the whole buffer, the largest count in range
            ctx.copy(b, a, 4L * (words - 2));
            ctx.downloadAsync(new DevicePtr(b.address()), host, 0, 4L * words);
            ctx.synchronize();
            ByteBuffer view = host.view().order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < words; i++) {
                assertEquals(i < words - 2 ? v : 0f, view.getFloat(4 * i), "word " + i);
            }
        }
    }

    /**
     * A context's close frees its pool's memory, the buffers still open included: they then refuse to give their
     * address (which another context on the device could otherwise be handed, and write through), saying why, and
     * closing them afterwards is harmless.
     */
    @Test
    void buffersOfAClosedContextRefuseTheirAddress() {
        DeviceContext c = DeviceContext.open(0);
        DeviceBuffer kept = c.alloc(1000);
        DeviceBuffer closedFirst = c.alloc(300);
        long at = kept.address();
        assertEquals(at + 8, kept.at(8, 16).address());
        closedFirst.close();
        c.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, kept::address);
        assertTrue(e.getMessage().contains("1024-byte") && e.getMessage().contains("context") && e.getMessage().contains("closed"),
                e.getMessage());
        assertThrows(IllegalStateException.class, () -> kept.at(0, 4));
        assertEquals(1024, kept.capacity());
        kept.close();
        kept.close();
        closedFirst.close();
        try (DeviceBuffer other = ctx.alloc(1000)) { // the class's context is not affected
            assertTrue(other.address() != 0);
        }
    }
}
