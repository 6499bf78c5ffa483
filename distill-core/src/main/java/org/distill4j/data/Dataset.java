package org.distill4j.data;

import java.util.Arrays;
import java.util.Objects;
import java.util.Random;

/**
 * An in-memory classification dataset: {@code size x featureCount} row-major float features and one
 * hard label in {@code [0, classes)} per row.
 *
 * <p>Immutable by convention: the arrays are not copied on construction for speed, and callers must
 * not change them afterwards. {@link #subset}, {@link #head} and {@link #shuffled} make new
 * datasets.
 */
public final class Dataset {
    private final String name;
    private final float[] features;
    private final int featureCount;
    private final int[] labels;
    private final int classes;

    public Dataset(String name, float[] features, int featureCount, int[] labels, int classes) {
        this.name = Objects.requireNonNull(name, "name");
        Objects.requireNonNull(features, "features");
        Objects.requireNonNull(labels, "labels");
        if (featureCount <= 0) {
            throw new IllegalArgumentException(name + ": featureCount must be > 0, got " + featureCount);
        }
        if (classes <= 0) {
            throw new IllegalArgumentException(name + ": classes must be > 0, got " + classes);
        }
        if ((long) labels.length * featureCount != features.length) {
            throw new IllegalArgumentException(name + ": " + features.length + " feature values for " + labels.length
                    + " labels, expected labels x featureCount = " + labels.length + " x " + featureCount);
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException(name + ": label of sample " + i + " is " + labels[i]
                        + ", expected a class in [0, " + classes + ")");
            }
        }
        this.features = features;
        this.featureCount = featureCount;
        this.labels = labels;
        this.classes = classes;
    }

    public String name() {
        return name;
    }

    public int size() {
        return labels.length;
    }

    public int featureCount() {
        return featureCount;
    }

    public int classes() {
        return classes;
    }

    /** Row-major features, shared (do not modify). */
    public float[] features() {
        return features;
    }

    /** Labels, shared (do not modify). */
    public int[] labels() {
        return labels;
    }

    /** The samples at the given indices, in that order. */
    public Dataset subset(int[] indices, String newName) {
        float[] f = new float[indices.length * featureCount];
        int[] l = new int[indices.length];
        for (int i = 0; i < indices.length; i++) {
            int src = indices[i];
            if (src < 0 || src >= size()) {
                throw new IndexOutOfBoundsException(name + ": sample index " + src + " outside [0, " + size() + ")");
            }
            System.arraycopy(features, src * featureCount, f, i * featureCount, featureCount);
            l[i] = labels[src];
        }
        return new Dataset(newName, f, featureCount, l, classes);
    }

    /** The first {@code n} samples (all of them when {@code n >= size()}). */
    public Dataset head(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("head size must be >= 0, got " + n);
        }
        if (n >= size()) {
            return this;
        }
        return new Dataset(name + "[:" + n + "]", Arrays.copyOf(features, n * featureCount), featureCount,
                Arrays.copyOf(labels, n), classes);
    }

    /** A copy in a random order fixed by {@code seed}. */
    public Dataset shuffled(long seed) {
        return subset(permutation(size(), new Random(seed)), name);
    }

    /** A uniformly random permutation of {@code [0, n)} (Fisher-Yates). */
    public static int[] permutation(int n, Random rng) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /**
     * A CRC32C over the sample count, feature count, every feature value and every label: identifies
     * the exact data (and order) a stored teacher was labeled on. Computed once and cached.
     */
    public long fingerprint() {
        long f = fingerprint;
        if (f == 0) {
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16);
            b.putInt(size()).putInt(featureCount);
            for (float x : features) {
                if (b.remaining() < 4) {
                    b.flip();
                    crc.update(b);
                    b.clear();
                }
                b.putFloat(x);
            }
            for (int l : labels) {
                if (b.remaining() < 4) {
                    b.flip();
                    crc.update(b);
                    b.clear();
                }
                b.putInt(l);
            }
            b.flip();
            crc.update(b);
            f = crc.getValue() | (1L << 40); // never 0, so 0 can mean "not computed"
            fingerprint = f;
        }
        return f;
    }

    private volatile long fingerprint;

    @Override
    public String toString() {
        return name + " (" + size() + " samples, " + featureCount + " features, " + classes + " classes)";
    }
}
