package org.distill4j.data;

import org.distill4j.loss.LogitBatch;

import java.util.Arrays;
import java.util.Objects;
import java.util.Random;

/**
 * An in-memory classification dataset: {@code size x featureCount} row-major float features and one
 * hard label in {@code [0, classes)} per row, {@link #UNLABELED} for a sample without one (unlabeled transfer
 * data: the teacher's outputs are its only targets), or {@link #IGNORE_INDEX} for a sample that takes no part
 * in training or evaluation (padding, e.g. the padded positions of a language model's {@code [batch, seq]}
 * rows flattened to {@code b * seq + s}).
 *
 * <p>An unlabeled sample trains on every teacher term of the loss; a hard-label term (the {@code ce} loss,
 * {@code kd}'s {@code alpha * CE}) is 0 on it (see {@link LogitBatch}). It is not evaluated: test accuracy, teacher
 * agreement and KL count the samples that have a class label.
 *
 * <p>An ignored sample keeps its row (so the rows stay aligned with a stored teacher's), but the
 * {@code Distiller} leaves it out: an ignored sample adds no term to any loss, logit or feature, gets no
 * gradient and is not counted in any mean; test accuracy, teacher agreement and KL count only the samples
 * with a class label.
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
    private final int labeledSize;
    private final int unlabeledSize;

    /**
     * A label that leaves a sample out of training and evaluation: {@link LogitBatch#IGNORE_INDEX}, -100 (PyTorch's
     * {@code ignore_index}).
     */
    public static final int IGNORE_INDEX = LogitBatch.IGNORE_INDEX;

    /**
     * A label that marks a sample without a hard label: {@link LogitBatch#UNLABELED}, -1. It trains on the teacher's
     * outputs only, and is not evaluated.
     */
    public static final int UNLABELED = LogitBatch.UNLABELED;

    /**
     * @param labels one per sample: a class in {@code [0, classes)}, {@link #UNLABELED} or {@link #IGNORE_INDEX}
     * @throws IllegalArgumentException naming the dataset and the sample when a label is none of these
     */
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
        int labeled = 0;
        int unlabeled = 0;
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] == IGNORE_INDEX) {
                continue;
            }
            if (labels[i] == UNLABELED) {
                unlabeled++;
                continue;
            }
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException(name + ": label of sample " + i + " is " + labels[i]
                        + ", expected a class in [0, " + classes + "), UNLABELED (" + UNLABELED + ") for a sample without one,"
                        + " or IGNORE_INDEX (" + IGNORE_INDEX + ") for a sample to leave out");
            }
            labeled++;
        }
        this.features = features;
        this.featureCount = featureCount;
        this.labels = labels;
        this.classes = classes;
        this.labeledSize = labeled;
        this.unlabeledSize = unlabeled;
    }

    /** The dataset's name, as given to the constructor; error messages about the data start with it. Never null. */
    public String name() {
        return name;
    }

    /** The number of samples (rows), labeled, {@link #UNLABELED} and {@link #IGNORE_INDEX} ones alike. */
    public int size() {
        return labels.length;
    }

    /**
     * The number of samples whose label is a class (neither {@link #UNLABELED} nor {@link #IGNORE_INDEX}): those that are
     * evaluated, and that hard-label terms train on.
     */
    public int labeledSize() {
        return labeledSize;
    }

    /** The number of samples labeled {@link #UNLABELED}: they train on the teacher's outputs only. */
    public int unlabeledSize() {
        return unlabeledSize;
    }

    /** The number of samples that take part in training: labeled and {@link #UNLABELED} ones (not {@link #IGNORE_INDEX}). */
    public int usedSize() {
        return labeledSize + unlabeledSize;
    }

    /** Whether sample {@code i} has a class label (neither {@link #UNLABELED} nor {@link #IGNORE_INDEX}). */
    public boolean isLabeled(int i) {
        return labels[i] >= 0;
    }

    /** Whether sample {@code i} takes part in training (is labeled or {@link #UNLABELED}, not {@link #IGNORE_INDEX}). */
    public boolean isUsed(int i) {
        return labels[i] != IGNORE_INDEX;
    }

    /** The number of feature values per sample, {@code > 0}. */
    public int featureCount() {
        return featureCount;
    }

    /** The number of classes, {@code > 0}: every class label is in {@code [0, classes)}. */
    public int classes() {
        return classes;
    }

    /** Row-major features, shared (do not modify). */
    public float[] features() {
        return features;
    }

    /** Labels, shared (do not modify); {@link #UNLABELED} for a sample without one, {@link #IGNORE_INDEX} for a sample left out. */
    public int[] labels() {
        return labels;
    }

    /** The samples at the given indices, in that order. */
    public Dataset subset(int[] indices, String newName) {
        long values = (long) indices.length * featureCount;
        if (values > Integer.MAX_VALUE - 8) { // an int product would wrap around to a negative or a too small size
            throw new IllegalArgumentException(name + ": " + indices.length + " samples of " + featureCount + " features are too many"
                    + " values for one array (" + values + ")");
        }
        float[] f = new float[(int) values];
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

    /**
     * The same samples without their hard labels: every label {@link #UNLABELED}, but those {@link #IGNORE_INDEX}, which
     * stay (transfer data that only the teacher's outputs train on).
     */
    public Dataset withoutLabels(String newName) {
        int[] l = labels.clone();
        for (int i = 0; i < l.length; i++) {
            if (l[i] != IGNORE_INDEX) {
                l[i] = UNLABELED;
            }
        }
        return new Dataset(newName, features, featureCount, l, classes);
    }

    /**
     * The samples of {@code first}, then those of {@code second}, labels as they are (e.g. a labeled transfer set and an
     * unlabeled one).
     *
     * @throws IllegalArgumentException when their feature counts or classes differ, naming both
     */
    public static Dataset concat(String name, Dataset first, Dataset second) {
        if (first.featureCount != second.featureCount || first.classes != second.classes) {
            throw new IllegalArgumentException("cannot join " + first.name + " (" + first.featureCount + " features, " + first.classes
                    + " classes) and " + second.name + " (" + second.featureCount + " features, " + second.classes
                    + " classes): both need the same feature count and classes");
        }
        long values = (long) first.features.length + second.features.length;
        if (values > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("joining " + first.name + " and " + second.name + " gives " + values
                    + " feature values, too many for one array");
        }
        float[] f = Arrays.copyOf(first.features, (int) values);
        System.arraycopy(second.features, 0, f, first.features.length, second.features.length);
        int[] l = Arrays.copyOf(first.labels, first.labels.length + second.labels.length);
        System.arraycopy(second.labels, 0, l, first.labels.length, second.labels.length);
        return new Dataset(name, f, first.featureCount, l, first.classes);
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
     *
     * @see #featureFingerprint()
     */
    public long fingerprint() {
        long f = fingerprint;
        if (f == 0) {
            computeFingerprints();
            f = fingerprint;
        }
        return f;
    }

    /**
     * A CRC32C over the sample count, feature count and every feature value, in order, but not the labels: what a
     * teacher's outputs depend on. A soft-target store labeled on this dataset serves every dataset of the same
     * feature fingerprint, so also these samples with their labels removed ({@link #withoutLabels(String)}), changed, or
     * some of them {@link #IGNORE_INDEX}; one feature value changed (by a bit), the samples in another order, or
     * another sample or feature count give another fingerprint. Computed once and cached; never 0.
     *
     * @see #fingerprint()
     */
    public long featureFingerprint() {
        long f = featureFingerprint;
        if (f == 0) {
            computeFingerprints();
            f = featureFingerprint;
        }
        return f;
    }

    private volatile long fingerprint;
    private volatile long featureFingerprint;

    /**
     * Both fingerprints in one pass over the features: the CRC32C of the counts and the features (the feature
     * fingerprint), continued over the labels (the fingerprint), each with bit 40 set (never 0, so 0 means "not computed").
     */
    private void computeFingerprints() {
        java.util.zip.CRC32C all = new java.util.zip.CRC32C();
        java.util.zip.CRC32C featuresOnly = new java.util.zip.CRC32C();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16);
        b.putInt(size()).putInt(featureCount);
        for (float x : features) {
            if (b.remaining() < 4) {
                drain(b, all, featuresOnly);
            }
            b.putFloat(x);
        }
        drain(b, all, featuresOnly);
        for (int l : labels) {
            if (b.remaining() < 4) {
                drain(b, all, null);
            }
            b.putInt(l);
        }
        drain(b, all, null);
        featureFingerprint = featuresOnly.getValue() | (1L << 40);
        fingerprint = all.getValue() | (1L << 40);
    }

    /** Feeds what {@code b} holds to {@code first} (and {@code second}, unless null) and empties it. */
    private static void drain(java.nio.ByteBuffer b, java.util.zip.CRC32C first, java.util.zip.CRC32C second) {
        b.flip();
        if (second != null) {
            second.update(b.duplicate());
        }
        first.update(b);
        b.clear();
    }

    @Override
    public String toString() {
        return name + " (" + size() + " samples" + (labeledSize < size() ? ", " + labeledSize + " labeled" : "")
                + (unlabeledSize > 0 ? ", " + unlabeledSize + " unlabeled" : "") + ", " + featureCount + " features, " + classes + " classes)";
    }
}
