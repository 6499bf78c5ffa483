package org.distill4j.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The staging ring's order of events on a simulated device: two in-order streams (copy, compute) that
 * advance in a random interleaving, events that a stream can wait for (the last record queued before the
 * wait, as {@code cuStreamWaitEvent} does), host buffers the host writes at once, device buffers written
 * only when a queued copy runs. Each compute "kernel" checks that its slot's device buffer holds its own
 * batch. The ring must never let a kernel see another batch, whatever the interleaving, and must let the
 * next batch's copy run while the current batch is computed. The same simulation with one of the ring's
 * waits left out does see wrong batches (so the check can fail).
 */
class StagingRingTest {

    /** An event: how many records were queued, how many have run. */
    static final class Event {
        int queued;
        int done;
    }

    interface Op {
        boolean ready();

        void run();
    }

    /** A simulated device behind the ring's Ops; {@code skip} leaves one of the ring's waits out. */
    static final class SimDevice implements StagingRing.Ops {
        final Random rng;
        final String skip;
        final ByteBuffer[] host;
        final int[] device;
        final Event[] copied;
        final Event[] released;
        final ArrayDeque<Op> copyStream = new ArrayDeque<>();
        final ArrayDeque<Op> computeStream = new ArrayDeque<>();
        final List<String> wrong = new ArrayList<>();
        final java.util.TreeMap<Integer, Integer> pendingKernels = new java.util.TreeMap<>(); // batch -> kernels queued, not run
        boolean overlapSeen;

        SimDevice(int slots, long seed, String skip) {
            this.rng = new Random(seed);
            this.skip = skip;
            host = new ByteBuffer[slots];
            device = new int[slots];
            copied = new Event[slots];
            released = new Event[slots];
            for (int i = 0; i < slots; i++) {
                host[i] = ByteBuffer.allocate(8);
                device[i] = -1;
                copied[i] = new Event();
                released[i] = new Event();
            }
        }

        static Op waitFor(Event e) {
            int target = e.queued;
            return new Op() {
                public boolean ready() {
                    return e.done >= target;
                }

                public void run() {
                }
            };
        }

        static Op record(Event e) {
            e.queued++;
            return new Op() {
                public boolean ready() {
                    return true;
                }

                public void run() {
                    e.done++;
                }
            };
        }

        /** Runs one ready head-of-stream op, chosen at random; false when none is ready. */
        boolean step() {
            List<ArrayDeque<Op>> ready = new ArrayList<>();
            for (ArrayDeque<Op> s : List.of(copyStream, computeStream)) {
                if (!s.isEmpty() && s.peek().ready()) {
                    ready.add(s);
                }
            }
            if (ready.isEmpty()) {
                return false;
            }
            ArrayDeque<Op> s = ready.get(rng.nextInt(ready.size()));
            s.poll().run();
            return true;
        }

        void progress() {
            for (int i = rng.nextInt(4); i > 0 && step(); i--) {
                // a random amount of device progress between host actions
            }
        }

        void drain() {
            while (step()) {
                // until both streams are empty or stuck
            }
            assertTrue(copyStream.isEmpty() && computeStream.isEmpty(), "the streams deadlocked");
        }

        @Override
        public void waitCopied(int slot) {
            if (skip.equals("waitCopied")) {
                return;
            }
            while (copied[slot].done < copied[slot].queued) {
                assertTrue(step(), "the host waits for a copy that can never run");
            }
        }

        @Override
        public ByteBuffer host(int slot) {
            return host[slot].clear();
        }

        @Override
        public void copy(int slot, long bytes) {
            if (!skip.equals("waitReleased")) {
                copyStream.add(waitFor(released[slot]));
            }
            copyStream.add(new Op() {
                public boolean ready() {
                    return true;
                }

                public void run() {
                    device[slot] = host[slot].getInt(0);
                    if (!pendingKernels.isEmpty() && pendingKernels.firstKey() < device[slot]) {
                        overlapSeen = true; // an earlier batch is still being computed
                    }
                }
            });
            copyStream.add(record(copied[slot]));
        }

        @Override
        public void acquire(int slot) {
            if (!skip.equals("acquire")) {
                computeStream.add(waitFor(copied[slot]));
            }
        }

        void kernel(int slot, int batch) {
            pendingKernels.merge(batch, 1, Integer::sum);
            computeStream.add(new Op() {
                public boolean ready() {
                    return true;
                }

                public void run() {
                    pendingKernels.computeIfPresent(batch, (k, n) -> n == 1 ? null : n - 1);
                    if (device[slot] != batch) {
                        wrong.add("batch " + batch + " saw " + device[slot] + " in slot " + slot);
                    }
                }
            });
        }

        @Override
        public void release(int slot) {
            computeStream.add(record(released[slot]));
        }
    }

    /** A training loop's use: stage batch i+1 (and more, up to the slots), then compute batch i. */
    static SimDevice pipeline(int slots, int batches, long seed, String skip) {
        SimDevice sim = new SimDevice(slots, seed, skip);
        StagingRing ring = new StagingRing(sim, slots);
        ArrayDeque<StagingRing.Staged> ahead = new ArrayDeque<>();
        int next = 0;
        for (int b = 0; b < batches; b++) {
            while (next < batches && ahead.size() < slots) {
                int id = next++;
                ahead.add(ring.stage(h -> {
                    h.putInt(0, id);
                    return 4;
                }));
                sim.progress();
            }
            StagingRing.Staged s = ahead.poll();
            ring.acquire(s);
            sim.kernel(s.slot(), b);
            sim.kernel(s.slot(), b); // a step reads its batch more than once (forward, loss)
            ring.release(s);
            sim.progress();
        }
        sim.drain();
        return sim;
    }

    @ParameterizedTest(name = "{0} slot(s)")
    @ValueSource(ints = {1, 2, 3})
    void everyKernelSeesItsOwnBatchInAnyInterleaving(int slots) {
        boolean overlap = false;
        for (long seed = 0; seed < 300; seed++) {
            SimDevice sim = pipeline(slots, 40, seed, "");
            assertEquals(List.of(), sim.wrong, "seed " + seed);
            overlap |= sim.overlapSeen;
        }
        assertEquals(slots > 1, overlap, "the next batch's copy runs while the current batch computes (only with 2+ slots)");
    }

    @ParameterizedTest(name = "without {0}")
    @ValueSource(strings = {"waitCopied", "waitReleased", "acquire"})
    void leavingOutAnyOfTheWaitsLetsAKernelSeeAnotherBatch(String skip) {
        int seedsWithWrongBatches = 0;
        for (long seed = 0; seed < 300; seed++) {
            if (!pipeline(2, 40, seed, skip).wrong.isEmpty()) {
                seedsWithWrongBatches++;
            }
        }
        assertTrue(seedsWithWrongBatches > 0, "the simulation catches a ring without " + skip);
    }

    @Test
    void misuseIsRefusedWithWhatWentWrong() {
        SimDevice sim = new SimDevice(2, 1, "");
        StagingRing ring = new StagingRing(sim, 2);
        StagingRing.Filler four = h -> {
            h.putInt(0, 7);
            return 4;
        };
        StagingRing.Staged a = ring.stage(four);
        StagingRing.Staged b = ring.stage(four);
        IllegalStateException full = assertThrows(IllegalStateException.class, () -> ring.stage(four));
        assertTrue(full.getMessage().contains("all 2 staging slots hold batches not yet released (batch 0 is staged)"), full.getMessage());
        IllegalStateException order = assertThrows(IllegalStateException.class, () -> ring.acquire(b));
        assertTrue(order.getMessage().contains("batch 1 acquired before batch 0"), order.getMessage());
        IllegalStateException early = assertThrows(IllegalStateException.class, () -> ring.release(a));
        assertTrue(early.getMessage().contains("batch 0 is not in use (slot 0 is staged)"), early.getMessage());
        ring.acquire(a);
        ring.release(a);
        assertThrows(IllegalStateException.class, () -> ring.release(a), "released twice");
        assertThrows(IllegalStateException.class, () -> ring.acquire(a), "acquired after release");
        IllegalArgumentException big = assertThrows(IllegalArgumentException.class, () -> ring.stage(h -> 9));
        assertTrue(big.getMessage().contains("a batch of 9 bytes does not fit a 8-byte staging slot"), big.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new StagingRing(sim, 0));
    }

    /**
     * A handle of a batch whose slot has since been staged again is stale: acquiring or releasing it is refused as not
     * staged / not in use (with one slot, releasing batch 0's handle would otherwise free batch 1's device buffer while
     * its kernels still read it, and the next copy would overwrite it).
     */
    @Test
    void aStaleHandleOfAReusedSlotIsRefused() {
        SimDevice sim = new SimDevice(1, 3, "");
        StagingRing ring = new StagingRing(sim, 1);
        assertEquals(1, ring.slots());
        StagingRing.Filler four = h -> {
            h.putInt(0, 11);
            return 4;
        };
        StagingRing.Staged a = ring.stage(four);
        ring.acquire(a);
        ring.release(a);
        StagingRing.Staged b = ring.stage(four);
        assertEquals(a.slot(), b.slot());
        IllegalStateException acquireStale = assertThrows(IllegalStateException.class, () -> ring.acquire(a));
        assertEquals("batch 0 is not staged (slot 0 is staged)", acquireStale.getMessage());
        ring.acquire(b);
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> ring.acquire(b));
        assertEquals("batch 1 is not staged (slot 0 is in use)", twice.getMessage(), "acquired twice");
        IllegalStateException releaseStale = assertThrows(IllegalStateException.class, () -> ring.release(a));
        assertEquals("batch 0 is not in use (slot 0 is in use)", releaseStale.getMessage());
        ring.release(b);
        assertEquals(2, ring.stage(four).sequence(), "the ring goes on after the refusals");
    }

    /** A batch may fill its slot exactly, or be empty; a filler that reports a negative size is refused. */
    @Test
    void aBatchFillsItsSlotUpToItsCapacity() {
        SimDevice sim = new SimDevice(2, 5, "");
        StagingRing ring = new StagingRing(sim, 2);
        int capacity = sim.host(0).capacity();
        StagingRing.Staged full = ring.stage(h -> capacity);
        assertEquals(capacity, full.bytes());
        StagingRing.Staged empty = ring.stage(h -> 0);
        assertEquals(0, empty.bytes());
        ring.acquire(full);
        ring.release(full);
        IllegalArgumentException negative = assertThrows(IllegalArgumentException.class, () -> ring.stage(h -> -1));
        assertEquals("a batch of -1 bytes does not fit a " + capacity + "-byte staging slot", negative.getMessage());
    }
}
