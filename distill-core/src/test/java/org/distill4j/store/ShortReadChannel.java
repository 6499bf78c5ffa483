package org.distill4j.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * A file channel whose reads return at most {@code most} bytes each, as a real channel may (a read of a chunk near
 * 2 GB returns what the kernel gives in one call, often less): for tests of code that must read fully.
 */
final class ShortReadChannel extends DelegatingChannel {
    private final int most;
    int reads;

    ShortReadChannel(FileChannel in, int most) {
        super(in);
        this.most = most;
    }

    private ByteBuffer part(ByteBuffer dst) {
        return dst.slice(dst.position(), Math.min(dst.remaining(), most));
    }

    private static int advance(ByteBuffer dst, int n) {
        if (n > 0) {
            dst.position(dst.position() + n);
        }
        return n;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        reads++;
        return advance(dst, in.read(part(dst)));
    }

    @Override
    public int read(ByteBuffer dst, long position) throws IOException {
        reads++;
        return advance(dst, in.read(part(dst), position));
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
        for (int i = offset; i < offset + length; i++) {
            if (dsts[i].hasRemaining()) {
                return read(dsts[i]);
            }
        }
        return 0;
    }
}
