package org.distill4j.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * A file channel that, once {@link #failAfter armed}, writes a given number of bytes more and then fails every write
 * with "No space left on device", as a full disk does: for tests of what a writer does after a failed write.
 */
final class FailingWriteChannel extends DelegatingChannel {
    /** Bytes still written before writes fail; negative: no failure armed. */
    private long budget = -1;

    FailingWriteChannel(FileChannel in) {
        super(in);
    }

    /** From now on, {@code bytes} more bytes are written (the first write that would pass them writes up to them), then every write fails. */
    void failAfter(long bytes) {
        budget = bytes;
    }

    /** What of {@code src} may be written now, as a slice (the write advances {@code src} by what it took). */
    private ByteBuffer allowed(ByteBuffer src) throws IOException {
        if (budget < 0) {
            return src.slice();
        }
        if (budget == 0) {
            throw new IOException("No space left on device");
        }
        return src.slice(src.position(), (int) Math.min(src.remaining(), budget));
    }

    private int took(ByteBuffer src, int n) {
        if (budget >= 0) {
            budget -= n;
        }
        src.position(src.position() + n);
        return n;
    }

    @Override
    public int write(ByteBuffer src, long position) throws IOException {
        return took(src, in.write(allowed(src), position));
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        return took(src, in.write(allowed(src)));
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        for (int i = offset; i < offset + length; i++) {
            if (srcs[i].hasRemaining()) {
                return write(srcs[i]);
            }
        }
        return 0;
    }
}
