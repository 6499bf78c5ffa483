package org.distill4j.train;

import org.distill4j.checkpoint.Checkpointable;
import org.distill4j.internal.AtomicFiles;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import java.util.zip.CheckedInputStream;
import java.util.zip.CheckedOutputStream;

/**
 * The checkpoint file of a {@link Distiller} run (see {@link Checkpoints}). Big-endian binary:
 * <pre>
 *   "D4JCKPT\n", version (int)
 *   fingerprint: count, then (key, value) strings: the run's settings, compared on resume
 *   where the run stands: epochs done, batches done in the current epoch, nanoseconds of training and samples
 *   so far, wall nanoseconds so far, the current epoch's training nanoseconds, loss sum and term sums
 *   ND4J's random generator (root and node state)
 *   the engine's description; the epoch metrics so far
 *   the student's state, then a marker; the trainable feature losses' states, each followed by a marker
 *   CRC32C of every byte before it (int)
 * </pre>
 * Strings are an int byte count and UTF-8 bytes. The whole file's checksum is verified before any state is
 * read into the student, so a damaged checkpoint changes nothing.
 */
final class CheckpointFile {
    private static final byte[] MAGIC = "D4JCKPT\n".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    private static final int END_OF_STATE = 0x454E4453; // "ENDS": after each Checkpointable's bytes
    private static final int MAX_STRING_BYTES = 1 << 24;
    private static final int MAX_COUNT = 1 << 24;
    private static final String TMP_SUFFIX = ".tmp";

    private CheckpointFile() {
    }

    /** Where a run stands, without the model states. */
    record Progress(Map<String, String> fingerprint, int epochsDone, int batchesDone, long trainNanosTotal, long samplesTotal,
                    long wallNanos, long epochTrainNanos, double epochLossSum, Map<String, Double> epochTermSums,
                    long randomRootState, long randomNodeState, String engine, List<EpochMetrics> history) {
        Progress {
            fingerprint = new LinkedHashMap<>(fingerprint);
            epochTermSums = new LinkedHashMap<>(epochTermSums);
            history = List.copyOf(history);
        }
    }

    /**
     * Writes the checkpoint through {@link AtomicFiles}: a reader sees the old checkpoint or the new one, never a part.
     */
    static void write(Path file, Progress p, Checkpointable student, List<Checkpointable> trainables) throws IOException {
        AtomicFiles.write(file, TMP_SUFFIX, tmp -> {
            CRC32C crc = new CRC32C();
            // buffered above the checksum, so the CRC sees 64 KiB blocks rather than single bytes
            try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(
                    new CheckedOutputStream(Files.newOutputStream(tmp), crc), 1 << 16))) {
                out.write(MAGIC);
                out.writeInt(VERSION);
                out.writeInt(p.fingerprint().size());
                for (Map.Entry<String, String> e : p.fingerprint().entrySet()) {
                    writeString(out, e.getKey());
                    writeString(out, e.getValue());
                }
                out.writeInt(p.epochsDone());
                out.writeInt(p.batchesDone());
                out.writeLong(p.trainNanosTotal());
                out.writeLong(p.samplesTotal());
                out.writeLong(p.wallNanos());
                out.writeLong(p.epochTrainNanos());
                out.writeDouble(p.epochLossSum());
                writeTerms(out, p.epochTermSums());
                out.writeLong(p.randomRootState());
                out.writeLong(p.randomNodeState());
                writeString(out, p.engine());
                out.writeInt(p.history().size());
                for (EpochMetrics m : p.history()) {
                    out.writeInt(m.epoch());
                    out.writeInt(m.epochs());
                    out.writeDouble(m.loss());
                    writeTerms(out, m.terms());
                    out.writeDouble(m.temperature());
                    out.writeDouble(m.alpha());
                    out.writeDouble(m.testAccuracy());
                    out.writeDouble(m.teacherAgreement());
                    out.writeDouble(m.teacherKl());
                    out.writeDouble(m.samplesPerSecond());
                    out.writeDouble(m.trainSeconds());
                    out.writeDouble(m.evalSeconds());
                }
                student.writeState(out);
                out.writeInt(END_OF_STATE);
                out.writeInt(trainables.size());
                for (Checkpointable t : trainables) {
                    t.writeState(out);
                    out.writeInt(END_OF_STATE);
                }
                out.flush();
                out.writeInt((int) crc.getValue());
            }
        });
    }

    /** Deletes what interrupted saves of {@code file} left (AtomicFiles' temporary siblings); returns them. */
    static List<Path> deleteLeftovers(Path file) throws IOException {
        return AtomicFiles.deleteLeftovers(file, TMP_SUFFIX);
    }

    /** Something that checks a checkpoint's progress (its fingerprint) before any model state is read. */
    interface Check {
        void accept(Progress p);
    }

    /**
     * Reads {@code file}: verifies its checksum, reads the progress, lets {@code check} refuse it, reads and
     * checks the student's and the trainables' states, and only then puts them all in place: a refused
     * checkpoint changes nothing.
     *
     * @throws IOException              on a damaged or truncated file (the message names it and what was wrong)
     * @throws IllegalArgumentException when a part refuses its state (the message names the file)
     */
    static Progress read(Path file, Check check, Checkpointable student, List<Checkpointable> trainables) throws IOException {
        checkHeader(file);
        verifyChecksum(file);
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(file), 1 << 16))) {
            byte[] magic = in.readNBytes(MAGIC.length);
            if (!java.util.Arrays.equals(magic, MAGIC)) {
                throw new IOException(file + " is not a Distill4J checkpoint (it does not start with \"D4JCKPT\")");
            }
            int version = in.readInt();
            if (version != VERSION) {
                throw new IOException(file + " is a version " + version + " checkpoint; this Distill4J reads version " + VERSION);
            }
            int n = count(in, file, "fingerprint entries");
            Map<String, String> fingerprint = new LinkedHashMap<>();
            for (int i = 0; i < n; i++) {
                fingerprint.put(readString(in, file), readString(in, file));
            }
            int epochsDone = in.readInt();
            int batchesDone = in.readInt();
            long trainNanos = in.readLong();
            long samples = in.readLong();
            long wall = in.readLong();
            long epochNanos = in.readLong();
            double lossSum = in.readDouble();
            Map<String, Double> termSums = readTerms(in, file);
            long root = in.readLong();
            long node = in.readLong();
            String engine = readString(in, file);
            int h = count(in, file, "epoch metrics");
            List<EpochMetrics> history = new ArrayList<>(h);
            for (int i = 0; i < h; i++) {
                int epoch = in.readInt();
                int epochs = in.readInt();
                double loss = in.readDouble();
                Map<String, Double> terms = readTerms(in, file);
                history.add(new EpochMetrics(epoch, epochs, loss, terms, in.readDouble(), in.readDouble(), in.readDouble(),
                        in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble()));
            }
            Progress p = new Progress(fingerprint, epochsDone, batchesDone, trainNanos, samples, wall, epochNanos, lossSum, termSums,
                    root, node, engine, history);
            check.accept(p);
            List<Checkpointable.Restore> restores = new ArrayList<>();
            try {
                restores.add(student.readState(in));
                endOfState(in, file, "the student's state");
                int t = in.readInt();
                if (t != trainables.size()) {
                    throw new IllegalArgumentException("it holds the state of " + t + " trainable feature losses; this run has "
                            + trainables.size());
                }
                for (int i = 0; i < t; i++) {
                    restores.add(trainables.get(i).readState(in));
                    endOfState(in, file, "trainable feature loss " + (i + 1) + "'s state");
                }
            } catch (IllegalArgumentException e) {
                throw new org.distill4j.checkpoint.CheckpointMismatchException("the checkpoint " + file + " does not fit this run: " + e.getMessage()
                        + ". Resume with the same models, or train from the start with Checkpoints.startOver() or by deleting the file", e);
            } catch (EOFException e) {
                throw e;
            } catch (IOException e) { // a part refused its state (its version, a count out of range): it does not know the file
                if (String.valueOf(e.getMessage()).startsWith(file.toString())) {
                    throw e; // this class's own checks between the parts name it already
                }
                throw new IOException(file + ": " + e.getMessage(), e);
            }
            for (Checkpointable.Restore r : restores) {
                r.apply();
            }
            return p;
        } catch (EOFException e) {
            throw new IOException(file + " ends early: a truncated checkpoint", e);
        }
    }

    /**
     * The magic and the version, before the checksum: a foreign file is named as one, and a later format (whose checksum
     * may cover other bytes) by its version, rather than both as a damaged checkpoint.
     */
    private static void checkHeader(Path file) throws IOException {
        byte[] head;
        try (InputStream in = Files.newInputStream(file)) {
            head = in.readNBytes(MAGIC.length + Integer.BYTES);
        }
        if (head.length < MAGIC.length || !java.util.Arrays.equals(head, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            throw new IOException(file + " is not a Distill4J checkpoint (it does not start with \"D4JCKPT\")");
        }
        if (head.length == MAGIC.length + Integer.BYTES) {
            int version = java.nio.ByteBuffer.wrap(head, MAGIC.length, Integer.BYTES).getInt();
            if (version != VERSION) {
                throw new IOException(file + " is a version " + version + " checkpoint; this Distill4J reads version " + VERSION);
            }
        }
    }

    private static void verifyChecksum(Path file) throws IOException {
        long size = Files.size(file);
        long body = size - Integer.BYTES;
        if (body < MAGIC.length) {
            throw new IOException(file + " is too short to be a checkpoint (" + size + " bytes)");
        }
        CRC32C crc = new CRC32C();
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
             CheckedInputStream in = new CheckedInputStream(raw, crc)) {
            byte[] buf = new byte[1 << 16];
            long left = body;
            while (left > 0) {
                int r = in.read(buf, 0, (int) Math.min(buf.length, left));
                if (r < 0) {
                    throw new IOException(file + " ends early: a truncated checkpoint");
                }
                left -= r;
            }
            int expected = new DataInputStream(raw).readInt();
            if ((int) crc.getValue() != expected) {
                throw new IOException(file + " is damaged: its CRC32C is " + Integer.toHexString((int) crc.getValue())
                        + ", the file says " + Integer.toHexString(expected) + "; delete it to train from the start, or use a copy");
            }
        }
    }

    private static void endOfState(DataInputStream in, Path file, String what) throws IOException {
        int marker = in.readInt();
        if (marker != END_OF_STATE) {
            throw new IOException(file + ": " + what + " did not end where it was written (the reader consumed another number of"
                    + " bytes than the writer wrote)");
        }
    }

    private static int count(DataInputStream in, Path file, String what) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > MAX_COUNT) {
            throw new IOException(file + " is damaged: " + n + " " + what);
        }
        return n;
    }

    private static void writeTerms(DataOutputStream out, Map<String, Double> terms) throws IOException {
        out.writeInt(terms.size());
        // in the loss's order (kd before ce, then feature terms), as a run that was never interrupted lists them
        for (Map.Entry<String, Double> e : terms.entrySet()) {
            writeString(out, e.getKey());
            out.writeDouble(e.getValue());
        }
    }

    private static Map<String, Double> readTerms(DataInputStream in, Path file) throws IOException {
        int n = count(in, file, "loss terms");
        Map<String, Double> m = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            m.put(readString(in, file), in.readDouble());
        }
        return m;
    }

    private static void writeString(DataOutputStream out, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
    }

    private static String readString(DataInputStream in, Path file) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > MAX_STRING_BYTES) {
            throw new IOException(file + " is damaged: a string of " + n + " bytes");
        }
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            throw new EOFException();
        }
        return new String(b, StandardCharsets.UTF_8);
    }
}
