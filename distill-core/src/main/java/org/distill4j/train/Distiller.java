package org.distill4j.train;

import org.distill4j.backend.Backends;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.Feature;
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

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Random;

/**
 * The distillation training loop: for every minibatch, teacher outputs, student forward, loss value
 * and {@code dLoss/dLogits} on the compute backend, student backward and optimizer step. After each
 * epoch it measures test accuracy, top-1 agreement with the teacher and throughput, logs them
 * through SLF4J and tells the listeners.
 *
 * <p>The epoch loss and its terms are means per training sample whatever the loss's reduction.
 *
 * <p>Reproducible: the seed fixes the shuffling order and ND4J's random generator (dropout), so the
 * same seed, data and models give the same numbers on the same backend. The last, smaller batch of
 * an epoch is trained too.
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

    /**
     * A feature loss between a named student feature and a named teacher feature, with a weight.
     *
     * @param weight         multiplies the loss and its gradient
     * @param loss           the feature loss (a {@link FeatureLoss.Trainable} one is stepped after each backward)
     * @param studentFeature the student's feature name (for a ComputationGraph student, an extra output)
     * @param teacherFeature the teacher's feature name
     */
    public record FeatureTerm(double weight, FeatureLoss loss, String studentFeature, String teacherFeature) {
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
        validate();
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
        if (!featureTerms.isEmpty() && teacher == null) {
            throw new IllegalArgumentException("feature losses need a teacher: set it with teacher(...)");
        }
        if ((loss.needsTeacher() || loss.needsTopK()) && teacher == null) {
            throw new IllegalArgumentException("loss '" + loss.name() + "' needs a teacher: set it with teacher(...)");
        }
        if (teacher != null && !teacher.serves(train)) {
            throw new IllegalArgumentException("teacher " + teacher.describe() + " cannot serve the training data " + train
                    + ": a stored teacher serves only the dataset it was labeled on, in the same order");
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
        for (int e = 0; e < epochs; e++) {
            try {
                lossAt(e); // a schedule that leaves the valid range fails now, not after hours of training
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("at epoch " + (e + 1) + " of " + epochs + " the schedules give an invalid loss: "
                        + ex.getMessage(), ex);
            }
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Trains for the configured epochs and returns the metrics. */
    public DistillResult run() {
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
        StepEngines.Choice choice = StepEngines.choose(stepEngines != null ? stepEngines : StepEngines.providers(),
                new StepEngineProvider.Setup(teacher, student, loss, be, batchSize, featureTerms, seed),
                engineName != null ? engineName : StepEngines.requested());
        LOG.info("training steps: {}", choice.description());
        try (StepEngine engine = choice.engine()) {
            return run(be, engine, choice.description());
        }
    }

    private DistillResult run(ComputeBackend be, StepEngine engine, String engineDescription) {
        long start = System.nanoTime();
        Nd4j.getRandom().setSeed(seed);
        Random rng = new Random(seed);
        int[] teacherTest = teacher != null && test != null && teacher.serves(test) ? Evaluation.predict(teacher, test) : null;
        if (teacher != null && test != null && teacherTest == null) {
            LOG.info("teacher agreement is not measured: {} has no outputs for the test data", teacher.describe());
        }
        float[] teacherTestLogProbs = null;
        if (teacherTest != null && !(teacher instanceof org.distill4j.teacher.SparseTeacher)) {
            if ((long) test.size() * teacher.classes() <= MAX_KEPT_TEACHER_VALUES) {
                teacherTestLogProbs = Evaluation.logProbabilities(teacher, test);
            } else {
                LOG.info("KL to the teacher on the test data is not measured: {} x {} teacher values exceed {}", test.size(),
                        teacher.classes(), MAX_KEPT_TEACHER_VALUES);
            }
        }
        int classes = student.classes();
        int batches = (train.size() + batchSize - 1) / batchSize;
        int fullBatch = Math.min(batchSize, train.size());
        float[] fullGrad = new float[fullBatch * classes];
        List<EpochMetrics> history = new ArrayList<>();
        long trainNanosTotal = 0;
        long samplesTotal = 0;
        LOG.info("distilling: student {}, teacher {}, loss {} {}, {} training samples, {} epochs, batch {}, seed {}, backend {}",
                student.describe(), teacher == null ? "none" : teacher.describe(), loss.name(), loss.settings(),
                train.size(), epochs, batchSize, seed, be.name());
        for (int epoch = 0; epoch < epochs; epoch++) {
            LogitLoss epochLoss = lossAt(epoch);
            int[] order = Dataset.permutation(train.size(), rng);
            for (TrainingListener l : listeners) {
                l.epochStarted(epoch, epochs, batches);
            }
            EpochSums sums = new EpochSums();
            long t0 = System.nanoTime();
            StepEngine.Pending pending = null; // the engine's step of batch b-1, collected after batch b is submitted
            int pendingBatch = -1;
            int pendingTo = 0;
            for (int b = 0; b < batches; b++) {
                int from = b * batchSize;
                int to = Math.min(train.size(), from + batchSize);
                int[] idx = java.util.Arrays.copyOfRange(order, from, to);
                Batch batch = Batch.of(train, idx);
                if (engine != null) {
                    StepEngine.Pending submitted = engine.submit(batch, epochLoss);
                    if (pending != null) {
                        engineStepDone(sums, epochLoss, pending.result(), epoch, pendingBatch, batches, pendingTo, t0);
                    }
                    pending = submitted;
                    pendingBatch = b;
                    pendingTo = to;
                    continue;
                }
                int n = batch.size();
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
            if (pending != null) {
                engineStepDone(sums, epochLoss, pending.result(), epoch, pendingBatch, batches, pendingTo, t0);
            }
            double lossSum = sums.loss;
            Map<String, Double> termSums = sums.terms;
            long trainNanos = System.nanoTime() - t0;
            if (engine != null) {
                engine.endEpoch();
                engine.syncToStudent(); // evaluation, and what the run returns, use the ordinary student
            } else {
                student.endEpoch();
            }
            trainNanosTotal += trainNanos;
            samplesTotal += train.size();

            long e0 = System.nanoTime();
            double acc = Double.NaN;
            double agree = Double.NaN;
            double kl = Double.NaN;
            if (test != null) {
                Evaluation.StudentEval ev = Evaluation.evaluate(student, test, teacherTestLogProbs);
                acc = Evaluation.accuracy(ev.predictions(), test);
                kl = ev.teacherKl();
                if (teacherTest != null) {
                    agree = Evaluation.agreement(ev.predictions(), teacherTest);
                }
            }
            double evalSeconds = (System.nanoTime() - e0) / 1e9;
            Map<String, Double> terms = new LinkedHashMap<>();
            termSums.forEach((k, v) -> terms.put(k, v / train.size()));
            EpochMetrics m = new EpochMetrics(epoch, epochs, lossSum / train.size(), terms,
                    epochLoss instanceof TemperatureScaled ts ? ts.temperature() : Double.NaN,
                    epochLoss instanceof SoftTargetKd kd ? kd.alpha() : Double.NaN,
                    acc, agree, kl, train.size() / (trainNanos / 1e9), trainNanos / 1e9, evalSeconds);
            history.add(m);
            LOG.info(String.format(Locale.ROOT, "epoch %d/%d: loss %.4f %s, test accuracy %.2f%%, teacher agreement %s, KL %s, %.0f samples/s",
                    epoch + 1, epochs, m.loss(), terms, 100 * acc,
                    Double.isNaN(agree) ? "n/a" : String.format(Locale.ROOT, "%.2f%%", 100 * agree),
                    Double.isNaN(kl) ? "n/a" : String.format(Locale.ROOT, "%.4f", kl), m.samplesPerSecond()));
            for (TrainingListener l : listeners) {
                l.epochFinished(m);
            }
        }
        EpochMetrics last = history.get(history.size() - 1);
        return new DistillResult(history, last.testAccuracy(), last.teacherAgreement(),
                samplesTotal / (trainNanosTotal / 1e9), (System.nanoTime() - start) / 1e9, be.name(), be.device(), engineDescription);
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

    /** Accounts an engine's step of batch {@code b} (its rows end at {@code to}) once its result is in. */
    private void engineStepDone(EpochSums sums, LogitLoss epochLoss, LossResult r, int epoch, int b, int batches, int to, long t0) {
        double toSum = epochLoss.reduction() == org.distill4j.loss.Reduction.SUM ? 1.0 : r.rows(); // reduced value -> sum over rows
        sums.addTerms(r, toSum);
        checkFinite(r.value(), epoch, b);
        sums.loss += r.value() * toSum;
        long elapsed = System.nanoTime() - t0;
        for (TrainingListener l : listeners) {
            l.batchFinished(epoch, b, batches, to, elapsed, r.value());
        }
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

    /** The loss's inputs for one batch: the teacher in the form the loss reads (dense, top-k or none). */
    private LogitBatch logitBatch(LogitLoss l, Batch batch, float[] logits) {
        int n = batch.size();
        int classes = student.classes();
        if (l.needsTopK()) {
            SparseTeacher.TopK top = ((SparseTeacher) teacher).topK(batch);
            return LogitBatch.ofTopK(n, classes, logits, top.ids(), top.logProbs(), top.k(), batch.labels());
        }
        if (l.needsTeacher()) {
            return LogitBatch.of(n, classes, logits, teacher.outputs(batch), teacher.values(), batch.labels());
        }
        return LogitBatch.ofLabels(n, classes, logits, batch.labels());
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
        m.put("testSamples", test == null ? 0 : test.size());
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

        private Builder() {
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

        public Builder student(Student s) {
            this.student = s;
            return this;
        }

        public Builder loss(LogitLoss l) {
            this.loss = l;
            return this;
        }

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

        public Builder listener(TrainingListener l) {
            this.listeners.add(Objects.requireNonNull(l, "listener"));
            return this;
        }

        public Distiller build() {
            return new Distiller(this);
        }
    }
}
