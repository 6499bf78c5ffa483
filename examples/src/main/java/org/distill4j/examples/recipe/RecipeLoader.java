package org.distill4j.examples.recipe;

import org.distill4j.examples.TeacherSpec;
import org.distill4j.loss.FeatureLosses;
import org.distill4j.loss.Losses;
import org.distill4j.teacher.EnsembleTeacher;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a recipe from YAML and validates it. The YAML is read as a node tree only (nothing is ever
 * constructed from it, and tags other than the standard scalar, sequence and mapping tags are
 * refused), so a recipe is plain data. Every error names the file, line, column and the path of the
 * field: an unknown key (with the closest valid key), a key given twice, a wrong type, a missing
 * required field, an unknown loss name (with the registered ones), a key that does not apply.
 *
 * <pre>
 * name: hinton-kd
 * data:     {path: embedded, teacherSamples: 10000, transferSamples: 1000, testSamples: 10000}
 *           # + unlabeledSamples: N, training samples after the transfer set's, given to the distilled rows unlabeled
 * teacher:  {hidden: [1200, 1200], dropout: 0.2, epochs: 12}      # or {model: teacher.zip}
 *           # or {model: cnn.onnx | cnn.pt, engine, inputShape: [784], logits: logits, outputNames: [...]} (DJL)
 *           # or {ensemble: [member, member, ...], combine: probabilities | logits}, members as above + weight
 *           # any of them + store: {path, topk, dtype} to distil from a soft-target store labeled once
 * student:  {hidden: [400, 400]}
 * training: {epochs: 40, batchSize: 128, learningRate: 0.001, seed: 42, backend: auto}
 *           # + mixup: A to mix the distilled rows' batches (Beta(A, A) weights), student and teacher seeing the same inputs
 *           # + shift: N, flip: true to move (up to N pixels) and mirror every student row's training images, likewise
 *           # + seeds: [1, 2, 3] to train each student row once per seed (mean ± std); seed still seeds the teacher
 * loss:
 *   - {name: kd, temperature: 4, alpha: 0.1}                      # weight: 1 by default
 * # or named rows, each a distilled row of its own ("distilled: kd", "distilled: dkd"):
 * loss:
 *   kd:  [{name: kd, temperature: 4, alpha: 0.1}]
 *   dkd: [{name: ce}, {name: dkd, beta: 8}]
 * </pre>
 */
public final class RecipeLoader {
    private static final Set<String> TOP = Set.of("name", "description", "data", "teacher", "student", "training", "loss");
    private static final Set<String> DATA = Set.of("dataset", "path", "teacherSamples", "transferSamples", "unlabeledSamples",
            "testSamples", "shuffle");
    private static final List<String> DJL_KEYS = List.of("engine", "inputShape", "logits", "outputNames");
    private static final Set<String> MEMBER = Set.of("conv", "hidden", "dropout", "epochs", "model", "engine", "inputShape",
            "logits", "outputNames", "weight");
    private static final Set<String> TEACHER = Set.of("conv", "hidden", "dropout", "epochs", "model", "engine", "inputShape",
            "logits", "outputNames", "weight", "store", "ensemble", "combine");
    private static final Set<String> STORE = Set.of("path", "topk", "dtype");
    private static final Set<String> STUDENT = Set.of("conv", "hidden");
    private static final Set<String> TRAINING = Set.of("epochs", "batchSize", "learningRate", "seed", "seeds", "backend",
            "optimizer", "schedules", "checkpoint", "mixup", "shift",
            "flip");
    private static final Set<String> CHECKPOINT = Set.of("everySteps", "minSeconds");
    /** At most this many student seeds: each one retrains every student row. */
    public static final int MAX_SEEDS = 20;
    /** At most this many named distilled rows ({@code loss} as a mapping): each one trains a student per seed. */
    public static final int MAX_ROWS = 20;
    /** The longest file name a named row's label may make ("distilled-" included), leaving room for seeds and temporaries. */
    static final int MAX_ROW_FILE_NAME = 150;
    private static final Set<String> SCHEDULES = Set.of("temperature", "alpha");
    private static final Set<String> SCHEDULE = Set.of("from", "to");
    /** Classes of the one dataset recipes load (fashion-mnist). */
    private static final int CLASSES = org.distill4j.data.FashionMnist.CLASS_NAMES.size();
    private static final Set<Tag> PLAIN_TAGS = Set.of(Tag.STR, Tag.INT, Tag.FLOAT, Tag.BOOL, Tag.NULL, Tag.MAP, Tag.SEQ);

    private final String file;
    private final Map<String, Object> resolved = new LinkedHashMap<>();
    private Node storeNode;

    private RecipeLoader(String file) {
        this.file = file;
    }

    /**
     * Reads and validates {@code path}, applying {@code key.path=value} overrides first. A path that is not a readable
     * recipe file (missing, a directory, no permission) or a file that is not UTF-8 text is a {@link RecipeException}
     * naming the file; other I/O errors are thrown as they come.
     */
    public static Recipe load(Path path, List<String> overrides) throws IOException {
        return parse(read(path), path, overrides);
    }

    /** The largest recipe file read: 1 MiB; the shipped recipes are under 2 KB. */
    static final int MAX_RECIPE_BYTES = 1 << 20;

    /**
     * The text of a recipe file, which must be UTF-8. Its first byte that is not valid UTF-8 is named by line, column
     * (in characters) and byte offset: a file saved in Latin-1 or UTF-16 is a recipe to re-save, not a failed run.
     */
    static String read(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            throw new RecipeException(path + ": is a directory; expected a recipe file (YAML), e.g."
                    + " examples/recipes/fashion-mnist/kd/mlp400_from_mlp1200.yaml");
        }
        if (!Files.exists(path)) {
            throw new RecipeException(path + ": no such recipe file");
        }
        if (!Files.isRegularFile(path)) {
            throw new RecipeException(path + ": is not a regular file; expected a recipe file (YAML)");
        }
        byte[] bytes;
        try {
            long size = Files.size(path);
            if (size > MAX_RECIPE_BYTES) { // a model, a dataset or a log named by mistake: never read it whole
                throw new RecipeException(path + ": is " + size + " bytes; expected a recipe file (YAML text) of at most "
                        + MAX_RECIPE_BYTES + " bytes");
            }
            bytes = Files.readAllBytes(path);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new RecipeException(path + ": no such recipe file");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new RecipeException(path + ": cannot be read: permission denied; expected a recipe file this user can read");
        }
        java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(bytes);
        java.nio.CharBuffer out = java.nio.CharBuffer.allocate(bytes.length); // UTF-8 never has more characters than bytes
        java.nio.charset.CoderResult r = java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                .decode(in, out, true);
        if (r.isError()) {
            int at = in.position();
            int line = 1;
            int lineStart = 0;
            for (int i = 0; i < at; i++) {
                if (bytes[i] == '\n') {
                    line++;
                    lineStart = i + 1;
                }
            }
            // the characters before it on its line are valid UTF-8 (this is the first error): count them for the column
            String before = new String(bytes, lineStart, at - lineStart, java.nio.charset.StandardCharsets.UTF_8);
            int column = before.codePointCount(0, before.length()) + 1;
            String what;
            if (at + r.length() == bytes.length && r.length() < utf8Length(bytes[at])) {
                what = "the file ends inside a character (" + hex(bytes, at, r.length()) + " at byte offset " + at + ")";
            } else {
                what = hex(bytes, at, r.length()) + " at byte offset " + at + (r.length() == 1 ? " is" : " are") + " not valid UTF-8";
            }
            throw new RecipeException(path + ":" + line + ":" + column + ": not UTF-8 text: " + what
                    + "; expected a recipe saved as UTF-8 text");
        }
        out.flip();
        return out.toString();
    }

    /** The length of the UTF-8 sequence {@code lead} begins (1 for a byte that begins none). */
    private static int utf8Length(byte lead) {
        int b = lead & 0xff;
        return b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    }

    /** "byte 0xe9", or "bytes 0xf0 0x9f". */
    private static String hex(byte[] bytes, int at, int n) {
        StringBuilder b = new StringBuilder(n == 1 ? "byte" : "bytes");
        for (int i = at; i < at + n; i++) {
            b.append(String.format(java.util.Locale.ROOT, " 0x%02x", bytes[i] & 0xff));
        }
        return b.toString();
    }

    /** Parses recipe text; {@code source} names it in errors. */
    public static Recipe parse(String text, Path source, List<String> overrides) {
        RecipeLoader l = new RecipeLoader(source.toString());
        Node root;
        try {
            LoaderOptions opts = new LoaderOptions();
            opts.setAllowDuplicateKeys(false);
            opts.setMaxAliasesForCollections(10);
            root = new Yaml(opts).compose(new StringReader(text));
        } catch (MarkedYAMLException e) {
            Mark m = e.getProblemMark();
            throw new RecipeException(source + (m == null ? "" : ":" + (m.getLine() + 1) + ":" + (m.getColumn() + 1))
                    + ": not valid YAML: " + e.getProblem());
        } catch (RuntimeException e) {
            throw new RecipeException(source + ": not valid YAML: " + e.getMessage());
        }
        if (!(root instanceof MappingNode)) {
            throw new RecipeException(source + ": a recipe is a mapping of sections (name, data, teacher, student, training, loss)");
        }
        MappingNode top = (MappingNode) root;
        for (String o : overrides) {
            l.override(top, o);
        }
        Recipe r = l.recipe(top, source);
        return new Recipe(r.name(), r.source(), r.data(), r.teacher(), r.student(), r.training(), r.objectives(), r.resolved(),
                new Recipe.Origin(source.toString(), sha256(text), List.copyOf(overrides)));
    }

    /** The SHA-256 of {@code text} as UTF-8, in hex. */
    static String sha256(String text) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    private Recipe recipe(MappingNode top, Path source) {
        Map<String, Node> t = mapping(top, "", TOP);
        Node nameNode = required(t, top, "", "name");
        String name = string(nameNode, "name");
        if (name.isEmpty() || name.equals(".") || name.equals("..") || name.contains("/") || name.chars().anyMatch(Character::isISOControl)) {
            // distill run writes to distill-out/<name> unless --out is given: the name must be one folder inside it
            throw error(nameNode, "name", "'" + org.distill4j.examples.Main.printable(name) + "' cannot name the run's folder"
                    + " (distill-out/<name>); expected a name without '/' or control characters, other than '.' and '..',"
                    + " e.g. fmnist-kd-mlp400-from-mlp1200");
        }
        resolved.put("name", name);
        if (t.containsKey("description")) {
            resolved.put("description", string(t.get("description"), "description"));
        }
        Map<String, Node> d = section(t, "data", DATA);
        String dataset = d.containsKey("dataset") ? string(d.get("dataset"), "data.dataset") : "fashion-mnist";
        if (!dataset.equals("fashion-mnist")) {
            // the runner loads Fashion-MNIST only (data.path, the lookup chain and the embedded subset are all read as it):
            // a recipe naming another dataset would train on Fashion-MNIST and record the other name
            throw error(d.get("dataset"), "data.dataset", "unknown dataset '" + dataset + "'" + suggest(dataset, List.of("fashion-mnist"))
                    + "; supported: fashion-mnist (the only dataset distill run loads: data.path, $DISTILL_DATA, the system copy and"
                    + " the embedded subset are all read as Fashion-MNIST)");
        }
        String path = d.containsKey("path") ? string(d.get("path"), "data.path") : null;
        if ("auto".equals(path)) {
            path = null; // the lookup chain, as provenance records a recipe without data.path ("./auto" names a folder)
        }
        String recordedPath = path == null ? "auto" : path;
        if (path != null && !path.equals("embedded")) {
            // a value no folder can be named by is refused here, at its line; provenance records the folder the run reads,
            // not a path relative to this recipe, which would name another folder when its settings are run from elsewhere
            recordedPath = path(d.get("path"), "data.path", source).toString();
        }
        boolean shuffle = !d.containsKey("shuffle") || bool(d.get("shuffle"), "data.shuffle");
        Recipe.Data data = new Recipe.Data(dataset, path, positive(d, "data.teacherSamples", 10_000),
                positive(d, "data.transferSamples", 1_000), nonNegative(d, "data.unlabeledSamples", 0),
                positive(d, "data.testSamples", 10_000), shuffle);
        Map<String, Object> rdata = ordered("dataset", dataset, "path", recordedPath, "teacherSamples", data.teacherSamples(),
                "transferSamples", data.transferSamples());
        if (data.unlabeledSamples() > 0) { // only then: the resolved recipes of other runs stay as they were
            rdata.put("unlabeledSamples", data.unlabeledSamples());
        }
        rdata.put("testSamples", data.testSamples());
        rdata.put("shuffle", shuffle);
        resolved.put("data", rdata);

        Node teacherNode = required(t, top, "", "teacher");
        Map<String, Node> te = mapping(teacherNode, "teacher", TEACHER);
        Recipe.Teacher teacher;
        Map<String, Object> rteacher = new LinkedHashMap<>();
        if (te.containsKey("ensemble")) {
            for (String k : MEMBER) {
                if (te.containsKey(k)) {
                    throw error(te.get(k), "teacher." + k, "with teacher.ensemble, '" + k + "' belongs to each member of the list");
                }
            }
            Node en = te.get("ensemble");
            if (!(en instanceof SequenceNode list) || list.getValue().size() < 2) {
                throw error(en, "teacher.ensemble", "expected a list of at least two teachers, e.g. - {hidden: [1200, 1200], epochs: 12}"
                        + " and - {model: teacher.onnx, weight: 2}");
            }
            List<TeacherSpec> members = new ArrayList<>();
            List<Object> rmembers = new ArrayList<>();
            for (int i = 0; i < list.getValue().size(); i++) {
                String p = "teacher.ensemble[" + i + "]";
                Node mn = list.getValue().get(i);
                Map<String, Object> rm = new LinkedHashMap<>();
                members.add(member(mapping(mn, p, MEMBER), mn, p, source, rm));
                rmembers.add(rm);
            }
            String combine = te.containsKey("combine") ? string(te.get("combine"), "teacher.combine") : "probabilities";
            EnsembleTeacher.Combine c = switch (combine) {
                case "probabilities" -> EnsembleTeacher.Combine.PROBABILITIES;
                case "logits" -> EnsembleTeacher.Combine.LOGITS;
                default -> throw error(te.get("combine"), "teacher.combine", "expected probabilities or logits, got '" + combine + "'");
            };
            teacher = new Recipe.Teacher(List.copyOf(members), c, null);
            rteacher.put("ensemble", rmembers);
            rteacher.put("combine", combine);
        } else {
            if (te.containsKey("combine")) {
                throw error(te.get("combine"), "teacher.combine", "combine applies to an ensemble: list the teachers under teacher.ensemble");
            }
            if (te.containsKey("weight")) {
                throw error(te.get("weight"), "teacher.weight", "weight applies to members of teacher.ensemble");
            }
            boolean storedOnly = te.containsKey("store") && !te.containsKey("model") && !te.containsKey("hidden")
                    && !te.containsKey("conv");
            teacher = storedOnly ? new Recipe.Teacher(List.of(), EnsembleTeacher.Combine.PROBABILITIES, null)
                    : new Recipe.Teacher(List.of(member(te, teacherNode, "teacher", source, rteacher)),
                    EnsembleTeacher.Combine.PROBABILITIES, null);
            rteacher.remove("weight"); // a weight belongs to ensemble members: recorded here, the settings would not load
        }
        resolved.put("teacher", rteacher);
        if (teacher.members().stream().noneMatch(m -> m.model() == null)) {
            // no teacher trains (a loaded model, stored outputs): the count is not used, so not recorded as if it were
            rdata.remove("teacherSamples");
        }
        if (teacher.members().isEmpty()) {
            teacher = storedOnlyTeacher(te, rteacher, source);
        } else if (te.containsKey("store")) {
            Map<String, Node> so = mapping(te.get("store"), "teacher.store", STORE);
            Node pathNode = required(so, te.get("store"), "teacher.store", "path");
            Path storePath = path(pathNode, "teacher.store.path", source);
            // the run labels the teacher's outputs into this store (the one path of a recipe that a run writes; --out is the
            // command line's): a directory there, or a file where a folder above it must be, is refused now, not after the
            // teacher has trained
            String problem = org.distill4j.examples.Main.outputFileProblem("teacher.store.path", storePath,
                    "the store's file name (the teacher's outputs are labeled into it)");
            if (problem != null) {
                throw error(pathNode, "teacher.store.path", problem);
            }
            long topK = integer(so, "teacher.store.topk", 0);
            if (topK < 0 || topK > CLASSES) {
                // checked here, not when the store's header is made: that comes after the teacher has trained
                throw error(so.get("topk"), "teacher.store.topk", "expected 0 (dense rows) or a k from 1 to " + CLASSES + " (the classes of "
                        + "fashion-mnist), got " + topK);
            }
            String dtype = so.containsKey("dtype") ? string(so.get("dtype"), "teacher.store.dtype") : "f16";
            try {
                org.distill4j.store.ValueCodec.parse(dtype);
            } catch (IllegalArgumentException e) {
                throw error(so.get("dtype"), "teacher.store.dtype", e.getMessage());
            }
            Recipe.Store store = new Recipe.Store(storePath, (int) topK, dtype);
            teacher = new Recipe.Teacher(teacher.members(), teacher.combine(), store);
            rteacher.put("store", ordered("path", storePath.toString(), "topk", topK, "dtype", dtype));
            storeNode = te.get("store");
        }
        Node studentNode = required(t, top, "", "student");
        Map<String, Node> st = mapping(studentNode, "student", STUDENT);
        int[] studentConv = st.containsKey("conv") ? channels(st.get("conv"), "student.conv") : new int[0];
        Recipe.Student student = new Recipe.Student(studentConv, sizes(required(st, studentNode, "student", "hidden"), "student.hidden"));
        Map<String, Object> rstudent = new LinkedHashMap<>();
        if (studentConv.length > 0) { // only then: the resolved recipes of MLP runs stay as they were
            rstudent.put("conv", List.of(box(studentConv)));
        }
        rstudent.put("hidden", List.of(box(student.hidden())));
        put("student", rstudent);

        Map<String, Node> tr = section(t, "training", TRAINING);
        String backend = tr.containsKey("backend") ? string(tr.get("backend"), "training.backend").toLowerCase(java.util.Locale.ROOT)
                : "auto";
        List<String> backends = backendNames();
        if (!backends.contains(backend)) {
            // now, not when the run selects it (after the data is loaded), and named as the recipe's field
            throw error(tr.get("backend"), "training.backend", "unknown backend '" + backend + "'" + suggest(backend, backends)
                    + "; known: " + String.join(", ", backends) + " (./distill list shows which are available here)");
        }
        String optimizer = tr.containsKey("optimizer") ? string(tr.get("optimizer"), "training.optimizer") : "adam";
        if (!org.distill4j.examples.DemoModels.OPTIMIZERS.contains(optimizer)) {
            throw error(tr.get("optimizer"), "training.optimizer", "unknown optimizer '" + optimizer + "'"
                    + suggest(optimizer, org.distill4j.examples.DemoModels.OPTIMIZERS) + "; known: "
                    + String.join(", ", org.distill4j.examples.DemoModels.OPTIMIZERS));
        }
        Map<String, Node> sc = tr.containsKey("schedules") ? mapping(tr.get("schedules"), "training.schedules", SCHEDULES) : Map.of();
        Map<String, Object> rs = new LinkedHashMap<>();
        org.distill4j.train.Schedule temperature = schedule(sc.get("temperature"), "training.schedules.temperature", rs);
        org.distill4j.train.Schedule alpha = schedule(sc.get("alpha"), "training.schedules.alpha", rs);
        Map<String, Node> cp = tr.containsKey("checkpoint") ? mapping(tr.get("checkpoint"), "training.checkpoint", CHECKPOINT) : Map.of();
        long everySteps = integer(cp, "training.checkpoint.everySteps", 0);
        if (everySteps < 0 || everySteps > Integer.MAX_VALUE) {
            throw error(cp.get("everySteps"), "training.checkpoint.everySteps", "expected 0 (at epoch ends only) or a positive"
                    + " whole number of steps, got " + everySteps);
        }
        double minSeconds = cp.containsKey("minSeconds") ? number(cp.get("minSeconds"), "training.checkpoint.minSeconds") : 30;
        if (!(minSeconds >= 0) || minSeconds > 1e9) {
            throw error(cp.get("minSeconds"), "training.checkpoint.minSeconds", "expected a number of seconds from 0 to 1e9, got "
                    + minSeconds);
        }
        Recipe.Training training = new Recipe.Training(positive(tr, "training.epochs", 10), positive(tr, "training.batchSize", 128),
                positiveNumber(tr, "training.learningRate", 1e-3), (long) integer(tr, "training.seed", 42), backend, optimizer,
                temperature, alpha, seeds(tr.get("seeds"), "training.seeds"), (int) everySteps,
                java.time.Duration.ofNanos(Math.round(minSeconds * 1e9)), tr.containsKey("mixup") ? positiveNumber(tr, "training.mixup", 0) : 0,
                tr.containsKey("shift") ? positive(tr, "training.shift", 0) : 0, tr.containsKey("flip") && bool(tr.get("flip"), "training.flip"));
        Map<String, Object> rtr = new LinkedHashMap<>();
        rtr.put("epochs", training.epochs());
        rtr.put("batchSize", training.batchSize());
        rtr.put("learningRate", training.learningRate());
        rtr.put("optimizer", optimizer);
        rtr.put("seed", training.seed());
        if (training.seeds() != null) {
            rtr.put("seeds", training.seeds());
        }
        rtr.put("backend", backend);
        if (!rs.isEmpty()) {
            rtr.put("schedules", rs);
        }
        rtr.put("checkpoint", ordered("everySteps", everySteps, "minSeconds", minSeconds));
        if (training.mixup() > 0) { // only then: the resolved recipes of other runs stay as they were
            rtr.put("mixup", training.mixup());
        }
        if (training.shift() > 0) {
            rtr.put("shift", training.shift());
        }
        if (training.flip()) {
            rtr.put("flip", true);
        }
        resolved.put("training", rtr);

        Node lossNode = required(t, top, "", "loss");
        List<Recipe.Objective> objectives = new ArrayList<>();
        if (lossNode instanceof MappingNode lm) {
            // named rows: loss: {kd: [terms], dkd: [terms], ...}, each a distilled row of its own
            mapping(lm, "loss", null); // keys unique, plain
            if (lm.getValue().isEmpty()) {
                throw error(lossNode, "loss", "expected at least one row, e.g. kd: [{name: kd, temperature: 4, alpha: 0.1}]");
            }
            if (lm.getValue().size() > MAX_ROWS) {
                throw error(lossNode, "loss", lm.getValue().size() + " distilled rows; at most " + MAX_ROWS
                        + " (each one trains a student per seed)");
            }
            Map<String, Object> resolvedRows = new LinkedHashMap<>();
            Map<String, String> files = new LinkedHashMap<>(); // a run's file name -> the row that writes it
            for (NodeTuple row : lm.getValue()) {
                String rowName = trimSpaces(((ScalarNode) row.getKeyNode()).getValue());
                rowFileNames(row.getKeyNode(), rowName, training.seeds(), files);
                List<Map<String, Object>> resolvedTerms = new ArrayList<>();
                objectives.add(new Recipe.Objective(rowName, terms(row.getValueNode(), "loss." + rowName, teacher, student,
                        resolvedTerms)));
                resolvedRows.put(rowName, resolvedTerms);
            }
            resolved.put("loss", resolvedRows);
        } else {
            List<Map<String, Object>> resolvedTerms = new ArrayList<>();
            objectives.add(new Recipe.Objective(null, terms(lossNode, "loss", teacher, student, resolvedTerms)));
            resolved.put("loss", resolvedTerms);
        }
        Recipe recipe = new Recipe(name, source, data, teacher, student, training, List.copyOf(objectives), resolved, null);
        checkSchedules(recipe, sc);
        return recipe;
    }

    /**
     * A named row's name must make a file name of its own (its model, checkpoints, and with seeds one of each per seed) that
     * no other row's name makes: "kd T2" and "kd-t2" would write the same files.
     */
    private void rowFileNames(Node keyNode, String row, List<Long> seeds, Map<String, String> files) {
        String path = "loss." + row;
        String shown = org.distill4j.examples.Main.printable(row);
        if (row.isEmpty()) {
            throw error(keyNode, "loss", "a row name is empty (spaces around a name are dropped); expected a name such as kd-T4");
        }
        if (row.chars().anyMatch(Character::isISOControl)) {
            throw error(keyNode, "loss", "a row name '" + shown + "' names a table row and its files; expected text without control"
                    + " characters, e.g. kd-T4");
        }
        if (row.contains(".")) {
            // --set loss.<row>=... splits its key path at dots: such a row could not be replaced from the command line
            throw error(keyNode, path, "a row name cannot contain '.', which --set uses between keys (loss.<row>=...); e.g. kd-T0_5"
                    + " for T = 0.5");
        }
        String label = org.distill4j.examples.Demo.distilledLabel(row);
        String base = org.distill4j.examples.Demo.fileName(label);
        if (base.equals(org.distill4j.examples.Demo.fileName(org.distill4j.examples.Demo.distilledLabel("")))) {
            throw error(keyNode, path, "a row name needs an ASCII letter or digit: its files are named after it with a-z, 0-9 and"
                    + " '-' only, e.g. kd-T4");
        }
        if (base.length() > MAX_ROW_FILE_NAME) {
            // the model's temporary file adds a seed suffix, a dot, random digits and .tmp: past 255 bytes it fails after training
            throw error(keyNode, path, "a row name this long makes file names of " + base.length() + " characters and more (with"
                    + " seeds and temporary files); the limit is " + MAX_ROW_FILE_NAME + " for '" + base.substring(0, 20)
                    + "...': use a shorter name");
        }
        List<String> labels = new ArrayList<>();
        if (seeds == null) {
            labels.add(label);
        } else {
            seeds.forEach(seed -> labels.add(org.distill4j.examples.Demo.seedLabel(label, seed)));
        }
        for (String l : labels) {
            String file = org.distill4j.examples.Demo.fileName(l);
            String other = files.putIfAbsent(file, row);
            if (other != null && other.equals(row)) {
                throw error(keyNode, path, "row '" + shown + "' is given twice (spaces around a name are dropped)");
            }
            if (other != null) {
                throw error(keyNode, path, "rows '" + org.distill4j.examples.Main.printable(other) + "' and '" + shown + "' would"
                        + " write the same files (" + file + ".zip, checkpoints/" + file + "): file names keep only a-z, 0-9 and '-',"
                        + " so names must differ in more than case, spaces, punctuation and other letters");
            }
        }
    }

    /**
     * One distilled row's terms, the list at {@code path} ({@code loss}, or {@code loss.<row>}), checked as a whole: at least
     * one term of weight > 0, feature terms beside a logit term, a store's layout fitting the terms.
     */
    private List<Recipe.LossTerm> terms(Node lossNode, String path, Recipe.Teacher teacher, Recipe.Student student,
                                        List<Map<String, Object>> resolvedTerms) {
        checkTags(lossNode, path);
        if (!(lossNode instanceof SequenceNode seq) || seq.getValue().isEmpty()) {
            throw error(lossNode, path, path.equals("loss")
                    ? "expected a list of loss terms, e.g. - {name: kd, temperature: 4, alpha: 0.1}, or a mapping of row names"
                    + " to such lists, one distilled row each, e.g. {kd: [{name: kd}], dkd: [{name: ce}, {name: dkd}]}"
                    : "expected a list of loss terms, e.g. [{name: kd, temperature: 4, alpha: 0.1}]");
        }
        List<Recipe.LossTerm> terms = new ArrayList<>();
        for (int i = 0; i < seq.getValue().size(); i++) {
            Node termNode = seq.getValue().get(i);
            String p = path + "[" + i + "]";
            if (!(termNode instanceof MappingNode tm)) {
                throw error(termNode, p, "expected a mapping with a name, e.g. {name: kd, temperature: 4}");
            }
            Map<String, Node> fields = mapping(tm, p, null); // its keys are checked against the loss below
            String lossName = string(required(fields, tm, p, "name"), p + ".name");
            if (FeatureLosses.names().contains(lossName)) {
                Recipe.LossTerm ft = featureTerm(tm, fields, p, lossName, teacher, student);
                terms.add(ft);
                Map<String, Object> rt = new LinkedHashMap<>();
                rt.put("name", lossName);
                rt.put("weight", ft.weight());
                rt.put("student", resolvedLayer(ft.studentName()));
                rt.put("teacher", resolvedLayer(ft.teacherName()));
                rt.putAll(ft.settings());
                resolvedTerms.add(rt);
                continue;
            }
            Losses.Entry entry = Losses.entries().stream().filter(e -> e.name().equals(lossName)).findFirst().orElseThrow(
                    () -> error(fields.get("name"), p + ".name", "unknown loss '" + lossName + "'" + suggest(lossName, allLossNames())
                            + "; registered losses: " + String.join(", ", Losses.names()) + "; feature losses: "
                            + String.join(", ", FeatureLosses.names())));
            double weight = fields.containsKey("weight") ? number(fields.get("weight"), p + ".weight") : 1.0;
            if (!(weight >= 0) || Double.isInfinite(weight)) {
                throw error(fields.get("weight"), p + ".weight", "expected a finite weight >= 0 (0 turns the term off), got " + weight);
            }
            Map<String, Object> settings = new LinkedHashMap<>();
            for (Map.Entry<String, Node> f : fields.entrySet()) {
                if (f.getKey().equals("name") || f.getKey().equals("weight")) {
                    continue;
                }
                if (!entry.settings().contains(f.getKey()) && !lossName.equals("logit-std")) {
                    throw error(f.getValue(), p + "." + f.getKey(), "loss '" + lossName + "' has no setting '" + f.getKey() + "'"
                            + suggest(f.getKey(), entry.settings()) + "; its settings: name, weight, " + String.join(", ", entry.settings()));
                }
                settings.put(f.getKey(), scalar(f.getValue(), p + "." + f.getKey()));
            }
            try {
                Losses.create(lossName, settings); // the loss's own checks (ranges, types)
            } catch (IllegalArgumentException e) {
                throw error(settingNamed(e.getMessage(), fields, termNode), p, e.getMessage());
            }
            terms.add(new Recipe.LossTerm(lossName, weight, settings));
            Map<String, Object> rt = new LinkedHashMap<>();
            rt.put("name", lossName);
            rt.put("weight", weight);
            rt.putAll(settings);
            resolvedTerms.add(rt);
        }
        if (terms.stream().allMatch(Recipe.LossTerm::feature)) {
            throw error(lossNode, path, "feature losses are added to a logit loss; add a logit loss term, e.g. - {name: kd,"
                    + " temperature: 4, alpha: 0.1}");
        }
        if (terms.stream().anyMatch(Recipe.LossTerm::feature) && terms.stream().noneMatch(term -> !term.feature() && term.weight() > 0)) {
            throw error(lossNode, path, "every logit loss term has weight 0, so the student's output layer would learn nothing"
                    + " (feature losses train the hidden layers only); give a logit term a weight > 0");
        }
        if (terms.stream().allMatch(term -> term.weight() == 0)) {
            throw error(lossNode, path, "every term has weight 0, so the distilled student would learn nothing; give at least one"
                    + " term a weight > 0");
        }
        if (teacher.store() != null) {
            boolean sparse = teacher.store().topK() > 0;
            for (int i = 0; i < terms.size(); i++) {
                String n = terms.get(i).name();
                if (sparse && !n.equals("topk-kd") && !n.equals("ce")) {
                    throw error(storeNode, "teacher.store.topk", "a top-" + teacher.store().topK() + " store feeds topk-kd (and ce); "
                            + path + "[" + i + "] is '" + n + "'");
                }
                if (!sparse && n.equals("topk-kd")) {
                    throw error(storeNode, "teacher.store", path + "[" + i + "] is topk-kd, which needs a top-k store: set teacher.store.topk");
                }
            }
        }
        return List.copyOf(terms);
    }

    /**
     * Where a loss's own check of its settings is reported: at the value of the setting its {@code message} names first
     * (as a word: "setting 'temperature'", "kd temperature must be ..."), which may come from --set, else at the term.
     * The term's name and weight are not the loss's settings (the word "weight" in "sp weight gamma must be ..." is not
     * the term's weight).
     */
    private static Node settingNamed(String message, Map<String, Node> fields, Node term) {
        Node at = term;
        int first = Integer.MAX_VALUE;
        for (Map.Entry<String, Node> f : fields.entrySet()) {
            if (f.getKey().equals("name") || f.getKey().equals("weight")) {
                continue;
            }
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?<![\\w-])" + java.util.regex.Pattern.quote(f.getKey())
                    + "(?![\\w-])").matcher(message);
            if (m.find() && m.start() < first) {
                first = m.start();
                at = f.getValue();
            }
        }
        return at;
    }

    private static List<String> allLossNames() {
        List<String> all = new ArrayList<>(Losses.names());
        all.addAll(FeatureLosses.names());
        return all;
    }

    /**
     * A feature loss term ({@code - {name: rkd, student: 0, teacher: 1}}): between the student's hidden layer
     * {@code student} and the teacher's hidden layer {@code teacher} (0-based), which need a single live DL4J teacher. A
     * hint's regressor sizes come from the two layers.
     */
    private Recipe.LossTerm featureTerm(MappingNode tm, Map<String, Node> fields, String p, String lossName, Recipe.Teacher teacher,
                                        Recipe.Student student) {
        FeatureLosses.Entry entry = FeatureLosses.entries().stream().filter(e -> e.name().equals(lossName)).findFirst().orElseThrow();
        List<String> own = entry.settings().stream().filter(k -> !k.equals("studentSize") && !k.equals("teacherSize")).toList();
        double weight = fields.containsKey("weight") ? number(fields.get("weight"), p + ".weight") : 1.0;
        if (!(weight >= 0) || Double.isInfinite(weight)) {
            throw error(fields.get("weight"), p + ".weight", "expected a finite weight >= 0 (0 turns the term off), got " + weight);
        }
        Map<String, Object> settings = new LinkedHashMap<>();
        for (Map.Entry<String, Node> f : fields.entrySet()) {
            String k = f.getKey();
            if (k.equals("name") || k.equals("weight") || k.equals("student") || k.equals("teacher")) {
                continue;
            }
            if (k.equals("studentSize") || k.equals("teacherSize")) {
                throw error(f.getValue(), p + "." + k, "a recipe's hint takes its sizes from the layers 'student' and 'teacher' name;"
                        + " remove '" + k + "'");
            }
            if (!own.contains(k)) {
                List<String> allowed = new ArrayList<>(List.of("name", "weight", "student", "teacher"));
                allowed.addAll(own);
                throw error(f.getValue(), p + "." + k, "feature loss '" + lossName + "' has no setting '" + k + "'" + suggest(k, allowed)
                        + "; its settings: " + String.join(", ", allowed));
            }
            settings.put(k, scalar(f.getValue(), p + "." + k));
        }
        Layer studentLayer = layer(fields, tm, p + ".student", student.conv().length, student.hidden().length, "student");
        if (teacher.store() != null || teacher.members().size() != 1 || teacher.members().get(0).djl() != null) {
            String what = teacher.store() != null ? "a teacher whose outputs come from a store (teacher.store)"
                    : teacher.members().size() != 1 ? "an ensemble of " + teacher.members().size() + " teachers"
                    : "an ONNX or TorchScript teacher";
            throw error(tm, p, "feature loss '" + lossName + "' reads the teacher's hidden layers, which need one live DL4J teacher"
                    + " (teacher.hidden, or teacher.model naming a DL4J .zip); this recipe has " + what);
        }
        org.distill4j.examples.TeacherSpec t = teacher.members().get(0);
        Layer teacherLayer = t.model() == null ? layer(fields, tm, p + ".teacher", t.conv().length, t.hidden().length, "teacher")
                : layer(fields, tm, p + ".teacher", -1, -1, null); // a loaded model's layers are checked when it is loaded
        if (lossName.equals(org.distill4j.loss.AttentionTransfer.NAME)) {
            // maps {C, H, W} of the same sides: blocks of one index have them (each block halves both models' sides alike)
            if (!studentLayer.conv()) {
                throw error(field(fields, p + ".student"), p + ".student", "'" + lossName + "' compares the activation maps"
                        + " {C, H, W} of convolution blocks; name one of student.conv's blocks" + blocks(student.conv().length)
                        + ", not hidden layer " + studentLayer.name());
            }
            if (t.model() == null && !teacherLayer.conv()) {
                throw error(field(fields, p + ".teacher"), p + ".teacher", "'" + lossName + "' compares the activation maps"
                        + " {C, H, W} of convolution blocks; name one of teacher.conv's blocks" + blocks(t.conv().length)
                        + ", not hidden layer " + teacherLayer.name());
            }
            if (t.model() == null && !teacherLayer.name().equals(studentLayer.name())) {
                throw error(field(fields, p + ".teacher"), p + ".teacher", "'" + lossName + "' compares maps of the same height and"
                        + " width, and block " + teacherLayer.name() + "'s sides are not " + studentLayer.name() + "'s (each block's"
                        + " pool halves them); name the same block in both, e.g. student: " + studentLayer.name() + ", teacher: "
                        + studentLayer.name());
            }
        }
        Map<String, Object> check = new LinkedHashMap<>(settings);
        if (entry.settings().contains("studentSize")) {
            check.put("studentSize", 1);
            check.put("teacherSize", 1);
        }
        try {
            FeatureLosses.create(lossName, check); // the loss's own checks (ranges, types)
        } catch (IllegalArgumentException e) {
            throw error(settingNamed(e.getMessage(), fields, tm), p, e.getMessage());
        }
        return new Recipe.LossTerm(lossName, weight, settings, studentLayer.index(), teacherLayer.index(), studentLayer.name(),
                teacherLayer.name());
    }

    /**
     * A layer a feature term reads: its index among the network's layers ({@link org.distill4j.examples.DemoModels#model}
     * puts a convolution and a pool per block before the hidden layers), and its name as the recipe gives it ("1" for
     * hidden layer 1, "conv0" for block 0).
     */
    private record Layer(int index, String name, boolean conv) {
    }

    /** " (conv0 to conv2)", " (conv0)", or ": student.conv has none" for a message. */
    private static String blocks(int conv) {
        return conv == 0 ? " (it has none)" : conv == 1 ? " (conv0)" : " (conv0 to conv" + (conv - 1) + ")";
    }

    /**
     * A feature term's layer: a hidden layer's index, a whole number in [0, hidden), or a convolution block's name,
     * {@code conv<i>} for i in [0, conv), whose activation map (the convolution's output, before its pool) is read. For a
     * model loaded at run time ({@code hidden} -1) an index of its layers as DL4J counts them, any whole number >= 0 here
     * (checked when it is loaded).
     *
     * @param role "student" or "teacher", for the message
     */
    private Layer layer(Map<String, Node> fields, Node parent, String path, int conv, int hidden, String role) {
        Node n = required(fields, parent, path.substring(0, path.lastIndexOf('.')), path.substring(path.lastIndexOf('.') + 1));
        String text = scalarText(n, path, hidden < 0 ? "a whole number" : "a hidden layer's index or a block's name (conv0, ...)");
        java.util.regex.Matcher block = java.util.regex.Pattern.compile("conv(0|[1-9][0-9]{0,8})").matcher(text);
        if (hidden < 0) {
            if (block.matches()) {
                throw error(n, path, "a loaded teacher's layers are named by their index in the model as DL4J counts them (0-based,"
                        + " a convolution and its pool being two layers), not by block name; got '" + text + "'");
            }
            long v = integer(fields, path, -1);
            if (v < 0 || v > Integer.MAX_VALUE) {
                throw error(n, path, "expected the index of a hidden layer of the teacher model, a whole number >= 0"
                        + " (its layers are checked when it is loaded), got " + v);
            }
            return new Layer((int) v, String.valueOf(v), false);
        }
        String expected = "expected the index of a hidden layer, 0 to " + (hidden - 1) + " (" + role + ".hidden has " + hidden + ")"
                + (conv > 0 ? ", or a convolution block, conv0 to conv" + (conv - 1) + " (" + role + ".conv has " + conv + ")" : "");
        if (block.matches()) {
            int b = Integer.parseInt(block.group(1));
            if (b >= conv) {
                throw error(n, path, conv == 0 ? "'" + text + "' names a convolution block, and " + role + " has none (no " + role
                        + ".conv); " + expected : expected + ", got '" + text + "'");
            }
            return new Layer(2 * b, "conv" + b, true);
        }
        long v;
        try {
            v = Long.parseLong(text);
        } catch (NumberFormatException e) {
            throw error(n, path, expected + ", got '" + text + "'");
        }
        if (v < 0 || v >= hidden) {
            throw error(n, path, expected + ", got " + v);
        }
        return new Layer(2 * conv + (int) v, String.valueOf(v), false);
    }

    /**
     * A teacher that is only stored outputs ({@code teacher: {store: {path}}}): the store must exist and be
     * complete; its layout (dense or top-k) is read from it.
     */
    private Recipe.Teacher storedOnlyTeacher(Map<String, Node> te, Map<String, Object> rteacher, Path source) {
        for (String k : MEMBER) {
            if (te.containsKey(k)) { // never silently ignored: a forgotten 'hidden' or 'model' would leave them unused
                throw error(te.get(k), "teacher." + k, "'" + k + "' does not apply to a teacher made only of stored outputs"
                        + " (teacher.store without model or hidden); add teacher.hidden to train a teacher (or teacher.model to load"
                        + " one) that labels the store, or remove '" + k + "'");
            }
        }
        Node storeNode = te.get("store");
        Map<String, Node> so = mapping(storeNode, "teacher.store", STORE);
        for (String k : List.of("topk", "dtype")) {
            if (so.containsKey(k)) {
                throw error(so.get(k), "teacher.store." + k, "a teacher made only of stored outputs takes '" + k
                        + "' from the store itself; '" + k + "' is for labeling a store with a model or a trained teacher");
            }
        }
        Node pathNode = required(so, storeNode, "teacher.store", "path");
        Path storePath = path(pathNode, "teacher.store.path", source);
        int k;
        String dtype;
        int vocab;
        try (org.distill4j.store.SoftTargetStore st = org.distill4j.store.SoftTargetStore.open(storePath)) {
            k = st.header().layout() == org.distill4j.store.StoreHeader.Layout.TOP_K ? st.header().k() : 0;
            dtype = st.header().codec().name().toLowerCase(java.util.Locale.ROOT);
            vocab = st.header().vocab();
        } catch (java.io.IOException | RuntimeException e) {
            throw error(pathNode, "teacher.store.path", "a teacher made only of stored outputs needs a complete store (e.g. from "
                    + "distill label, on the recipe's transfer set; relative paths start at the recipe's folder): " + e.getMessage());
        }
        if (vocab != CLASSES) {
            throw error(pathNode, "teacher.store.path", storePath + " holds rows of " + vocab + " classes; fashion-mnist has " + CLASSES);
        }
        this.storeNode = storeNode;
        // the path alone: topk and dtype are the store's (provenance.store records them), and given here they are refused
        rteacher.put("store", ordered("path", storePath.toString()));
        return new Recipe.Teacher(List.of(), EnsembleTeacher.Combine.PROBABILITIES, new Recipe.Store(storePath, k, dtype));
    }

    /** A schedule: a number (the same every epoch) or {from, to} (linear from the first epoch to the last); null when absent. */
    private org.distill4j.train.Schedule schedule(Node n, String path, Map<String, Object> resolvedSchedules) {
        if (n == null) {
            return null;
        }
        String key = path.substring(path.lastIndexOf('.') + 1);
        if (n instanceof ScalarNode) {
            double v = number(n, path);
            resolvedSchedules.put(key, v);
            return org.distill4j.train.Schedule.constant(v);
        }
        Map<String, Node> m = mapping(n, path, SCHEDULE);
        double from = number(required(m, n, path, "from"), path + ".from");
        double to = number(required(m, n, path, "to"), path + ".to");
        Map<String, Object> fromTo = new LinkedHashMap<>();
        fromTo.put("from", from);
        fromTo.put("to", to);
        resolvedSchedules.put(key, fromTo);
        return org.distill4j.train.Schedule.linear(from, to);
    }

    /**
     * Schedules must fit every distilled row's loss: a temperature for a temperature-scaled loss, alpha for a single kd term;
     * values in range.
     */
    private void checkSchedules(Recipe r, Map<String, Node> sc) {
        if (sc.isEmpty()) {
            return;
        }
        int epochs = r.training().epochs();
        for (Recipe.Objective o : r.objectives()) {
            org.distill4j.loss.LogitLoss loss = RecipeRunner.loss(o.terms());
            String of = o.row() == null ? "" : " (row '" + o.row() + "')";
            if (r.training().temperature() != null) {
                Node n = sc.get("temperature");
                if (!(loss instanceof org.distill4j.loss.TemperatureScaled ts)) {
                    throw error(n, "training.schedules.temperature", "loss '" + loss.name() + "'" + of + " has no temperature"
                            + (o.row() == null ? "" : "; a schedule applies to every distilled row"));
                }
                for (int e = 0; e < epochs; e++) {
                    try {
                        ts.withTemperature(r.training().temperature().at(e, epochs));
                    } catch (IllegalArgumentException ex) {
                        throw error(n, "training.schedules.temperature", "at epoch " + (e + 1) + of + ": " + ex.getMessage());
                    }
                }
            }
            if (r.training().alpha() != null) {
                Node n = sc.get("alpha");
                if (!(loss instanceof org.distill4j.loss.SoftTargetKd kd)) {
                    throw error(n, "training.schedules.alpha", "alpha schedules apply to a single kd loss term" + of
                            + "; for several terms set their weights" + (o.row() == null ? "" : "; a schedule applies to every distilled row"));
                }
                for (int e = 0; e < epochs; e++) {
                    try {
                        kd.withAlpha(r.training().alpha().at(e, epochs));
                    } catch (IllegalArgumentException ex) {
                        throw error(n, "training.schedules.alpha", "at epoch " + (e + 1) + of + ": " + ex.getMessage());
                    }
                }
            }
        }
    }

    /** One teacher: trained (hidden, dropout, epochs), a DL4J model file, or a foreign model for DJL. */
    private TeacherSpec member(Map<String, Node> m, Node parent, String path, Path source, Map<String, Object> resolvedMember) {
        double weight = 1;
        if (m.containsKey("weight")) {
            weight = number(m.get("weight"), path + ".weight");
            if (!(weight > 0) || Double.isInfinite(weight)) {
                throw error(m.get("weight"), path + ".weight", "expected a weight > 0, got " + weight);
            }
        }
        if (!m.containsKey("model")) {
            for (String k : DJL_KEYS) {
                if (m.containsKey(k)) {
                    throw error(m.get(k), path + "." + k, "'" + k + "' applies to a foreign model (model: *.onnx or *.pt)");
                }
            }
            int[] conv = m.containsKey("conv") ? channels(m.get("conv"), path + ".conv") : new int[0];
            TeacherSpec spec = TeacherSpec.trained(conv, sizes(required(m, parent, path, "hidden"), path + ".hidden"),
                    fraction(m, path + ".dropout", 0.0), positive(m, path + ".epochs", 10), weight);
            if (conv.length > 0) { // only then: the resolved recipes of MLP teachers stay as they were
                resolvedMember.put("conv", List.of(box(conv)));
            }
            resolvedMember.put("hidden", List.of(box(spec.hidden())));
            resolvedMember.put("dropout", spec.dropout());
            resolvedMember.put("epochs", spec.epochs());
            resolvedMember.put("weight", weight);
            return spec;
        }
        for (String k : List.of("conv", "hidden", "dropout", "epochs")) {
            if (m.containsKey(k)) {
                throw error(m.get(k), path + "." + k, "a teacher is either loaded (model) or trained (conv, hidden, dropout, epochs),"
                        + " not both");
            }
        }
        Node modelNode = m.get("model");
        Path model = path(modelNode, path + ".model", source);
        if (!Files.isRegularFile(model)) {
            throw error(modelNode, path + ".model", "no model file at " + model + " (relative paths start at the recipe's folder)");
        }
        resolvedMember.put("model", model.toString());
        boolean foreign = m.containsKey("engine") || TeacherSpec.isForeignModel(model);
        if (!foreign) {
            for (String k : DJL_KEYS) {
                if (m.containsKey(k)) {
                    throw error(m.get(k), path + "." + k, "'" + k + "' applies to ONNX / TorchScript models (.onnx, .pt) run through DJL; "
                            + model.getFileName() + " is read as a DL4J model");
                }
            }
            resolvedMember.put("weight", weight);
            return TeacherSpec.dl4j(model, weight);
        }
        String engine = null; // null: the one the file's extension implies
        if (m.containsKey("engine")) {
            // checked now: DJL would refuse a name only when the model loads, after the teachers before it have trained
            Node en = m.get("engine");
            String given = string(en, path + ".engine");
            String implied = TeacherSpec.engineOf(model);
            if (given.equalsIgnoreCase("auto")) {
                if (implied == null) {
                    throw error(en, path + ".engine", "'auto' takes the engine from the model file's extension (.onnx: onnxruntime;"
                            + " .pt, .pth, .torchscript: pytorch), and " + model.getFileName() + " has none of them; expected one of "
                            + TeacherSpec.engineNames());
                }
            } else {
                engine = TeacherSpec.engine(given);
                if (engine == null) {
                    List<String> names = new ArrayList<>(List.of("auto"));
                    TeacherSpec.ENGINES.values().forEach(names::addAll);
                    throw error(en, path + ".engine", "unknown engine '" + org.distill4j.examples.Main.printable(given) + "'"
                            + suggest(given, names) + "; expected auto (from the file's extension, the default), "
                            + TeacherSpec.engineNames());
                }
                if (implied != null && !implied.equals(engine)) {
                    throw error(en, path + ".engine", "engine '" + given + "' is " + engine + ", which cannot load "
                            + model.getFileName() + " (a model for " + implied + "); expected " + implied + " or auto");
                }
            }
        }
        long[] shape = null;
        if (m.containsKey("inputShape")) {
            int[] dims = sizes(m.get("inputShape"), path + ".inputShape");
            shape = java.util.Arrays.stream(dims).asLongStream().toArray();
        }
        String logits = m.containsKey("logits") ? string(m.get("logits"), path + ".logits") : null;
        List<String> names = null;
        if (m.containsKey("outputNames")) {
            Node n = m.get("outputNames");
            if (!(n instanceof SequenceNode seq) || seq.getValue().isEmpty()) {
                throw error(n, path + ".outputNames", "expected a list of names, e.g. [logits, embedding]");
            }
            names = new ArrayList<>();
            for (int i = 0; i < seq.getValue().size(); i++) {
                names.add(string(seq.getValue().get(i), path + ".outputNames[" + i + "]"));
            }
        }
        resolvedMember.put("engine", engine == null ? "auto" : engine);
        if (shape != null) {
            resolvedMember.put("inputShape", List.of(java.util.Arrays.stream(shape).boxed().toArray()));
        }
        if (logits != null) {
            resolvedMember.put("logits", logits);
        }
        if (names != null) {
            resolvedMember.put("outputNames", List.copyOf(names));
        }
        resolvedMember.put("weight", weight);
        return TeacherSpec.djl(model, new TeacherSpec.Djl(engine, shape, logits, names == null ? null : List.copyOf(names)), weight);
    }

    /**
     * A path from the recipe: relative ones start at the recipe's folder, whatever the working directory
     * (model files, data.path and teacher.store.path alike).
     */
    static Path relative(Path recipe, String path) {
        return recipe.toAbsolutePath().getParent().resolve(path).normalize();
    }

    /**
     * A path field, resolved as {@link #relative}: a value no file can be named by (a NUL character), or one with another
     * control character (a line break, a tab, an escape: a file name the system would take, but never what a recipe meant),
     * is an error at the field.
     */
    private Path path(Node n, String field, Path source) {
        String v = string(n, field);
        String expected = "; expected a file or folder name, relative to the recipe's folder or absolute";
        Path p;
        try {
            p = relative(source, v);
        } catch (java.nio.file.InvalidPathException e) {
            throw error(n, field, "'" + org.distill4j.examples.Main.printable(v) + "' is not a valid path (" + e.getReason() + ")"
                    + expected);
        }
        for (int i = 0; i < v.length(); i++) {
            if (Character.isISOControl(v.charAt(i))) {
                throw error(n, field, "'" + org.distill4j.examples.Main.printable(v) + "' is not a valid path (control character "
                        + org.distill4j.examples.Main.printable(String.valueOf(v.charAt(i))) + " at index " + i + ")" + expected);
            }
        }
        return p;
    }

    /** A map that keeps the order of its keys (the provenance reads like the recipe). */
    private static Map<String, Object> ordered(Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return m;
    }

    private void put(String key, Map<String, Object> value) {
        resolved.put(key, new LinkedHashMap<>(value));
    }

    private static Object[] box(int[] a) {
        return java.util.Arrays.stream(a).boxed().toArray();
    }

    // ---- --set overrides ----

    /** The nodes a --set value made, each with its assignment as shown: their marks are positions in the value, not the file. */
    private final Map<Node, String> fromSet = new java.util.IdentityHashMap<>();

    private void markFromSet(Node n, String shown) {
        fromSet.put(n, shown);
        if (n instanceof MappingNode mn) {
            for (NodeTuple t : mn.getValue()) {
                markFromSet(t.getKeyNode(), shown);
                markFromSet(t.getValueNode(), shown);
            }
        } else if (n instanceof SequenceNode sn) {
            sn.getValue().forEach(c -> markFromSet(c, shown));
        }
    }

    /** A --set key's segment with list indexes: {@code T1[0]}, {@code hidden[1]}, {@code a[0][2]}. */
    private static final java.util.regex.Pattern INDEXED = java.util.regex.Pattern.compile("(.+?)((?:\\[\\d+])+)");

    /**
     * Applies one {@code --set key.path=value}: the keys are separated by dots, and a key may end in list indexes
     * ({@code loss.T1[0].temperature=2}, {@code student.hidden[1]=800}) to reach into a list that is there; a missing
     * section is added, a missing list entry is refused.
     */
    private void override(MappingNode top, String assignment) {
        int eq = assignment.indexOf('=');
        String shown = org.distill4j.examples.Main.printable(assignment); // a control character in it is shown as an escape
        String keyPath = eq < 0 ? "" : assignment.substring(0, eq).trim();
        if (keyPath.isEmpty()) {
            throw new RecipeException(file + ": --set " + shown + ": expected key.path=value");
        }
        String[] keys = keyPath.split("\\.", -1);
        for (int i = 0; i < keys.length; i++) {
            keys[i] = keys[i].trim(); // 'training. epochs' as 'training.epochs', as blanks around '=' are
        }
        if (java.util.Arrays.asList(keys).contains("")) { // "training.=3" would replace the whole section, ".x=3" add a key ''
            throw new RecipeException(file + ": --set " + shown + ": the key '" + org.distill4j.examples.Main.printable(keyPath)
                    + "' has an empty part; expected keys joined by single dots, e.g. training.epochs=5");
        }
        String value = trimSpaces(assignment.substring(eq + 1));
        String shownValue = org.distill4j.examples.Main.printable(value);
        // the value is YAML too, so lists work: --set student.hidden=[800,800]
        Node parsed;
        try {
            parsed = value.isEmpty() ? null : new Yaml(new LoaderOptions()).compose(new StringReader(value));
        } catch (MarkedYAMLException e) {
            Mark mk = e.getProblemMark();
            throw new RecipeException(file + ": --set " + shown + ": " + String.join(".", keys) + ": the value is not valid YAML: "
                    + e.getProblem() + (mk == null ? "" : " (at character " + (mk.getColumn() + 1) + " of '" + shownValue + "')")
                    + "; quote it for text, e.g. --set 'name=\"" + shownValue.replace("\"", "") + "\"'");
        } catch (RuntimeException e) {
            throw new RecipeException(file + ": --set " + shown + ": " + String.join(".", keys) + ": the value is not valid YAML: "
                    + e.getMessage());
        }
        Node v = parsed != null ? parsed : new ScalarNode(Tag.STR, value, null, null, DumperOptions.ScalarStyle.PLAIN);
        markFromSet(v, shown);

        Node cur = top;
        StringBuilder at = new StringBuilder(); // the path walked so far, as written
        for (int i = 0; i < keys.length; i++) {
            boolean last = i == keys.length - 1;
            String key = keys[i];
            if (!(cur instanceof MappingNode m)) {
                throw new RecipeException(file + ": --set " + shown + ": '" + at + "' is "
                        + (cur instanceof SequenceNode ? "a list, not a section, so it has no key '" + key + "'; reach an entry by its"
                        + " index, e.g. " + at + "[0]" : "a value, not a section, so it has no key '" + key + "'"));
            }
            List<Integer> indexes = new ArrayList<>();
            java.util.regex.Matcher im = INDEXED.matcher(key);
            if (find(m, key) == null && im.matches()) { // a key written with brackets (a row "a[1]") is that key
                key = im.group(1);
                java.util.regex.Matcher n = java.util.regex.Pattern.compile("\\[(\\d+)]").matcher(im.group(2));
                while (n.find()) {
                    indexes.add(parseIndex(n.group(1)));
                }
            }
            NodeTuple found = find(m, key);
            String here = at.length() == 0 ? key : at + "." + key;
            at.setLength(0);
            at.append(here);
            if (indexes.isEmpty()) {
                // a key or section --set adds is marked as the value is: an error about it (an unknown key, a row that is
                // not in the recipe) names the assignment
                if (last) {
                    ScalarNode k = new ScalarNode(Tag.STR, key, null, null, DumperOptions.ScalarStyle.PLAIN);
                    if (found != null) {
                        m.getValue().set(m.getValue().indexOf(found), new NodeTuple(found.getKeyNode(), v));
                    } else {
                        markFromSet(k, shown);
                        m.getValue().add(new NodeTuple(k, v));
                    }
                    return;
                }
                if (found == null) {
                    MappingNode child = new MappingNode(Tag.MAP, new ArrayList<>(), DumperOptions.FlowStyle.BLOCK);
                    ScalarNode k = new ScalarNode(Tag.STR, key, null, null, DumperOptions.ScalarStyle.PLAIN);
                    markFromSet(k, shown);
                    markFromSet(child, shown);
                    m.getValue().add(new NodeTuple(k, child));
                    cur = child;
                } else {
                    cur = found.getValueNode();
                }
                continue;
            }
            if (found == null) {
                throw new RecipeException(file + ": --set " + shown + ": '" + here + "' is not in the recipe, so it has no entry ["
                        + indexes.get(0) + "]; set the whole list instead, e.g. --set '" + here + "=[...]'");
            }
            cur = found.getValueNode();
            for (int j = 0; j < indexes.size(); j++) {
                int index = indexes.get(j);
                if (!(cur instanceof SequenceNode seq)) {
                    throw new RecipeException(file + ": --set " + shown + ": '" + at + "' is not a list, so it has no entry [" + index + "]");
                }
                int size = seq.getValue().size();
                if (index >= size) {
                    throw new RecipeException(file + ": --set " + shown + ": '" + at + "' has " + size + (size == 1 ? " entry" : " entries")
                            + (size == 0 ? "" : "; expected an index from 0 to " + (size - 1)) + ", got [" + index + "]");
                }
                at.append('[').append(index).append(']');
                if (last && j == indexes.size() - 1) {
                    seq.getValue().set(index, v);
                    return;
                }
                cur = seq.getValue().get(index);
            }
        }
    }

    /** The entry of {@code m} whose key is {@code key}, the last one if it is there twice (the check names both), or null. */
    private static NodeTuple find(MappingNode m, String key) {
        NodeTuple found = null;
        for (NodeTuple t : m.getValue()) {
            if (t.getKeyNode() instanceof ScalarNode s && s.getValue().equals(key)) {
                found = t;
            }
        }
        return found;
    }

    /** A list index of a --set key: digits, at most {@link Integer#MAX_VALUE} (larger is out of any list's range anyway). */
    private static int parseIndex(String digits) {
        try {
            return Integer.parseInt(digits);
        } catch (NumberFormatException e) {
            return Integer.MAX_VALUE;
        }
    }

    // ---- typed access with errors naming file:line:column and the field path ----

    private RecipeException error(Node n, String path, String message) {
        Mark m = n == null ? null : n.getStartMark();
        String set = n == null ? null : fromSet.get(n);
        String where = set != null ? file + ": --set " + set + (m == null ? "" : " (at character " + (m.getIndex() + 1) + " of the value)")
                : m == null ? file + " (--set)" : file + ":" + (m.getLine() + 1) + ":" + (m.getColumn() + 1);
        return new RecipeException(where + ": " + (path.isEmpty() ? "" : path + ": ") + message);
    }

    private void checkTags(Node n, String path) {
        if (!PLAIN_TAGS.contains(n.getTag())) {
            throw error(n, path, "tag " + n.getTag() + " is not allowed: recipes are plain data");
        }
    }

    private String key(NodeTuple t, String path) {
        checkTags(t.getKeyNode(), path);
        if (!(t.getKeyNode() instanceof ScalarNode s)) {
            throw error(t.getKeyNode(), path, "keys must be plain words");
        }
        return s.getValue();
    }

    /**
     * The keys and values of a mapping, each key at most once (YAML says keys are unique, but the parser lets
     * the last one win); {@code allowed} null admits any key.
     */
    private Map<String, Node> mapping(Node n, String path, Set<String> allowed) {
        checkTags(n, path);
        if (!(n instanceof MappingNode m)) {
            throw error(n, path, allowed == null ? "expected a mapping"
                    : "expected a mapping of " + String.join(", ", new java.util.TreeSet<>(allowed)));
        }
        Map<String, Node> out = new LinkedHashMap<>();
        Map<String, Node> keys = new LinkedHashMap<>();
        for (NodeTuple t : m.getValue()) {
            String k = key(t, path);
            String full = path.isEmpty() ? k : path + "." + k;
            Node first = keys.putIfAbsent(k, t.getKeyNode());
            if (first != null) {
                Mark fm = first.getStartMark();
                throw error(t.getKeyNode(), full, "duplicate key '" + k + "'" + (fm == null ? " (also set by --set)"
                        : " (first at line " + (fm.getLine() + 1) + ", column " + (fm.getColumn() + 1) + ")")
                        + "; a key may appear once" + (path.isEmpty() ? "" : " in " + path) + ": remove one of them");
            }
            if (allowed != null && !allowed.contains(k)) {
                throw error(t.getKeyNode(), full, "unknown key '" + k + "'" + suggest(k, allowed) + "; valid keys"
                        + (path.isEmpty() ? "" : " in " + path) + ": " + String.join(", ", new java.util.TreeSet<>(allowed)));
            }
            checkTags(t.getValueNode(), full);
            out.put(k, t.getValueNode());
        }
        return out;
    }

    private Map<String, Node> section(Map<String, Node> top, String name, Set<String> allowed) {
        Node n = top.get(name);
        return n == null ? Map.of() : mapping(n, name, allowed);
    }

    private Node required(Map<String, Node> m, Node parent, String path, String key) {
        Node n = m.get(key);
        if (n == null) {
            throw error(parent, path.isEmpty() ? key : path + "." + key, "missing required field");
        }
        return n;
    }

    private String scalarText(Node n, String path, String expected) {
        checkTags(n, path);
        if (!(n instanceof ScalarNode s)) {
            throw error(n, path, "expected " + expected + ", got a " + (n instanceof SequenceNode ? "list" : "mapping"));
        }
        return trimSpaces(s.getValue());
    }

    /**
     * {@code s} without the spaces around it. Only spaces: String.trim would also drop control characters (a NUL, a line
     * break, a tab written as a YAML escape), so a path or name ending in one would silently name another file or folder
     * instead of being refused where it is.
     */
    static String trimSpaces(String s) {
        int from = 0;
        int to = s.length();
        while (from < to && s.charAt(from) == ' ') {
            from++;
        }
        while (to > from && s.charAt(to - 1) == ' ') {
            to--;
        }
        return s.substring(from, to);
    }

    private String string(Node n, String path) {
        return scalarText(n, path, "a text value");
    }

    private Object scalar(Node n, String path) {
        String s = scalarText(n, path, "a single value");
        return DECIMAL.matcher(s).matches() ? Double.parseDouble(s) : s;
    }

    /**
     * A number as a recipe writes one: decimal, with an optional exponent, or NaN / Infinity (refused by each field's range
     * with its own message). Not Java's other forms that {@link Double#parseDouble} takes (4f, 4d, 0x1p3).
     */
    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("[+-]?(NaN|Infinity|([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?)");

    private boolean bool(Node n, String path) {
        String s = scalarText(n, path, "true or false");
        return switch (s) {
            case "true" -> true;
            case "false" -> false;
            default -> throw error(n, path, "expected true or false, got '" + s + "'");
        };
    }

    private double number(Node n, String path) {
        String s = scalarText(n, path, "a number");
        if (!DECIMAL.matcher(s).matches()) {
            throw error(n, path, "expected a number, got '" + s + "'");
        }
        return Double.parseDouble(s);
    }

    /** The node of the field named by the last segment of {@code path}, or null when absent. */
    private static Node field(Map<String, Node> m, String path) {
        return m.get(path.substring(path.lastIndexOf('.') + 1));
    }

    private long integer(Map<String, Node> m, String path, long dflt) {
        Node n = field(m, path);
        if (n == null) {
            return dflt;
        }
        String s = scalarText(n, path, "a whole number");
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw error(n, path, "expected a whole number, got '" + s + "'");
        }
    }

    private int positive(Map<String, Node> m, String path, int dflt) {
        long v = integer(m, path, dflt);
        if (v <= 0 || v > Integer.MAX_VALUE) {
            throw error(field(m, path), path, "expected a positive whole number, got " + v);
        }
        return (int) v;
    }

    private int nonNegative(Map<String, Node> m, String path, int dflt) {
        long v = integer(m, path, dflt);
        if (v < 0 || v > Integer.MAX_VALUE) {
            throw error(field(m, path), path, "expected a whole number >= 0, got " + v);
        }
        return (int) v;
    }

    private double positiveNumber(Map<String, Node> m, String path, double dflt) {
        Node n = field(m, path);
        if (n == null) {
            return dflt;
        }
        double v = number(n, path);
        if (!(v > 0) || Double.isInfinite(v)) {
            throw error(n, path, "expected a number > 0, got " + v);
        }
        return v;
    }

    private double fraction(Map<String, Node> m, String path, double dflt) {
        Node n = field(m, path);
        if (n == null) {
            return dflt;
        }
        double v = number(n, path);
        if (!(v >= 0 && v < 1)) {
            throw error(n, path, "expected a number in [0, 1), got " + v);
        }
        return v;
    }

    private int[] sizes(Node n, String path) {
        return sizes(n, path, "expected a list of layer sizes, e.g. [400, 400]", "a layer size");
    }

    /** A feature term's layer in the resolved recipe: a hidden layer's index as a number, a block's name as it is. */
    private static Object resolvedLayer(String name) {
        return name.startsWith("conv") ? name : (Object) Integer.valueOf(name);
    }

    /** A model's {@code conv}: the channels of its convolution blocks, e.g. [16, 32]. */
    private int[] channels(Node n, String path) {
        return sizes(n, path, "expected a list of channel counts, one per convolution block (3x3 convolution, ReLU, 2x2 max"
                + " pool), e.g. [16, 32]", "a channel count");
    }

    private int[] sizes(Node n, String path, String expected, String what) {
        checkTags(n, path);
        if (!(n instanceof SequenceNode s) || s.getValue().isEmpty()) {
            throw error(n, path, expected);
        }
        int[] out = new int[s.getValue().size()];
        for (int i = 0; i < out.length; i++) {
            Node e = s.getValue().get(i);
            String t = scalarText(e, path + "[" + i + "]", what);
            try {
                out[i] = Integer.parseInt(t);
            } catch (NumberFormatException ex) {
                out[i] = -1;
            }
            if (out[i] <= 0) {
                throw error(e, path + "[" + i + "]", "expected a positive " + what.substring(2) + ", got '" + t + "'");
            }
        }
        return out;
    }

    /** training.seeds: 1 to {@value #MAX_SEEDS} distinct whole numbers; null when absent. */
    private List<Long> seeds(Node n, String path) {
        if (n == null) {
            return null;
        }
        checkTags(n, path);
        String expected = "expected a list of 1 to " + MAX_SEEDS + " distinct whole numbers, e.g. [1, 2, 3]";
        if (!(n instanceof SequenceNode s)) {
            throw error(n, path, expected + ", got " + (n instanceof ScalarNode sc ? "'" + sc.getValue() + "'" : "a mapping"));
        }
        if (s.getValue().isEmpty() || s.getValue().size() > MAX_SEEDS) {
            throw error(n, path, expected + ", got " + s.getValue().size() + " entries");
        }
        List<Long> out = new ArrayList<>();
        for (int i = 0; i < s.getValue().size(); i++) {
            Node e = s.getValue().get(i);
            String p = path + "[" + i + "]";
            String t = scalarText(e, p, "a whole number");
            long v;
            try {
                v = Long.parseLong(t);
            } catch (NumberFormatException ex) {
                throw error(e, p, "expected a whole number, got '" + t + "'");
            }
            int first = out.indexOf(v);
            if (first >= 0) {
                throw error(e, p, "seed " + v + " is already " + path + "[" + first + "]; the seeds must be distinct");
            }
            out.add(v);
        }
        return List.copyOf(out);
    }

    /** "auto" and the backends on the class path (cpu, and cuda with distill-cuda), whether available here or not. */
    static List<String> backendNames() {
        List<String> names = new ArrayList<>();
        names.add("auto");
        org.distill4j.backend.Backends.providers().forEach(pr -> names.add(pr.name()));
        return names;
    }

    /** ", did you mean 'x'?" for the closest candidate within edit distance 3, else "". */
    static String suggest(String word, java.util.Collection<String> candidates) {
        String best = null;
        int bestD = Integer.MAX_VALUE;
        for (String c : candidates) {
            int d = distance(word.toLowerCase(), c.toLowerCase());
            if (d < bestD) {
                bestD = d;
                best = c;
            }
        }
        return best != null && bestD <= Math.max(2, word.length() / 3) ? " (did you mean '" + best + "'?)" : "";
    }

    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
