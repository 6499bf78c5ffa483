package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.Backends;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
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
        public int teacherSamples = 10_000;
        public int teacherEpochs = 12;
        public int[] teacherHidden = {1200, 1200};
        public double teacherDropout = 0.2;
        public int transferSamples = 1_000;
        public int studentEpochs = 40;
        public int[] studentHidden = {400, 400};
        public int testSamples = 10_000;
        public int batchSize = 128;
        public double learningRate = 1e-3;
        public double temperature = 4.0;
        public double alpha = 0.1;
        public boolean progress = true;

        Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("data", embedded ? "embedded" : data == null ? "auto" : data.toString());
            m.put("seed", seed);
            m.put("teacherSamples", teacherSamples);
            m.put("teacherEpochs", teacherEpochs);
            m.put("teacherHidden", List.of(java.util.Arrays.stream(teacherHidden).boxed().toArray()));
            m.put("teacherDropout", teacherDropout);
            m.put("transferSamples", transferSamples);
            m.put("studentEpochs", studentEpochs);
            m.put("studentHidden", List.of(java.util.Arrays.stream(studentHidden).boxed().toArray()));
            m.put("testSamples", testSamples);
            m.put("batchSize", batchSize);
            m.put("learningRate", learningRate);
            m.put("temperature", temperature);
            m.put("alpha", alpha);
            return m;
        }
    }

    /** One row of the result table. */
    public record Row(String name, String model, long parameters, int trainSamples, int epochs, String loss,
                      double testAccuracy, double teacherAgreement, double samplesPerSecond, double wallSeconds) {
        Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("row", name);
            m.put("model", model);
            m.put("parameters", parameters);
            m.put("trainSamples", trainSamples);
            m.put("epochs", epochs);
            m.put("loss", loss);
            m.put("testAccuracy", testAccuracy);
            m.put("teacherAgreement", teacherAgreement);
            m.put("samplesPerSecond", samplesPerSecond);
            m.put("wallSeconds", wallSeconds);
            return m;
        }
    }

    private Demo() {
    }

    /** Runs the demo, prints the table to {@code out} and writes the JSON files; returns the rows. */
    public static List<Row> run(Settings s, PrintStream out) throws IOException {
        Instant started = Instant.now();
        FashionMnist.Split split = s.embedded ? FashionMnist.loadEmbedded(Demo.class.getClassLoader()) : FashionMnist.load(s.data);
        Dataset shuffled = split.train().shuffled(s.seed);
        Dataset teacherSet = shuffled.head(s.teacherSamples);
        Dataset transfer = shuffled.head(s.transferSamples);
        Dataset test = split.test().head(s.testSamples);
        int in = shuffled.featureCount();
        int classes = shuffled.classes();
        out.printf(Locale.ROOT, "Fashion-MNIST from %s: teacher trains on %d samples, students on a transfer set of %d, test %d%n",
                split.source(), teacherSet.size(), transfer.size(), test.size());

        List<Row> rows = new ArrayList<>();
        ComputeBackend backend = Backends.select();
        try {
            MultiLayerNetwork teacherNet = DemoModels.mlp(in, s.teacherHidden, classes, s.teacherDropout, s.learningRate, s.seed);
            DistillResult teacher = train(s, "teacher", teacherNet, null, new CrossEntropy(), teacherSet, test,
                    s.teacherEpochs, backend);
            rows.add(row("teacher", DemoModels.shape(in, s.teacherHidden, classes) + ", dropout " + s.teacherDropout,
                    teacherNet.numParams(), teacherSet.size(), s.teacherEpochs, "ce", teacher));

            Dl4jTeacher liveTeacher = Dl4jTeacher.of(teacherNet);
            MultiLayerNetwork alone = DemoModels.mlp(in, s.studentHidden, classes, 0, s.learningRate, s.seed + 1);
            MultiLayerNetwork distilled = DemoModels.mlp(in, s.studentHidden, classes, 0, s.learningRate, s.seed + 1);
            String studentShape = DemoModels.shape(in, s.studentHidden, classes);
            DistillResult a = train(s, "student alone", alone, liveTeacher, new CrossEntropy(), transfer, test,
                    s.studentEpochs, backend);
            rows.add(row("student alone", studentShape, alone.numParams(), transfer.size(), s.studentEpochs, "ce", a));
            SoftTargetKd kd = new SoftTargetKd(s.temperature, s.alpha);
            DistillResult d = train(s, "student distilled", distilled, liveTeacher, kd, transfer, test,
                    s.studentEpochs, backend);
            rows.add(row("student distilled", studentShape, distilled.numParams(), transfer.size(), s.studentEpochs,
                    "kd(T=" + s.temperature + ", alpha=" + s.alpha + ")", d));

            printTable(rows, out);
            Map<String, Object> results = new LinkedHashMap<>();
            results.put("demo", "hinton-fashion-mnist");
            results.put("dataSource", split.source());
            results.put("testSamples", test.size());
            results.put("rows", rows.stream().map(Row::asMap).toList());
            results.put("distillationGain", d.testAccuracy() - a.testAccuracy());
            Map<String, Object> provenance = Provenance.record(s.asMap(), split.source(), backend, started, Instant.now());
            AtomicFiles.writeString(s.out.resolve("results.json"), Json.write(results));
            AtomicFiles.writeString(s.out.resolve("provenance.json"), Json.write(provenance));
            out.println("wrote " + s.out.resolve("results.json") + " and " + s.out.resolve("provenance.json"));
        } finally {
            backend.close();
        }
        return rows;
    }

    private static DistillResult train(Settings s, String label, MultiLayerNetwork net, Dl4jTeacher teacher, LogitLoss loss,
                                       Dataset train, Dataset test, int epochs, ComputeBackend backend) {
        LOG.info("training {}: {} samples, {} epochs", label, train.size(), epochs);
        Distiller.Builder b = Distiller.builder()
                .student(Dl4jStudent.of(net))
                .loss(loss)
                .trainData(train)
                .testData(test)
                .epochs(epochs)
                .batchSize(s.batchSize)
                .seed(s.seed)
                .backend(backend);
        if (loss.needsTeacher() || teacher != null) {
            b.teacher(teacher);
        }
        if (s.progress) {
            b.listener(ConsoleProgress.toStderr(label));
        }
        return b.build().run();
    }

    private static Row row(String name, String model, long params, int samples, int epochs, String loss, DistillResult r) {
        return new Row(name, model, params, samples, epochs, loss, r.testAccuracy(), r.teacherAgreement(),
                r.samplesPerSecond(), r.wallSeconds());
    }

    /** Prints the rows as an aligned text table. */
    public static void printTable(List<Row> rows, PrintStream out) {
        String fmt = "%-18s %-32s %10s %8s %7s %9s %10s %10s %8s%n";
        out.println();
        out.printf(Locale.ROOT, fmt, "row", "model", "params", "samples", "epochs", "test acc", "agreement", "samples/s", "wall s");
        for (Row r : rows) {
            out.printf(Locale.ROOT, fmt, r.name(), r.model(), String.format(Locale.ROOT, "%,d", r.parameters()),
                    r.trainSamples(), r.epochs(), String.format(Locale.ROOT, "%.2f%%", 100 * r.testAccuracy()),
                    Double.isNaN(r.teacherAgreement()) ? "-" : String.format(Locale.ROOT, "%.2f%%", 100 * r.teacherAgreement()),
                    String.format(Locale.ROOT, "%,.0f", r.samplesPerSecond()), String.format(Locale.ROOT, "%.1f", r.wallSeconds()));
        }
        out.println();
    }
}
