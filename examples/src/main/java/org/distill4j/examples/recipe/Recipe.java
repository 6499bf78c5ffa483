package org.distill4j.examples.recipe;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A distillation experiment as plain data, read from YAML by {@link RecipeLoader}: the data, the
 * teacher (trained from a spec, or loaded from a DL4J model file), the student, the loss terms by their
 * registered names, and the training settings. {@code distill run} trains the teacher, the student
 * alone and the student distilled with these terms (one distilled row per objective, all from the same
 * start), and writes a report.
 *
 * @param name     the recipe's name (reports, provenance)
 * @param source   the file it was read from
 * @param data     where the samples come from and how many
 * @param teacher  how to get the teacher
 * @param student  the student's hidden layers
 * @param training epochs, batch size, learning rate, seed, backend
 * @param objectives the distilled rows: one objective (a {@code loss} list, the row "student distilled") or several
 *                   ({@code loss} as a mapping of row names to lists, rows "distilled: &lt;name&gt;"), in the file's order
 * @param resolved the recipe after defaults and {@code --set} overrides, for provenance
 * @param origin   the file's text as read (its SHA-256) and the {@code --set} overrides, for provenance
 */
public record Recipe(String name, Path source, Data data, Teacher teacher, Student student, Training training,
                     List<Objective> objectives, Map<String, Object> resolved, Origin origin) {

    /**
     * Where a recipe came from: its file, the SHA-256 of its text (UTF-8) and the {@code --set} overrides in order, so a run
     * can be traced to the exact file and command that made it.
     */
    public record Origin(String file, String sha256, List<String> overrides) {
        public Map<String, Object> asMap() {
            Map<String, Object> m = new java.util.LinkedHashMap<>();
            m.put("file", file);
            m.put("sha256", sha256);
            m.put("overrides", overrides);
            return m;
        }
    }

    /** The terms of a recipe with one distilled row; a recipe with several has no single objective. */
    public List<LossTerm> loss() {
        if (objectives.size() != 1) {
            throw new IllegalStateException(name + " has " + objectives.size() + " distilled rows; see objectives()");
        }
        return objectives.get(0).terms();
    }

    /** Whether the distilled rows are named ({@code loss} as a mapping), each its own row "distilled: &lt;name&gt;". */
    public boolean namedRows() {
        return objectives.get(0).row() != null;
    }

    /**
     * One distilled row's objective: weighted terms (logit terms, plus feature terms on hidden layers).
     *
     * @param row   the row's name from a {@code loss} mapping; null for a {@code loss} list (the one row "student distilled")
     * @param terms the terms, in the file's order
     */
    public record Objective(String row, List<LossTerm> terms) {
    }

    /**
     * @param dataset always "fashion-mnist", the only dataset the runner loads (the loader refuses others)
     * @param path    a dataset directory, "embedded", or null for the lookup chain
     * @param unlabeledSamples training samples after the transfer set's, given to the distilled rows without labels (0: none)
     * @param shuffle whether the teacher and transfer sets are drawn from the training split shuffled with
     *                the seed (default), or are its first samples in file order (as {@code distill label --limit N}
     *                labels them, so a recipe can train from such a store)
     */
    public record Data(String dataset, String path, int teacherSamples, int transferSamples, int unlabeledSamples, int testSamples,
                       boolean shuffle) {
    }

    /**
     * One teacher or an ensemble: each member a training spec (hidden, dropout, epochs), a saved DL4J
     * model file, or an ONNX / TorchScript model run through DJL. With {@code store}, the teacher's outputs
     * on the transfer set are labeled into a soft-target store once and the student distils from the store.
     *
     * @param members one teacher, or the members of an ensemble with their weights; none for a teacher that is
     *                only stored outputs (then {@code store} is that store)
     * @param combine how an ensemble averages (probabilities or logits)
     * @param store   null when the student distils from the live teacher
     */
    public record Teacher(List<org.distill4j.examples.TeacherSpec> members, org.distill4j.teacher.EnsembleTeacher.Combine combine,
                          Store store) {
    }

    /**
     * @param path where the store is (resolved against the recipe's folder, like model files and data.path)
     * @param topK 0 for dense rows
     */
    public record Store(Path path, int topK, String dtype) {
    }

    /**
     * @param conv   channels of the convolution blocks before the hidden layers (empty: an MLP)
     * @param hidden the hidden layers' sizes
     */
    public record Student(int[] conv, int[] hidden) {
    }

    /**
     * @param optimizer   adam, nadam, amsgrad, sgd, nesterovs or rmsprop (every network of the run)
     * @param temperature the distilled student's temperature per epoch (null: the loss's own)
     * @param alpha       the distilled student's hard-label weight per epoch, for a single kd term (null: the loss's own)
     * @param seeds       the student rows' seeds, each row trained once per seed and reported as mean ± std (null: one run;
     *                    {@code seed} still seeds the teacher and the data draw)
     * @param mixup       the distilled rows' mixup: Beta(mixup, mixup) weights, student and teacher seeing the same mixed
     *                    inputs; 0: none
     * @param shift       every student row's random image translation, up to this many pixels along each axis (the
     *                    teachers train on the images as they are); 0: none
     * @param flip        every student row's random horizontal flip of half its images; false: none
     */
    public record Training(int epochs, int batchSize, double learningRate, long seed, String backend, String optimizer,
                           org.distill4j.train.Schedule temperature, org.distill4j.train.Schedule alpha, List<Long> seeds,
                           int checkpointEverySteps, java.time.Duration checkpointMinInterval, double mixup,
                           int shift, boolean flip) {
    }

    /**
     * A registered loss with a weight and its settings: a logit loss ({@code studentLayer} and {@code teacherLayer} null)
     * or a feature loss between the student's layer {@code studentLayer} and the teacher's layer {@code teacherLayer}
     * (0-based indexes among the networks' layers, a convolution block being two; a hint's sizes come from those layers, not
     * from its settings), which the recipe named {@code studentName} and {@code teacherName} ("1" for hidden layer 1,
     * "conv0" for the first convolution block).
     */
    public record LossTerm(String name, double weight, Map<String, Object> settings, Integer studentLayer, Integer teacherLayer,
                           String studentName, String teacherName) {
        public LossTerm(String name, double weight, Map<String, Object> settings) {
            this(name, weight, settings, null, null, null, null);
        }

        /** Whether this is a feature loss (on hidden layers), not a logit loss. */
        public boolean feature() {
            return studentLayer != null;
        }
    }
}
