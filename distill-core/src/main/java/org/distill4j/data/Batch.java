package org.distill4j.data;

/**
 * One minibatch: row-major features {@code [size, featureCount]}, hard labels, and the indices of
 * the samples in their source dataset (so a stored teacher can look its rows up).
 *
 * @param indices      sample indices in the source dataset, one per row
 * @param features     row-major features, {@code size * featureCount} values
 * @param featureCount values per row, {@code > 0}
 * @param labels       hard labels, one per row
 */
public record Batch(int[] indices, float[] features, int featureCount, int[] labels) {
    /**
     * Checks that the three arrays agree: one index and one label per row, {@code featureCount} feature values per row.
     * The arrays are kept as given, not copied.
     *
     * @throws IllegalArgumentException when {@code featureCount} is not {@code > 0}; when the lengths disagree, naming all
     *                                  of them
     * @throws NullPointerException     if an array is null
     */
    public Batch {
        if (featureCount <= 0) {
            throw new IllegalArgumentException("batch featureCount must be > 0, got " + featureCount);
        }
        if (indices.length != labels.length || (long) labels.length * featureCount != features.length) {
            throw new IllegalArgumentException("batch shapes disagree: " + indices.length + " indices, " + labels.length
                    + " labels, " + features.length + " feature values for " + featureCount + " features per row");
        }
    }

    /** The number of rows in the batch (the length of {@link #labels()}). */
    public int size() {
        return labels.length;
    }

    /**
     * The rows {@code [from, to)} of {@code data} as a batch (copies the features).
     *
     * @throws IndexOutOfBoundsException unless {@code 0 <= from <= to <= data.size()}, naming the dataset
     */
    public static Batch range(Dataset data, int from, int to) {
        if (from < 0 || from > to || to > data.size()) {
            throw new IndexOutOfBoundsException(data.name() + ": rows [" + from + ", " + to + ") of " + data.size()
                    + " samples, expected 0 <= from <= to <= " + data.size());
        }
        int[] idx = new int[to - from];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = from + i;
        }
        return of(data, idx);
    }

    /**
     * The given rows of {@code data} as a batch (copies the features).
     *
     * @throws IndexOutOfBoundsException for an index outside {@code [0, data.size())}, naming the dataset, the index and its row
     */
    public static Batch of(Dataset data, int[] indices) {
        int d = data.featureCount();
        float[] f = new float[Math.multiplyExact(indices.length, d)];
        int[] l = new int[indices.length];
        for (int i = 0; i < indices.length; i++) {
            if (indices[i] < 0 || indices[i] >= data.size()) {
                throw new IndexOutOfBoundsException(data.name() + ": sample index " + indices[i] + " (row " + i + " of the batch)"
                        + " outside [0, " + data.size() + ")");
            }
            System.arraycopy(data.features(), indices[i] * d, f, i * d, d);
            l[i] = data.labels()[indices[i]];
        }
        return new Batch(indices.clone(), f, d, l);
    }
}
