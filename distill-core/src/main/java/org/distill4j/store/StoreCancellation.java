package org.distill4j.store;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CancellationException;

/**
 * How a job that writes a store (labeling, an import) ends when its thread is interrupted: a {@link CancellationException}
 * naming the store, the interrupt status kept set, the {@code .partial} kept for a resume.
 */
final class StoreCancellation {
    private static final Logger LOG = LoggerFactory.getLogger(StoreCancellation.class);

    private StoreCancellation() {
    }

    /** Throws the cancellation of {@code job} ("labeling", "importing") into {@code out} when this thread is interrupted. */
    static void check(String job, Path out) {
        if (Thread.currentThread().isInterrupted()) {
            throw cancelled(job, out, null);
        }
    }

    /** {@code e}, or, when an interrupt closed the channel it came from (a read or write cut short), the cancellation it is. */
    static IOException orCancelled(String job, Path out, IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ClosedByInterruptException) {
                throw cancelled(job, out, e); // not a full disk, as the writer's message supposes
            }
        }
        return e;
    }

    private static CancellationException cancelled(String job, Path out, Throwable cause) {
        Path partial = StoreWriter.partialPath(out);
        CancellationException c = new CancellationException(job + " " + out + " cancelled: the thread was interrupted; "
                + (Files.exists(partial) ? "what was written is kept (" + partial + ") and the same call resumes it" : "nothing was written"));
        if (cause != null) {
            c.initCause(cause);
        }
        Thread.currentThread().interrupt(); // kept set: the caller decides what the interrupt means
        LOG.info("{}", c.getMessage());
        return c;
    }
}
