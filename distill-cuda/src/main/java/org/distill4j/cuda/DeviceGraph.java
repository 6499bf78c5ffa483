package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.global.cudart;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Work captured once from its {@link DeviceContext}'s stream ({@link DeviceContext#capture}) and replayed
 * with one launch: the kernels, copies and cuBLASLt calls with the arguments they had when captured.
 * Closing frees it (a replay still queued completes first); closing twice is harmless. Its context's close frees it
 * too if it is still open then; it then refuses a launch and its own close does nothing.
 */
public final class DeviceGraph implements AutoCloseable {
    /** Its context, whose lock guards {@link #exec} and {@link #closed} too. */
    private final DeviceContext ctx;
    private final CUgraphExec_st exec;
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Why it is closed, where not by its own {@link #close}: for the error of a later launch. */
    private String closedBy = "";

    DeviceGraph(DeviceContext ctx, CUgraphExec_st exec) {
        this.ctx = ctx;
        this.exec = exec;
    }

    /** Queues one replay on the context's stream. */
    public void launch() {
        synchronized (ctx) { // the context's lock, which close takes too: a launch never finds the graph freed under it
            if (closed.get()) {
                throw new IllegalStateException("the device graph is closed" + closedBy);
            }
            ctx.launchGraph(exec);
        }
    }

    @Override
    public void close() {
        synchronized (ctx) {
            if (closed.compareAndSet(false, true)) {
                ctx.destroyGraph(this, exec); // a queued replay still completes
            }
        }
    }

    /** Called by its context as it closes (its lock held, its stream idle): marks it closed and frees it, once. */
    void closeWithContext(String context) {
        if (closed.compareAndSet(false, true)) {
            closedBy = " (its DeviceContext on " + context + " closed and freed it)";
            cudart.cuGraphExecDestroy(exec);
        }
    }
}
