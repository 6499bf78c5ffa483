package org.distill4j.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * A file channel that, once {@link #failAfter armed}, writes a given number of bytes more and then fails every write
 * with "No space left on device", as a full disk does: for tests of what a writer does after a failed write.
 */
final class FailingWriteChannel extends FileChannel {
    private final FileChannel in;
    /** Bytes still written before writes fail; negative: no failure armed. */
    private long budget = -1;

    FailingWriteChannel(FileChannel in) {
        this.in = in;
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

    @Override
    public int read(ByteBuffer dst) throws IOException {
        return in.read(dst);
    }

    @Override
    public int read(ByteBuffer dst, long position) throws IOException {
        return in.read(dst, position);
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
        return in.read(dsts, offset, length);
    }

    @Override
    public long position() throws IOException {
        return in.position();
    }

    @Override
    public FileChannel position(long newPosition) throws IOException {
        in.position(newPosition);
        return this;
    }

    @Override
    public long size() throws IOException {
        return in.size();
    }

    @Override
    public FileChannel truncate(long size) throws IOException {
        in.truncate(size);
        return this;
    }

    @Override
    public void force(boolean metaData) throws IOException {
        in.force(metaData);
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
        return in.transferTo(position, count, target);
    }

    @Override
    public long transferFrom(ReadableByteChannel src, long position, long count) throws IOException {
        return in.transferFrom(src, position, count);
    }

    @Override
    public MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
        return in.map(mode, position, size);
    }

    @Override
    public FileLock lock(long position, long size, boolean shared) throws IOException {
        return in.lock(position, size, shared);
    }

    @Override
    public FileLock tryLock(long position, long size, boolean shared) throws IOException {
        return in.tryLock(position, size, shared);
    }

    @Override
    protected void implCloseChannel() throws IOException {
        in.close();
    }
}
