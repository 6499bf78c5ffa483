package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.TeacherValues;

/**
 * A frozen model that gives soft targets: for each row of a batch, {@link #classes()} values that
 * are logits or probabilities ({@link #values()}). Losses never see the model, only these rows.
 */
public interface Teacher {

    /** Values per row (the teacher's vocabulary or class count). */
    int classes();

    /** Whether {@link #outputs} returns logits or probabilities. */
    TeacherValues values();

    /** Row-major {@code [batch.size(), classes()]} outputs for the batch, in inference mode. */
    float[] outputs(Batch batch);

    /**
     * The rows to give a loss that softens teacher rows at temperature {@code temperature} ({@code softmax(values / T)},
     * as {@code kd} and every tempered loss do): the {@code Distiller} asks with the epoch loss's temperature (1 for a loss
     * without one). A teacher whose rows do not depend on T (a model's logits or probabilities, a store) keeps this
     * default, {@link #outputs(Batch)}; one whose soft targets are defined at T overrides it, as {@link EnsembleTeacher}
     * does (the average of its members' distributions softened at T), so that the loss's softening gives its targets
     * exactly. Wrappers ({@link VocabularyAlignment}, {@link TopKTeacher}) forward the temperature. Evaluation (teacher
     * agreement, KL) and labeling ask {@link #outputs(Batch)}, at T = 1.
     *
     * @param temperature the loss's temperature, finite and {@code > 0}
     */
    default float[] outputs(Batch batch, double temperature) {
        return outputs(batch);
    }

    /** A short description for logs and provenance. */
    String describe();

    /**
     * What this teacher's outputs depend on, as text: a content hash of its weights or model file where it
     * can compute one. A checkpoint records it, and a run resumes only with a teacher of the same identity
     * (another model of the same shape would otherwise pass). By default {@link #describe()}.
     */
    default String identity() {
        return describe();
    }

    /**
     * Whether this teacher can give outputs for the samples of {@code data} (a live model can for any
     * data; a stored teacher only for the data it was labeled on). The training loop checks it.
     */
    default boolean serves(org.distill4j.data.Dataset data) {
        return true;
    }

    /**
     * Whether this teacher's outputs come from the batch's features (a model does; a stored teacher looks its rows up by
     * the samples' indices). Only then can it see a batch whose features an {@link org.distill4j.data.Augmentation} changed:
     * the training loop refuses an augmentation with a teacher that does not.
     */
    default boolean readsFeatures() {
        return true;
    }

    /**
     * The named intermediate activation for the batch (inference mode), for feature losses.
     *
     * @throws UnsupportedOperationException when this teacher exposes no features
     * @throws IllegalArgumentException      for an unknown name, listing the known ones
     */
    default org.distill4j.data.Feature feature(Batch batch, String name) {
        throw new UnsupportedOperationException(describe() + " exposes no intermediate features");
    }
}
