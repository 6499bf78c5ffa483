package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;

/**
 * The batching core's staging: {@code slots} pinned host buffers and as many device buffers, a copy
 * stream of its own and two events per slot, run in the order of {@link StagingRing}. A training loop
 * stages batch i+1 (the host fills pinned memory, the copy engine moves it) while the compute stream
 * still works on batch i:
 *
 * <pre>{@code
 * try (DeviceStager st = new DeviceStager(ctx, 2, maxBatchBytes)) {
 *     DeviceStager.Batch next = st.stage(buf -> fill(buf, 0));
 *     for (int i = 0; i < n; i++) {
 *         DeviceStager.Batch cur = next;
 *         if (i + 1 < n) next = st.stage(buf -> fill(buf, i + 1));   // overlaps with the kernels below
 *         DeviceBuffer in = st.acquire(cur);                           // compute waits for cur's copy only
 *         ... kernels on ctx's stream reading in ...
 *         st.release(cur);                                             // its slot may be refilled after them
 *     }
 * }
 * }</pre>
 *
 * Not thread-safe: one thread drives {@link #stage}, {@link #acquire} and {@link #release}. Across threads exactly this
 * is guaranteed:
 * <ul>
 * <li>Its calls on the device take its context's lock, as every call on the context does (see {@link DeviceContext}),
 * and never hold it while a filler runs.</li>
 * <li>One stage at a time: a {@code stage} while another is in progress, on another thread or from inside its own
 * filler, is refused with an IllegalStateException, from the moment the first one begins until it returns (its copy
 * queued and its batch counted); the stage in progress goes on unharmed. An {@code acquire} or {@code release} on another
 * thread during a stage is not checked: do not make one.</li>
 * <li>Either close, of the stager or of its context, may come from any thread. It waits for a fill in progress on
 * another thread (which would otherwise write pinned memory freed under it) and for the copies in flight, then frees the
 * copy stream, events and buffers. The context's close closes the stager if it is still open; the stager then refuses
 * every call with an IllegalStateException saying its context closed it. Where the stager's own close runs on another
 * thread and waits for a fill, the context's close waits for that close to free the stager. A close of something whose
 * close has already begun returns at once, on any thread, a filler's included (the first close frees nothing under that
 * fill). A thread interrupted in one of these waits goes on waiting, and its close returns with its interrupt flag set.</li>
 * <li>A filler must not close its stager or its context: neither close can wait for a fill on its own thread, and both
 * would free the pinned buffer the filler is writing. Nor may a close from inside any stager's filler wait for a fill on
 * another thread: that filler could be closing this one's stager, and each would wait for the other forever. Such a
 * close is refused on the filling thread with an IllegalStateException before it changes anything (unless the close had
 * already begun, above): the filler's error then leaves {@link #stage} as any filler's does, that batch is not staged,
 * and the stager and its context stay open and usable. Close them after {@code stage} returns.</li>
 * </ul>
 */
public final class DeviceStager implements AutoCloseable {
    /** Writes one batch into a pinned buffer (little-endian, from position 0); returns the bytes written. */
    @FunctionalInterface
    public interface Filler {
        /**
         * Writes the batch into {@code pinned}, a little-endian view of the slot's pinned memory at position 0 with
         * {@link #slotBytes()} bytes of room, and returns how many bytes from 0 on it wrote (those are copied to the
         * device). The view is valid only during the call: do not keep it. A count below 0 or above the room fails the
         * stage with an {@link IllegalArgumentException}; an exception the filler throws leaves {@link #stage} as it is, and
         * nothing is staged. It runs on the thread that called {@code stage}, and must not close its stager or context
         * (see the class comment).
         */
        long fill(ByteBuffer pinned);
    }

    /** A staged batch. */
    public static final class Batch {
        private final DeviceStager owner;
        private final StagingRing.Staged staged;

        private Batch(DeviceStager owner, StagingRing.Staged staged) {
            this.owner = owner;
            this.staged = staged;
        }

        /** Bytes it holds. */
        public long bytes() {
            return staged.bytes();
        }

        /** Its number, counting from 0 in staging order. */
        public long sequence() {
            return staged.sequence();
        }
    }

    private final DeviceContext ctx;
    private final long slotBytes;
    private final PinnedBuffer[] host;
    private final DeviceBuffer[] device;
    private final CUevent_st[] copied;
    private final CUevent_st[] released;
    private final CUstream_st copyStream;
    private final StagingRing ring;
    /** Whether it is closed; set and read under the context's lock where it guards the native objects. */
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Why it is closed, where its context closed it: for the error of a later call. */
    private volatile String closedBy = "";
    /**
     * The thread in {@link #stage}, from before it takes a slot until after the ring has queued that slot's copy and
     * counted the batch, or null (guarded by the context's lock). A second stage while it is set is refused: it would take
     * the same slot (the first batch is not counted yet) and overwrite the pinned buffer under that batch's filler or
     * under its copy, which reads the buffer until it has run on the copy stream.
     */
    private Thread staging;
    /**
     * The thread running a filler into a slot's pinned buffer, or null (guarded by the context's lock): both closes wait
     * for it to end (on another thread) or refuse (on this one). Set only while {@link #staging} is, so one at a time.
     */
    private Thread filling;
    /**
     * How many fillers of any stager this thread is running (nested where one filler stages on another stager): a close
     * called there that would wait for a fill on another thread is refused, as two such waits could wait for each other.
     */
    private static final ThreadLocal<int[]> FILLS_ON_THIS_THREAD = ThreadLocal.withInitial(() -> new int[1]);
    /** Whether {@link #free} ran (guarded by the context's lock): a context's close waits for it while this close runs. */
    private boolean freed;

    /**
     * @param slots     batches in flight (2: double buffering)
     * @param slotBytes the largest batch, in bytes
     */
    public DeviceStager(DeviceContext ctx, int slots, long slotBytes) {
        this(ctx, slots, slotBytes, UnaryOperator.identity());
    }

    /**
     * For tests: {@code opsAround} wraps the ring's calls on the device (to hold one, say, where a test needs another
     * thread to act at that point of a stage).
     */
    DeviceStager(DeviceContext ctx, int slots, long slotBytes, UnaryOperator<StagingRing.Ops> opsAround) {
        if (slots < 1) {
            throw new IllegalArgumentException("a stager needs at least one slot, got " + slots);
        }
        if (ctx == null) {
            throw new IllegalArgumentException("a stager needs a DeviceContext, got none");
        }
        this.ctx = ctx;
        this.slotBytes = slotBytes;
        this.host = new PinnedBuffer[slots];
        this.device = new DeviceBuffer[slots];
        this.copied = new CUevent_st[slots];
        this.released = new CUevent_st[slots];
        CUstream_st cs = null;
        synchronized (ctx) { // the context's lock: it does not close while its objects are made, and then knows this stager
            try {
                ctx.current();
                cs = new CUstream_st();
                Cu.check(cudart.cuStreamCreate(cs, cudart.CU_STREAM_NON_BLOCKING), "cuStreamCreate(copy stream)");
                for (int i = 0; i < slots; i++) {
                    host[i] = ctx.pinned(slotBytes); // the context frees what it made when it closes first
                    device[i] = ctx.alloc(slotBytes);
                    copied[i] = new CUevent_st();
                    Cu.check(cudart.cuEventCreate(copied[i], cudart.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
                    released[i] = new CUevent_st();
                    Cu.check(cudart.cuEventCreate(released[i], cudart.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
                    // the slot's device buffer may come from the pool, freed by work still queued on the compute stream:
                    // the first copy into it waits for that work as later copies wait for the slot's release
                    Cu.check(cudart.cuEventRecord(released[i], ctx.stream()), "cuEventRecord(released, slot " + i + ")");
                }
            } catch (RuntimeException e) {
                this.copyStream = cs;
                this.ring = null;
                close();
                throw e;
            }
            this.copyStream = cs;
            this.ring = new StagingRing(opsAround.apply(new Ops()), slots);
            ctx.adopt(this);
        }
    }

    /** The largest batch a slot holds, in bytes. */
    public long slotBytes() {
        return slotBytes;
    }

    /**
     * Fills the next slot's pinned buffer on this thread and queues its copy on the copy stream. The filler runs without
     * the context's lock; a close of the context or of this stager on another thread meanwhile waits for it to return,
     * and one from inside the filler is refused (see the class comment). Where the filler throws, nothing is staged: its
     * error leaves this call, and the next stage fills the same slot.
     *
     * @throws IllegalStateException the stager is closed, or another stage is in progress (on another thread, or this
     *                               call comes from inside its filler), which this call leaves alone
     */
    public Batch stage(Filler filler) {
        if (filler == null) {
            throw new IllegalArgumentException("stage needs a filler that writes the batch, got none");
        }
        beginStage();
        try {
            return new Batch(this, ring.stage(buf -> {
                try {
                    return filler.fill(buf);
                } finally {
                    endFill();
                }
            }));
        } finally {
            endStage();
        }
    }

    /** Marks this thread as the one in {@link #stage}, or refuses a second stage while another runs (see {@link #staging}). */
    private void beginStage() {
        synchronized (ctx) {
            check();
            if (staging != null) {
                throw new IllegalStateException(staging == Thread.currentThread()
                        ? "DeviceStager.stage called from inside its own filler: a stager fills one batch at a time; stage the "
                        + "next batch after stage returns"
                        : "DeviceStager.stage called on thread " + Thread.currentThread().getName() + " while another stage is in "
                        + "progress on thread " + staging.getName() + " (filling its batch or queuing its copy, into the slot "
                        + "this stage would take): a DeviceStager is not thread-safe; stage from one thread, or after that stage returns");
            }
            staging = Thread.currentThread();
        }
    }

    /** This thread's stage is over, its batch staged or not: the next stage may take the next slot. */
    private void endStage() {
        synchronized (ctx) {
            staging = null;
        }
    }

    /** The fill of this thread is over: a close waiting for it may go on. */
    private void endFill() {
        synchronized (ctx) {
            filling = null;
            if (--FILLS_ON_THIS_THREAD.get()[0] == 0) {
                FILLS_ON_THIS_THREAD.remove(); // nothing left behind on a pool's thread
            }
            ctx.notifyAll();
        }
    }

    /**
     * Makes the context's stream wait for {@code b}'s copy; returns the device buffer that holds it. The buffer is the
     * slot's, owned by this stager until it closes: never close it (nor use it in try-with-resources), or the pool would
     * hand its memory to another buffer while this stager still copies batches into it.
     */
    public DeviceBuffer acquire(Batch b) {
        check();
        mine(b);
        ring.acquire(b.staged);
        return device[b.staged.slot()];
    }

    /** {@code b}'s slot may be refilled once the kernels queued so far on the context's stream have run. */
    public void release(Batch b) {
        check();
        mine(b);
        ring.release(b.staged);
    }

    /**
     * Refuses a batch another stager staged: its slot and sequence number may well be this stager's too, and it would be
     * read from (or free) this stager's slot, which holds other data.
     */
    private void mine(Batch b) {
        if (b == null) {
            throw new IllegalArgumentException("no batch given; pass one that stage returned");
        }
        if (b.owner != this) {
            throw new IllegalArgumentException("batch " + b.sequence() + " was staged by another stager; acquire and release it there");
        }
    }

    private void check() {
        if (closed.get()) {
            throw new IllegalStateException("the device stager is closed" + closedBy);
        }
    }

    /**
     * Whether this thread is running one of this stager's fillers (the context's lock held): a close there is refused, as
     * it cannot wait for the fill and would free the pinned buffer being written.
     */
    boolean fillingOnThisThread() {
        return filling == Thread.currentThread();
    }

    /**
     * Refuses, where this thread runs a filler of any stager, a close that would wait for a fill of this stager on another
     * thread (the context's lock held): that filler could in turn be closing what this thread fills, and each would wait
     * for the other forever. {@code what} names the close.
     */
    void refuseWaitFromInsideAFiller(String what) {
        if (filling != null && filling != Thread.currentThread() && FILLS_ON_THIS_THREAD.get()[0] > 0) {
            throw new IllegalStateException(what + " called from inside a DeviceStager's filler while thread " + filling.getName()
                    + " fills a batch of " + (what.startsWith("DeviceStager") ? "that stager" : "one of its DeviceStagers")
                    + ": a close from inside a filler cannot wait for another stager's fill (that filler may be waiting for this "
                    + "one), so nothing was closed; close it after stage returns");
        }
    }

    /**
     * Each call holds the context's lock, which the context's close and this stager's take too: none finds the context's
     * stream, the copy stream or an event destroyed under it, and one that waited for a close finds the stager closed.
     */
    private final class Ops implements StagingRing.Ops {
        @Override
        public void waitCopied(int slot) {
            synchronized (ctx) { // holds the lock while the copy runs, as DeviceEvent.await does: no queued work needs the host
                check();
                ctx.current();
                Cu.check(cudart.cuEventSynchronize(copied[slot]), "cuEventSynchronize(copied, slot " + slot + ")");
            }
        }

        @Override
        public ByteBuffer host(int slot) {
            synchronized (ctx) {
                check();
                ByteBuffer view = host[slot].view();
                filling = Thread.currentThread(); // stage's endFill clears both, however the filler ends
                FILLS_ON_THIS_THREAD.get()[0]++;
                return view;
            }
        }

        @Override
        public void copy(int slot, long bytes) {
            synchronized (ctx) {
                check(); // a close that waited for the fill has freed the slot
                ctx.current();
                Cu.check(cudart.cuStreamWaitEvent(copyStream, released[slot], 0), "cuStreamWaitEvent(copy stream, released " + slot + ")");
                if (bytes > 0) {
                    Cu.check(cudart.cuMemcpyHtoDAsync(device[slot].address(), host[slot].pointer(), bytes, copyStream),
                            "cuMemcpyHtoDAsync(" + bytes + " bytes, slot " + slot + ")");
                }
                Cu.check(cudart.cuEventRecord(copied[slot], copyStream), "cuEventRecord(copied, slot " + slot + ")");
            }
        }

        @Override
        public void acquire(int slot) {
            synchronized (ctx) {
                check();
                ctx.current();
                Cu.check(cudart.cuStreamWaitEvent(ctx.stream(), copied[slot], 0), "cuStreamWaitEvent(compute stream, copied " + slot + ")");
            }
        }

        @Override
        public void release(int slot) {
            synchronized (ctx) {
                check();
                ctx.current();
                Cu.check(cudart.cuEventRecord(released[slot], ctx.stream()), "cuEventRecord(released, slot " + slot + ")");
            }
        }
    }

    /**
     * Waits for a fill in progress on another thread, the copies in flight and the context's stream (whose kernels may
     * read the slots), then frees the buffers, events and the copy stream, under the context's lock. Twice is harmless,
     * on any thread, a filler's included: once a close (its own or its context's) has begun, a later one returns at once,
     * the first still waiting for a fill in progress if there is one. So is closing it after its context (which closed it).
     *
     * @throws IllegalStateException called on an open stager from inside one of its fillers (it would free the pinned
     *                               buffer the filler writes), or from inside any stager's filler while this one fills on
     *                               another thread (that filler could be closing the caller's stager: each would wait for
     *                               the other); nothing changed, and the stager stays open: close it after {@link #stage}
     *                               returns
     */
    @Override
    public void close() {
        synchronized (ctx) {
            if (closed.get()) { // also from inside a filler: a close on another thread waits for that fill, so nothing is freed
                return;
            }
            if (fillingOnThisThread()) { // before anything changes: the caller's stage goes on to fail with this error
                throw new IllegalStateException("DeviceStager.close called from inside its own filler: it would free the pinned buffer "
                        + "the filler is writing, so the stager stays open; close it after stage returns");
            }
            refuseWaitFromInsideAFiller("DeviceStager.close");
            closed.set(true); // before the wait: a call meanwhile is refused
            awaitFill();
            // false where the constructor failed on a closed context, or the context's close began during the wait (it
            // synchronized its stream, and waits for this free before it frees the pinned buffers)
            boolean open = ctx.currentForFreeing();
            free(open);
            ctx.forget(this); // only now: until then a context's close waits for this one
        }
    }

    /**
     * Called by its context as it closes (its lock held, its stream idle, before its memory and pinned buffers are freed;
     * never on a thread that fills this stager, which the context's close refuses first): marks the stager closed, saying
     * why in a later call's error, waits for a fill in progress and the copies in flight, and frees the copy stream and
     * events, once.
     */
    void closeWithContext(String context) {
        if (closed.get()) { // its own close ran, or runs on another thread and waits for a fill
            awaitFreed(); // before the context frees its pinned buffers under that fill
            return;
        }
        closedBy = " (its DeviceContext on " + context + " closed and freed it)"; // before a call can see it closed
        closed.set(true);
        awaitFill();
        free(false);
    }

    /**
     * Waits, with the context's lock given up meanwhile, until no thread runs a filler into a pinned buffer of this
     * stager. Never called on the filling thread, which would wait for itself: both closes refuse a call from inside a
     * filler before they get here.
     */
    private void awaitFill() {
        boolean interrupted = false;
        while (filling != null) {
            try {
                ctx.wait();
            } catch (InterruptedException e) {
                interrupted = true; // the pinned memory cannot be freed under the filler: wait on, and say so after
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Waits, with the context's lock given up meanwhile, until {@link #free} ran (its own close's, on another thread). */
    private void awaitFreed() {
        boolean interrupted = false;
        while (!freed) {
            try {
                ctx.wait();
            } catch (InterruptedException e) {
                interrupted = true; // the context must not free the pinned memory under the fill: wait on, and say so after
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Frees what it made (the context's lock held); {@code syncCompute}: wait for the context's stream first. */
    private void free(boolean syncCompute) {
        try {
            freeNow(syncCompute);
        } finally {
            freed = true;
            ctx.notifyAll(); // a context's close waiting in closeWithContext goes on
        }
    }

    private void freeNow(boolean syncCompute) {
        if (copyStream != null && !copyStream.isNull()) {
            cudart.cuStreamSynchronize(copyStream);
        }
        if (syncCompute) {
            cudart.cuStreamSynchronize(ctx.stream());
        }
        for (int i = 0; i < host.length; i++) {
            if (copied[i] != null && !copied[i].isNull()) {
                cudart.cuEventDestroy(copied[i]);
            }
            if (released[i] != null && !released[i].isNull()) {
                cudart.cuEventDestroy(released[i]);
            }
            if (host[i] != null) {
                host[i].close();
            }
            if (device[i] != null) {
                device[i].close();
            }
        }
        if (copyStream != null && !copyStream.isNull()) {
            cudart.cuStreamDestroy(copyStream);
        }
    }
}
