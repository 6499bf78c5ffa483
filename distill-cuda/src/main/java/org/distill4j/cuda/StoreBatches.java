package org.distill4j.cuda;

import org.distill4j.store.SoftTargetStore;
import org.distill4j.store.StoreHeader;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Teacher rows from a {@link SoftTargetStore} on the device, through a {@link DeviceStager}: the rows of a
 * batch are copied as they are stored (compact top-k rows: {@code k x (idBytes + value bytes)} each) into
 * pinned memory, cross to the device on the copy stream while the previous batch computes, and are
 * unpacked there by {@code unpack_topk_rows} / {@code unpack_dense_rows} into what the loss kernels read.
 *
 * <pre>{@code
 * try (StoreBatches rows = new StoreBatches(ctx, store, 1024, 2)) {
 *     StoreBatches.Staged next = rows.stage(indices(0));
 *     for (int i = 0; i < n; i++) {
 *         StoreBatches.Staged cur = next;
 *         if (i + 1 < n) next = rows.stage(indices(i + 1));
 *         try (StoreBatches.TopK t = rows.topK(cur)) { ... backend.topKKd(loss, studentBatch, t, grad, 1f) ... }
 *     }
 * }
 * }</pre>
 */
public final class StoreBatches implements AutoCloseable {
    private static final int THREADS = 256;

    private final DeviceContext ctx;
    private final SoftTargetStore store;
    private final StoreHeader header;
    private final int maxRows;
    private final DeviceStager stager;

    /**
     * @param maxRows the largest batch, in rows
     * @param slots   batches in flight (2: double buffering)
     */
    public StoreBatches(DeviceContext ctx, SoftTargetStore store, int maxRows, int slots) {
        if (maxRows < 1) {
            throw new IllegalArgumentException("maxRows must be >= 1, got " + maxRows);
        }
        this.ctx = ctx;
        this.store = store;
        this.header = store.header();
        this.maxRows = maxRows;
        long most = Integer.MAX_VALUE / header.rowBytes(); // a staging slot is at most 2 GiB of pinned memory
        if (maxRows > most) {
            throw new IllegalArgumentException(store.path() + ": batches of " + maxRows + " rows of " + header.rowBytes() + " bytes do not fit "
                    + "a staging slot (2 GiB of pinned memory); at most " + most + " rows a batch");
        }
        this.stager = new DeviceStager(ctx, slots, header.rowBytes() * maxRows);
    }

    /** A batch of stored rows on its way to the device. */
    public static final class Staged {
        private final StoreBatches owner;
        private final DeviceStager.Batch batch;
        private final int rows;

        private Staged(StoreBatches owner, DeviceStager.Batch batch, int rows) {
            this.owner = owner;
            this.batch = batch;
            this.rows = rows;
        }

        /** The number of rows staged: the length of the indices given to {@link StoreBatches#stage}, at least 1. */
        public int rows() {
            return rows;
        }
    }

    /** Copies the stored rows of {@code indices} into pinned memory (this thread) and queues them to the device. */
    public Staged stage(int[] indices) {
        if (indices == null) {
            throw new IllegalArgumentException(store.path() + ": no row indices to stage (null)");
        }
        if (indices.length == 0 || indices.length > maxRows) {
            throw new IllegalArgumentException(store.path() + ": a staged batch takes 1 to " + maxRows + " rows, got " + indices.length);
        }
        return new Staged(this, stager.stage(pinned -> store.copyRows(indices, pinned)), indices.length);
    }

    /**
     * Top-k rows on the device: {@code [rows, k]} int32 ids and float32 log-probabilities, in the order the
     * indices were given. The caller closes it (returning its buffers to the pool).
     */
    public TopK topK(Staged s) {
        if (header.layout() != StoreHeader.Layout.TOP_K) {
            throw new IllegalStateException(store.path() + " holds dense rows; read them with dense");
        }
        mine(s);
        int k = header.k();
        long n = (long) s.rows * k;
        DeviceBuffer raw = stager.acquire(s.batch);
        DeviceBuffer ids = null;
        DeviceBuffer lps = null;
        DeviceBuffer bad = null;
        try {
            ids = ctx.alloc(4 * n);
            lps = ctx.alloc(4 * n);
            bad = ctx.alloc(4);
            ctx.fill32(bad, Integer.MAX_VALUE, 1);
            ctx.launch(new KernelPlan("unpack_topk_rows", THREADS, grid(n)), raw, header.rowBytes(), s.rows, k, header.idBytes(),
                    header.codec().code(), header.vocab(), ids, lps, bad);
        } catch (RuntimeException e) {
            throw failed(s, e, ids, lps, bad); // e.g. out of device memory: nothing is kept, and the slot is free again
        }
        stager.release(s.batch);
        return new TopK(ctx, store, ids, lps, bad, s.rows, k, header.vocab());
    }

    /** Refuses rows another StoreBatches staged (another store's rows, or this store's in another stager's slot). */
    private void mine(Staged s) {
        if (s == null) {
            throw new IllegalArgumentException(store.path() + ": no staged batch to unpack (null)");
        }
        if (s.owner != this) {
            throw new IllegalArgumentException(store.path() + ": these " + s.rows + " rows were staged by another StoreBatches (of "
                    + s.owner.store.path() + "); unpack them there");
        }
    }

    /** After a failed unpacking: frees what it allocated and the batch's slot; returns {@code e} to throw. */
    private RuntimeException failed(Staged s, RuntimeException e, DeviceBuffer... buffers) {
        for (DeviceBuffer b : buffers) {
            if (b != null) {
                b.close();
            }
        }
        try {
            stager.release(s.batch);
        } catch (RuntimeException r) {
            e.addSuppressed(r);
        }
        return e;
    }

    /** Dense rows on the device: {@code [rows, vocab]} float32 (logits or log-probabilities, as stored). */
    public DeviceBuffer dense(Staged s) {
        if (header.layout() != StoreHeader.Layout.DENSE) {
            throw new IllegalStateException(store.path() + " holds top-k rows (k = " + header.k() + "); read them with topK");
        }
        mine(s);
        long n = (long) s.rows * header.vocab();
        DeviceBuffer raw = stager.acquire(s.batch);
        DeviceBuffer out = null;
        try {
            out = ctx.alloc(4 * n);
            ctx.launch(new KernelPlan("unpack_dense_rows", THREADS, grid(n)), raw, header.rowBytes(), s.rows, header.vocab(),
                    header.codec().code(), out);
        } catch (RuntimeException e) {
            throw failed(s, e, out);
        }
        stager.release(s.batch);
        return out;
    }

    static int grid(long elements) {
        return (int) Math.max(1, Math.min(KernelPlan.MAX_GRID, (elements + THREADS - 1) / THREADS));
    }

    /** Unpacked top-k rows on the device. */
    public static final class TopK implements AutoCloseable {
        private final DeviceContext ctx;
        private final SoftTargetStore store;
        private final DeviceBuffer ids;
        private final DeviceBuffer logProbs;
        private final DeviceBuffer bad;
        private final int rows;
        private final int k;
        private final int vocab;

        TopK(DeviceContext ctx, SoftTargetStore store, DeviceBuffer ids, DeviceBuffer logProbs, DeviceBuffer bad, int rows, int k, int vocab) {
            this.ctx = ctx;
            this.store = store;
            this.ids = ids;
            this.logProbs = logProbs;
            this.bad = bad;
            this.rows = rows;
            this.k = k;
            this.vocab = vocab;
        }

        /**
         * The class ids on the device, {@code [rows, k]} int32 row-major, in the order the indices were staged (see
         * {@link #checkIds()} for ids at or beyond the vocabulary). Owned by this object: freed when it is closed.
         */
        public DeviceBuffer ids() {
            return ids;
        }

        /**
         * The entries' log-probabilities on the device, {@code [rows, k]} float32 row-major, matching {@link #ids()}
         * entry for entry. Owned by this object: freed when it is closed.
         */
        public DeviceBuffer logProbs() {
            return logProbs;
        }

        /** The number of rows, as staged. */
        public int rows() {
            return rows;
        }

        /** The entries per row: the store's {@code k}. */
        public int k() {
            return k;
        }

        /** The vocabulary of the store the rows come from (ids are below it). */
        public int vocab() {
            return vocab;
        }

        /**
         * Throws naming the store and the batch row when a stored id is not below the vocabulary (waits for
         * the unpacking).
         */
        public void checkIds() {
            byte[] b = new byte[4];
            ctx.download(bad, b);
            int row = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt();
            if (row != Integer.MAX_VALUE) {
                throw new IllegalStateException(store.path() + ": row " + row + " of this batch holds a class id >= the vocabulary ("
                        + vocab + "); the store is corrupt");
            }
        }

        @Override
        public void close() {
            ids.close();
            logProbs.close();
            bad.close();
        }
    }

    @Override
    public void close() {
        stager.close();
    }
}
