package org.distill4j.data;

import java.util.Random;

/**
 * Transforms a training batch's inputs before the student and the teacher see them: both see the same transformed batch
 * (consistent views, which Beyer et al. found essential to distilling well: "Knowledge distillation: A good teacher is
 * patient and consistent", CVPR 2022). The {@code Distiller} applies it to every training batch, never to evaluation;
 * the teacher must compute its outputs from the features ({@link org.distill4j.teacher.Teacher#readsFeatures()}), which a
 * stored teacher does not.
 *
 * <p>An implementation returns a new batch with the same indices and feature count, the same number of rows, and labels
 * that still hold: a sample's class where its input still shows it, {@link Dataset#UNLABELED} where it no longer does (a
 * mixed pair of images has no class of its own; the teacher's outputs are then its only targets). It must not change
 * the batch it is given, and must draw its randomness from {@code rng} alone: the {@code Distiller} seeds it from the run's
 * seed, the epoch and the batch, so a run is reproducible and a resumed one takes the same batches.
 */
public interface Augmentation {

    /**
     * The transformed batch.
     *
     * @param batch a training batch (not changed)
     * @param rng   the only source of randomness
     */
    Batch apply(Batch batch, Random rng);

    /** A short description with the settings, for logs, provenance and checkpoints. */
    String describe();

    /**
     * Checks, before training, that this augmentation can take rows of {@code featureCount} features (an image transform:
     * that they are images of its shape). Nothing by default.
     *
     * @throws IllegalArgumentException naming both counts when it cannot
     */
    default void checkFeatureCount(int featureCount) {
    }

    /**
     * Whether {@link #apply} may turn a labeled row {@link Dataset#UNLABELED} (as mixup does with the rows it mixes). The
     * training loop then refuses, before it trains, a loss that needs every row's label (dkd) and a loss that reads no
     * teacher (such rows would train nothing). True unless an implementation says otherwise: an augmentation that keeps
     * every label (a shift, a flip) returns false.
     */
    default boolean removesLabels() {
        return true;
    }

    /**
     * This augmentation, then {@code next} on its result (both drawing from the same generator, this one first): e.g.
     * {@code shift(...).then(flip(...)).then(mixup(0.4))}, the label-keeping image transforms first, as image training
     * recipes order them.
     *
     * @throws IllegalArgumentException when {@code next} is null
     */
    default Augmentation then(Augmentation next) {
        return new AugmentationChain(this, next);
    }

    /**
     * Random translation of images by up to {@code maxShift} pixels along each axis, the background filled with 0; see
     * {@link RandomShift}.
     *
     * @param shape    the images' layout (e.g. {@code ImageShape.grayscale(28, 28)})
     * @param maxShift the largest move in pixels, {@code >= 1} and below the image's sides
     */
    static Augmentation shift(ImageShape shape, int maxShift) {
        return new RandomShift(shape, maxShift, 0f);
    }

    /**
     * Random horizontal flip of half the images; see {@link RandomFlip}.
     *
     * @param shape the images' layout
     */
    static Augmentation flip(ImageShape shape) {
        return new RandomFlip(shape, 0.5);
    }

    /**
     * Mixup of every row with another row of its batch (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR
     * 2018), as function matching uses it (Beyer et al. 2022); see {@link Mixup}.
     *
     * @param alpha the Beta(alpha, alpha) distribution of the mixing weight, {@code > 0}
     */
    static Augmentation mixup(double alpha) {
        return new Mixup(alpha, 1.0);
    }

    /**
     * Mixup of each row with probability {@code probability} (the others stay as they are, with their labels).
     *
     * @param alpha       the Beta(alpha, alpha) distribution of the mixing weight, {@code > 0}
     * @param probability the chance that a row is mixed, in {@code (0, 1]}
     */
    static Augmentation mixup(double alpha, double probability) {
        return new Mixup(alpha, probability);
    }
}
