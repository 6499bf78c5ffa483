package org.distill4j.store;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/** CRC32C (Castagnoli) of byte ranges; the JDK's implementation uses the CPU's CRC32C instruction. */
final class Crc32c {
    private Crc32c() {
    }

    static int of(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    static int of(ByteBuffer b, int off, int len) {
        CRC32C c = new CRC32C();
        ByteBuffer d = b.duplicate();
        d.limit(off + len).position(off);
        c.update(d);
        return (int) c.getValue();
    }
}
