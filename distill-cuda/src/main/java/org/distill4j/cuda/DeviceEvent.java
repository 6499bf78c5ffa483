package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.global.cudart;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A point in its {@link DeviceContext}'s stream that the host can wait for: {@link #record()} marks
 * everything queued so far, {@link #await()} returns once it has run. Without timing (the cheap kind).
 * Closing frees it; closing twice is harmless. Its context's close frees it too if it is still open then; it then
 * refuses a record and a wait, and its own close does nothing. Record, wait and close take the context's lock, as
 * every call on the context does: a wait holds it until the marked work has run (see {@link DeviceContext} on why
 * that cannot deadlock), and never finds its event freed under it.
 */
public final class DeviceEvent implements AutoCloseable {
    private final DeviceContext ctx;
    private final CUevent_st event;
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Why it is closed, where not by its own {@link #close}: for the error of a later use. */
    private volatile String closedBy = "";

    DeviceEvent(DeviceContext ctx) {
        this.ctx = ctx;
        CUevent_st e = new CUevent_st();
        Cu.check(cudart.cuEventCreate(e, cudart.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        this.event = e;
    }

    /**
     * Marks the work queued so far on the context's stream.
     *
     * @throws IllegalStateException if the event, or its context, is closed
     */
    public void record() {
        synchronized (ctx) { // the context's lock, which both closes take too: the event is not freed under the record
            check();
            ctx.record(event);
        }
    }

    /**
     * Waits until the work marked by the last {@link #record()} has run (at once if never recorded), holding the
     * context's lock meanwhile, as {@link DeviceContext#synchronize} does.
     *
     * @throws IllegalStateException if the event, or its context, is closed
     */
    public void await() {
        synchronized (ctx) { // as in record: a close waits for the wait, and a wait after a close finds the event closed
            check();
            ctx.current();
            Cu.check(cudart.cuEventSynchronize(event), "cuEventSynchronize");
        }
    }

    private void check() {
        if (closed.get()) {
            throw new IllegalStateException("the device event is closed" + closedBy);
        }
    }

    /** Called by its context as it closes (its lock held, its stream idle): marks it closed and frees it, once. */
    void closeWithContext(String context) {
        if (closed.compareAndSet(false, true)) {
            closedBy = " (its DeviceContext on " + context + " closed and freed it)";
            cudart.cuEventDestroy(event);
        }
    }

    @Override
    public void close() {
        synchronized (ctx) { // the context's lock, which its close takes too: the event is freed once
            if (closed.compareAndSet(false, true)) {
                ctx.destroyEvent(this, event);
            }
        }
    }
}
