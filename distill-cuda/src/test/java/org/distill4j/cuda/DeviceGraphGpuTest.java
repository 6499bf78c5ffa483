package org.distill4j.cuda;

import org.junit.jupiter.api.Test;

import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.global.cudart;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DeviceGraph}: replays, a close racing a launch from another thread, and graphs and events (a
 * {@link DeviceEvent}) still open when their context closes.
 */
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

    /** The driver handle a graph or an event holds (a private field: the test frees it behind the object's back). */
    private static <T> T handle(Object owner, String field, Class<T> type) throws ReflectiveOperationException {
        Field f = owner.getClass().getDeclaredField(field);
        f.setAccessible(true);
        return type.cast(f.get(owner));
    }

    /**
     * A context that closes frees the graphs and events it made that are still open (the driver keeps them while the
     * primary context lives on, here through the class's context): they then refuse a launch, a record and a wait,
     * saying so, and closing them afterwards is harmless. One closed before the context is freed once. On the emulator,
     * whose driver refuses to destroy a graph or an event twice, the handles are checked to be gone.
     */
    @Test
    void closingAContextFreesItsOpenGraphsAndEvents() throws Exception {
        DeviceContext c = DeviceContext.open(0);
        DeviceBuffer out = c.alloc(4L * WORDS);
        DeviceGraph kept = c.capture(() -> c.fill32(out, Float.floatToIntBits(1.75f), WORDS));
        DeviceGraph closedFirst = c.capture(() -> c.fill32(out, Float.floatToIntBits(-0.5f), WORDS));
        DeviceEvent event = c.event();
        DeviceEvent eventClosedFirst = c.event();
        kept.launch();
        event.record();
        event.await();
        closedFirst.close();
        eventClosedFirst.close();
        CUgraphExec_st exec = handle(kept, "exec", CUgraphExec_st.class);
        CUevent_st ev = handle(event, "event", CUevent_st.class);
        c.close();
        if (ctx.describe().contains("emulator")) {
            assertEquals(cudart.CUDA_ERROR_INVALID_VALUE, cudart.cuGraphExecDestroy(exec), "the open graph went with its context");
            assertEquals(cudart.CUDA_ERROR_INVALID_HANDLE, cudart.cuEventDestroy(ev), "the open event went with its context");
        }

        IllegalStateException e = assertThrows(IllegalStateException.class, kept::launch);
        assertTrue(e.getMessage().contains("graph") && e.getMessage().contains("closed"), e.getMessage());
        e = assertThrows(IllegalStateException.class, event::record);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        e = assertThrows(IllegalStateException.class, event::await);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertDoesNotThrow(kept::close);
        assertDoesNotThrow(kept::close);
        assertDoesNotThrow(closedFirst::close);
        assertDoesNotThrow(event::close);
        assertDoesNotThrow(event::close);
        assertDoesNotThrow(eventClosedFirst::close);
        assertDoesNotThrow(out::close);
    }
    /**
     * An event's record and wait go through its context's lock, as every call on a context does (its documentation):
     * a wait, or a record, that waits for the context while the context closes (here this thread holds the lock and
     * closes it) then finds the event closed and says so with an IllegalStateException, instead of handing the driver
     * an event the close destroyed.
     */
    @Test
    void anEventsWaitAndRecordWaitForTheContextAndFindItClosed() throws Exception {
        for (boolean await : new boolean[] {true, false}) {
            DeviceContext c = DeviceContext.open(0);
            DeviceEvent event = c.event();
            event.record();
            AtomicReference<Throwable> failed = new AtomicReference<>();
            Thread user = new Thread(() -> {
                try {
                    if (await) {
                        event.await();
                    } else {
                        event.record();
                    }
                } catch (Throwable t) {
                    failed.set(t);
                }
            });
            user.setDaemon(true);
            String what = await ? "the wait" : "the record";
            try {
                synchronized (c) { // what a call on the context holds
                    user.start();
                    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                    while (user.getState() != Thread.State.BLOCKED && user.isAlive() && System.nanoTime() < until) {
                        Thread.sleep(1);
                    }
                    assertEquals(Thread.State.BLOCKED, user.getState(), what + " waits for the context");
                    c.close();
                }
            } finally {
                c.close();
            }
            user.join(10_000);
            Throwable t = failed.get();
            assertTrue(t instanceof IllegalStateException && t.getMessage().contains("closed") && t.getMessage().contains("DeviceContext"),
                    what + ": " + t);
            assertDoesNotThrow(event::close);
        }
    }

    /**
     * An event closed by its own close while another thread's wait for it waits for the context: the wait finds it
     * closed (an IllegalStateException), not a destroyed event in the driver.
     */
    @Test
    void aWaitForAnEventClosedMeanwhileSaysItIsClosed() throws Exception {
        DeviceEvent event = ctx.event();
        event.record();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread waiter = new Thread(() -> {
            try {
                event.await();
            } catch (Throwable t) {
                failed.set(t);
            }
        });
        waiter.setDaemon(true);
        synchronized (ctx) {
            waiter.start();
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (waiter.getState() != Thread.State.BLOCKED && waiter.isAlive() && System.nanoTime() < until) {
                Thread.sleep(1);
            }
            assertEquals(Thread.State.BLOCKED, waiter.getState(), "the wait waits for the context");
            event.close();
        }
        waiter.join(10_000);
        Throwable t = failed.get();
        assertTrue(t instanceof IllegalStateException && t.getMessage().contains("closed"), String.valueOf(t));
    }
}
