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
 * context (made by its {@link DeviceContext}).
 */
public final class PinnedBuffer implements AutoCloseable {
    private final BytePointer memory;
    private final long bytes;
    private final AtomicBoolean closed = new AtomicBoolean();

    private PinnedBuffer(BytePointer memory, long bytes) {
        this.memory = memory;
        this.bytes = bytes;
    }

    /** Allocates {@code bytes} of pinned memory in the context that is current on this thread. */
    static PinnedBuffer allocate(long bytes) {
        if (bytes <= 0 || bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a pinned staging buffer takes 1 byte to 2 GiB, got " + bytes);
        }
        try (PointerPointer<BytePointer> p = new PointerPointer<>(1)) {
            Cu.check(cudart.cuMemHostAlloc(p, bytes, cudart.CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc(" + bytes + " bytes)");
            BytePointer m = p.get(BytePointer.class, 0);
            m.capacity(bytes).limit(bytes).position(0);
            return new PinnedBuffer(m, bytes);
        }
    }

    /** Its size in bytes. */
    public long bytes() {
        return bytes;
    }

    /** A little-endian view of the whole buffer, position 0 (only valid while the buffer is open). */
    public ByteBuffer view() {
        if (closed.get()) {
            throw new IllegalStateException("pinned buffer of " + bytes + " bytes is closed");
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
            throw new IllegalStateException("pinned buffer of " + bytes + " bytes is closed");
        }
        return memory.position(0);
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            cudart.cuMemFreeHost(memory);
        }
    }
}
