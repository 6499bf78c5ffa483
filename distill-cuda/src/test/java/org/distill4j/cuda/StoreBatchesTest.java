package org.distill4j.cuda;

import org.distill4j.store.SoftTargetStore;
import org.distill4j.store.StoreHeader;
import org.distill4j.store.StoreWriter;
import org.distill4j.store.ValueCodec;
import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link StoreBatches}' checks that come before any device call, and its unpacking grid, without a device
 * (what it copies and unpacks is {@code BatchingGpuTest}'s, on a GPU or the emulator).
 */
class StoreBatchesTest {

    /** The unpacking kernels' grid: one 256-thread block per 256 elements, at least one, at most {@link KernelPlan#MAX_GRID}. */
    @Test
    void theUnpackingGridCoversEveryElement() {
        assertEquals(1, StoreBatches.grid(0), "an empty batch still launches one block");
        assertEquals(1, StoreBatches.grid(1));
        assertEquals(1, StoreBatches.grid(256));
        assertEquals(2, StoreBatches.grid(257));
        assertEquals(125, StoreBatches.grid(7L * 4571), "32000 elements = 125 blocks");
        assertEquals(KernelPlan.MAX_GRID, StoreBatches.grid(256L * KernelPlan.MAX_GRID));
        assertEquals(KernelPlan.MAX_GRID, StoreBatches.grid(256L * KernelPlan.MAX_GRID + 1), "more elements loop");
        assertEquals(KernelPlan.MAX_GRID, StoreBatches.grid(16_384L * 152_064), "beyond an int of elements");
    }

    /**
     * A batch size below one row, or one whose rows do not fit a 2 GiB staging slot, is refused before the device is
     * touched, naming the store, the sizes and the most rows a slot holds; the largest that fits passes these checks.
     */
    @Test
    void batchSizesNoStagingSlotCanHoldAreRefusedBeforeTheDevice(@TempDir Path tmp) throws Exception {
        int vocab = 4099;
        Path p = tmp.resolve("dense.d4j");
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, vocab, 0, 3, 2, 1.0, "{}");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(Inputs.logits(new Random(7), 3, vocab, 2.0), 3);
            w.finish();
        }
        try (SoftTargetStore store = SoftTargetStore.open(p)) {
            long rowBytes = store.header().rowBytes();
            assertEquals(4L * vocab, rowBytes);
            for (int bad : new int[] {0, -5}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new StoreBatches(null, store, bad, 2));
                assertEquals("maxRows must be >= 1, got " + bad, e.getMessage());
            }
            long most = Integer.MAX_VALUE / rowBytes;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new StoreBatches(null, store, (int) most + 1, 2));
            assertEquals(p + ": batches of " + (most + 1) + " rows of " + rowBytes + " bytes do not fit a staging slot (2 GiB of pinned"
                    + " memory); at most " + most + " rows a batch", e.getMessage());
            // the most rows a slot holds pass the size checks: the stager, which needs a device, is what refuses them here
            IllegalArgumentException fits = assertThrows(IllegalArgumentException.class, () -> new StoreBatches(null, store, (int) most, 2));
            assertEquals("a stager needs a DeviceContext, got none", fits.getMessage());
            IllegalArgumentException one = assertThrows(IllegalArgumentException.class, () -> new StoreBatches(null, store, 1, 2));
            assertEquals("a stager needs a DeviceContext, got none", one.getMessage(), "batches of one row pass the size checks");
        }
    }
}
