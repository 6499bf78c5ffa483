package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.global.cudart;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Work captured once from its {@link DeviceContext}'s stream ({@link DeviceContext#capture}) and replayed
 * with one launch: the kernels, copies and cuBLASLt calls with the arguments they had when captured, the buffers and
 * a cuBLASLt handle's workspace among them. A graph holding GEMMs of a {@link CublasLt} handle refuses to launch once
 * that handle is closed (its workspace went back to the pool): an IllegalStateException saying so. Closing frees it (a replay still queued completes first); closing twice is harmless. Its context's close frees it
 * too if it is still open then; it then refuses a launch and its own close does nothing.
 */
public final class DeviceGraph implements AutoCloseable {
    /** Its context, whose lock guards {@link #exec} and {@link #closed} too. */
    private final DeviceContext ctx;
    private final CUgraphExec_st exec;
    /** The cuBLASLt handles whose GEMMs it replays, with their workspaces. */
    private final java.util.List<CublasLt> gemmHandles;
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Why it is closed, where not by its own {@link #close}: for the error of a later launch. */
    private String closedBy = "";

    DeviceGraph(DeviceContext ctx, CUgraphExec_st exec, java.util.List<CublasLt> gemmHandles) {
        this.ctx = ctx;
        this.exec = exec;
        this.gemmHandles = java.util.List.copyOf(gemmHandles);
    }

    /**
     * Queues one replay on the context's stream.
     *
     * @throws IllegalStateException if the graph or its context is closed, or a cuBLASLt handle whose GEMMs it holds
     */
    public void launch() {
        synchronized (ctx) { // the context's lock, which close takes too: a launch never finds the graph freed under it
            if (closed.get()) {
                throw new IllegalStateException("the device graph is closed" + closedBy);
            }
            for (CublasLt lt : gemmHandles) { // every handle's close holds this lock too
                if (lt.isClosed()) {
                    throw new IllegalStateException("the device graph holds cuBLASLt GEMMs of a handle on " + ctx.describe() + " that is "
                            + "closed: their workspace went back to the pool, where other buffers may use it; capture the graph again "
                            + "with an open handle");
                }
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
