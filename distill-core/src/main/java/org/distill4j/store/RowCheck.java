package org.distill4j.store;

import java.nio.ByteBuffer;
import java.util.Arrays;
import org.distill4j.loss.LossMath;

/**
 * What every stored row holds, checked on its encoded bytes: by the reader the first time a chunk is read, by
 * {@link SoftTargetStore#verify()}, and by a resume for the chunks it keeps. {@link StoreWriter} checks the same
 * rules on the floats it is given, before it encodes them, so a store it writes always passes.
 *
 * <ul>
 *   <li>dense rows: each value finite or {@code -Infinity} (a class of zero probability: a masked class, one
 *       {@code VocabularyAlignment} PAD added, a zero probability), never NaN or {@code +Infinity}, and at least
 *       one finite value per row, as the losses require of teacher rows;</li>
 *   <li>top-k rows: ids in {@code [0, V)} and distinct, log-probabilities finite and at most
 *       {@value StoreWriter#MAX_LOG_PROB} (a zero probability is stored as {@code log(Float.MIN_VALUE)}), and the entries'
 *       probabilities, as stored, summing to at most 1 + {@value #SUM_TOLERANCE} ({@link #topKMass}): more is not one
 *       distribution (logits taken for log-probabilities), and {@code topk-kd}'s rest bucket would have negative mass.</li>
 * </ul>
 */
final class RowCheck {
    /**
     * How far above 1 the probabilities of a top-k row's entries may sum (the producer's rounding, and the dtype's), as
     * the writer, the reader and an import check it; an import also allows a dense row of probabilities this far from 1.
     */
    static final double SUM_TOLERANCE = org.distill4j.loss.TopKKd.MASS_TOLERANCE; // the bound topk-kd's rest tail takes

    private RowCheck() {
    }

    /**
     * What is wrong with a top-k row whose entries' probabilities sum to {@code mass} ({@code exp} of each
     * log-probability as the store's dtype holds it, summed in double in the row's order), or null: it may be at most
     * {@code 1 + SUM_TOLERANCE}.
     */
    static String topKMass(double mass) {
        return mass > 1 + SUM_TOLERANCE ? String.format(java.util.Locale.ROOT,
                "the entries' probabilities sum to %.4f, expected at most 1", mass) : null;
    }

    /**
     * Checks {@code rows} rows of {@code h}'s layout laid out from byte 0 of {@code b} (little-endian).
     *
     * @param firstRow the store row of the first one, for the message
     * @return null when all are valid, else what is wrong with the first bad row, naming the row and class or entry
     */
    static String check(StoreHeader h, ByteBuffer b, int rows, long firstRow) {
        return h.layout() == StoreHeader.Layout.DENSE ? dense(h, b, rows, firstRow) : topK(h, b, rows, firstRow);
    }

    private static String dense(StoreHeader h, ByteBuffer b, int rows, long firstRow) {
        ValueCodec codec = h.codec();
        int v = h.vocab();
        // each row is copied into an array (a bulk copy) and scanned there: reading the mapping value by value is several
        // times slower than the chunk's CRC
        boolean wide = codec == ValueCodec.F32;
        int[] ints = wide ? new int[v] : null;
        short[] shorts = wide ? null : new short[v];
        java.nio.IntBuffer asInts = wide ? b.duplicate().clear().order(java.nio.ByteOrder.LITTLE_ENDIAN).asIntBuffer() : null;
        java.nio.ShortBuffer asShorts = wide ? null : b.duplicate().clear().order(java.nio.ByteOrder.LITTLE_ENDIAN).asShortBuffer();
        // the exponent bits, all set for infinities and NaN, and -Infinity's pattern
        int exponent = codec == ValueCodec.F32 ? 0x7f800000 : codec == ValueCodec.F16 ? 0x7c00 : 0x7f80;
        int negativeInfinity = codec == ValueCodec.F32 ? 0xff800000 : codec == ValueCodec.F16 ? 0xfc00 : 0xff80;
        for (int r = 0; r < rows; r++) {
            // a branch-free count of the values whose exponent bits are all set (infinities, NaN), then a closer look at them
            int special = 0;
            int bad = -1;
            if (wide) {
                asInts.get(r * v, ints);
                for (int i = 0; i < v; i++) {
                    special += (ints[i] & exponent) == exponent ? 1 : 0;
                }
                for (int i = 0; i < v && special > 0 && bad < 0; i++) {
                    bad = (ints[i] & exponent) == exponent && ints[i] != negativeInfinity ? i : -1;
                }
            } else {
                asShorts.get(r * v, shorts);
                for (int i = 0; i < v; i++) {
                    special += (shorts[i] & exponent) == exponent ? 1 : 0;
                }
                for (int i = 0; i < v && special > 0 && bad < 0; i++) {
                    bad = (shorts[i] & exponent) == exponent && (shorts[i] & 0xffff) != negativeInfinity ? i : -1;
                }
            }
            boolean finite = special < v;
            if (bad >= 0) {
                return "row " + (firstRow + r) + ", class " + bad + " is " + codec.get(b, (r * v + bad) * codec.bytes())
                        + ", expected a finite value, or -Infinity for a class of zero probability";
            }
            if (!finite) {
                return "row " + (firstRow + r) + ": every value is -Infinity (no class has probability); expected at least one "
                        + "finite value";
            }
        }
        return null;
    }

    private static String topK(StoreHeader h, ByteBuffer b, int rows, long firstRow) {
        ValueCodec codec = h.codec();
        int k = h.k();
        int idBytes = h.idBytes();
        long rowBytes = h.rowBytes();
        int[] sorted = new int[k];
        for (int r = 0; r < rows; r++) {
            int base = (int) (r * rowBytes);
            double mass = 0;
            for (int j = 0; j < k; j++) {
                int at = base + j * idBytes;
                long id = 0;
                for (int byteIndex = 0; byteIndex < idBytes; byteIndex++) {
                    id |= (long) (b.get(at + byteIndex) & 0xff) << (8 * byteIndex);
                }
                if (id >= h.vocab()) {
                    return "row " + (firstRow + r) + ", entry " + j + ": class id " + id + " is outside [0, " + h.vocab() + ")";
                }
                float lp = codec.get(b, base + k * idBytes + j * codec.bytes());
                if (!(lp <= StoreWriter.MAX_LOG_PROB) || Float.isInfinite(lp)) {
                    return "row " + (firstRow + r) + ", entry " + j + " (class " + id + ") is " + lp + ", expected a finite "
                            + "log-probability <= 0 (a zero probability is stored as log(Float.MIN_VALUE))";
                }
                mass += LossMath.exp(lp);
                sorted[j] = (int) id;
            }
            Arrays.sort(sorted);
            for (int j = 1; j < k; j++) {
                if (sorted[j] == sorted[j - 1]) {
                    return "row " + (firstRow + r) + " repeats class " + sorted[j] + "; the ids of a row must be distinct";
                }
            }
            String tooMuch = topKMass(mass);
            if (tooMuch != null) {
                return "row " + (firstRow + r) + ": " + tooMuch + " (they are not log-probabilities of one distribution)";
            }
        }
        return null;
    }
}
