package org.distill4j.cuda;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Device memory from a {@link DeviceContext}'s pool. Closing returns it to the pool; closing twice is
 * harmless. The address is only valid while the buffer and its context are open: the context's close frees the
 * memory, and the buffer then refuses its address.
 */
public final class DeviceBuffer implements AutoCloseable {
    private final DeviceContext owner;
    private final long address;
    private final long capacity;
    private final AtomicBoolean closed = new AtomicBoolean();

    DeviceBuffer(DeviceContext owner, long address, long capacity) {
        this.owner = owner;
        this.address = address;
        this.capacity = capacity;
    }

    /** The device address (CUdeviceptr). */
    public long address() {
        if (closed.get()) {
            throw new IllegalStateException("device buffer of " + capacity + " bytes is closed");
        }
        if (owner != null && owner.isClosed()) {
            throw new IllegalStateException("the " + capacity + "-byte device buffer is closed: its DeviceContext closed, and the context "
                    + "freed its memory");
        }
        return address;
    }

    /** Bytes this buffer can hold (its pool bucket: at least what was asked). */
    public long capacity() {
        return capacity;
    }

    /**
     * The address {@code byteOffset} bytes into this buffer, where {@code bytes} more must fit.
     *
     * @throws IllegalArgumentException when the range is outside the buffer
     */
    public DevicePtr at(long byteOffset, long bytes) {
        if (byteOffset < 0 || bytes < 0 || byteOffset > capacity || bytes > capacity - byteOffset) { // no overflow of the sum
            throw new IllegalArgumentException(bytes + " bytes from byte " + byteOffset + " are outside a " + capacity
                    + "-byte device buffer");
        }
        return new DevicePtr(address() + byteOffset);
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            owner.release(address, capacity);
        }
    }
}
