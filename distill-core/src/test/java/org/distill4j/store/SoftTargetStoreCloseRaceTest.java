package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A store closed by one thread while another reads chunks it has not read before: the reader must be told the store is
 * closed, not that the file is corrupt or unreadable (a {@link StoreFormatException} there would send a user looking for
 * damage that is not there). The close lands at a different point of the reader's chunk check on each round.
 */
class SoftTargetStoreCloseRaceTest {
    private static final int V = 3;
    private static final int ROWS = 3001; // one row per chunk: every row read is a chunk's first read and check
    private static final int ROUNDS = 20;

    @Test
    void aReaderOfAStoreClosedUnderItIsToldItIsClosed(@TempDir Path tmp) throws Exception {
        Path p = tmp.resolve("s.d4j");
        try (StoreWriter w = StoreWriter.open(p, SoftTargetStoreTest.dense(ValueCodec.F32, V, ROWS, 1))) {
            w.writeDense(SoftTargetStoreTest.values(9, ROWS * V), ROWS);
            w.finish();
        }
        for (int round = 0; round < ROUNDS; round++) {
            SoftTargetStore s = SoftTargetStore.open(p);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch reading = new CountDownLatch(1);
            boolean verify = round % 2 == 1;
            Thread reader = new Thread(() -> {
                try {
                    if (verify) {
                        reading.countDown();
                        while (true) {
                            java.util.List<String> problems = s.verify(); // checks every chunk again on each pass
                            if (!problems.isEmpty()) {
                                throw new AssertionError("verify() of a good store closed under it: " + problems.get(0));
                            }
                        }
                    }
                    for (int pass = 0; ; pass++) {
                        for (int r = 0; r < ROWS; r++) {
                            s.dense(new int[]{r});
                            if (r == 5 && pass == 0) {
                                reading.countDown();
                            }
                        }
                    }
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            reader.start();
            reading.await();
            Thread.sleep(round % 5);
            s.close();
            reader.join(60_000);
            Throwable e = failure.get();
            assertNotNull(e, "the reader stopped without an error");
            int r = round;
            assertInstanceOf(IllegalStateException.class, e, () -> "round " + r + ": " + e);
            assertTrue(e.getMessage().equals(p + " is closed"), () -> "round " + r + ": " + e.getMessage());
        }
    }
}
