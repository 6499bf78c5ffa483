package org.distill4j.data;

import java.util.Random;

/** Two augmentations, one after the other ({@link Augmentation#then}). */
final class AugmentationChain implements Augmentation {
    private final Augmentation first;
    private final Augmentation second;

    AugmentationChain(Augmentation first, Augmentation second) {
        if (first == null || second == null) {
            throw new IllegalArgumentException("an augmentation chain needs both augmentations, got " + first + " then " + second);
        }
        this.first = first;
        this.second = second;
    }

    @Override
    public Batch apply(Batch batch, Random rng) {
        Batch mid = first.apply(batch, rng);
        if (mid == null || mid.size() != batch.size() || mid.featureCount() != batch.featureCount()) {
            throw new IllegalStateException("augmentation " + first.describe() + " returned " + (mid == null ? "no batch"
                    : mid.size() + " rows of " + mid.featureCount() + " features") + " for " + batch.size() + " rows of "
                    + batch.featureCount() + " features, before " + second.describe());
        }
        return second.apply(mid, rng);
    }

    @Override
    public void checkFeatureCount(int featureCount) {
        first.checkFeatureCount(featureCount);
        second.checkFeatureCount(featureCount);
    }

    @Override
    public boolean removesLabels() {
        return first.removesLabels() || second.removesLabels();
    }

    @Override
    public String describe() {
        return first.describe() + " then " + second.describe();
    }

    @Override
    public String toString() {
        return describe();
    }
}
