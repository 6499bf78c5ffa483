package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** verify() of a store whose footer went after it was opened, wholly or in part: every chunk is whole, the footer is not. */
class SoftTargetStoreVerifyFooterTest {

    @Test
    void aFooterCutAfterTheStoreWasOpenedIsReportedWhereverTheCutIs(@TempDir Path tmp) throws IOException {
        StoreHeader h = SoftTargetStoreTest.dense(ValueCodec.F16, 5, 9, 4);
        Path p = tmp.resolve("s.d4j");
        float[] all = SoftTargetStoreTest.values(61, 45);
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(all, 9);
            w.finish();
        }
        byte[] good = Files.readAllBytes(p);
        long footerAt = h.completeSize() - StoreFooter.BYTES;
        for (long cut : new long[]{footerAt, footerAt + 1, h.completeSize() - 1}) {
            Files.write(p, good);
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                    ch.truncate(cut);
                }
                assertEquals(List.of(p + ": truncated in the footer: the file is now " + cut + " bytes, a complete store has "
                        + h.completeSize()), s.verify(), "cut at " + cut + " (the footer starts at " + footerAt + ")");
            }
        }
    }
}
