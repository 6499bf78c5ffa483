package org.distill4j.examples;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TeacherRows;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code distill eval MODEL}: a model's accuracy (overall and per class), mean negative log-likelihood
 * and inference samples/s on a test set; with {@code --teacher}, also its top-1 agreement with the
 * teacher and the mean KL(teacher || model). Works for DL4J zips (a saved teacher, or a student that
 * {@code distill run} saved) and ONNX / TorchScript files.
 */
final class EvalCommand {
    private static final int BATCH = 512;

    private EvalCommand() {
    }

    static int run(String[] args, PrintStream out) throws Exception {
        Path model = null;
        Path teacher = null;
        Path json = null;
        DataOptions data = new DataOptions("test");
        ModelFiles.Options mo = new ModelFiles.Options("--");
        ModelFiles.Options to = new ModelFiles.Options("--teacher-");
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                usage(out, mo, to);
                return Main.OK;
            }
            if (!a.startsWith("--")) {
                if (model != null) {
                    throw new Main.UsageException("unexpected argument '" + a + "' (one MODEL; see distill eval --help)");
                }
                model = Main.path("MODEL", a);
                continue;
            }
            if (!mo.isSet(a) && !to.isSet(a) && !DataOptions.isOption(a) && !a.equals("--teacher") && !a.equals("--json")) {
                throw new Main.UsageException("unknown option " + a + " (see distill eval --help)");
            }
            if (i + 1 >= args.length) {
                throw new Main.UsageException(a + " needs a value");
            }
            String v = args[++i];
            Main.once(seen, a);
            if (mo.isSet(a)) {
                mo.set(a, v);
                continue;
            }
            if (to.isSet(a)) {
                to.set(a, v);
                continue;
            }
            if (data.accept(a, v)) {
                continue;
            }
            switch (a) {
                case "--teacher" -> teacher = Main.path(a, v);
                case "--json" -> json = Main.path(a, v);
                default -> throw new Main.UsageException("unknown option " + a + " (see distill eval --help)");
            }
        }
        if (model == null) {
            throw new Main.UsageException("a model file is required (see distill eval --help)");
        }
        if (teacher == null && to.any()) { // silently ignored before: the user meant a teacher
            throw new Main.UsageException("--teacher-engine, --teacher-input-shape, --teacher-logits and --teacher-output-names"
                    + " apply to a --teacher model, and none is given; add --teacher MODEL or leave them out");
        }
        Main.outputFile("--json", json, "a file name"); // before the evaluation, not when its numbers are written
        DataOptions.Loaded loaded = data.load();
        Dataset d = loaded.data();
        String split = data.split();
        if (d.size() == 0) { // every number would be 0 / 0: NaN% with exit code 0, and NaN (null) in --json
            throw new IllegalArgumentException("no samples to evaluate: " + d.name() + " from " + loaded.source()
                    + " is empty; expected at least one sample");
        }
        try (ModelFiles.Loaded m = ModelFiles.load(model, mo, d, loaded.image());
             ModelFiles.Loaded t = teacher == null ? null : ModelFiles.load(teacher, to, d, loaded.image())) {
            Result r = evaluate(m.model(), model.toString(), t == null ? null : t.model(), String.valueOf(teacher), d);
            out.printf(Locale.ROOT, "%s on %s (%,d %s samples from %s)%n", m.describe(), d.name(), d.size(), split, loaded.source());
            out.printf(Locale.ROOT, "  accuracy        %.2f%%%n", 100 * r.accuracy);
            out.printf(Locale.ROOT, "  mean NLL        %.4f%n", r.nll);
            if (t != null) {
                out.printf(Locale.ROOT, "  teacher         %s: accuracy %.2f%%%n", t.describe(), 100 * r.teacherAccuracy);
                out.printf(Locale.ROOT, "  agreement       %.2f%% (same top-1 class as the teacher)%n", 100 * r.agreement);
                out.printf(Locale.ROOT, "  KL(teacher||m)  %.4f (mean per sample, T = 1)%n", r.kl);
            }
            out.printf(Locale.ROOT, "  samples/s       %,.0f (inference, batches of %d)%n", r.samplesPerSecond, BATCH);
            out.println("  per class:");
            for (int c = 0; c < d.classes(); c++) {
                String name = d.classes() == FashionMnist.CLASS_NAMES.size() ? FashionMnist.CLASS_NAMES.get(c) : "class " + c;
                if (r.perClassCount[c] == 0) { // no accuracy to show (NaN), not "NaN% of 0"
                    out.printf(Locale.ROOT, "    %-12s no samples%n", name);
                } else {
                    out.printf(Locale.ROOT, "    %-12s %6.2f%% of %,d%n", name, 100 * r.perClass[c], r.perClassCount[c]);
                }
            }
            if (json != null) {
                Map<String, Object> j = new LinkedHashMap<>();
                j.put("model", model.toString());
                j.put("describe", m.describe());
                j.put("parameters", m.parameters());
                j.put("data", loaded.source());
                j.put("split", split);
                j.put("samples", d.size());
                j.put("accuracy", r.accuracy);
                j.put("meanNll", r.nll);
                j.put("samplesPerSecond", r.samplesPerSecond);
                List<Object> pc = new ArrayList<>();
                for (int c = 0; c < d.classes(); c++) {
                    Map<String, Object> e = new LinkedHashMap<>(); // one key order on every run (Map.of's changes per JVM)
                    e.put("class", c);
                    e.put("accuracy", r.perClass[c]);
                    e.put("samples", r.perClassCount[c]);
                    pc.add(e);
                }
                j.put("perClass", pc);
                if (t != null) {
                    j.put("teacher", teacher.toString());
                    j.put("teacherAccuracy", r.teacherAccuracy);
                    j.put("agreement", r.agreement);
                    j.put("klTeacherModel", r.kl);
                }
                AtomicFiles.writeString(json, Json.write(j));
                out.println("wrote " + json);
            }
        }
        return Main.OK;
    }

    /** What {@link #evaluate} measures. */
    static final class Result {
        double accuracy;
        double nll;
        double teacherAccuracy = Double.NaN;
        double agreement = Double.NaN;
        double kl = Double.NaN;
        double samplesPerSecond;
        double[] perClass;
        int[] perClassCount;
    }

    /**
     * Accuracy, per-class accuracy, mean NLL, and with a teacher agreement and mean KL(teacher || model). Outputs that are
     * not numbers are refused, naming the model ({@code modelName}, {@code teacherName}) and the sample.
     */
    static Result evaluate(Teacher model, String modelName, Teacher teacher, String teacherName, Dataset d) {
        if (d.size() == 0) {
            throw new IllegalArgumentException("no samples to evaluate in " + d.name() + "; expected at least one sample");
        }
        int k = d.classes();
        Result r = new Result();
        int[] correct = new int[k];
        r.perClassCount = new int[k];
        long right = 0;
        long teacherRight = 0;
        long agree = 0;
        double nll = 0;
        double kl = 0;
        long nanos = 0;
        double[] lm = new double[k];
        double[] lt = new double[k];
        for (int from = 0; from < d.size(); from += BATCH) {
            Batch b = Batch.range(d, from, Math.min(d.size(), from + BATCH));
            long t0 = System.nanoTime();
            float[] om = model.outputs(b);
            nanos += System.nanoTime() - t0;
            float[] ot = teacher == null ? null : teacher.outputs(b);
            for (int row = 0; row < b.size(); row++) {
                int y = b.labels()[row];
                TeacherRows.logProbabilities(om, model.values(), row, k, lm);
                checkNumbers(om, row, k, lm, modelName, from + row, d);
                int pm = argmax(lm);
                r.perClassCount[y]++;
                if (pm == y) {
                    right++;
                    correct[y]++;
                }
                nll -= lm[y];
                if (ot != null) {
                    TeacherRows.logProbabilities(ot, teacher.values(), row, k, lt);
                    checkNumbers(ot, row, k, lt, teacherName, from + row, d);
                    int pt = argmax(lt);
                    teacherRight += pt == y ? 1 : 0;
                    agree += pt == pm ? 1 : 0;
                    for (int c = 0; c < k; c++) {
                        if (lt[c] > Double.NEGATIVE_INFINITY) {
                            kl += org.distill4j.loss.LossMath.exp(lt[c]) * (lt[c] - lm[c]);
                        }
                    }
                }
            }
        }
        int n = d.size();
        r.accuracy = (double) right / n;
        r.nll = nll / n;
        r.perClass = new double[k];
        for (int c = 0; c < k; c++) {
            r.perClass[c] = r.perClassCount[c] == 0 ? Double.NaN : (double) correct[c] / r.perClassCount[c];
        }
        if (teacher != null) {
            r.teacherAccuracy = (double) teacherRight / n;
            r.agreement = (double) agree / n;
            r.kl = kl / n;
        }
        r.samplesPerSecond = n / Math.max(nanos / 1e9, 1e-9);
        return r;
    }

    /**
     * Throws when a row's log-probabilities {@code lp} hold a NaN (its outputs hold a NaN or +inf, or no class has a
     * probability): argmax would read such a row as class 0 and the accuracy would look plausible.
     */
    private static void checkNumbers(float[] outputs, int row, int k, double[] lp, String name, int sample, Dataset d) {
        for (int c = 0; c < k; c++) {
            if (Double.isNaN(lp[c])) {
                int bad = c;
                for (int i = 0; i < k; i++) {
                    float v = outputs[row * k + i];
                    if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                        bad = i;
                        break;
                    }
                }
                throw new IllegalArgumentException(name + ": its output for sample " + sample + " of " + d.name() + " is " + outputs[row * k + bad]
                        + " at class " + bad + "; expected finite class scores (a model whose training diverged?)");
            }
        }
    }

    private static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    static void usage(PrintStream out, ModelFiles.Options mo, ModelFiles.Options to) {
        out.print("""
                usage: distill eval MODEL [options]
                  MODEL is a DL4J MultiLayerNetwork zip (distill run saves its models into its output directory;
                  distill demo --save-teacher FILE), or an ONNX (.onnx) / TorchScript (.pt) file run through DJL.
                  Prints accuracy (overall and per class), mean negative log-likelihood and inference samples/s.
                  --data DIR|embedded    Fashion-MNIST directory, or 'embedded'; default: $DISTILL_DATA, then
                                         /usr/share/datasets/fashion-mnist, then the embedded subset
                  --split train|test     (default test)
                  --limit N              the first N samples only
                  --teacher MODEL        also the agreement with this model and the mean KL(teacher || MODEL)
                  --json FILE            write the numbers as JSON too
                """);
        out.print(mo.help(22));
        out.print(to.help(22));
    }
}
