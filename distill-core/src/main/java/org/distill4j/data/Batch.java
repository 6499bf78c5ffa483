package org.distill4j.data;

/**
 * One minibatch: row-major features {@code [size, featureCount]}, hard labels, and the indices of
 * the samples in their source dataset (so a stored teacher can look its rows up).
 *
 * @param indices      sample indices in the source dataset, one per row
 * @param features     row-major features, {@code size * featureCount} values
 * @param featureCount values per row
 * @param labels       hard labels, one per row
 */
public record Batch(int[] indices, float[] features, int featureCount, int[] labels) {
    public Batch {
        if (indices.length != labels.length || (long) labels.length * featureCount != features.length) {
            throw new IllegalArgumentException("batch shapes disagree: " + indices.length + " indices, " + labels.length
                    + " labels, " + features.length + " feature values for " + featureCount + " features per row");
        }
    }

    public int size() {
        return labels.length;
    }

    /** The rows {@code [from, to)} of {@code data} as a batch (copies the features). */
    public static Batch range(Dataset data, int from, int to) {
        int[] idx = new int[to - from];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = from + i;
        }
        return of(data, idx);
    }

    /** The given rows of {@code data} as a batch (copies the features). */
    public static Batch of(Dataset data, int[] indices) {
        int d = data.featureCount();
        float[] f = new float[indices.length * d];
        int[] l = new int[indices.length];
        for (int i = 0; i < indices.length; i++) {
            System.arraycopy(data.features(), indices[i] * d, f, i * d, d);
            l[i] = data.labels()[indices[i]];
        }
        return new Batch(indices.clone(), f, d, l);
    }
}
