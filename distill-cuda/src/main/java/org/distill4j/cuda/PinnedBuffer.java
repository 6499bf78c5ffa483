package org.distill4j.cuda;

import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Page-locked host memory ({@code cuMemHostAlloc}): what the GPU's copy engines read without a bounce
 * buffer, so host-to-device copies run at full PCIe / NVLink speed and asynchronously. Seen from Java as a
 * little-endian direct {@link ByteBuffer}. Closing frees it; closing twice is harmless. Needs a current
 * context (made by its {@link DeviceContext}). The driver frees pinned memory with the context it was made in, so one
 * from {@link DeviceContext#pinned} is closed by its context's {@link DeviceContext#close} too, and refuses a view
 * from then on.
 */
public final class PinnedBuffer implements AutoCloseable {
    private final BytePointer memory;
    private final long bytes;
    /** The context that frees it when it closes ({@link DeviceContext#pinned}), or null: its maker frees it. */
    private final DeviceContext owner;
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Why it is closed, where not by its own {@link #close}: for the error of a later use. */
    private volatile String closedBy = "";

    private PinnedBuffer(BytePointer memory, long bytes, DeviceContext owner) {
        this.memory = memory;
        this.bytes = bytes;
        this.owner = owner;
    }

    /** Allocates {@code bytes} of pinned memory in the context that is current on this thread. */
    static PinnedBuffer allocate(long bytes) {
        return allocate(bytes, null);
    }

    /**
     * As {@link #allocate(long)}, for {@code owner} (current on this thread), which then frees it: at {@link #close}, or
     * when it closes itself.
     */
    static PinnedBuffer allocate(long bytes, DeviceContext owner) {
        if (bytes <= 0 || bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a pinned staging buffer takes 1 to " + Integer.MAX_VALUE + " bytes (2 GiB less one: its view "
                    + "is a ByteBuffer), got " + bytes);
        }
        try (PointerPointer<BytePointer> p = new PointerPointer<>(1)) {
            Cu.check(cudart.cuMemHostAlloc(p, bytes, cudart.CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc(" + bytes + " bytes)");
            BytePointer m = p.get(BytePointer.class, 0);
            m.capacity(bytes).limit(bytes).position(0);
            return new PinnedBuffer(m, bytes, owner);
        }
    }

    /** Its size in bytes. */
    public long bytes() {
        return bytes;
    }

    /** A little-endian view of the whole buffer, position 0 (only valid while the buffer is open). */
    public ByteBuffer view() {
        if (closed.get()) {
            throw closedError();
        }
        return memory.position(0).limit(bytes).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The address {@code offset} bytes in, as a pointer of its own (the buffer's own pointer is left alone). */
    BytePointer at(long offset) {
        if (offset < 0 || offset > bytes) {
            throw new IllegalArgumentException("offset " + offset + " is outside a pinned buffer of " + bytes + " bytes");
        }
        return new BytePointer(pointer()).position(offset);
    }

    BytePointer pointer() {
        if (closed.get()) {
            throw closedError();
        }
        return memory.position(0);
    }

    private IllegalStateException closedError() {
        return new IllegalStateException("pinned buffer of " + bytes + " bytes is closed" + closedBy);
    }

    /**
     * Called by its owner as it closes, with its context current and its stream idle: marks it closed (saying so in a
     * later use's error) and frees it. The owner calls it at most once, and never after {@link #close} had it freed.
     */
    void closeWithContext(String context) {
        closedBy = " (its DeviceContext on " + context + " closed, and the driver frees a context's pinned memory with it)";
        closed.set(true);
        free();
    }

    /** Frees the memory; the caller makes sure it is freed once, in its context. */
    void free() {
        cudart.cuMemFreeHost(memory);
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            if (owner != null) {
                owner.freePinned(this); // in its context, unless the context freed it already
            } else {
                free();
            }
        }
    }
}
