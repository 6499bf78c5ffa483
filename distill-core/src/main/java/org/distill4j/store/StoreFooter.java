package org.distill4j.store;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The footer that marks a complete store: "D4JEND\0\0", the row count, and a CRC32C of those 16
 * bytes. A writer appends it only after every chunk is written and synced.
 */
final class StoreFooter {
    static final int BYTES = 20;
    static final byte[] MAGIC = "D4JEND\0\0".getBytes(StandardCharsets.US_ASCII);

    private StoreFooter() {
    }

    static ByteBuffer encode(long rows) {
        ByteBuffer b = ByteBuffer.allocate(BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).putLong(rows);
        b.putInt(Crc32c.of(b.array(), 0, 16));
        b.rewind();
        return b;
    }

    static boolean valid(ByteBuffer b, long rows) {
        ByteBuffer d = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        byte[] m = new byte[8];
        d.position(0);
        d.get(m);
        return java.util.Arrays.equals(m, MAGIC) && d.getLong() == rows && d.getInt() == Crc32c.of(b, 0, 16);
    }
}
