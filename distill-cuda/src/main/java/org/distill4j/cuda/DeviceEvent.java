package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.global.cudart;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A point in its {@link DeviceContext}'s stream that the host can wait for: {@link #record()} marks
 * everything queued so far, {@link #await()} returns once it has run. Without timing (the cheap kind).
 * Closing frees it; closing twice is harmless.
 */
public final class DeviceEvent implements AutoCloseable {
    private final DeviceContext ctx;
    private final CUevent_st event;
    private final AtomicBoolean closed = new AtomicBoolean();

    DeviceEvent(DeviceContext ctx) {
        this.ctx = ctx;
        CUevent_st e = new CUevent_st();
        Cu.check(cudart.cuEventCreate(e, cudart.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        this.event = e;
    }

    /** Marks the work queued so far on the context's stream. */
    public void record() {
        check();
        ctx.record(event);
    }

    /** Waits until the work marked by the last {@link #record()} has run (at once if never recorded). */
    public void await() {
        check();
        ctx.current();
        Cu.check(cudart.cuEventSynchronize(event), "cuEventSynchronize");
    }

    private void check() {
        if (closed.get()) {
            throw new IllegalStateException("the device event is closed");
        }
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            cudart.cuEventDestroy(event);
        }
    }
}
