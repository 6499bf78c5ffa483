package org.distill4j.train;

import org.distill4j.backend.Backends;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.checkpoint.Checkpointable;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.Feature;
import org.distill4j.loss.BadRowException;
import org.distill4j.loss.EpochAware;
import org.distill4j.loss.FeatureBatch;
import org.distill4j.loss.FeatureLoss;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TemperatureScaled;
import org.distill4j.student.Student;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.CancellationException;

/**
 * The distillation training loop: for every minibatch, teacher outputs, student forward, loss value
 * and {@code dLoss/dLogits} on the compute backend, student backward and optimizer step. After each
 * epoch it measures test accuracy, top-1 agreement with the teacher and throughput, logs them
 * through SLF4J and tells the listeners.
 *
 * <p>The epoch loss and its terms are means per trained sample whatever the loss's reduction: the labeled ones, and the
 * {@link Dataset#UNLABELED} ones where a term reads the teacher (where none does, they are left out as ignored ones are).
 *
 * <p>Samples labeled {@link Dataset#IGNORE_INDEX} (padding) take no part: each epoch shuffles all samples and trains the
 * others in that order, in batches of {@code batchSize}, so an ignored sample adds no term to any loss (logit or
 * feature), gets no gradient, is not counted in any mean and does not move batch statistics or random draws; a run trains
 * as on the data without them. Test accuracy, teacher agreement and KL count only labeled test samples.
 *
 * <p>Reproducible: the seed fixes the shuffling order and ND4J's random generator (dropout), so the
 * same seed, data and models give the same numbers on the same backend. The last, smaller batch of
 * an epoch is trained too.
 *
 * <p>Resumable: with {@link Builder#checkpoints} the run saves its state at epoch ends (and, if asked,
 * every so many steps) and a run that finds a checkpoint of the same settings continues from it; on the
 * CPU path the result is the same, bit for bit, as a run that was never interrupted. See {@link Checkpoints}.
 *
 * <p>Cancellable: interrupting the thread that runs it ({@link Thread#interrupt()}, {@code Future.cancel(true)}) stops the
 * run before its next batch, evaluation or checkpoint save with a {@link CancellationException}; the thread's interrupt
 * status stays set, the last checkpoint stays as it was, and a later run resumes from it.
 *
 * <pre>{@code
 * DistillResult r = Distiller.builder()
 *         .teacher(Dl4jTeacher.of(teacherNet))
 *         .student(Dl4jStudent.of(studentNet))
 *         .loss(new SoftTargetKd(4.0, 0.1))
 *         .trainData(transferSet).testData(testSet)
 *         .epochs(30).batchSize(128).seed(42)
 *         .build()
 *         .run();
 * }</pre>
 */
public final class Distiller {
    private static final Logger LOG = LoggerFactory.getLogger(Distiller.class);
    /**
     * The teacher's test-set log-probabilities are kept (as floats) for the per-epoch KL only up to this
     * many values (256 MB); beyond, e.g. a large test set at an LLM vocabulary, the KL is not measured.
     */
    static final long MAX_KEPT_TEACHER_VALUES = 1L << 26;

    private final Teacher teacher;
    private final Student student;
    private final LogitLoss loss;
    private final Dataset train;
    private final Dataset test;
    private final int epochs;
    private final int batchSize;
    private final long seed;
    private final Schedule temperature;
    private final Schedule alpha;
    private final ComputeBackend backend;
    private final List<StepEngineProvider> stepEngines;
    private final String engineName;
    private final List<TrainingListener> listeners;
    private final List<FeatureTerm> featureTerms;
    private final Checkpoints checkpoints;
    private final org.distill4j.data.Augmentation augmentation;
    /** Whether a term reads the teacher, so UNLABELED samples train (else they are left out: they would add nothing). */
    private final boolean trainsUnlabeled;
    /** The samples an epoch trains on: without IGNORE_INDEX ones, and without UNLABELED ones unless {@link #trainsUnlabeled}. */
    private final int trainingSize;

    /**
     * A feature loss between a named student feature and a named teacher feature, with a weight.
     *
     * @param weight         multiplies the loss and its gradient
     * @param loss           the feature loss (a {@link FeatureLoss.Trainable} one is stepped after each backward)
     * @param studentFeature the student's feature name (for a ComputationGraph student, an extra output)
     * @param teacherFeature the teacher's feature name
     */
    public record FeatureTerm(double weight, FeatureLoss loss, String studentFeature, String teacherFeature) {
        /**
         * Checks the term.
         *
         * @throws NullPointerException     if {@code loss} or a feature name is null
         * @throws IllegalArgumentException if {@code weight} is negative, infinite or NaN
         */
        public FeatureTerm {
            Objects.requireNonNull(loss, "feature loss");
            Objects.requireNonNull(studentFeature, "student feature name");
            Objects.requireNonNull(teacherFeature, "teacher feature name");
            if (!Double.isFinite(weight) || weight < 0) {
                throw new IllegalArgumentException("feature loss weight must be finite and >= 0, got " + weight);
            }
        }
    }

    private Distiller(Builder b) {
        this.teacher = b.teacher;
        this.student = Objects.requireNonNull(b.student, "student is required: set it with student(...)");
        this.loss = Objects.requireNonNull(b.loss, "loss is required: set it with loss(...)");
        this.train = Objects.requireNonNull(b.train, "training data is required: set it with trainData(...)");
        this.test = b.test;
        this.epochs = b.epochs;
        this.batchSize = b.batchSize;
        this.seed = b.seed;
        this.temperature = b.temperature;
        this.alpha = b.alpha;
        this.backend = b.backend;
        this.stepEngines = b.stepEngines;
        this.engineName = b.engineName;
        this.listeners = List.copyOf(b.listeners);
        this.featureTerms = List.copyOf(b.featureTerms);
        this.checkpoints = b.checkpoints;
        this.augmentation = b.augmentation;
        this.trainsUnlabeled = readsTeacher(loss, !featureTerms.isEmpty());
        validate();
        this.trainingSize = trainsUnlabeled ? train.usedSize() : train.labeledSize();
    }

    private void validate() {
        if (epochs <= 0) {
            throw new IllegalArgumentException("epochs must be > 0, got " + epochs);
        }
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batchSize must be > 0, got " + batchSize);
        }
        if (train.size() == 0) {
            throw new IllegalArgumentException("training data " + train.name() + " is empty");
        }
        if (train.usedSize() == 0) {
            throw new IllegalArgumentException("training data " + train.name() + " has no sample to train on: all " + train.size()
                    + " labels are IGNORE_INDEX (" + Dataset.IGNORE_INDEX + "), which leaves a sample out of training and evaluation");
        }
        if (train.labeledSize() == 0 && !trainsUnlabeled) {
            throw new IllegalArgumentException("loss '" + loss.name() + "' has no teacher term, so it trains on hard labels only, but"
                    + " training data " + train.name() + " has no labeled sample (" + train.unlabeledSize() + " UNLABELED, "
                    + (train.size() - train.usedSize()) + " IGNORE_INDEX)");
        }
        if (test != null && test.size() > 0 && test.labeledSize() == 0) {
            throw new IllegalArgumentException("test data " + test.name() + " has no labeled sample to evaluate: all " + test.size()
                    + " labels are UNLABELED (" + Dataset.UNLABELED + ") or IGNORE_INDEX (" + Dataset.IGNORE_INDEX + ")");
        }
        if (!featureTerms.isEmpty() && teacher == null) {
            throw new IllegalArgumentException("feature losses need a teacher: set it with teacher(...)");
        }
        if ((loss.needsTeacher() || loss.needsTopK()) && teacher == null) {
            throw new IllegalArgumentException("loss '" + loss.name() + "' needs a teacher: set it with teacher(...)");
        }
        if (teacher != null && !teacher.serves(train)) {
            throw new IllegalArgumentException("teacher " + teacher.describe() + " cannot serve the training data " + train
                    + ": a stored teacher serves only the samples it was labeled on (the same features in the same order, whatever"
                    + " their labels)");
        }
        if (augmentation != null && teacher != null && !teacher.readsFeatures()) {
            throw new IllegalArgumentException("augmentation " + augmentation.describe() + " changes the batches' inputs, but teacher "
                    + teacher.describe() + " does not read them (a stored teacher looks its rows up by sample): it would give each"
                    + " changed input the original sample's outputs; use a teacher that runs (a model), or no augmentation");
        }
        if (teacher != null && teacher.classes() != student.classes()) {
            throw new IllegalArgumentException("teacher has " + teacher.classes() + " classes but the student has "
                    + student.classes() + "; they must match, or align them explicitly with VocabularyAlignment.align(teacher, "
                    + student.classes() + ", TRUNCATE or PAD)");
        }
        if (student.classes() != train.classes()) {
            throw new IllegalArgumentException("student has " + student.classes() + " outputs but " + train.name()
                    + " has " + train.classes() + " classes");
        }
        if (test != null && test.featureCount() != train.featureCount()) {
            throw new IllegalArgumentException("test data has " + test.featureCount() + " features per sample, training data "
                    + train.featureCount());
        }
        if (test != null && test.classes() != train.classes()) {
            throw new IllegalArgumentException("test data " + test.name() + " has " + test.classes() + " classes, the training data "
                    + train.name() + " and the student " + train.classes() + ": its accuracy would count labels the student"
                    + " cannot predict as wrong");
        }
        if (temperature != null && !(loss instanceof TemperatureScaled)) {
            throw new IllegalArgumentException("a temperature schedule needs a temperature-scaled loss; loss '" + loss.name()
                    + "' has no temperature");
        }
        if (alpha != null && !(loss instanceof SoftTargetKd)) {
            throw new IllegalArgumentException("alpha schedules apply to loss 'kd'; for other losses weight the terms of a "
                    + "WeightedSum with schedules; loss '" + loss.name() + "' has no alpha");
        }
        if (loss.needsTopK() && loss.needsTeacher()) {
            throw new IllegalArgumentException("loss '" + loss.name() + "' needs both dense and top-k teacher outputs; "
                    + "one batch carries one of them");
        }
        if (loss.needsTopK() && !(teacher instanceof SparseTeacher)) {
            throw new IllegalArgumentException("loss '" + loss.name() + "' needs a top-k teacher (a SparseTeacher such as "
                    + "TopKTeacher.of(teacher, k)), got " + (teacher == null ? "none" : teacher.describe()));
        }
        if (loss.needsTeacher() && teacher instanceof SparseTeacher sparse && !sparse.hasDenseOutputs()) {
            // found now, not at the first batch
            throw new IllegalArgumentException("loss '" + loss.name() + "' reads the teacher's dense rows, but " + teacher.describe()
                    + " holds only top-" + sparse.k() + " entries per row; use topk-kd (alone, or with ce in a WeightedSum)");
        }
        if (checkpoints != null) {
            if (!(student instanceof Checkpointable)) {
                throw new IllegalArgumentException("checkpoints need a student that can save its state (a Checkpointable such as "
                        + "Dl4jStudent); " + student.describe() + " cannot");
            }
            for (FeatureTerm ft : featureTerms) {
                if (ft.loss() instanceof FeatureLoss.Trainable && !(ft.loss() instanceof Checkpointable)) {
                    throw new IllegalArgumentException("checkpoints need every trainable feature loss to save its state (be "
                            + "Checkpointable); feature loss '" + ft.loss().name() + "' cannot");
                }
            }
        }
        List<LogitLoss> epochLosses = new ArrayList<>(); // each epoch's loss, made once for the checks below
        for (int e = 0; e < epochs; e++) {
            try {
                epochLosses.add(lossAt(e)); // a schedule that leaves the valid range fails now, not after hours of training
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("at epoch " + (e + 1) + " of " + epochs + " the schedules give an invalid loss: "
                        + ex.getMessage(), ex);
            }
        }
        if (trainsUnlabeled && train.unlabeledSize() > 0) {
            for (int e = 0; e < epochs; e++) {
                LogitLoss l = epochLosses.get(e);
                if (!l.acceptsUnlabeledRows()) {
                    throw new IllegalArgumentException("loss '" + l.name() + "' " + l.settings() + (e > 0 ? " at epoch " + (e + 1) : "")
                            + " needs a hard label on every row it trains on, but " + train.unlabeledSize() + " samples of training"
                            + " data " + train.name() + " are UNLABELED; label them, leave them out, or use a loss that takes"
                            + " unlabeled rows (kd, reverse-kl, gjsd, ...)");
                }
            }
        }
        if (augmentation != null) {
            try {
                augmentation.checkFeatureCount(train.featureCount());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("training data " + train.name() + " cannot take augmentation "
                        + augmentation.describe() + ": " + e.getMessage(), e);
            }
        }
        if (augmentation != null && augmentation.removesLabels()) {
            if (!trainsUnlabeled) {
                throw new IllegalArgumentException("augmentation " + augmentation.describe() + " removes the labels of the rows it"
                        + " changes, but loss '" + loss.name() + "' reads no teacher: those rows would train nothing; distil from a"
                        + " teacher, or use an augmentation that keeps the labels (shift, flip)");
            }
            for (int e = 0; e < epochs; e++) {
                LogitLoss l = epochLosses.get(e);
                if (!l.acceptsUnlabeledRows()) {
                    throw new IllegalArgumentException("loss '" + l.name() + "' " + l.settings() + (e > 0 ? " at epoch " + (e + 1) : "")
                            + " needs a hard label on every row it trains on, but augmentation " + augmentation.describe()
                            + " removes the labels of the rows it changes; use a loss that takes unlabeled rows (kd, reverse-kl,"
                            + " gjsd, ...) or an augmentation that keeps the labels");
                }
            }
        }
        if (train.labeledSize() == 0) {
            for (int e = 0; e < epochs; e++) {
                LogitLoss l = epochLosses.get(e);
                if (l.needsLabels()) {
                    throw new IllegalArgumentException("loss '" + l.name() + "' " + l.settings() + " has a hard-label term"
                            + (e > 0 ? " at epoch " + (e + 1) : "") + ", but no sample of training data " + train.name()
                            + " has a label (" + train.unlabeledSize() + " UNLABELED, " + (train.size() - train.usedSize())
                            + " IGNORE_INDEX): the term would be 0 on every row; drop it (e.g. kd with alpha 0)");
                }
            }
        }
    }

    /**
     * A new builder. A student, a loss and training data are required; the rest has defaults: 10 epochs, batches of 128,
     * seed 42, no test data, teacher, schedules, feature losses, checkpoints, augmentation or listeners, and the backend
     * and step engine chosen when the run starts (see {@link Builder#backend} and {@link Builder#engine}).
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Trains for the configured epochs and returns the metrics. The student trains in place: a second call trains it again,
     * for the configured epochs, from the weights the first one left (its epochs count from 1 again). With {@link Checkpoints}
     * that resume, it finds the first call's finished checkpoint instead, restores that state and returns its result
     * without training; with {@link Checkpoints#startOver()} it trains again. Build another Distiller, on a fresh student,
     * for an independent run.
     *
     * @throws CancellationException when the thread is interrupted (before the run or during it); its interrupt status
     *                               stays set, the student holds the state after the last step taken (a step engine's
     *                               written back), and the last checkpoint saved is kept for a later run to resume from
     */
    public DistillResult run() {
        checkNotInterrupted("before training started");
        ComputeBackend be = backend != null ? backend : Backends.select();
        try {
            return run(be);
        } finally {
            if (backend == null) {
                be.close();
            }
        }
    }

    private DistillResult run(ComputeBackend be) {
        CheckpointFile.Progress resume = checkpoints == null ? null : resume();
        if (resume != null && resume.epochsDone() == epochs) {
            List<EpochMetrics> h = resume.history();
            EpochMetrics last = h.get(h.size() - 1);
            LOG.info("{} holds this run finished ({} epochs): the student has its final state; nothing to train",
                    checkpoints.file(), epochs);
            return new DistillResult(h, last.testAccuracy(), last.teacherAgreement(),
                    resume.samplesTotal() / (resume.trainNanosTotal() / 1e9), resume.wallNanos() / 1e9, be.name(), be.device(),
                    resume.engine());
        }
        // the engine imports the student, so it starts from the restored state
        StepEngines.Choice choice = StepEngines.choose(stepEngines != null ? stepEngines : StepEngines.providers(),
                // the largest batch the run submits: an engine sizes its buffers by it
                new StepEngineProvider.Setup(teacher, student, loss, be, Math.min(batchSize, trainingSize), featureTerms, seed),
                engineName != null ? engineName : StepEngines.requested());
        LOG.info("training steps: {}", choice.description());
        if (resume != null && !StepEngines.numbersOf(resume.engine()).equals(StepEngines.numbersOf(choice.description()))) {
            LOG.warn("resuming a run whose steps ran on {} with {}: the numbers will not match an uninterrupted run bit for bit",
                    resume.engine(), choice.description());
        }
        try (StepEngine engine = choice.engine()) {
            try {
                return run(be, engine, choice.description(), resume);
            } catch (RuntimeException e) {
                if (engine != null) {
                    syncAfterFailure(engine, e);
                }
                throw e;
            }
        }
    }

    /**
     * A run that throws (cancelled, a bad batch, an engine's error) leaves the student as the DL4J path would: with the
     * engine's last state (after a step whose loss flagged a row, the last good step's), not the one written back at the
     * last epoch's end or checkpoint. A failure to write it back is added to {@code failure}.
     */
    private static void syncAfterFailure(StepEngine engine, RuntimeException failure) {
        try {
            engine.syncToStudent();
        } catch (RuntimeException e) {
            if (e != failure) { // (the run may have failed in a sync already, with the same object)
                failure.addSuppressed(e);
            }
        }
    }

    private DistillResult run(ComputeBackend be, StepEngine engine, String engineDescription, CheckpointFile.Progress resume) {
        long start = System.nanoTime() - (resume == null ? 0 : resume.wallNanos());
        seedNd4j(seed);
        Random rng = new Random(seed);
        int[] teacherTest = teacher != null && test != null && teacher.serves(test) ? Evaluation.predict(teacher, test) : null;
        if (teacher != null && test != null && teacherTest == null) {
            LOG.info("teacher agreement is not measured: {} has no outputs for the test data", teacher.describe());
        }
        float[] teacherTestLogProbs = null;
        if (teacherTest != null && teacher instanceof SparseTeacher sparse && !sparse.hasDenseOutputs()) {
            LOG.info("KL to the teacher on the test data is not measured: {} gives only its top {} classes per sample",
                    teacher.describe(), sparse.k());
        } else if (teacherTest != null) {
            // a dense teacher, or a top-k view of one (TopKTeacher of a live teacher): the KL is to its dense rows
            if ((long) test.size() * teacher.classes() <= MAX_KEPT_TEACHER_VALUES) {
                teacherTestLogProbs = Evaluation.logProbabilities(teacher, test);
            } else {
                LOG.info("KL to the teacher on the test data is not measured: {} x {} teacher values exceed {}", test.size(),
                        teacher.classes(), MAX_KEPT_TEACHER_VALUES);
            }
        }
        int classes = student.classes();
        int batches = batchCount();
        int fullBatch = Math.min(batchSize, trainingSize);
        float[] fullGrad = new float[fullBatch * classes];
        List<EpochMetrics> history = new ArrayList<>();
        long trainNanosTotal = 0;
        long samplesTotal = 0;
        int startEpoch = 0;
        long lastSave = System.nanoTime(); // when the run started or last saved a checkpoint
        if (resume != null) {
            history.addAll(resume.history());
            trainNanosTotal = resume.trainNanosTotal();
            samplesTotal = resume.samplesTotal();
            startEpoch = resume.epochsDone();
            for (int e = 0; e < startEpoch; e++) {
                Dataset.permutation(train.size(), rng); // the shuffles of the epochs done, so the next ones are the same
            }
            Nd4j.getRandom().setStates(resume.randomRootState(), resume.randomNodeState());
        }
        LOG.info("distilling: student {}, teacher {}, loss {} {}, {} training samples, {} epochs, batch {}, seed {}, backend {}",
                student.describe(), teacher == null ? "none" : teacher.describe(), loss.name(), loss.settings(),
                trainingDescription(), epochs,
                batchSize, seed, be.name());
        if (augmentation != null) {
            LOG.info("every training batch goes through {} before the student and the teacher see it", augmentation.describe());
        }
        for (int epoch = startEpoch; epoch < epochs; epoch++) {
            LogitLoss epochLoss = lossAt(epoch);
            int[] order = trainingOnly(Dataset.permutation(train.size(), rng));
            for (TrainingListener l : listeners) {
                l.epochStarted(epoch, epochs, batches);
            }
            EpochSums sums = new EpochSums();
            int firstBatch = 0;
            long carriedNanos = 0; // training time of this epoch before a resume
            if (resume != null && epoch == startEpoch) {
                firstBatch = resume.batchesDone();
                sums.loss = resume.epochLossSum();
                sums.terms.putAll(resume.epochTermSums());
                carriedNanos = resume.epochTrainNanos();
                LOG.info("resumed from {}: epoch {} of {}, batch {} of {}", checkpoints.file(), epoch + 1, epochs, firstBatch + 1,
                        batches);
            }
            long t0 = System.nanoTime();
            long epochT0 = t0 - carriedNanos; // listeners' clock: since the epoch started, its part before a resume included
            long savingNanos = 0; // time this epoch spent saving checkpoints, not training
            StepEngine.Pending pending = null; // the engine's step of batch b-1, collected after batch b is submitted
            int pendingBatch = -1;
            int[] pendingIdx = null; // its samples
            int pendingTo = 0;
            for (int b = firstBatch; b < batches; b++) {
                checkNotInterrupted(where(epoch, b, batches));
                int from = b * batchSize;
                int to = Math.min(order.length, from + batchSize);
                int[] idx = java.util.Arrays.copyOfRange(order, from, to);
                Batch batch = augmentation == null ? Batch.of(train, idx) : augmented(Batch.of(train, idx), epoch, b);
                if (engine != null) {
                    StepEngine.Pending submitted;
                    try {
                        submitted = engine.submit(batch, epochLoss);
                    } catch (IllegalArgumentException e) {
                        throw inBatch(e, epoch, b, batches, idx);
                    }
                    if (pending != null) {
                        engineStepDone(sums, epochLoss, pending, epoch, pendingBatch, batches, pendingIdx, pendingTo, epochT0);
                    }
                    pending = submitted;
                    pendingBatch = b;
                    pendingIdx = idx;
                    pendingTo = to;
                } else {
                    try {
                        step(be, epochLoss, batch, fullBatch, fullGrad, sums, epoch, b, batches, to, epochT0);
                    } catch (IllegalArgumentException e) {
                        throw inBatch(e, epoch, b, batches, idx);
                    }
                }
                if (checkpoints != null && checkpoints.everySteps() > 0 && b + 1 < batches
                        && ((long) epoch * batches + b + 1) % checkpoints.everySteps() == 0
                        && System.nanoTime() - lastSave >= checkpoints.minInterval().toNanos()) {
                    long s0 = System.nanoTime();
                    if (pending != null) {
                        engineStepDone(sums, epochLoss, pending, epoch, pendingBatch, batches, pendingIdx, pendingTo, epochT0);
                        pending = null;
                    }
                    if (engine != null) {
                        engine.syncToStudent();
                    }
                    save(epoch, b + 1, sums, carriedNanos + (s0 - t0) - savingNanos, trainNanosTotal, samplesTotal, s0 - start,
                            engineDescription, history);
                    lastSave = System.nanoTime();
                    savingNanos += lastSave - s0;
                }
            }
            if (pending != null) {
                engineStepDone(sums, epochLoss, pending, epoch, pendingBatch, batches, pendingIdx, pendingTo, epochT0);
            }
            double lossSum = sums.loss;
            Map<String, Double> termSums = sums.terms;
            long trainNanos = carriedNanos + (System.nanoTime() - t0) - savingNanos;

            if (engine != null) {
                engine.endEpoch();
                engine.syncToStudent(); // evaluation, and what the run returns, use the ordinary student
            } else {
                student.endEpoch();
            }
            trainNanosTotal += trainNanos;
            samplesTotal += trainingSize;

            checkNotInterrupted("after epoch " + (epoch + 1) + " of " + epochs + ", before its evaluation");
            long e0 = System.nanoTime();
            double acc = Double.NaN;
            double agree = Double.NaN;
            double kl = Double.NaN;
            if (test != null) {
                Evaluation.StudentEval ev = Evaluation.evaluate(student, test, teacherTestLogProbs);
                acc = Evaluation.accuracy(ev.predictions(), test);
                kl = ev.teacherKl();
                if (teacherTest != null) {
                    agree = Evaluation.agreement(ev.predictions(), teacherTest, test);
                }
            }
            double evalSeconds = (System.nanoTime() - e0) / 1e9;
            Map<String, Double> terms = new LinkedHashMap<>();
            int trained = trainingSize;
            termSums.forEach((k, v) -> terms.put(k, v / trained));
            EpochMetrics m = new EpochMetrics(epoch, epochs, lossSum / trained, terms,
                    epochLoss instanceof TemperatureScaled ts ? ts.temperature() : Double.NaN,
                    epochLoss instanceof SoftTargetKd kd ? kd.alpha() : Double.NaN,
                    acc, agree, kl, trained / (trainNanos / 1e9), trainNanos / 1e9, evalSeconds);
            history.add(m);
            LOG.info(String.format(Locale.ROOT, "epoch %d/%d: loss %.4f %s, test accuracy %.2f%%, teacher agreement %s, KL %s, %.0f samples/s",
                    epoch + 1, epochs, m.loss(), terms, 100 * acc,
                    Double.isNaN(agree) ? "n/a" : String.format(Locale.ROOT, "%.2f%%", 100 * agree),
                    Double.isNaN(kl) ? "n/a" : String.format(Locale.ROOT, "%.4f", kl), m.samplesPerSecond()));
            if (checkpoints != null && (epoch + 1 == epochs || (epoch + 1) % checkpoints.everyEpochs() == 0
                    && System.nanoTime() - lastSave >= checkpoints.minInterval().toNanos())) {
                save(epoch + 1, 0, new EpochSums(), 0, trainNanosTotal, samplesTotal, System.nanoTime() - start, engineDescription,
                        history);
                lastSave = System.nanoTime();
            }
            for (TrainingListener l : listeners) {
                l.epochFinished(m);
            }
        }
        EpochMetrics last = history.get(history.size() - 1);
        return new DistillResult(history, last.testAccuracy(), last.teacherAgreement(),
                samplesTotal / (trainNanosTotal / 1e9), (System.nanoTime() - start) / 1e9, be.name(), be.device(), engineDescription);
    }

    /** One training step on the DL4J path: forward, loss and gradient on the backend, feature terms, backward, optimizer step. */
    private void step(ComputeBackend be, LogitLoss epochLoss, Batch batch, int fullBatch, float[] fullGrad, EpochSums sums,
                      int epoch, int b, int batches, int to, long t0) {
        int n = batch.size();
        int classes = student.classes();
        LogitBatch lb = logitBatch(epochLoss, batch, student.forward(batch, true));
        float[] grad = n == fullBatch ? fullGrad : new float[n * classes];
        LossResult r = be.logitLoss(epochLoss, lb, grad, 1f);
        double toSum = 1.0 / lb.rowWeight(epochLoss.reduction()); // reduced value -> sum over the batch's rows
        double batchSum = r.value() * toSum;
        sums.addTerms(r, toSum);
        Map<String, float[]> featureGrads = new LinkedHashMap<>();
        double batchValue = r.value();
        for (FeatureTerm ft : featureTerms) {
            LossResult fr = featureLoss(ft, batch, featureGrads);
            batchValue += ft.weight() * fr.value();
            batchSum += ft.weight() * fr.value() * n; // feature losses are means per sample (or relation)
            sums.addTerms(fr, n);
        }
        checkFinite(batchValue, epoch, b);
        student.backward(grad, featureGrads);
        for (FeatureTerm ft : featureTerms) {
            if (ft.loss() instanceof FeatureLoss.Trainable t) {
                t.step();
            }
        }
        sums.loss += batchSum;
        long elapsed = System.nanoTime() - t0;
        for (TrainingListener l : listeners) {
            l.batchFinished(epoch, b, batches, to, elapsed, batchValue);
        }
    }

    /**
     * The run's settings as text, saved in a checkpoint and compared when a run resumes from one: the settings,
     * the data's content (not only its name) and the teacher's identity (a content hash of its weights or model,
     * not where its file lies: a store or model file moved between a crash and the resume is the same teacher).
     * Computed once per run.
     */
    private Map<String, String> fingerprint() {
        Map<String, String> m = fingerprint;
        if (m == null) {
            m = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : settings().entrySet()) {
                if (!e.getKey().equals("teacher")) { // its description names files; teacherIdentity is what it computes
                    m.put(e.getKey(), String.valueOf(e.getValue()));
                }
            }
            m.put("trainData", train.name() + ", " + train.size() + " samples, crc32c " + Long.toHexString(train.fingerprint()));
            m.put("testData", test == null ? "none" : test.name() + ", " + test.size() + " samples, crc32c "
                    + Long.toHexString(test.fingerprint()));
            m.put("teacherIdentity", teacher == null ? "none" : teacher.identity());
            fingerprint = m;
        }
        return m;
    }

    private Map<String, String> fingerprint;

    private List<Checkpointable> trainables() {
        List<Checkpointable> l = new ArrayList<>();
        for (FeatureTerm ft : featureTerms) {
            if (ft.loss() instanceof FeatureLoss.Trainable) {
                l.add((Checkpointable) ft.loss());
            }
        }
        return l;
    }

    /** Saves where the run stands: {@code epochsDone} epochs and {@code batchesDone} batches of the next. */
    private void save(int epochsDone, int batchesDone, EpochSums sums, long epochTrainNanos, long trainNanosTotal, long samplesTotal,
                      long wallNanos, String engineDescription, List<EpochMetrics> history) {
        org.nd4j.linalg.api.rng.Random r = Nd4j.getRandom();
        CheckpointFile.Progress p = new CheckpointFile.Progress(fingerprint(), epochsDone, batchesDone, trainNanosTotal, samplesTotal,
                wallNanos, epochTrainNanos, sums.loss, sums.terms, r.rootState(), r.nodeState(), engineDescription, history);
        long t0 = System.nanoTime();
        checkNotInterrupted("before saving the checkpoint " + checkpoints.file() + " (the previous one is kept)");
        try {
            CheckpointFile.write(checkpoints.file(), p, (Checkpointable) student, trainables());
        } catch (java.nio.channels.ClosedByInterruptException e) {
            throw cancelled("while saving the checkpoint " + checkpoints.file() + " (the previous one is kept)", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot save the checkpoint " + checkpoints.file() + ": " + e.getMessage(), e);
        }
        LOG.debug("saved {} (epoch {}, batch {}) in {} ms", checkpoints.file(), epochsDone, batchesDone, (System.nanoTime() - t0) / 1_000_000);
    }

    /**
     * The progress of a checkpoint to resume from, its states read into the student and feature losses; null when
     * there is none (or the run starts over).
     */
    private CheckpointFile.Progress resume() {
        Path file = checkpoints.file();
        deleteLeftovers(file);
        if (!Files.exists(file)) {
            checkWritable(checkpoints.dir());
            return null;
        }
        if (checkpoints.isStartOver()) {
            // deleted now, not replaced at the first save: a later resume must not find the previous run's state
            try {
                Files.delete(file);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot delete the checkpoint " + file + " to start over: " + e.getMessage(), e);
            }
            LOG.info("starting over: deleted the checkpoint {}", file);
            return null;
        }
        Map<String, String> mine = fingerprint();
        int batches = batchCount();
        try {
            return CheckpointFile.read(file, p -> {
                List<String> diffs = new ArrayList<>();
                for (String k : union(p.fingerprint().keySet(), mine.keySet())) {
                    String theirs = p.fingerprint().get(k);
                    String now = mine.get(k);
                    if (!Objects.equals(theirs, now)) {
                        diffs.add(k + " was " + (theirs == null ? "not set" : theirs) + ", now " + (now == null ? "not set" : now));
                    }
                }
                if (!diffs.isEmpty()) {
                    throw new org.distill4j.checkpoint.CheckpointMismatchException("the checkpoint " + file
                            + " was written by a run with other settings: "
                            + String.join("; ", diffs.subList(0, Math.min(3, diffs.size())))
                            + (diffs.size() > 3 ? " (and " + (diffs.size() - 3) + " more)" : "")
                            + ". Resume with the same settings, or train from the start with Checkpoints.startOver() or by deleting"
                            + " the file");
                }
                if (p.epochsDone() < 0 || p.epochsDone() > epochs || p.batchesDone() < 0 || p.batchesDone() >= batches
                        || p.history().size() != p.epochsDone() || (p.epochsDone() == epochs && p.batchesDone() != 0)) {
                    throw new IllegalArgumentException("the checkpoint " + file + " is inconsistent: " + p.epochsDone() + " epochs and "
                            + p.batchesDone() + " batches done with " + p.history().size() + " epochs of metrics, in a run of "
                            + epochs + " epochs of " + batches + " batches");
                }
            }, (Checkpointable) student, trainables());
        } catch (java.nio.channels.ClosedByInterruptException e) {
            throw cancelled("while reading the checkpoint " + file, e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot resume from the checkpoint " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Makes the checkpoint directory and writes a file there, so a directory that cannot hold checkpoints (a path through a
     * file, a read-only file system) fails the run now rather than at the first save, after an epoch of training.
     */
    private static void checkWritable(Path dir) {
        try {
            Files.createDirectories(dir);
            Files.delete(Files.createTempFile(dir, "." + Checkpoints.FILE_NAME, ".tmp")); // the name deleteLeftovers cleans up
        } catch (IOException e) {
            throw new UncheckedIOException("the checkpoint directory " + dir + " cannot hold checkpoints: " + e, e);
        }
    }

    /** Deletes the temporary files of saves an interruption cut short (each as large as a checkpoint). */
    private static void deleteLeftovers(Path file) {
        try {
            for (Path f : CheckpointFile.deleteLeftovers(file)) {
                LOG.info("deleted {}, left by an interrupted save", f);
            }
        } catch (IOException e) {
            LOG.warn("cannot clean up interrupted saves of {}: {}", file, e.toString());
        }
    }

    private static List<String> union(java.util.Set<String> a, java.util.Set<String> b) {
        List<String> l = new ArrayList<>(a);
        for (String k : b) {
            if (!a.contains(k)) {
                l.add(k);
            }
        }
        return l;
    }

    /** An epoch's running sums over rows: the loss and its terms. */
    private static final class EpochSums {
        double loss;
        final Map<String, Double> terms = new LinkedHashMap<>();

        void addTerms(LossResult r, double toSum) {
            for (Map.Entry<String, Double> e : r.terms().entrySet()) {
                terms.merge(e.getKey(), e.getValue() * toSum, Double::sum);
            }
        }
    }

    /**
     * Waits for an engine's step of batch {@code b} (samples {@code idx}, its rows ending at {@code to}) and accounts it; a bad
     * row the engine reports ({@link BadRowException}) is traced to its sample as on the DL4J path.
     */
    private void engineStepDone(EpochSums sums, LogitLoss epochLoss, StepEngine.Pending pending, int epoch, int b, int batches,
                                int[] idx, int to, long t0) {
        LossResult r;
        try {
            r = pending.result();
        } catch (IllegalArgumentException e) {
            throw inBatch(e, epoch, b, batches, idx);
        }
        double toSum = epochLoss.reduction() == org.distill4j.loss.Reduction.SUM ? 1.0 : r.rows(); // reduced value -> sum over rows
        sums.addTerms(r, toSum);
        checkFinite(r.value(), epoch, b);
        sums.loss += r.value() * toSum;
        long elapsed = System.nanoTime() - t0;
        for (TrainingListener l : listeners) {
            l.batchFinished(epoch, b, batches, to, elapsed, r.value());
        }
    }

    /**
     * A batch's bad input (a NaN feature gives NaN student logits; a teacher's NaN output) as the user can trace it: the
     * epoch and batch, and, when the loss says which row of the batch is bad ({@link BadRowException}, as the built-in
     * losses do), which training sample that row is (the batches are shuffled). Any other error keeps its message as it
     * is: a "row 5" in its text may mean anything (a row of a store, of a matrix), so no sample is named from it.
     */
    private IllegalArgumentException inBatch(IllegalArgumentException e, int epoch, int b, int batches, int[] idx) {
        String message = String.valueOf(e.getMessage());
        String sample = "";
        if (e instanceof BadRowException bad && bad.row() < idx.length) {
            int row = bad.row();
            sample = "; row " + row + " of this batch is sample " + idx[row] + " of " + train.name();
        }
        return new IllegalArgumentException("epoch " + (epoch + 1) + ", batch " + (b + 1) + " of " + batches + ": " + message + sample, e);
    }

    /** "in epoch e of E, before batch b of B", for a cancellation's message. */
    private String where(int epoch, int b, int batches) {
        return "in epoch " + (epoch + 1) + " of " + epochs + ", before batch " + (b + 1) + " of " + batches;
    }

    /** Throws a {@link CancellationException} when this thread is interrupted, leaving its interrupt status set. */
    private static void checkNotInterrupted(String where) {
        if (Thread.currentThread().isInterrupted()) {
            throw cancelled(where, null);
        }
    }

    private static CancellationException cancelled(String where, Throwable cause) {
        CancellationException c = new CancellationException("distillation cancelled: the thread was interrupted " + where);
        if (cause != null) {
            c.initCause(cause);
        }
        Thread.currentThread().interrupt(); // set, and kept set: the caller decides what the interrupt means
        LOG.info("{}", c.getMessage());
        return c;
    }

    private static void checkFinite(double batchValue, int epoch, int b) {
        if (!Double.isFinite(batchValue)) {
            throw new IllegalStateException("loss became " + batchValue + " at epoch " + (epoch + 1) + ", batch "
                    + (b + 1) + "; lower the learning rate or check the inputs");
        }
    }

    /** One feature term on a batch: adds its gradient into {@code grads} under the student feature's name. */
    private LossResult featureLoss(FeatureTerm ft, Batch batch, Map<String, float[]> grads) {
        Feature sf = student.feature(ft.studentFeature());
        Feature tf = teacher.feature(batch, ft.teacherFeature());
        FeatureBatch fb = FeatureBatch.of(batch.size(), sf.values(), sf.shape(), tf.values(), tf.shape());
        float[] g = new float[sf.values().length];
        LossResult r = ft.loss().compute(fb, g, (float) ft.weight());
        grads.merge(ft.studentFeature(), g, (a, c) -> {
            for (int i = 0; i < a.length; i++) {
                a[i] += c[i];
            }
            return a;
        });
        return r;
    }

    /**
     * The loss's inputs for one batch: the teacher in the form the loss reads (dense, top-k or none), at the loss's
     * temperature ({@link Teacher#outputs(Batch, double)}: an ensemble averages its members softened at it), 1 for a loss
     * without one. A weighted sum's temperature is its first tempered term's, logit-std's its inner loss's.
     */
    private LogitBatch logitBatch(LogitLoss l, Batch batch, float[] logits) {
        int n = batch.size();
        int classes = student.classes();
        double t = l instanceof TemperatureScaled ts ? ts.temperature() : 1.0;
        if (l.needsTopK()) {
            SparseTeacher.TopK top = ((SparseTeacher) teacher).topK(batch, t);
            return LogitBatch.ofTopK(n, classes, logits, top.ids(), top.logProbs(), top.k(), batch.labels());
        }
        if (l.needsTeacher()) {
            return LogitBatch.of(n, classes, logits, teacher.outputs(batch, t), teacher.values(), batch.labels());
        }
        return LogitBatch.ofLabels(n, classes, logits, batch.labels());
    }

    /**
     * Batches per epoch, of the samples that train (see {@link #trainingSize}): the last may be smaller; in long arithmetic, so a batch size near
     * Integer.MAX_VALUE is one batch.
     */
    private int batchCount() {
        return (int) ((trainingSize + (long) batchSize - 1) / batchSize);
    }

    /**
     * An epoch's shuffle of all training samples without those that take no part in training: the ones labeled
     * IGNORE_INDEX, and the UNLABELED ones when no term of the run reads the teacher (they would add nothing).
     */
    private int[] trainingOnly(int[] order) {
        if (trainingSize == order.length) {
            return order;
        }
        int[] kept = new int[trainingSize];
        int n = 0;
        for (int i : order) {
            if (trainsUnlabeled ? train.isUsed(i) : train.isLabeled(i)) {
                kept[n++] = i;
            }
        }
        return kept;
    }

    /**
     * Whether a run with this loss (and feature terms or not) trains on the teacher's outputs: only then do samples labeled
     * {@link Dataset#UNLABELED} train; a run without (the student alone on {@code ce}) leaves them out.
     */
    public static boolean readsTeacher(LogitLoss loss, boolean featureTerms) {
        return loss.needsTeacher() || loss.needsTopK() || featureTerms;
    }

    /**
     * Batch {@code b} of epoch {@code epoch} through the augmentation, its generator seeded from the run's seed, the epoch
     * and the batch alone (a resumed run draws what the uninterrupted one did); a result of another shape is refused.
     */
    private Batch augmented(Batch batch, int epoch, int b) {
        Batch out = augmentation.apply(batch, new Random(augmentationSeed(seed, epoch, b)));
        if (out == null || out.size() != batch.size() || out.featureCount() != batch.featureCount()
                || !java.util.Arrays.equals(out.indices(), batch.indices())) {
            throw new IllegalStateException("augmentation " + augmentation.describe() + " returned " + (out == null ? "no batch"
                    : out.size() + " rows of " + out.featureCount() + " features") + " for batch " + (b + 1) + " of epoch " + (epoch + 1)
                    + " (" + batch.size() + " rows of " + batch.featureCount() + " features): it must keep the rows, their order and"
                    + " indices, and the feature count");
        }
        return out;
    }

    /** A seed for one batch's augmentation: SplitMix64's finalizer over the run's seed, the epoch and the batch. */
    static long augmentationSeed(long seed, int epoch, int batch) {
        long z = seed + 0x9E3779B97F4A7C15L * (1 + ((long) epoch << 32 | (batch & 0xFFFFFFFFL)));
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The training samples, for the log: how many, and of which kinds where not all are labeled. */
    private String trainingDescription() {
        if (train.labeledSize() == train.size()) {
            return String.valueOf(train.size());
        }
        String kinds = train.labeledSize() + " labeled" + (train.unlabeledSize() > 0 ? " + " + train.unlabeledSize() + " unlabeled" : "");
        if (!trainsUnlabeled && train.unlabeledSize() > 0) {
            kinds += " (the unlabeled ones left out: no term reads the teacher)";
        }
        return kinds + " of " + train.size();
    }

    /**
     * The root state ND4J's generator gets for seed 0: its native generator replaces a root seed of 0 with the clock, so
     * a run seeded 0 drew other dropout masks every time. Any value other than 0 does; paired with seed 0's node state it
     * is a state no other seed gives (seed s gives root s and a node state that is a bijection of s).
     */
    static final long SEED_ZERO_ROOT = 0x9E3779B97F4A7C15L;

    /** Seeds this thread's ND4J generator with {@code seed}, reproducibly for every seed, 0 included. */
    private static void seedNd4j(long seed) {
        org.nd4j.linalg.api.rng.Random r = Nd4j.getRandom();
        r.setSeed(seed);
        if (seed == 0) {
            r.setStates(SEED_ZERO_ROOT, r.nodeState());
        }
    }

    /** The loss of one epoch: epoch-aware settings (e.g. DKD warm-up), then the temperature and alpha schedules. */
    private LogitLoss lossAt(int epoch) {
        LogitLoss l = loss instanceof EpochAware ea ? ea.atEpoch(epoch, epochs) : loss;
        if (temperature != null) {
            l = ((TemperatureScaled) l).withTemperature(temperature.at(epoch, epochs));
        }
        if (alpha != null) {
            l = ((SoftTargetKd) l).withAlpha(alpha.at(epoch, epochs));
        }
        return l;
    }

    /** Resolved settings, for provenance. */
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("loss", loss.name());
        m.put("lossSettings", loss.settings());
        m.put("epochs", epochs);
        m.put("batchSize", batchSize);
        m.put("seed", seed);
        m.put("trainSamples", train.size());
        if (train.labeledSize() != train.size()) { // only then: the settings of other runs (and their checkpoints) stay as they were
            m.put("trainLabeledSamples", train.labeledSize());
        }
        if (train.unlabeledSize() > 0) {
            m.put("trainUnlabeledSamples", train.unlabeledSize());
        }
        if (augmentation != null) {
            m.put("augmentation", augmentation.describe());
        }
        m.put("testSamples", test == null ? 0 : test.size());
        if (test != null && test.labeledSize() != test.size()) {
            m.put("testLabeledSamples", test.labeledSize());
        }
        if (temperature != null) {
            m.put("temperatureSchedule", temperature.describe());
        }
        if (alpha != null) {
            m.put("alphaSchedule", alpha.describe());
        }
        m.put("student", student.describe());
        m.put("teacher", teacher == null ? "none" : teacher.describe());
        if (!featureTerms.isEmpty()) {
            m.put("featureLosses", featureTerms.stream().map(ft -> ft.weight() + " * " + ft.loss().name() + ft.loss().settings()
                    + " (" + ft.studentFeature() + " <- " + ft.teacherFeature() + ")").toList());
        }
        return m;
    }

    /** Builder: {@code student}, {@code loss} and {@code trainData} are required. */
    public static final class Builder {
        private Teacher teacher;
        private Student student;
        private LogitLoss loss;
        private Dataset train;
        private Dataset test;
        private int epochs = 10;
        private int batchSize = 128;
        private long seed = 42;
        private Schedule temperature;
        private Schedule alpha;
        private ComputeBackend backend;
        private List<StepEngineProvider> stepEngines;
        private String engineName;
        private final List<TrainingListener> listeners = new ArrayList<>();
        private final List<FeatureTerm> featureTerms = new ArrayList<>();
        private Checkpoints checkpoints;
        private org.distill4j.data.Augmentation augmentation;

        private Builder() {
        }

        /**
         * Transforms every training batch before the student and the teacher see it (consistent views; e.g.
         * {@link org.distill4j.data.Augmentation#mixup}, {@link org.distill4j.data.Augmentation#shift}), its randomness seeded
         * from the run's seed, the epoch and the batch. The teacher must read the features (not a stored teacher); one that
         * {@linkplain org.distill4j.data.Augmentation#removesLabels removes labels} needs a loss that reads the teacher and
         * takes unlabeled rows. Null (the default): none.
         */
        public Builder augmentation(org.distill4j.data.Augmentation a) {
            this.augmentation = a;
            return this;
        }

        /**
         * Saves the run's state as it trains and resumes from a checkpoint found there (see {@link Checkpoints});
         * by default no checkpoints. The student (and every trainable feature loss) must be {@link Checkpointable}.
         */
        public Builder checkpoints(Checkpoints c) {
            this.checkpoints = c;
            return this;
        }

        /**
         * Adds {@code weight * loss(studentFeature, teacherFeature)} to the objective: e.g. a FitNets hint
         * from a hidden layer, attention transfer between conv maps, RKD on embeddings.
         */
        public Builder featureLoss(double weight, FeatureLoss loss, String studentFeature, String teacherFeature) {
            featureTerms.add(new FeatureTerm(weight, loss, studentFeature, teacherFeature));
            return this;
        }

        /** The teacher; required when the loss needs one. */
        public Builder teacher(Teacher t) {
            this.teacher = t;
            return this;
        }

        /** The student, which trains in place; required. */
        public Builder student(Student s) {
            this.student = s;
            return this;
        }

        /**
         * The loss on the student's logits (e.g. {@code kd}, {@code ce}, a {@link org.distill4j.loss.WeightedSum}); required.
         * Feature losses are added with {@link #featureLoss}.
         */
        public Builder loss(LogitLoss l) {
            this.loss = l;
            return this;
        }

        /**
         * The training data; required. Its classes must be the student's, and it needs a sample to train on (not every
         * label {@link Dataset#IGNORE_INDEX}).
         */
        public Builder trainData(Dataset d) {
            this.train = d;
            return this;
        }

        /** Data for per-epoch accuracy and agreement; optional. */
        public Builder testData(Dataset d) {
            this.test = d;
            return this;
        }

        /** Default 10. */
        public Builder epochs(int e) {
            this.epochs = e;
            return this;
        }

        /** Default 128. */
        public Builder batchSize(int b) {
            this.batchSize = b;
            return this;
        }

        /** Default 42. */
        public Builder seed(long s) {
            this.seed = s;
            return this;
        }

        /** Overrides the kd loss's temperature per epoch. */
        public Builder temperature(Schedule s) {
            this.temperature = s;
            return this;
        }

        /** Overrides the kd loss's hard-label weight per epoch. */
        public Builder alpha(Schedule s) {
            this.alpha = s;
            return this;
        }

        /** The compute backend; by default {@link Backends#select()} picks one (and it is closed after the run). */
        public Builder backend(ComputeBackend b) {
            this.backend = b;
            return this;
        }

        /**
         * The step engine providers to ask (by default those {@link java.util.ServiceLoader} finds, such as
         * distill-cuda's GPU MLP engine); an empty list keeps the DL4J path.
         */
        public Builder stepEngines(List<StepEngineProvider> providers) {
            this.stepEngines = List.copyOf(providers);
            return this;
        }

        /**
         * Which engine runs the steps: {@code auto} (the first provider that offers one), {@code dl4j}, or a
         * provider's name (required: the run fails with its reason when it declines). By default the
         * {@value StepEngines#PROPERTY} property or {@value StepEngines#ENV}, else {@code auto}.
         */
        public Builder engine(String name) {
            this.engineName = name;
            return this;
        }

        /**
         * Adds a listener, told of every epoch and batch on the thread that runs the distiller, in the order the listeners
         * were added.
         *
         * @throws NullPointerException if {@code l} is null
         */
        public Builder listener(TrainingListener l) {
            this.listeners.add(Objects.requireNonNull(l, "listener"));
            return this;
        }

        /**
         * A distiller of the settings so far, checked against each other now rather than when the run starts (every
         * epoch's loss under the schedules included); the builder can be used on.
         *
         * @throws NullPointerException     when the student, the loss or the training data is missing
         * @throws IllegalArgumentException when a setting is out of range or the settings do not fit together (e.g. a loss
         *                                  that needs a teacher without one, classes that differ between the teacher, the
         *                                  student and the data, a schedule that leaves the loss's valid range, checkpoints
         *                                  with a student that is not {@link Checkpointable}), naming what is wrong
         */
        public Distiller build() {
            return new Distiller(this);
        }
    }
}
