package org.distill4j.train;

import org.distill4j.backend.ComputeBackend;
import org.distill4j.loss.LogitLoss;
import org.distill4j.student.Student;
import org.distill4j.teacher.Teacher;

import java.util.List;
import java.util.Objects;

/**
 * Offers a {@link StepEngine} for a run, found with {@link java.util.ServiceLoader} (or given to
 * {@link Distiller.Builder#stepEngines}). An offer is an engine or the reason there is none, which the
 * run logs and records, so a user sees why the whole step did not move to, say, the GPU.
 */
public interface StepEngineProvider {

    /** The engine's name, e.g. {@code cuda-mlp}; {@code -Ddistill.engine=<name>} asks for it. */
    String name();

    /**
     * An engine for this run, or the reason this provider has none. Never throws for an unsupported setup; throws
     * {@link InvalidSettingException} for a setting of its own (a system property) whose value it cannot read, which fails
     * the run, also under {@code auto}: a typo must not quietly move the run to another engine. Anything else it throws
     * is taken as a decline with that error as its reason.
     */
    Offer offer(Setup setup);

    /**
     * A provider's own setting (e.g. {@code distill.cuda.mlp.precision}) holds a value the provider cannot read: the run
     * fails with it, naming the setting, the value and what was expected, instead of taking another engine.
     */
    final class InvalidSettingException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        /** The setting's name, e.g. {@code distill.cuda.mlp.precision}. */
        private final String setting;
        /** The setting's value, as given. */
        private final String value;
        /** What the value may be, e.g. {@code f32 or bf16}. */
        private final String expected;

        /**
         * @param setting  the setting, e.g. {@code distill.cuda.mlp.precision}
         * @param value    its value, as given
         * @param expected what it may be, e.g. {@code f32 or bf16}
         */
        public InvalidSettingException(String setting, String value, String expected) {
            super(setting + " is '" + value + "'; expected " + expected);
            this.setting = setting;
            this.value = value;
            this.expected = expected;
        }

        /** The setting, e.g. {@code distill.cuda.mlp.precision}. */
        public String setting() {
            return setting;
        }

        /** Its value, as given. */
        public String value() {
            return value;
        }

        /** What it may be. */
        public String expected() {
            return expected;
        }
    }

    /**
     * Why this engine can take no run at all on {@code backend} (e.g. a GPU engine on the CPU backend), or null when some
     * run may get an offer. An application asks this before its runs ({@link StepEngines#checkRequested(ComputeBackend)}),
     * so an engine requested by name that could never run fails before any data is read or model trained, not at the
     * first run. The default is null: only {@link #offer} knows. Never throws.
     */
    default String unavailableOn(ComputeBackend backend) {
        return null;
    }

    /**
     * What a run is made of.
     *
     * @param teacher      the teacher, or null
     * @param student      the student
     * @param loss         the logit loss as configured, before any epoch's settings: each step is given its epoch's loss
     *                     ({@link StepEngine#step}), which can differ from this one in what changes per epoch (the
     *                     temperature and {@code kd}'s alpha under schedules; what an {@link org.distill4j.loss.EpochAware}
     *                     loss changes, such as a {@code WeightedSum}'s term weights or {@code dkd}'s warm-up factor), not in
     *                     its name or reduction
     * @param backend      the compute backend of the run
     * @param batchSize    the largest batch
     * @param featureTerms the feature losses, if any
     * @param seed         the run's seed
     */
    record Setup(Teacher teacher, Student student, LogitLoss loss, ComputeBackend backend, int batchSize,
                 List<Distiller.FeatureTerm> featureTerms, long seed) {
        /**
         * Keeps an unmodifiable copy of {@code featureTerms}.
         *
         * @throws NullPointerException if the student, the loss, the backend or {@code featureTerms} (or one of its
         *                              elements) is null
         */
        public Setup {
            Objects.requireNonNull(student, "student");
            Objects.requireNonNull(loss, "loss");
            Objects.requireNonNull(backend, "backend");
            featureTerms = List.copyOf(featureTerms);
        }
    }

    /** An engine, or why not. */
    record Offer(StepEngine engine, String reason) {
        /**
         * Checks that the offer is exactly one of the two.
         *
         * @throws IllegalArgumentException when both {@code engine} and {@code reason} are given, or neither
         */
        public Offer {
            if ((engine == null) == (reason == null)) {
                throw new IllegalArgumentException("an offer is an engine or a reason, not both or neither");
            }
        }

        /**
         * An offer of {@code engine}.
         *
         * @throws NullPointerException if {@code engine} is null
         */
        public static Offer of(StepEngine engine) {
            return new Offer(Objects.requireNonNull(engine, "engine"), null);
        }

        /**
         * No engine, for {@code reason}, which the run logs and records (e.g. {@code "needs the CUDA backend"}).
         *
         * @throws NullPointerException if {@code reason} is null
         */
        public static Offer decline(String reason) {
            return new Offer(null, Objects.requireNonNull(reason, "reason"));
        }
    }
}
