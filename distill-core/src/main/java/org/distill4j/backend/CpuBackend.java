package org.distill4j.backend;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The CPU backend: runs each loss's own fused CPU implementation. Always available; the fallback when no
 * accelerator backend is.
 *
 * <p><b>Threads.</b> A batch of more than {@link #CHUNK_ELEMENTS} logits and a
 * {@linkplain LogitLoss#rowSeparable row-separable} loss (every built-in logit loss) is cut into slices of
 * {@code max(1, CHUNK_ELEMENTS / classes)} rows, computed on up to {@link #threads()} threads (the calling
 * one and a pool's), and summed slice by slice in row order. The cut depends on the batch's shape only, so a
 * batch gives bit-identical results with any number of threads, on any machine; each row's gradient is the
 * bits the loss's own {@code compute} writes, and the value differs from it only in the order of its double
 * sums. Each slice is a {@link LogitLoss#computeRows} call: the built-in losses read the slice's rows where they
 * are in the batch and write its gradient straight into the batch's gradient buffer, so no row is copied (a loss
 * of another kind gets its rows copied, as {@code computeRows}' default does). Smaller batches, and losses that are
 * not row-separable, run on the calling thread as {@code compute} does. The threads come from
 * {@value #THREADS_PROPERTY} (default: the available processors); the pool's threads are daemons started on first
 * use, ended after {@value #KEEP_ALIVE_SECONDS} s idle and by {@link #close()}, after which every batch runs on the
 * calling thread.
 */
public final class CpuBackend implements ComputeBackend {
    /** The backend's name. */
    public static final String NAME = "cpu";
    /** The system property that sets how many threads a loss may use (a positive integer). */
    public static final String THREADS_PROPERTY = "distill.cpu.threads";
    /**
     * Logits per slice of a large batch (at least one row): 2^18, a few milliseconds of soft-target KD on one core,
     * so that a batch of 4096 x 32000 has 512 slices to share out. A slice reads its rows in place and writes its
     * gradient in place, and the losses' scratch arrays are reused per thread (at V = 256k a slice is one row, and
     * allocating them per slice cost 8-10 MB per row). When each slice copied its rows, kd on one thread took 5-7%
     * longer than {@code compute} at 4096 x 32000 and 32 x 256000 (11% with slices of 2^16) and a batch allocated
     * two copies of its logits; read in place, one thread takes what {@code compute} does (214 against 213 ms for kd
     * over 32 x 256000, 227 ms before) and a batch allocates kilobytes (JMH on the 2-core development machine,
     * {@code benchmarks/results/cpu-rows-in-place-2026-11-23}).
     */
    public static final int CHUNK_ELEMENTS = 1 << 18;

    /** Seconds an idle pool thread waits for work before it ends (a later batch starts it again). */
    static final long KEEP_ALIVE_SECONDS = 30;

    private static final Logger LOG = LoggerFactory.getLogger(CpuBackend.class);
    private static final AtomicInteger POOLS = new AtomicInteger();

    private final int threads;
    private final int chunkElements;
    private ExecutorService pool;
    private boolean closed;

    /** A backend with the threads {@value #THREADS_PROPERTY} says, else one per available processor. */
    public CpuBackend() {
        this(threadsFromProperty());
    }

    /** A backend whose losses use up to {@code threads} threads (1: the calling thread only). */
    public CpuBackend(int threads) {
        this(threads, CHUNK_ELEMENTS);
    }

    /** For tests: slices of {@code chunkElements} logits (at least a row). */
    CpuBackend(int threads, int chunkElements) {
        if (threads < 1) {
            throw new IllegalArgumentException("the CPU backend needs at least 1 thread, got " + threads);
        }
        if (chunkElements < 1) {
            throw new IllegalArgumentException("slices of at least 1 logit, got " + chunkElements);
        }
        this.threads = threads;
        this.chunkElements = chunkElements;
    }

    /** {@value #THREADS_PROPERTY}, else the available processors. */
    static int threadsFromProperty() {
        String p = System.getProperty(THREADS_PROPERTY);
        if (p == null || p.isBlank()) {
            return Runtime.getRuntime().availableProcessors();
        }
        try {
            int n = Integer.parseInt(p.trim());
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException e) {
            // the message below
        }
        throw new IllegalArgumentException(THREADS_PROPERTY + " is '" + p + "'; expected a positive number of threads");
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String device() {
        return CpuBackendProvider.describeCpu();
    }

    /** The most threads a loss uses. */
    public int threads() {
        return threads;
    }

    @Override
    public LossResult logitLoss(LogitLoss loss, LogitBatch batch, float[] gradOut, float upstream) {
        final int rows = batch.rows();
        final int v = batch.classes();
        final int perSlice = Math.max(1, chunkElements / v);
        final int slices = (rows + perSlice - 1) / perSlice;
        if (slices < 2 || !loss.rowSeparable()) {
            return loss.compute(batch, gradOut, upstream);
        }
        loss.checkInputs(batch, gradOut, upstream); // the whole batch's buffers and upstream, named as compute would
        final LossResult[] parts = new LossResult[slices];
        final AtomicInteger next = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final CountDownLatch done = new CountDownLatch(slices);
        Runnable work = () -> {
            int c;
            while ((c = next.getAndIncrement()) < slices) {
                try {
                    if (failure.get() == null) {
                        int from = c * perSlice;
                        int to = Math.min(rows, from + perSlice);
                        // the slice's rows read where they are, its gradient written into its rows of gradOut
                        parts[c] = loss.computeRows(batch, from, to, gradOut, from * v, upstream);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    done.countDown();
                }
            }
        };
        int helpers = Math.min(threads, slices) - 1;
        ExecutorService p = helpers > 0 ? pool() : null;
        if (p != null) {
            try {
                for (int i = 0; i < helpers; i++) {
                    p.execute(work);
                }
            } catch (RejectedExecutionException e) {
                // closed meanwhile: the calling thread takes what is left
            } catch (OutOfMemoryError e) {
                // no thread could be started: the threads there are (and this one) take what is left
                LOG.warn("CPU backend: could not start another thread for loss '{}' ({}); going on with fewer", loss.name(), e.toString());
            }
        }
        work.run();
        awaitUninterruptibly(done); // every slice taken is finished: none writes into gradOut after this returns
        Throwable f = failure.get();
        if (f instanceof Error e) {
            throw e;
        }
        if (f != null) {
            // the same batch on this thread, so that an error names the batch's own rows (a copied slice's are its own)
            LossResult serial;
            try {
                serial = loss.compute(batch, gradOut, upstream);
            } catch (RuntimeException e) {
                e.addSuppressed(f);
                throw e;
            }
            LOG.warn("loss '{}' failed on a slice of the batch but not on the whole batch; it may not be row-separable", loss.name(), f);
            return serial;
        }
        return sum(parts);
    }

    /** The slices' values, terms and rows, summed in row order. */
    private static LossResult sum(LossResult[] parts) {
        double value = 0;
        int counted = 0;
        Map<String, Double> terms = new LinkedHashMap<>();
        for (LossResult r : parts) {
            value += r.value();
            counted += r.rows();
            for (Map.Entry<String, Double> e : r.terms().entrySet()) {
                terms.merge(e.getKey(), e.getValue(), Double::sum);
            }
        }
        return new LossResult(value, counted, terms);
    }

    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true; // the slices in flight write into the caller's gradient: wait for them
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** The pool of {@code threads - 1} daemon threads, started on first use; null once closed. */
    private synchronized ExecutorService pool() {
        if (closed) {
            return null;
        }
        if (pool == null) {
            int id = POOLS.incrementAndGet();
            AtomicInteger n = new AtomicInteger();
            ThreadFactory factory = r -> {
                Thread t = new Thread(r, "distill-cpu-" + id + "-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            };
            ThreadPoolExecutor tpe = new ThreadPoolExecutor(threads - 1, threads - 1, KEEP_ALIVE_SECONDS, TimeUnit.SECONDS,
                    new LinkedBlockingQueue<>(), factory);
            tpe.allowCoreThreadTimeOut(true); // a backend nobody closes keeps no threads once idle
            pool = tpe;
            LOG.debug("CPU backend: logit losses on up to {} threads", threads);
        }
        return pool;
    }

    /** Stops the pool's threads (once their slices are done); calling it twice is harmless. */
    @Override
    public synchronized void close() {
        closed = true;
        if (pool != null) {
            pool.shutdown();
            pool = null;
        }
    }
}
