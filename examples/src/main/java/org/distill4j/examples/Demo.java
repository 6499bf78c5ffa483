package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.Backends;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.Losses;
import org.distill4j.loss.TopKKd;
import org.distill4j.loss.WeightedSum;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.distill4j.train.ConsoleProgress;
import org.distill4j.train.DistillResult;
import org.distill4j.train.Distiller;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The Hinton-style demonstration on Fashion-MNIST: a large teacher trained on the training set, then
 * the same student architecture trained twice on a small transfer set, once on hard labels alone and
 * once distilled from the teacher (same initial weights, seed, epochs and optimizer). Prints one table
 * and writes {@code results.json} and {@code provenance.json}.
 *
 * <p>Why a small transfer set: distillation helps most where the student sees few labelled samples and
 * the teacher's soft targets carry what the labels do not (G. Hinton et al., arXiv:1503.02531,
 * section 3). On the full training set a small student learns nearly as well alone.
 */
public final class Demo {
    private static final Logger LOG = LoggerFactory.getLogger(Demo.class);

    /** The demo's settings; every field can be changed from the command line. */
    public static final class Settings {
        public Path data;                 // null: the lookup chain of FashionMnist.load
        public boolean embedded;          // force the embedded subset
        public Path out = Path.of("distill-out", "demo");
        public long seed = 42;
        /**
         * The student rows' seeds (initial weights and the Distiller's batch order), each student row trained once per seed
         * and reported as mean ± std; null or empty: one run per row, its weights seeded with {@code seed + 1}. The teacher
         * and the transfer-set draw keep {@link #seed}.
         */
        public List<Long> seeds;
        public int teacherSamples = 10_000;
        public int teacherEpochs = 12;
        public int[] teacherHidden = {1200, 1200};
        /** Channels of the trained teacher's convolution blocks before its hidden layers ({@link DemoModels#model}); empty: an MLP. */
        public int[] teacherConv = {};
        public double teacherDropout = 0.2;
        public int transferSamples = 1_000;
        /**
         * Training samples after the transfer set's, given to the distilled students without their labels: the teacher's
         * outputs are their only targets (a row without a teacher term, the student alone, leaves them out). 0: none.
         */
        public int unlabeledSamples;
        /**
         * Mixup of the distilled rows' training batches, the student and the teacher seeing the same mixed inputs (function
         * matching, Beyer et al. 2022): the Beta(alpha, alpha) of the mixing weight; 0: none.
         */
        public double mixup;
        /**
         * Random translation of every student row's training images (the distilled rows and the student alone: a shifted
         * image keeps its label), by up to this many pixels along each axis, the student and the teacher seeing the same
         * shifted inputs; the teachers train on the images as they are. 0: none.
         */
        public int shift;
        /** Random horizontal flip of half of every student row's training images, as {@link #shift}; false: none. */
        public boolean flip;
        public int studentEpochs = 40;
        public int[] studentHidden = {400, 400};
        /** Channels of the students' convolution blocks before their hidden layers ({@link DemoModels#model}); empty: MLPs. */
        public int[] studentConv = {};
        public int testSamples = 10_000;
        public int batchSize = 128;
        public double learningRate = 1e-3;
        public double temperature = 4.0;
        public double alpha = 0.1;
        public boolean progress = true;
        /** Distillation losses to compare, each a distilled-student row: name or name:key=value:... */
        public List<String> compare = List.of("kd");
        /** Where to save the trained teacher (null: not saved). */
        public Path saveTeacher;
        /** Label the transfer set into this store (f16) and add a row distilled from it (null: none). */
        public Path store;
        /** A saved teacher to load instead of training one: DL4J zip, or ONNX / TorchScript through DJL (null: train). */
        public Path teacherModel;
        /** Several teachers (or one, with DJL settings); when set, used instead of the teacher fields above. */
        public List<TeacherSpec> teachers;
        /** How an ensemble of {@link #teachers} is averaged. */
        public org.distill4j.teacher.EnsembleTeacher.Combine combine = org.distill4j.teacher.EnsembleTeacher.Combine.PROBABILITIES;
        /** The compute backend by name, or "auto". */
        public String backend = "auto";
        /**
         * What runs each row's training steps, as {@link Distiller.Builder#engine}: auto, dl4j or a provider's name; null for
         * {@value org.distill4j.train.StepEngines#PROPERTY} / {@value org.distill4j.train.StepEngines#ENV}, else auto.
         */
        public String engine;
        /** The step engine providers to choose from, as {@link Distiller.Builder#stepEngines}; null for those on the class path. */
        public List<org.distill4j.train.StepEngineProvider> stepEngines;
        /** Distilled rows as (label, loss); when set, used instead of {@link #compare}. */
        public List<Map.Entry<String, LogitLoss>> losses;
        /** With {@link #store}: distill only from the store (labeled first), top-k when > 0 (a recipe's teacher.store). */
        public boolean storeOnly;
        public int storeTopK;
        public org.distill4j.store.ValueCodec storeCodec = org.distill4j.store.ValueCodec.F16;
        /** Draw the teacher and transfer sets from the shuffled training split (false: its first samples). */
        public boolean shuffle = true;
        /** The optimizer of every network trained here (see {@link DemoModels#optimizer}). */
        public String optimizer = "adam";
        /** Temperature and alpha schedules of the distilled rows (null: the loss's own constant values). */
        public org.distill4j.train.Schedule temperatureSchedule;
        public org.distill4j.train.Schedule alphaSchedule;

        boolean seeded() {
            return seeds != null && !seeds.isEmpty();
        }

        org.nd4j.linalg.learning.config.IUpdater updater() {
            return DemoModels.optimizer(optimizer, learningRate);
        }

        /** Save every network trained here into {@link #out} as {@code <row>.zip} (for {@code distill eval}). */
        public boolean saveModels;
        /** Each trained row saves checkpoints under {@code out/checkpoints/<row>/}; with {@link #resume} a rerun continues them. */
        public boolean checkpoints = true;
        /** Also save every this many steps within an epoch (0: at epoch ends only). */
        public int checkpointEverySteps;
        /**
         * Saves due within this long of the last one are skipped (the last epoch's always happens): 30 s by default, as the
         * demo's epochs are a fraction of a second and saving each one cost its student rows about 15% of their time.
         */
        public java.time.Duration checkpointMinInterval = java.time.Duration.ofSeconds(30);
        /** Continue the rows' checkpoints (a finished row is restored without training) instead of training from the start. */
        public boolean resume;
        /** The resolved recipe, recorded in the provenance (null outside recipe runs). */
        public Map<String, Object> recipe;
        /** The recipe's file, its text's SHA-256 and the --set overrides, recorded in the provenance (null outside recipe runs). */
        public Map<String, Object> recipeOrigin;
        /** Feature loss terms of the distilled rows (a recipe's feature terms), added to their logit loss. */
        public List<FeatureTerm> features = List.of();
        /** Feature terms per distilled row of {@link #losses}, by its key; when set, used instead of {@link #features}. */
        public Map<String, List<FeatureTerm>> rowFeatures;
        /** The rows of {@link #losses} are named: each is "distilled: &lt;key&gt;", even when there is one. */
        public boolean namedRows;

        /** Writes the run's report into {@link #out} while the run still holds the folder (null: none); see {@link Reporter}. */
        public Reporter report;

        /** The feature terms of the distilled row {@code key}. */
        List<FeatureTerm> featuresOf(String key) {
            return rowFeatures != null ? rowFeatures.getOrDefault(key, List.of()) : features;
        }

        /** Every distilled row's feature terms. */
        List<FeatureTerm> allFeatures() {
            return rowFeatures != null ? rowFeatures.values().stream().flatMap(List::stream).toList() : features;
        }

        Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("data", embedded ? "embedded" : data == null ? "auto" : data.toString());
            m.put("seed", seed);
            if (seeded()) {
                m.put("seeds", seeds);
            }
            m.put("teacherSamples", teacherSamples);
            m.put("teacherEpochs", teacherEpochs);
            if (teacherConv.length > 0) { // only then: the provenance of MLP runs stays as it was
                m.put("teacherConv", List.of(java.util.Arrays.stream(teacherConv).boxed().toArray()));
            }
            m.put("teacherHidden", List.of(java.util.Arrays.stream(teacherHidden).boxed().toArray()));
            m.put("teacherDropout", teacherDropout);
            m.put("transferSamples", transferSamples);
            if (unlabeledSamples > 0) { // only then: the provenance of other runs stays as it was
                m.put("unlabeledSamples", unlabeledSamples);
            }
            if (mixup > 0) {
                m.put("mixup", mixup);
            }
            if (shift > 0) {
                m.put("shift", shift);
            }
            if (flip) {
                m.put("flip", true);
            }
            m.put("studentEpochs", studentEpochs);
            if (studentConv.length > 0) {
                m.put("studentConv", List.of(java.util.Arrays.stream(studentConv).boxed().toArray()));
            }
            m.put("studentHidden", List.of(java.util.Arrays.stream(studentHidden).boxed().toArray()));
            m.put("testSamples", testSamples);
            m.put("batchSize", batchSize);
            m.put("learningRate", learningRate);
            m.put("temperature", temperature);
            m.put("alpha", alpha);
            m.put("compare", compare);
            m.put("store", store == null ? null : store.toAbsolutePath().toString());
            m.put("teacherModel", teacherModel == null ? null : teacherModel.toAbsolutePath().toString());
            m.put("backend", backend); // the request; provenance.backend is what ran
            m.put("optimizer", optimizer);
            m.put("shuffle", shuffle);
            return m;
        }
    }

    /**
     * One row of the result table. A row trained over several seeds ({@link Settings#seeds}) holds the means of its runs
     * (wall seconds: their sum), its seeds, each run's test accuracy and their sample standard deviation (NaN for one
     * run); a row trained once has {@code seeds} and {@code testAccuracyRuns} null.
     */
    public record Row(String name, String model, long parameters, int trainSamples, int epochs, String loss,
                      double testAccuracy, double teacherAgreement, double samplesPerSecond, double wallSeconds,
                      List<Long> seeds, List<Double> testAccuracyRuns, double testAccuracyStd) {
        public Row(String name, String model, long parameters, int trainSamples, int epochs, String loss,
                   double testAccuracy, double teacherAgreement, double samplesPerSecond, double wallSeconds) {
            this(name, model, parameters, trainSamples, epochs, loss, testAccuracy, teacherAgreement, samplesPerSecond, wallSeconds,
                    null, null, Double.NaN);
        }

        /** Whether the row is the mean of more than one run. */
        public boolean repeated() {
            return testAccuracyRuns != null && testAccuracyRuns.size() > 1;
        }

        /** "81.80%", or "81.80±0.35%" for a row over several seeds. */
        public String accuracyText(String plusMinus) {
            return repeated() ? String.format(Locale.ROOT, "%.2f%s%.2f%%", 100 * testAccuracy, plusMinus, 100 * testAccuracyStd)
                    : String.format(Locale.ROOT, "%.2f%%", 100 * testAccuracy);
        }

        Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("row", name);
            m.put("model", model);
            m.put("parameters", parameters);
            m.put("trainSamples", trainSamples);
            m.put("epochs", epochs);
            m.put("loss", loss);
            m.put("testAccuracy", testAccuracy);
            if (seeds != null) {
                m.put("testAccuracyRuns", testAccuracyRuns);
                m.put("testAccuracyStd", testAccuracyStd); // sample std (n - 1); null for one seed
                m.put("seeds", seeds);
            }
            m.put("teacherAgreement", teacherAgreement);
            m.put("samplesPerSecond", samplesPerSecond);
            m.put("wallSeconds", wallSeconds);
            return m;
        }
    }

    private Demo() {
    }

    /** What writes a run's report files into its folder, once every row has trained. */
    @FunctionalInterface
    public interface Reporter {
        void write(Path out, Outcome outcome) throws IOException;
    }

    /** Runs the demo, prints the table to {@code out} and writes the JSON files; returns the rows. */
    public static List<Row> run(Settings s, PrintStream out) throws IOException {
        return runDetailed(s, out).rows();
    }

    /**
     * The rows of a run and each trained row's per-epoch results (by row name): {@code results} for the rows trained once,
     * {@code runs} (by seed, in the order of {@link Settings#seeds}) for the rows trained over several seeds.
     */
    public record Outcome(List<Row> rows, Map<String, DistillResult> results, Map<String, Map<Long, DistillResult>> runs) {
        public Outcome(List<Row> rows, Map<String, DistillResult> results) {
            this(rows, results, Map.of());
        }
    }

    /** Runs the demo and returns the rows with each trained row's full results. */
    public static Outcome runDetailed(Settings s, PrintStream out) throws IOException {
        Instant started = Instant.now();
        // before anything else: the folder is this run's alone (a second run on it is refused, having touched nothing)
        try (RunFolder held = RunFolder.lock(s.out)) {
            try {
                for (Path f : RunFolder.deleteLeftovers(s.out)) {
                    LOG.info("deleted {}, left by an interrupted save", f);
                }
            } catch (IOException e) {
                LOG.warn("cannot clean up interrupted saves in {}: {}", s.out, e.toString());
            }
            return runLocked(s, out, started);
        }
    }

    private static Outcome runLocked(Settings s, PrintStream out, Instant started) throws IOException {
        // first: a backend setting that cannot be used (-Ddistill.backend, training.backend), or an engine setting that names
        // no engine (-Ddistill.engine) or one that cannot run on this backend, fails before any data is read; an engine that
        // declines a particular row (its loss, its models) does when that row asks for it
        try (ComputeBackend backend = backend(s.backend)) {
            org.distill4j.train.StepEngines.checkRequested(backend);
            return runDetailed(s, out, backend, started);
        }
    }

    private static Outcome runDetailed(Settings s, PrintStream out, ComputeBackend backend, Instant started) throws IOException {
        Map<String, DistillResult> results = new LinkedHashMap<>();
        Map<String, Map<Long, DistillResult>> runs = new LinkedHashMap<>();
        FashionMnist.Split split = s.embedded ? FashionMnist.loadEmbedded(Demo.class.getClassLoader()) : FashionMnist.load(s.data);
        Dataset shuffled = s.shuffle ? split.train().shuffled(s.seed) : split.train();
        Dataset teacherSet = shuffled.head(s.teacherSamples);
        Dataset transfer = shuffled.head(s.transferSamples);
        Dataset labeledTransfer = transfer; // what a row without a teacher term trains on
        if (s.mixup > 0 && s.store != null) {
            throw new org.distill4j.examples.recipe.RecipeException(recipeFile(s) + (s.recipe != null ? "training.mixup" : "--mixup")
                    + " needs a teacher that runs: a stored teacher's rows are those of the samples it labeled, not of mixed inputs;"
                    + " leave out " + (s.recipe != null ? "teacher.store" : "--store") + " or the mixup");
        }
        if ((s.shift > 0 || s.flip) && s.store != null) {
            String setting = s.shift > 0 ? (s.recipe != null ? "training.shift" : "--shift") : (s.recipe != null ? "training.flip" : "--flip");
            throw new org.distill4j.examples.recipe.RecipeException(recipeFile(s) + setting + " needs a teacher that runs: a stored"
                    + " teacher's rows are those of the images it labeled, not of shifted or flipped ones; leave out "
                    + (s.recipe != null ? "teacher.store" : "--store") + " or the " + (s.shift > 0 ? "shift" : "flip"));
        }
        if (s.shift > 0 && s.shift >= Math.min(split.image().height(), split.image().width())) {
            throw new org.distill4j.examples.recipe.RecipeException(recipeFile(s) + (s.recipe != null ? "training.shift" : "--shift")
                    + ": the largest move must be below the images' sides (" + split.image().height() + "x" + split.image().width()
                    + " pixels in " + split.source() + "), got " + s.shift);
        }
        int unlabeled = 0;
        if (s.unlabeledSamples > 0) {
            // a teacher of stored outputs alone serves them where it was labeled on the same images in the same order,
            // whatever their labels (StoredTeacher.serves); else storeMismatch says what to change
            int from = transfer.size();
            int to = (int) Math.min(shuffled.size(), (long) from + s.unlabeledSamples);
            unlabeled = to - from;
            if (unlabeled > 0) {
                Dataset extra = shuffled.subset(java.util.stream.IntStream.range(from, to).toArray(), shuffled.name() + "[" + from + ":" + to + "]")
                        .withoutLabels(shuffled.name() + "[" + from + ":" + to + "], unlabeled");
                transfer = Dataset.concat(transfer.name() + " + " + unlabeled + " unlabeled", transfer, extra);
            }
        }
        Dataset test = split.test().head(s.testSamples);
        int in = shuffled.featureCount();
        int classes = shuffled.classes();
        List<TeacherSpec> specs = s.teachers != null ? s.teachers
                : List.of(s.teacherModel != null ? (TeacherSpec.isForeignModel(s.teacherModel)
                        ? TeacherSpec.djl(s.teacherModel, new TeacherSpec.Djl(null, null, null, null), 1)
                        : TeacherSpec.dl4j(s.teacherModel, 1))
                        : TeacherSpec.trained(s.teacherConv, s.teacherHidden, s.teacherDropout, s.teacherEpochs, 1));
        boolean teacherTrains = specs.stream().anyMatch(t -> t.model() == null); // a store-only teacher has no member at all
        // more samples than the split has: the run uses what there is (documented), says so, and provenance records it
        StringBuilder notes = new StringBuilder();
        if (teacherTrains) {
            capped(notes, s, "teacherSamples", "--teacher-samples", s.teacherSamples, teacherSet.size(), "training");
        }
        capped(notes, s, "transferSamples", "--transfer-samples", s.transferSamples, transfer.labeledSize(), "training");
        if (s.unlabeledSamples > unlabeled) {
            notes.append(String.format(Locale.ROOT, "note: %s is %d, but the training split has %d samples after the transfer set's:"
                    + " the run uses %d%n", s.recipe != null ? "data.unlabeledSamples" : "--unlabeled-samples", s.unlabeledSamples,
                    unlabeled, unlabeled));
        }
        capped(notes, s, "testSamples", "--test-samples", s.testSamples, test.size(), "test");
        Map<String, Object> samples = new LinkedHashMap<>(); // what the run used
        if (teacherTrains) {
            samples.put("teacher", teacherSet.size());
        }
        samples.put("transfer", transfer.labeledSize());
        if (unlabeled > 0) {
            samples.put("unlabeled", unlabeled);
        }
        samples.put("test", test.size());
        // printed once the first row's steps have an engine (or before anything else is printed): a step engine asked for by
        // name that declines the first row is a setting to change, and leaves nothing on the standard output, as an unknown
        // engine or backend does
        Header header = new Header(out, String.format(Locale.ROOT,
                "Fashion-MNIST from %s: %s, students on a transfer set of %s, test %d%n%s",
                split.source(), teacherTrains ? "teacher trains on " + teacherSet.size() + " samples"
                        : specs.isEmpty() ? "the teacher is stored outputs (nothing trains it)" : "the teacher is loaded, not trained",
                transfer.labeledSize() + (unlabeled > 0 ? " + " + unlabeled + " unlabeled" : ""), test.size(), notes));

        // a model too large to allocate is refused before anything loads or trains (ND4J's native allocation would crash the
        // JVM, or fail after the teacher trained)
        long limit = DemoModels.nd4jMemoryLimit();
        try {
            for (int i = 0; i < specs.size(); i++) {
                TeacherSpec spec = specs.get(i);
                if (spec.model() == null && spec.hidden() != null) {
                    String conv = s.recipe == null ? "--teacher-conv" : specs.size() == 1 ? "teacher.conv" : "teacher.ensemble[" + i + "].conv";
                    String field = s.recipe == null ? "--teacher-hidden" : specs.size() == 1 ? "teacher.hidden"
                            : "teacher.ensemble[" + i + "].hidden";
                    DemoModels.checkConv(conv, split.image(), spec.conv());
                    DemoModels.checkFits(spec.conv().length > 0 ? conv + ", " + field : field, split.image(), spec.conv(), in,
                            spec.hidden(), classes, s.updater(), limit);
                }
            }
            String studentConv = s.recipe == null ? "--student-conv" : "student.conv";
            String studentHidden = s.recipe == null ? "--student-hidden" : "student.hidden";
            DemoModels.checkConv(studentConv, split.image(), s.studentConv);
            DemoModels.checkFits(s.studentConv.length > 0 ? studentConv + ", " + studentHidden : studentHidden, split.image(),
                    s.studentConv, in, s.studentHidden, classes, s.updater(), limit);
        } catch (IllegalArgumentException e) {
            throw new org.distill4j.examples.recipe.RecipeException(recipeFile(s) + e.getMessage());
        }
        // every distilled row's settings are checked before anything trains (a top-k beyond the classes would otherwise
        // fail only when the teacher that took minutes to train is asked for its top k)
        List<Map.Entry<String, Method>> methods = new ArrayList<>();
        if (s.losses != null) {
            for (Map.Entry<String, LogitLoss> e : s.losses) {
                methods.add(Map.entry(e.getKey(), new Method(e.getValue(), describe(e.getValue()), 0)));
            }
        } else {
            for (String spec : s.compare) {
                Method m = method(spec, s);
                if (m.topK > classes) {
                    throw new IllegalArgumentException(spec + ": top-" + m.topK + " of " + classes + " classes; k must be 1 to " + classes);
                }
                methods.add(Map.entry(spec, m));
            }
        }
        if (s.store != null && s.storeOnly && s.storeTopK > classes) {
            throw new IllegalArgumentException("teacher.store.topk is " + s.storeTopK + ", more than the data's " + classes + " classes");
        }
        if (unlabeled > 0 || s.mixup > 0) { // a loss that needs every row's label (dkd) would fail at its first batch, after the teacher trained
            for (Map.Entry<String, Method> m : methods) {
                if (!m.getValue().loss().acceptsUnlabeledRows()) {
                    String why = unlabeled > 0 ? (s.recipe != null ? "data.unlabeledSamples" : "--unlabeled-samples")
                            + " gives the distilled rows " + unlabeled + " unlabeled samples"
                            : (s.recipe != null ? "training.mixup" : "--mixup") + " takes the labels of the rows it mixes";
                    throw new org.distill4j.examples.recipe.RecipeException(recipeFile(s) + m.getKey() + ": " + m.getValue().description()
                            + " needs a hard label on every row it trains on, but " + why + "; use a loss that takes unlabeled rows (kd,"
                            + " reverse-kl, gjsd, ...) or leave " + (unlabeled > 0 ? "them" : "the mixup") + " out");
                }
            }
        }
        List<Row> rows = new ArrayList<>();
        List<AutoCloseable> closers = new ArrayList<>();
        try {
            // every model file is read before any teacher trains: one that cannot be this run's teacher is a setting to
            // change, not minutes of training lost to an ensemble's later member
            Object[] loaded = new Object[specs.size()]; // a MultiLayerNetwork or a DjlTeacher per model member
            long[] loadNanos = new long[specs.size()];
            for (int i = 0; i < specs.size(); i++) {
                TeacherSpec spec = specs.get(i);
                if (spec.model() == null) {
                    continue;
                }
                long t0 = System.nanoTime();
                try {
                    if (spec.djl() == null) {
                        loaded[i] = dl4jTeacherNet(spec.model(), in, classes, split.image());
                    } else {
                        org.distill4j.teacher.djl.DjlTeacher t = djlTeacher(spec, in, classes);
                        closers.add(t);
                        loaded[i] = t;
                    }
                } catch (IllegalArgumentException e) {
                    String file = recipeFile(s);
                    String field = specs.size() == 1 ? "teacher.model" : "teacher.ensemble[" + i + "].model";
                    throw new org.distill4j.examples.recipe.RecipeException(file + field + ": cannot load " + spec.model() + ": "
                            + String.valueOf(e.getMessage()).replaceAll("\\s*\\R\\s*", " "));
                }
                loadNanos[i] = System.nanoTime() - t0;
            }
            if (!s.resume) {
                // starting over: the previous run's outputs go before anything trains (as each row's checkpoint does), so a
                // run that fails or is killed leaves no results, report or model of another run beside its own files
                List<Path> keep = new ArrayList<>(); // the run's own inputs, wherever they are
                java.util.stream.Stream.of(s.saveTeacher, s.store, s.teacherModel).filter(java.util.Objects::nonNull).forEach(keep::add);
                specs.stream().filter(t -> t.model() != null).forEach(t -> keep.add(t.model()));
                for (Path f : RunFolder.deletePreviousOutputs(s.out, keep)) {
                    LOG.info("starting over: deleted {} of the previous run", f);
                }
            }
            List<Teacher> members = new ArrayList<>();
            List<String> ids = new ArrayList<>();
            List<Map<String, Object>> teacherRecords = new ArrayList<>(); // for provenance: what each teacher was, by content
            MultiLayerNetwork teacherNet = null;
            for (int i = 0; i < specs.size(); i++) {
                TeacherSpec spec = specs.get(i);
                String rowName = specs.size() == 1 ? "teacher" : "teacher " + (i + 1);
                long t0 = System.nanoTime();
                if (spec.model() == null) {
                    MultiLayerNetwork net = DemoModels.model(split.image(), spec.conv(), spec.hidden(), classes, spec.dropout(),
                            s.updater(), s.seed + 100L * i);
                    DistillResult tr = train(s, rowName, s.seed, net, null, new CrossEntropy(), List.of(), teacherSet, test, spec.epochs(),
                            null, backend, header);
                    rows.add(row(rowName, DemoModels.shape(split.image(), spec.conv(), spec.hidden(), classes) + ", dropout " + spec.dropout(),
                            net.numParams(), teacherSet.size(), spec.epochs(), "ce", tr));
                    results.put(rowName, tr);
                    saveModel(s, rowName, net);
                    members.add(Dl4jTeacher.of(net));
                    ids.add(teacherId(net));
                    teacherNet = net;
                } else if (spec.djl() == null) {
                    MultiLayerNetwork net = (MultiLayerNetwork) loaded[i];
                    Dl4jTeacher t = Dl4jTeacher.of(net);
                    rows.add(evaluated(rowName, "loaded from " + spec.model().getFileName(), net.numParams(), t, test, t0 - loadNanos[i]));
                    members.add(t);
                    ids.add(teacherId(net));
                    teacherNet = net;
                } else {
                    org.distill4j.teacher.djl.DjlTeacher t = (org.distill4j.teacher.djl.DjlTeacher) loaded[i];
                    rows.add(evaluated(rowName, t.engine() + " " + spec.model().getFileName(), -1, t, test, t0 - loadNanos[i]));
                    members.add(t);
                    ids.add(fileId(spec.model()));
                }
            }
            for (int i = 0; i < specs.size(); i++) {
                Map<String, Object> t = new LinkedHashMap<>();
                t.put("row", specs.size() == 1 ? "teacher" : "teacher " + (i + 1));
                t.put("model", specs.get(i).model() == null ? "trained here" : specs.get(i).model().toAbsolutePath().toString());
                t.put("id", ids.get(i)); // a CRC32C of the weights (DL4J) or of the file (ONNX, TorchScript)
                teacherRecords.add(t);
            }
            if (!s.allFeatures().isEmpty()) { // a loaded teacher's layers are known now: check the terms before any student trains
                MultiLayerNetwork studentNet = initialStudent(s, split.image(), classes, null);
                if (s.rowFeatures != null && s.namedRows) {
                    for (Map.Entry<String, List<FeatureTerm>> row : s.rowFeatures.entrySet()) {
                        checkFeatureLayers("loss." + row.getKey(), row.getValue(), teacherNet, specs.get(0).model());
                        checkFeatureMaps(recipeFile(s) + "loss." + row.getKey(), row.getValue(), studentNet, teacherNet, in);
                    }
                } else {
                    checkFeatureLayers("loss", s.allFeatures(), teacherNet, specs.get(0).model());
                    checkFeatureMaps(recipeFile(s) + "loss", s.allFeatures(), studentNet, teacherNet, in);
                }
            }
            Teacher liveTeacher = null;
            String liveId = null;
            if (members.size() == 1) {
                liveTeacher = members.get(0);
                liveId = ids.get(0);
            } else if (members.size() > 1) {
                double[] w = specs.stream().mapToDouble(TeacherSpec::weight).toArray();
                liveTeacher = org.distill4j.teacher.EnsembleTeacher.of(members, w, s.combine);
                liveId = ensembleId(ids, w, s.combine);
                rows.add(evaluated("teacher ensemble", members.size() + " teachers, " + s.combine.name().toLowerCase(Locale.ROOT)
                        + " averaged", -1, liveTeacher, test, System.nanoTime()));
            }
            if (s.saveTeacher != null) {
                if (members.size() != 1 || teacherNet == null) {
                    throw new IllegalArgumentException("--save-teacher saves one DL4J teacher; this run has "
                            + (members.size() != 1 ? members.size() + " teachers" : "a foreign (DJL) teacher"));
                }
                StoreCommands.saveModel(teacherNet, s.saveTeacher);
                header.print();
                out.println("saved the teacher to " + s.saveTeacher);
            }
            Teacher distillTeacher = liveTeacher;
            org.distill4j.store.SoftTargetStore onlyStore = null;
            Map<String, Object> storeRecord = null;
            if (s.store != null && s.storeOnly) {
                String how = "given";
                if (liveTeacher != null) { // a store of the same images labeled with other labels is reused (Labeler.label)
                    org.distill4j.store.Labeler.Result lr = org.distill4j.store.Labeler.label(liveTeacher, transfer, s.store,
                            new org.distill4j.store.Labeler.Options(s.storeTopK, s.storeCodec, 1024, StoreCommands.teacherBatch(1024), liveId), null);
                    header.print();
                    out.printf(Locale.ROOT, "%s %d rows in %s%n", lr.alreadyComplete() ? "reusing the stored" : "labeled", lr.rows(), s.store);
                    how = lr.alreadyComplete() ? "reused" : "labeled";
                }
                onlyStore = org.distill4j.store.SoftTargetStore.open(s.store);
                storeRecord = storeRecord(onlyStore, how);
                distillTeacher = org.distill4j.store.StoredTeacher.of(onlyStore, liveId); // no live teacher: any id
                if (liveTeacher == null) {
                    header.print();
                    out.println("teacher: " + distillTeacher.describe() + " (stored outputs only)");
                    if (!distillTeacher.serves(transfer)) {
                        throw new org.distill4j.examples.recipe.RecipeException(storeMismatch(s, onlyStore, split, transfer));
                    }
                }
            } else if (liveTeacher == null) {
                throw new IllegalArgumentException("no teacher: give a model, a training spec, an ensemble or a store");
            }
            Students students = new Students(s, in, classes, split.image(), transfer, labeledTransfer, test, backend, rows, results, runs,
                    header);
            List<Double> a = students.row("student alone", liveTeacher, new CrossEntropy(), "ce", List.of());
            Map<String, Object> gains = new LinkedHashMap<>();
            Map<String, Object> gainStds = new LinkedHashMap<>();
            Map<String, String> gainOfRow = new LinkedHashMap<>(); // a distilled row's name -> its key in gains
            for (Map.Entry<String, Method> entry : methods) {
                String spec = entry.getKey();
                Method m = entry.getValue();
                Teacher teacher = m.topK > 0 ? TopKTeacher.of(liveTeacher, m.topK) : distillTeacher;
                String label = !s.namedRows && methods.size() == 1 && (spec.equals("kd") || s.losses != null) ? "student distilled"
                        : distilledLabel(spec);
                String description = m.description;
                List<FeatureTerm> features = s.featuresOf(spec);
                for (FeatureTerm f : features) {
                    description += " + " + f.describe();
                }
                gain(spec, students.row(label, teacher, m.loss, description, features), a, gains, gainStds);
                gainOfRow.put(label, spec);
            }
            if (onlyStore != null) {
                onlyStore.close();
            }
            if (s.store != null && !s.storeOnly) {
                // label once, then train the same student from the stored soft targets
                // the store is tied to this teacher's weights: a store labeled by another teacher is refused, not reused; one
                // this teacher labeled on the same images with other labels (without the unlabeled samples' labels, or with
                // them) is reused as it is, its rows being the teacher's outputs for these images
                org.distill4j.store.Labeler.Result lr = org.distill4j.store.Labeler.label(liveTeacher, transfer, s.store,
                        new org.distill4j.store.Labeler.Options(0, org.distill4j.store.ValueCodec.F16, 1024, StoreCommands.teacherBatch(1024), liveId), null);
                header.print();
                if (lr.alreadyComplete()) {
                    out.printf(Locale.ROOT, "reusing the stored %d rows in %s%n", lr.rows(), s.store);
                } else {
                    out.printf(Locale.ROOT, "labeled %d rows into %s in %.2f s%n", lr.rows(), s.store, lr.seconds());
                }
                try (org.distill4j.store.SoftTargetStore store = org.distill4j.store.SoftTargetStore.open(s.store)) {
                    storeRecord = storeRecord(store, lr.alreadyComplete() ? "reused" : "labeled");
                    Method m = method("kd", s);
                    gain("kd (stored f16)", students.row("distilled: kd, stored f16", org.distill4j.store.StoredTeacher.of(store, liveId),
                            m.loss, m.description, List.of()), a, gains, gainStds);
                    gainOfRow.put("distilled: kd, stored f16", "kd (stored f16)");
                }
            }
            header.print();
            printTable(rows, out);
            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("demo", s.recipe != null ? s.recipe.get("name") : "hinton-fashion-mnist");
            summary.put("dataSource", split.source());
            summary.put("testSamples", test.size());
            // each distilled row carries its own gain (and std over seeds) too: the gain maps below are keyed by method
            summary.put("rows", rows.stream().map(r -> {
                Map<String, Object> m = r.asMap();
                String key = gainOfRow.get(r.name());
                if (key != null) {
                    m.put("distillationGain", gains.get(key));
                    if (s.seeded()) {
                        m.put("distillationGainStd", gainStds.get(key));
                    }
                }
                return m;
            }).toList());
            // test accuracy of each distilled row minus the student alone; over seeds the mean of the paired differences
            // (the distilled run with seed i minus the student alone with seed i) and their sample std
            summary.put("distillationGain", gains);
            if (s.seeded()) {
                summary.put("distillationGainStd", gainStds);
            }
            Map<String, Object> provenance = Provenance.record(s.recipe != null ? s.recipe : s.asMap(), split.source(), backend,
                    started, Instant.now());
            if (s.recipeOrigin != null) {
                provenance.put("recipeFile", s.recipeOrigin);
            }
            provenance.put("teachers", teacherRecords);
            provenance.put("samples", samples);
            if (s.seeded()) {
                provenance.put("seeds", s.seeds); // the student rows' seeds; the teacher and data draw used "seed"
            }
            if (members.size() > 1) {
                provenance.put("ensembleId", liveId);
            }
            if (storeRecord != null) {
                provenance.put("store", storeRecord);
            }
            Map<String, Object> engines = new LinkedHashMap<>(); // what ran each row's training steps, and why
            results.forEach((label, r) -> engines.put(label, r.engine()));
            runs.forEach((label, bySeed) -> bySeed.forEach((seed, r) -> engines.put(seedLabel(label, seed), r.engine())));
            provenance.put("engines", engines);
            AtomicFiles.writeString(s.out.resolve("provenance.json"), Json.write(provenance));
            if (s.report != null) {
                s.report.write(s.out, new Outcome(rows, results, runs));
            }
            // last, after every other output: a folder with results.json holds a run that completed
            AtomicFiles.writeString(s.out.resolve("results.json"), Json.write(summary));
            out.println("wrote " + s.out.resolve("results.json") + " and " + s.out.resolve("provenance.json"));
        } finally {
            for (AutoCloseable c : closers) {
                try {
                    c.close();
                } catch (Exception e) {
                    LOG.warn("closing {}", c, e);
                }
            }
        }
        return new Outcome(rows, results, runs);
    }

    /**
     * A line for {@code notes} when {@code asked} samples were asked for ({@code field} of a recipe's data, or the demo's
     * {@code option}) and the split has only {@code used}.
     */
    private static void capped(StringBuilder notes, Settings s, String field, String option, int asked, int used, String split) {
        if (asked > used) {
            notes.append(String.format(Locale.ROOT, "note: %s is %d, but the %s split has %d samples: the run uses %d%n",
                    s.recipe != null ? "data." + field : option, asked, split, used, used));
        }
    }

    /**
     * Why a store-only teacher's store cannot serve this run's transfer set, and what to set instead: the store's rows are
     * compared with the training split's first rows (what {@code distill label --limit N} labels) and with its first rows
     * shuffled with the run's seed (what an earlier run with these data settings labeled), so the advice names the store's
     * actual N, and only the settings that differ (with unlabeled samples, their count first).
     */
    private static String storeMismatch(Settings s, org.distill4j.store.SoftTargetStore store, FashionMnist.Split split, Dataset transfer) {
        long rows = store.rows();
        String file = recipeFile(s);
        String what = file + "teacher.store.path: " + s.store + " holds " + rows + " rows, not this run's transfer set ("
                + transfer.size() + " samples, " + (s.shuffle ? "drawn from the training split shuffled with seed " + s.seed
                : "the training split's first " + transfer.size()) + ", " + split.source() + ")";
        org.distill4j.store.StoredTeacher stored = org.distill4j.store.StoredTeacher.of(store, null);
        boolean fits = rows <= split.train().size();
        boolean firstRows = fits && stored.serves(split.train().head((int) rows));
        boolean seededRows = fits && !firstRows && stored.serves(split.train().shuffled(s.seed).head((int) rows));
        int unlabeled = transfer.unlabeledSize();
        int labeled = transfer.size() - unlabeled;
        List<String> set = new ArrayList<>();
        if (firstRows && s.shuffle) {
            set.add("data.shuffle: false");
        } else if (seededRows && !s.shuffle) {
            set.add("data.shuffle: true");
        }
        if (transfer.size() != rows) {
            if (unlabeled > 0 && rows > labeled) {
                set.add("data.unlabeledSamples: " + (rows - labeled));
            } else if (unlabeled > 0) {
                set.add("data.transferSamples: " + rows);
                set.add("data.unlabeledSamples: 0");
            } else {
                set.add("data.transferSamples: " + rows);
            }
        }
        String whose = firstRows ? "the training split's first " + rows + " samples (as 'distill label --limit " + rows + "' labels them)"
                : "the training split's first " + rows + " samples shuffled with seed " + s.seed + " (as a run with these data settings"
                + " labels them)";
        if ((firstRows || seededRows) && !set.isEmpty()) {
            return what + "; its rows are " + whose + ": set " + String.join(" and ", set);
        }
        if (firstRows || seededRows) { // the same images in the same order: only their labels differ
            return what + "; its rows are " + whose + ", but it was made before stores recorded the images apart from their labels,"
                    + " so it serves them only with the labels it was labeled with: label them again into a new store to serve some"
                    + " of them unlabeled";
        }
        return what + "; its rows are not the training split's first " + rows + " samples either (it was labeled on other data):"
                + " label this data's first " + transfer.size() + " samples into a store ('distill label --limit " + transfer.size()
                + "' with the recipe's data.path) and set data.shuffle: false, or run on the data the store was labeled on";
    }

    /** A line for {@code out} that is printed once, by the first {@link #print()}. */
    private static final class Header {
        private final PrintStream out;
        private String pending;

        Header(PrintStream out, String line) {
            this.out = out;
            this.pending = line;
        }

        void print() {
            if (pending != null) {
                out.print(pending);
                pending = null;
            }
        }

        /** A progress line, after the header. */
        void line(String line) {
            print();
            out.println(line);
        }
    }

    /** The student rows of a run: each trained once (as always) or once per seed of {@link Settings#seeds}. */
    private record Students(Settings s, int in, int classes, org.distill4j.data.ImageShape image, Dataset transfer, Dataset labeledTransfer, Dataset test,
                            ComputeBackend backend, List<Row> rows, Map<String, DistillResult> results,
                            Map<String, Map<Long, DistillResult>> runs, Header header) {
        /**
         * The data a row trains on: the transfer set with its unlabeled samples where a term reads the teacher, else its
         * labeled samples alone (the Distiller would leave the unlabeled ones out, but shuffle among all of them: the
         * student alone then trains exactly as in a run without unlabeled samples, and the rows stay comparable).
         */
        Dataset data(LogitLoss loss, List<FeatureTerm> features) {
            return teacherTerm(loss, features) ? transfer : labeledTransfer;
        }

        /**
         * A row's training-batch augmentation, or null: the image transforms ({@link Settings#shift}, {@link Settings#flip})
         * on every student row, as they keep the labels, then mixup on the rows whose terms read the teacher.
         */
        org.distill4j.data.Augmentation augmentation(LogitLoss loss, List<FeatureTerm> features) {
            List<org.distill4j.data.Augmentation> parts = new ArrayList<>();
            if (s.shift > 0) {
                parts.add(org.distill4j.data.Augmentation.shift(image, s.shift));
            }
            if (s.flip) {
                parts.add(org.distill4j.data.Augmentation.flip(image));
            }
            if (s.mixup > 0 && teacherTerm(loss, features)) {
                parts.add(org.distill4j.data.Augmentation.mixup(s.mixup));
            }
            return parts.stream().reduce(org.distill4j.data.Augmentation::then).orElse(null);
        }

        /** Trains the row {@code label}, adds it, and returns its test accuracy per seed (one value without seeds). */
        List<Double> row(String label, Teacher teacher, LogitLoss loss, String description, List<FeatureTerm> features) throws IOException {
            if (s.shift > 0) {
                description = description + ", shift(" + s.shift + ")";
            }
            if (s.flip) {
                description = description + ", flip";
            }
            if (s.mixup > 0 && teacherTerm(loss, features)) {
                description = description + ", mixup(" + s.mixup + ")";
            }
            org.distill4j.data.Augmentation augmentation = augmentation(loss, features);
            String shape = DemoModels.shape(image, s.studentConv, s.studentHidden, classes);
            if (!s.seeded()) {
                MultiLayerNetwork net = initialStudent(s, image, classes, null);
                Dataset data = data(loss, features);
                DistillResult r = train(s, label, s.seed, net, teacher, loss, features, data, test, s.studentEpochs, augmentation, backend,
                        header);
                rows.add(Demo.row(label, shape, net.numParams(), data.usedSize(), s.studentEpochs, description, r));
                results.put(label, r);
                saveModel(s, label, net);
                return List.of(r.testAccuracy());
            }
            Map<Long, DistillResult> bySeed = new LinkedHashMap<>();
            long params = 0;
            for (long seed : s.seeds) {
                // the same initial weights and batch order for every row of one seed: the rows stay paired
                String run = seedLabel(label, seed); // its own checkpoints (<row>-seed-<n>, -seed-minus-<n> below 0) and model file
                MultiLayerNetwork net = initialStudent(s, image, classes, seed);
                bySeed.put(seed, train(s, run, seed, net, teacher, loss, features, data(loss, features), test, s.studentEpochs,
                        augmentation, backend, header));
                saveModel(s, run, net);
                params = net.numParams();
            }
            List<Double> acc = bySeed.values().stream().map(DistillResult::testAccuracy).toList();
            rows.add(new Row(label, shape, params, data(loss, features).usedSize(), s.studentEpochs, description, mean(acc),
                    mean(bySeed.values().stream().map(DistillResult::teacherAgreement).toList()),
                    mean(bySeed.values().stream().map(DistillResult::samplesPerSecond).toList()),
                    bySeed.values().stream().mapToDouble(DistillResult::wallSeconds).sum(), List.copyOf(s.seeds), acc, std(acc)));
            runs.put(label, bySeed);
            return acc;
        }
    }

    /**
     * A student row's network before training. Its initial weights are drawn from {@code runSeed}, the run's seed of
     * {@link Settings#seeds}, alone: the same seed gives every student row the same start (the rows stay paired), another
     * seed another start, whatever {@link Settings#seed} is. Without seeds ({@code runSeed} null) from {@code seed + 1}.
     */
    static MultiLayerNetwork initialStudent(Settings s, org.distill4j.data.ImageShape image, int classes, Long runSeed) {
        return DemoModels.model(image, s.studentConv, s.studentHidden, classes, 0, s.updater(), runSeed != null ? runSeed : s.seed + 1);
    }

    /** Records a distilled row's gain over the student alone: the mean (and sample std) of the paired per-seed differences. */
    private static void gain(String key, List<Double> distilled, List<Double> alone, Map<String, Object> gains, Map<String, Object> stds) {
        List<Double> d = new ArrayList<>();
        for (int i = 0; i < distilled.size(); i++) {
            d.add(distilled.get(i) - alone.get(i));
        }
        gains.put(key, mean(d));
        stds.put(key, std(d));
    }

    /** The mean, summed in order. */
    public static double mean(List<Double> v) {
        double sum = 0;
        for (double x : v) {
            sum += x;
        }
        return sum / v.size();
    }

    /** The sample standard deviation (n - 1); NaN for fewer than two values. */
    public static double std(List<Double> v) {
        if (v.size() < 2) {
            return Double.NaN;
        }
        double m = mean(v);
        double ss = 0;
        for (double x : v) {
            ss += (x - m) * (x - m);
        }
        return Math.sqrt(ss / (v.size() - 1));
    }

    /**
     * The backend a run asked for: {@code auto} (or null) chooses as {@link Backends#select()} does, honouring
     * {@value Backends#PROPERTY} / {@value Backends#ENV}; a name is the recipe's {@code training.backend}, and an
     * unknown or unavailable one is reported as that field. Either way a backend that cannot be used throws
     * {@link Backends.UnknownBackendException} or {@link Backends.UnavailableBackendException}, naming the setting.
     */
    static ComputeBackend backend(String requested) {
        if (requested == null || requested.equalsIgnoreCase("auto")) {
            return Backends.select();
        }
        return Backends.select(requested.toLowerCase(Locale.ROOT), "training.backend: " + requested, Backends.providers());
    }

    /**
     * A store for provenance: where it is, whether this run labeled it, reused it or was given it, and its
     * header, whose provenance names the teacher (by content id) and the data (name, rows, fingerprint).
     */
    private static Map<String, Object> storeRecord(org.distill4j.store.SoftTargetStore store, String how) {
        org.distill4j.store.StoreHeader h = store.header();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("path", store.path().toAbsolutePath().toString());
        m.put("use", how);
        m.put("teacher", org.distill4j.store.StoredTeacher.teacherId(h.provenance()));
        m.put("layout", h.layout() == org.distill4j.store.StoreHeader.Layout.TOP_K ? "top-" + h.k() : "dense");
        m.put("dtype", h.codec().name().toLowerCase(Locale.ROOT));
        m.put("rows", h.rows());
        m.put("provenance", h.provenance()); // the header's JSON, as stored
        return m;
    }

    /** With {@link Settings#saveModels}: the row's trained network as {@code <row>.zip} in the output directory. */
    private static void saveModel(Settings s, String row, MultiLayerNetwork net) throws IOException {
        if (s.saveModels) {
            Path file = s.out.resolve(fileName(row) + ".zip");
            StoreCommands.saveModel(net, file);
            LOG.info("saved {} to {}", row, file);
        }
    }

    /** A loaded teacher's row: its test accuracy, no training. {@code params < 0}: not known (foreign models). */
    private static Row evaluated(String name, String model, long params, Teacher t, Dataset test, long t0) {
        double acc = org.distill4j.train.Evaluation.accuracy(org.distill4j.train.Evaluation.predict(t, test), test);
        return new Row(name, model, params, 0, 0, "-", acc, Double.NaN, Double.NaN, (System.nanoTime() - t0) / 1e9);
    }

    /**
     * A saved DL4J MultiLayerNetwork as a teacher for data of {@code features} inputs and {@code classes} classes: a file that
     * is not one (an array in it damaged, or entries too large to load: {@link ModelFiles#checkArrays}), or a model of other
     * classes (read with the data's row stride) or inputs (failing deep in DL4J), is an {@link IllegalArgumentException} saying
     * which.
     */
    static MultiLayerNetwork dl4jTeacherNet(Path model, int features, int classes, org.distill4j.data.ImageShape image) {
        MultiLayerNetwork net;
        try {
            // checked first: a damaged length or shape would have ND4J allocate it or read out of bounds, a zip bomb fill the heap
            net = ModelFiles.readChecked(model, false, in -> org.deeplearning4j.util.ModelSerializer.restoreMultiLayerNetwork(in, false));
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("cannot read it as a DL4J MultiLayerNetwork (ModelSerializer zip; for ONNX or"
                    + " TorchScript use a .onnx / .pt name or an engine): " + e.getMessage(), e);
        }
        int c = Dl4jTeacher.of(net).classes();
        if (c != classes) {
            throw new IllegalArgumentException("a DL4J model of " + c + " classes, but the data has " + classes);
        }
        String problem = ModelFiles.inputProblem(net, features, image, "the data");
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        return net;
    }

    /** A foreign teacher through DJL; its input is the flat feature row unless the spec gives a shape. */
    static org.distill4j.teacher.djl.DjlTeacher djlTeacher(TeacherSpec spec, int in, int classes) {
        TeacherSpec.Djl d = spec.djl();
        org.distill4j.teacher.djl.DjlTeacher.Builder b = org.distill4j.teacher.djl.DjlTeacher.builder()
                .setModelPath(spec.model())
                .setInputShape(d.inputShape() != null ? d.inputShape() : new long[] {in})
                .optClasses(classes);
        if (d.engine() != null) {
            b.optEngine(d.engine());
        }
        if (d.logitsOutput() != null) {
            b.optLogitsOutput(d.logitsOutput());
        }
        if (d.outputNames() != null) {
            b.optOutputNames(d.outputNames().toArray(String[]::new));
        }
        return b.build();
    }

    /** "file-" plus a CRC32C of a model file's bytes: a store is reused only for the very same model. */
    static String fileId(Path model) throws IOException {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        byte[] buf = new byte[1 << 16];
        try (java.io.InputStream in = java.nio.file.Files.newInputStream(model)) { // streamed: a model may exceed 2 GiB
            for (int n; (n = in.read(buf)) > 0; ) {
                crc.update(buf, 0, n);
            }
        }
        return "file-" + Long.toHexString(crc.getValue());
    }

    /** The members' ids, weights and combination rule, hashed: an ensemble's store is reused only for the same ensemble. */
    static String ensembleId(List<String> ids, double[] weights, org.distill4j.teacher.EnsembleTeacher.Combine combine) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        StringBuilder b = new StringBuilder(combine.name());
        for (int i = 0; i < ids.size(); i++) {
            b.append('|').append(ids.get(i)).append('*').append(weights[i]);
        }
        crc.update(b.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return "ensemble-" + Long.toHexString(crc.getValue());
    }

    /** "mlp-" plus a CRC32C of the teacher's parameters: a store is reused only for the very same weights. */
    static String teacherId(MultiLayerNetwork net) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        float[] p = net.params().ravel().toFloatVector();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(p.length * 4);
        b.asFloatBuffer().put(p);
        crc.update(b);
        return "mlp-" + Long.toHexString(crc.getValue());
    }

    /**
     * A feature loss term of the distilled rows: the registered feature loss {@code name} with its settings, between the
     * student's layer {@code studentLayer} and the teacher's {@code teacherLayer} (0-based indexes among the networks'
     * layers, as DL4J counts them: a convolution block of {@link DemoModels#model} is two; a hint's sizes are theirs),
     * named {@code student} and {@code teacher} in tables ("1", "conv0"). The student trains as a ComputationGraph with
     * that layer as an extra output, and its trained weights go back into the row's network.
     */
    public record FeatureTerm(String name, double weight, Map<String, Object> settings, int studentLayer, int teacherLayer,
                              String student, String teacher) {
        /** A term between layers named by their indexes (MLPs: hidden layer i is layer i). */
        public FeatureTerm(String name, double weight, Map<String, Object> settings, int studentLayer, int teacherLayer) {
            this(name, weight, settings, studentLayer, teacherLayer, String.valueOf(studentLayer), String.valueOf(teacherLayer));
        }

        /** For the table: {@code 0.5*rkd(student 0, teacher 1)}, {@code at(student conv1, teacher conv1, beta=1000.0)}. */
        String describe() {
            String w = weight == 1.0 ? "" : (weight == Math.rint(weight) ? String.valueOf((long) weight) : String.valueOf(weight)) + "*";
            List<String> parts = new ArrayList<>(List.of("student " + student, "teacher " + teacher));
            settings.forEach((k, v) -> parts.add(k + "=" + v));
            return w + name + "(" + String.join(", ", parts) + ")";
        }
    }

    /** A distillation method of the comparison: its loss, a description for the table, and top-k (0 for dense). */
    record Method(LogitLoss loss, String description, int topK) {
    }

    /** "FILE: " for an error about a recipe's setting, "" outside recipe runs. */
    private static String recipeFile(Settings s) {
        return s.recipeOrigin != null && s.recipeOrigin.get("file") != null ? s.recipeOrigin.get("file") + ": " : "";
    }

    /**
     * Turns {@code name[:key=value...]} into a loss the way its paper uses it: {@code kd} and
     * {@code logit-std} (around kd) take the demo's T and alpha; {@code dkd} is added to cross-entropy
     * as in the DKD paper; any other registered loss is mixed as {@code alpha * ce + (1 - alpha) * loss};
     * {@code topk-kd} reads the teacher's top {@code k} classes (setting {@code k}, default 3).
     */
    static Method method(String spec, Settings s) {
        String[] parts = spec.split(":");
        String name = parts[0].trim();
        Map<String, Object> settings = new LinkedHashMap<>();
        for (int i = 1; i < parts.length; i++) {
            int eq = parts[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("loss setting '" + parts[i] + "' in '" + spec + "' is not key=value");
            }
            settings.put(parts[i].substring(0, eq).trim(), parts[i].substring(eq + 1).trim());
        }
        int topK = 0;
        if (name.equals(TopKKd.NAME)) {
            Object k = settings.remove("k");
            topK = k == null ? 3 : Integer.parseInt(k.toString());
        }
        LogitLoss loss;
        switch (name) {
            case "kd", "logit-std" -> {
                Map<String, Object> withDefaults = new LinkedHashMap<>();
                withDefaults.put("temperature", s.temperature);
                withDefaults.put("alpha", s.alpha);
                withDefaults.putAll(settings);
                loss = Losses.create(name, withDefaults);
            }
            case "dkd" -> loss = WeightedSum.builder().add(1.0, new CrossEntropy()).add(1.0, Losses.create(name, settings)).build();
            default -> {
                Map<String, Object> withDefaults = new LinkedHashMap<>(settings);
                if (!name.equals("mse")) {
                    withDefaults.putIfAbsent("temperature", s.temperature);
                }
                loss = WeightedSum.builder().add(s.alpha, new CrossEntropy())
                        .add(1 - s.alpha, Losses.create(name, withDefaults)).build();
            }
        }
        return new Method(loss, describe(loss) + (topK > 0 ? ", top-" + topK + " teacher" : ""), topK);
    }

    /**
     * Whether a row's objective reads the teacher (a logit term that does, or a feature term): the distilled rows. The
     * student alone has the teacher too, for its agreement, but trains on {@code ce}.
     */
    static boolean teacherTerm(LogitLoss loss, List<FeatureTerm> features) {
        return Distiller.readsTeacher(loss, features != null && !features.isEmpty());
    }

    /** {@code ce + dkd(alpha=1.0, beta=8.0, ...)}, {@code 0.1*ce + 0.9*tvd(temperature=4.0)}: weights of 1 omitted. */
    static String describe(LogitLoss loss) {
        if (loss instanceof WeightedSum ws) {
            List<String> parts = new ArrayList<>();
            for (WeightedSum.Term t : ws.terms()) {
                double w = t.currentWeight();
                String weight = w == 1.0 ? "" : (w == Math.rint(w) ? String.valueOf((long) w) : String.valueOf(w)) + "*";
                parts.add(weight + describe(t.loss()));
            }
            return String.join(" + ", parts);
        }
        List<String> settings = loss.settings().entrySet().stream().filter(e -> !e.getKey().equals("reduction"))
                .map(e -> e.getKey() + "=" + e.getValue()).toList();
        return settings.isEmpty() ? loss.name() : loss.name() + "(" + String.join(", ", settings) + ")";
    }

    private static DistillResult train(Settings s, String label, long seed, MultiLayerNetwork net, Teacher teacher, LogitLoss loss,
                                       List<FeatureTerm> features, Dataset train, Dataset test, int epochs,
                                       org.distill4j.data.Augmentation augmentation, ComputeBackend backend, Header header) {
        LOG.info("training {}: {} samples, {} epochs", label, train.unlabeledSize() == 0 ? String.valueOf(train.size())
                : train.labeledSize() + " labeled + " + train.unlabeledSize() + " unlabeled", epochs);
        org.deeplearning4j.nn.graph.ComputationGraph graph = null;
        Distiller.Builder b = Distiller.builder();
        if (features.isEmpty()) {
            b.student(Dl4jStudent.of(net));
        } else {
            // the student as a graph (its layers are the vertices "0", "1", ...) with the hidden layers the terms read as
            // extra outputs; the teacher's hidden layer i is its feature "layer<i>"
            if (!(teacher instanceof Dl4jTeacher dt) || dt.multiLayerNetwork() == null) {
                throw new IllegalArgumentException("feature losses read the teacher's hidden layers; the teacher here is "
                        + (teacher == null ? "none" : teacher.describe()) + ", not a DL4J MultiLayerNetwork");
            }
            MultiLayerNetwork teacherNet = dt.multiLayerNetwork();
            graph = Dl4jStudent.withFeatureOutputs(net.toComputationGraph(),
                    features.stream().map(f -> String.valueOf(f.studentLayer())).distinct().toArray(String[]::new));
            b.student(Dl4jStudent.of(graph));
            int in = (int) train.featureCount();
            for (FeatureTerm f : features) {
                Map<String, Object> settings = new LinkedHashMap<>(f.settings());
                if (org.distill4j.loss.FeatureLosses.entries().stream().anyMatch(e -> e.name().equals(f.name())
                        && e.settings().contains("studentSize"))) {
                    settings.put("studentSize", width(net, f.studentLayer(), in));
                    settings.put("teacherSize", width(teacherNet, f.teacherLayer(), in));
                }
                b.featureLoss(f.weight(), org.distill4j.loss.FeatureLosses.create(f.name(), settings), String.valueOf(f.studentLayer()),
                        "layer" + f.teacherLayer());
            }
        }
        b.loss(loss)
                .trainData(train)
                .testData(test)
                .epochs(epochs)
                .batchSize(s.batchSize)
                .seed(seed)
                .backend(backend);
        if (loss.needsTeacher() || teacher != null) {
            b.teacher(teacher);
        }
        if (augmentation != null) {
            b.augmentation(augmentation);
        }
        if (s.stepEngines != null) {
            b.stepEngines(s.stepEngines);
        }
        if (s.engine != null) {
            b.engine(s.engine);
        }
        if (s.temperatureSchedule != null && loss instanceof org.distill4j.loss.TemperatureScaled) {
            b.temperature(s.temperatureSchedule); // the distilled rows; teachers and the student alone train on ce
        }
        if (s.alphaSchedule != null && loss instanceof org.distill4j.loss.SoftTargetKd) {
            b.alpha(s.alphaSchedule);
        }
        b.listener(new org.distill4j.train.TrainingListener() {
            @Override
            public void epochStarted(int epoch, int epochs, int batches) {
                header.print(); // the steps have an engine: the run goes on
            }
        });
        if (s.progress) {
            b.listener(ConsoleProgress.toStderr(label));
        }
        boolean[] trained = new boolean[1]; // an epoch started: a resumed row went on, not restored finished
        boolean resuming = false;
        if (s.checkpoints) {
            org.distill4j.train.Checkpoints c = checkpoints(s, label);
            b.checkpoints(s.resume ? c : c.startOver());
            // the CLI's log level hides Distiller's own lines: a row that resumes or starts over says so here
            if (java.nio.file.Files.exists(c.file())) {
                if (s.resume) {
                    resuming = true;
                    b.listener(new org.distill4j.train.TrainingListener() {
                        @Override
                        public void epochStarted(int epoch, int epochs, int batches) {
                            if (!trained[0]) {
                                trained[0] = true;
                                header.line(label + ": resumed from its checkpoint " + c.file() + " at epoch " + (epoch + 1) + " of "
                                        + epochs);
                            }
                        }
                    });
                } else {
                    header.line(label + ": starting over, deleting its checkpoint " + c.file() + " (--resume would continue it)");
                }
            }
        }
        DistillResult r = b.build().run();
        if (resuming && !trained[0]) {
            header.line(label + ": restored from its checkpoint " + checkpointDir(s, label) + " (finished, not trained again)");
        }
        header.print(); // a finished row restored from its checkpoint starts no epoch
        if (graph != null) {
            net.setParams(graph.params()); // the trained weights, in the network the row saves and reports
        }
        return r;
    }

    /**
     * The values per sample of layer {@code i}'s output (its activation, whatever the layer's kind), from one forward pass of
     * a sample of {@code in} zeros.
     */
    private static int width(MultiLayerNetwork net, int i, int in) {
        long size = 1;
        for (long d : featureShape(net, i, in)) {
            size *= d;
        }
        return Math.toIntExact(size);
    }

    /** The shape of one sample's output of layer {@code i} ({C, H, W} for a convolution), from a forward pass of zeros. */
    private static long[] featureShape(MultiLayerNetwork net, int i, int in) {
        org.nd4j.linalg.api.ndarray.INDArray x = org.nd4j.linalg.factory.Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.FLOAT, 1, in);
        long[] shape = net.feedForwardToLayer(i, x, false).get(i + 1).shape();
        return java.util.Arrays.copyOfRange(shape, 1, shape.length);
    }

    /**
     * An attention-transfer term compares maps {C, H, W} of the same height and width: a usage error naming the term and
     * both layers' shapes otherwise (a loaded teacher's layer is only known now; a recipe's trained models are checked
     * when it loads), before any student trains rather than at the first batch.
     */
    private static void checkFeatureMaps(String where, List<FeatureTerm> features, MultiLayerNetwork studentNet,
                                         MultiLayerNetwork teacherNet, int in) {
        for (FeatureTerm f : features) {
            if (!f.name().equals(org.distill4j.loss.AttentionTransfer.NAME)) {
                continue;
            }
            long[] st = featureShape(studentNet, f.studentLayer(), in);
            long[] te = featureShape(teacherNet, f.teacherLayer(), in);
            if (st.length != 3 || te.length != 3 || st[1] != te[1] || st[2] != te[2]) {
                throw new org.distill4j.examples.recipe.RecipeException(where + ": feature loss '" + f.name() + "' compares maps"
                        + " {C, H, W} of the same height and width, and student layer " + f.student() + " gives " + dims(st)
                        + ", teacher layer " + f.teacher() + " gives " + dims(te));
            }
        }
    }

    /** "16x14x14", "400 values" for a message. */
    private static String dims(long[] shape) {
        if (shape.length == 1) {
            return shape[0] + " values";
        }
        return String.join("x", java.util.Arrays.stream(shape).mapToObj(String::valueOf).toList()) + " maps";
    }

    /**
     * Each feature term's teacher layer must be a hidden layer of {@code teacherNet} (not its output layer): a usage error
     * naming the term, the layer and the teacher's hidden layers otherwise.
     */
    private static void checkFeatureLayers(String where, List<FeatureTerm> features, MultiLayerNetwork teacherNet, Path model) {
        String teacher = model == null ? "the teacher" : "the teacher " + model.getFileName();
        for (FeatureTerm f : features) {
            if (teacherNet == null) {
                throw new org.distill4j.examples.recipe.RecipeException(where + ": feature loss '" + f.name() + "' reads the teacher's"
                        + " hidden layers, which need one DL4J MultiLayerNetwork teacher");
            }
            int hidden = teacherNet.getnLayers() - 1;
            if (f.teacherLayer() >= hidden) {
                boolean dense = true; // an MLP's layers before its output are its hidden layers; a CNN's are not all so called
                List<String> kinds = new ArrayList<>();
                for (int i = 0; i < hidden; i++) {
                    Object layer = teacherNet.getLayerWiseConfigurations().getConf(i).getLayer();
                    dense &= !(layer instanceof org.deeplearning4j.nn.conf.layers.ConvolutionLayer
                            || layer instanceof org.deeplearning4j.nn.conf.layers.SubsamplingLayer);
                    kinds.add(i + " " + layer.getClass().getSimpleName());
                }
                String what = dense ? " hidden layer" : " layer";
                throw new org.distill4j.examples.recipe.RecipeException(where + ": feature loss '" + f.name() + "': teacher layer "
                        + f.teacherLayer() + ", but " + teacher + (hidden == 0 ? " has no hidden layer"
                        : " has " + hidden + what + (hidden == 1 ? " (index 0)" : "s (indexes 0 to " + (hidden - 1) + ")")
                        + (dense ? "" : " before its output layer: " + String.join(", ", kinds))));
            }
        }
    }

    /** The label of the distilled row {@code name} (one of several, or one named by a recipe). */
    public static String distilledLabel(String name) {
        return "distilled: " + name;
    }

    /** The label of row {@code label}'s run with {@code seed} of {@link Settings#seeds} (its own checkpoints and model). */
    public static String seedLabel(String label, long seed) {
        return label + " seed " + seed;
    }

    /**
     * A row's checkpoints: at epoch ends (and every {@link Settings#checkpointEverySteps} steps), at most every
     * {@link Settings#checkpointMinInterval}, and after the last epoch.
     */
    static org.distill4j.train.Checkpoints checkpoints(Settings s, String label) {
        return org.distill4j.train.Checkpoints.in(checkpointDir(s, label)).minInterval(s.checkpointMinInterval)
                .everySteps(s.checkpointEverySteps);
    }

    /** Where a row's checkpoints go: {@code out/checkpoints/<row's file name>}. */
    static Path checkpointDir(Settings s, String label) {
        return s.out.resolve("checkpoints").resolve(fileName(label));
    }

    /**
     * A row's name for its files (checkpoints, model): lower case, dashes between words, and a minus sign as "minus", so
     * that "student alone seed -4" ({@code student-alone-seed-minus-4}) and "student alone seed 4" do not share a checkpoint
     * (a resumed seed would find the other's) or overwrite each other's model.
     */
    public static String fileName(String row) {
        return row.toLowerCase(Locale.ROOT).replaceAll("(?<![a-z0-9])-(?=[0-9.])", " minus ").replaceAll("[^a-z0-9]+", "-")
                .replaceAll("^-|-$", "");
    }

    private static Row row(String name, String model, long params, int samples, int epochs, String loss, DistillResult r) {
        return new Row(name, model, params, samples, epochs, loss, r.testAccuracy(), r.teacherAgreement(),
                r.samplesPerSecond(), r.wallSeconds());
    }

    /** Prints the rows as an aligned text table. */
    public static void printTable(List<Row> rows, PrintStream out) {
        int w = Math.max(18, rows.stream().mapToInt(r -> r.name().length()).max().orElse(18));
        int accW = Math.max(9, rows.stream().mapToInt(r -> r.accuracyText("±").length()).max().orElse(9));
        String fmt = "%-" + w + "s %-32s %10s %8s %7s %" + accW + "s %10s %10s %8s%n";
        out.println();
        out.printf(Locale.ROOT, fmt, "row", "model", "params", "samples", "epochs", "test acc", "agreement", "samples/s", "wall s");
        for (Row r : rows) {
            out.printf(Locale.ROOT, fmt, r.name(), r.model(), r.parameters() < 0 ? "-" : String.format(Locale.ROOT, "%,d", r.parameters()),
                    r.trainSamples(), r.epochs(), r.accuracyText("±"),
                    Double.isNaN(r.teacherAgreement()) ? "-" : String.format(Locale.ROOT, "%.2f%%", 100 * r.teacherAgreement()),
                    Double.isNaN(r.samplesPerSecond()) ? "-" : String.format(Locale.ROOT, "%,.0f", r.samplesPerSecond()), String.format(Locale.ROOT, "%.1f", r.wallSeconds()));
        }
        out.println();
    }
}
