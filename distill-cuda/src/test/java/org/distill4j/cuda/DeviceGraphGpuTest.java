package org.distill4j.cuda;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link DeviceGraph}: replays, and a close racing a launch from another thread. */
class DeviceGraphGpuTest extends GpuTest {
    private static final int WORDS = 37;

    private static float[] download(DeviceBuffer b) {
        byte[] bytes = new byte[4 * WORDS];
        ctx.download(b, bytes);
        float[] out = new float[WORDS];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    private static void assertAll(float want, float[] got, String what) {
        for (int i = 0; i < got.length; i++) {
            assertEquals(want, got[i], 0f, what + ", word " + i);
        }
    }

    /**
     * A graph closed while another thread's launch of it waits for the context (here: for this thread, which holds it)
     * is not launched after it was freed: that launch finds it closed and says so, and nothing of it runs.
     */
    @Test
    void aLaunchThatWaitedForTheContextFindsItsGraphClosed() throws Exception {
        try (DeviceBuffer out = ctx.alloc(4L * WORDS)) {
            ctx.fill32(out, 0, WORDS);
            DeviceGraph g = ctx.capture(() -> ctx.fill32(out, Float.floatToIntBits(-2.5f), WORDS));
            assertAll(0f, download(out), "captured, not run");
            g.launch();
            assertAll(-2.5f, download(out), "replayed");
            ctx.fill32(out, 0, WORDS);
            AtomicReference<Throwable> failed = new AtomicReference<>();
            Thread launcher = new Thread(() -> {
                try {
                    g.launch();
                } catch (Throwable t) {
                    failed.set(t);
                }
            });
            synchronized (ctx) { // what a call on the context holds
                launcher.start();
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (launcher.getState() != Thread.State.BLOCKED && System.nanoTime() < until) {
                    Thread.sleep(1);
                }
                assertEquals(Thread.State.BLOCKED, launcher.getState(), "the launch waits for the context");
                g.close();
            }
            launcher.join(10_000);
            Throwable t = failed.get();
            assertTrue(t instanceof IllegalStateException && t.getMessage().contains("closed"), String.valueOf(t));
            assertAll(0f, download(out), "the closed graph did not run");
            assertDoesNotThrow(g::close);
        }
    }
}
