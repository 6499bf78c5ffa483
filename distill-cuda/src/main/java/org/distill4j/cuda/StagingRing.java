package org.distill4j.cuda;

import java.nio.ByteBuffer;

/**
 * The order of events that lets host-to-device copies of the next batches run while the current one is
 * computed: {@code n} slots, each a pinned host buffer and a device buffer, used round-robin.
 *
 * <pre>
 *   stage(b)    host:         wait until the slot's last copy has read its host buffer, fill it with b
 *               copy stream:  wait until compute has released the slot's device buffer; copy; record "copied"
 *   acquire(b)  compute:      wait for "copied" (later kernels on the compute stream then see b)
 *   release(b)  compute:      record "released" (after the kernels that read b)
 * </pre>
 *
 * The host never waits for compute, only for a copy that is {@code n} batches old; compute waits only for
 * its own batch's copy. A slot must be released before it is staged again; staging more than {@code n}
 * batches ahead, acquiring out of order or releasing twice is refused (an {@link IllegalStateException}
 * saying which), because any of them would let a copy overwrite a batch still in use.
 *
 * <p>The CUDA calls are behind {@link Ops} ({@link DeviceStager} on a device); a simulated device checks
 * this order in the tests without one.
 */
final class StagingRing {
    /** What a slot's buffers and events do. */
    interface Ops {
        /** The host blocks until the slot's last host-to-device copy has finished (its host buffer is free). */
        void waitCopied(int slot);

        /** The slot's host buffer, cleared, for the next batch. */
        ByteBuffer host(int slot);

        /** Copy stream: wait for the slot's last release, copy {@code bytes} host to device, record "copied". */
        void copy(int slot, long bytes);

        /** Compute stream: wait for the slot's "copied". */
        void acquire(int slot);

        /** Compute stream: record the slot's "released". */
        void release(int slot);
    }

    /** Writes one batch into a host buffer (from position 0) and returns the bytes written. */
    @FunctionalInterface
    interface Filler {
        long fill(ByteBuffer host);
    }

    /** A staged batch: its slot and how many bytes it holds. */
    record Staged(int slot, long sequence, long bytes) {
    }

    private enum State { FREE, STAGED, IN_USE }

    private final Ops ops;
    private final State[] state;
    private final long[] sequenceOf;
    private long staged;
    private long acquired;

    StagingRing(Ops ops, int slots) {
        if (slots < 1) {
            throw new IllegalArgumentException("a staging ring needs at least one slot, got " + slots);
        }
        this.ops = ops;
        this.state = new State[slots];
        this.sequenceOf = new long[slots];
        java.util.Arrays.fill(state, State.FREE);
    }

    int slots() {
        return state.length;
    }

    /** Fills the next slot's host buffer on this thread and queues its copy to the device. */
    Staged stage(Filler filler) {
        int slot = (int) (staged % state.length);
        if (state[slot] != State.FREE) {
            throw new IllegalStateException("all " + state.length + " staging slots hold batches not yet released (batch "
                    + sequenceOf[slot] + " is " + state[slot].name().toLowerCase().replace('_', ' ')
                    + "); release a batch before staging another");
        }
        ops.waitCopied(slot);
        ByteBuffer host = ops.host(slot);
        long bytes = filler.fill(host);
        if (bytes < 0 || bytes > host.capacity()) {
            throw new IllegalArgumentException("a batch of " + bytes + " bytes does not fit a " + host.capacity() + "-byte staging slot");
        }
        ops.copy(slot, bytes);
        state[slot] = State.STAGED;
        sequenceOf[slot] = staged;
        return new Staged(slot, staged++, bytes);
    }

    /** Makes the compute stream wait for {@code s}'s copy. Batches are acquired in the order they were staged. */
    void acquire(Staged s) {
        if (state[s.slot()] != State.STAGED || sequenceOf[s.slot()] != s.sequence()) {
            throw new IllegalStateException("batch " + s.sequence() + " is not staged (slot " + s.slot() + " is "
                    + state[s.slot()].name().toLowerCase().replace('_', ' ') + ")");
        }
        if (s.sequence() != acquired) {
            throw new IllegalStateException("batch " + s.sequence() + " acquired before batch " + acquired + "; acquire in staging order");
        }
        ops.acquire(s.slot());
        state[s.slot()] = State.IN_USE;
        acquired++;
    }

    /** Marks {@code s}'s device buffer free once the kernels queued so far on the compute stream are done. */
    void release(Staged s) {
        if (state[s.slot()] != State.IN_USE || sequenceOf[s.slot()] != s.sequence()) {
            throw new IllegalStateException("batch " + s.sequence() + " is not in use (slot " + s.slot() + " is "
                    + state[s.slot()].name().toLowerCase().replace('_', ' ') + ")");
        }
        ops.release(s.slot());
        state[s.slot()] = State.FREE;
    }
}
