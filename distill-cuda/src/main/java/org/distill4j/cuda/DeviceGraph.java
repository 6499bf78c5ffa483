package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUgraphExec_st;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Work captured once from its {@link DeviceContext}'s stream ({@link DeviceContext#capture}) and replayed
 * with one launch: the kernels, copies and cuBLASLt calls with the arguments they had when captured.
 * Closing frees it (a replay still queued completes first); closing twice is harmless.
 */
public final class DeviceGraph implements AutoCloseable {
    /** Its context, whose lock guards {@link #exec} and {@link #closed} too. */
    private final DeviceContext ctx;
    private final CUgraphExec_st exec;
    private final AtomicBoolean closed = new AtomicBoolean();

    DeviceGraph(DeviceContext ctx, CUgraphExec_st exec) {
        this.ctx = ctx;
        this.exec = exec;
    }

    /** Queues one replay on the context's stream. */
    public void launch() {
        synchronized (ctx) { // the context's lock, which close takes too: a launch never finds the graph freed under it
            if (closed.get()) {
                throw new IllegalStateException("the device graph is closed");
            }
            ctx.launchGraph(exec);
        }
    }

    @Override
    public void close() {
        synchronized (ctx) {
            if (closed.compareAndSet(false, true)) {
                ctx.destroyGraph(exec); // a queued replay still completes
            }
        }
    }
}
