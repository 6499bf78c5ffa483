package org.distill4j.examples.recipe;

import org.distill4j.examples.Json;
import org.distill4j.examples.TeacherSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * provenance.json's {@code settings} is "the resolved recipe": written out (as the run writes it, JSON) and read back as a
 * recipe from another folder, it must load and resolve to the very same settings, for every shipped recipe and every form
 * of teacher, so a run can be repeated from its provenance alone.
 */
class ResolvedRecipeTest {
    static final Path MODELS = Path.of("models", "fashion-mnist").toAbsolutePath();

    /** What a recipe makes a run do, with the paths as the run resolves them (arrays by value). */
    static String effective(Recipe r) {
        List<String> b = new ArrayList<>();
        Recipe.Data d = r.data();
        b.add("data " + d.dataset() + " " + (d.path() == null ? "<lookup chain>" : d.path().equals("embedded") ? "embedded"
                : RecipeLoader.relative(r.source(), d.path())) + " " + d.transferSamples() + " " + d.testSamples() + " " + d.shuffle());
        boolean trains = r.teacher().members().stream().anyMatch(m -> m.model() == null);
        if (trains) {
            b.add("teacherSamples " + d.teacherSamples());
        }
        for (TeacherSpec m : r.teacher().members()) {
            b.add("member " + Arrays.toString(m.hidden()) + " " + m.dropout() + " " + m.epochs() + " " + m.model() + " "
                    + (m.djl() == null ? "dl4j" : m.djl().engine() + " " + Arrays.toString(m.djl().inputShape()) + " "
                    + m.djl().logitsOutput() + " " + m.djl().outputNames()) + " " + (r.teacher().members().size() > 1 ? m.weight() : ""));
        }
        b.add("combine " + (r.teacher().members().size() > 1 ? r.teacher().combine() : "-"));
        b.add("store " + r.teacher().store());
        b.add("student " + Arrays.toString(r.student().hidden()));
        Recipe.Training t = r.training();
        b.add("training " + t.epochs() + " " + t.batchSize() + " " + t.learningRate() + " " + t.seed() + " " + t.backend() + " "
                + t.optimizer() + " " + t.seeds() + " " + schedule(t.temperature(), t.epochs()) + " " + schedule(t.alpha(), t.epochs()));
        for (Recipe.Objective o : r.objectives()) {
            b.add("row " + o.row() + " " + o.terms());
        }
        return String.join("\n", b);
    }

    private static String schedule(org.distill4j.train.Schedule s, int epochs) {
        return s == null ? "-" : s.at(0, epochs) + ".." + s.at(epochs - 1, epochs);
    }

    /** Writes {@code r}'s resolved settings as provenance.json does, into another folder, and loads them as a recipe. */
    static Recipe reread(Recipe r, Path dir) throws Exception {
        Path f = Files.createDirectories(dir).resolve("settings.json");
        Files.writeString(f, Json.write(r.resolved()));
        try {
            return RecipeLoader.load(f, List.of());
        } catch (RecipeException e) {
            throw new AssertionError(r.source() + ": its resolved settings are not a recipe: " + e.getMessage() + "\n"
                    + Files.readString(f), e);
        }
    }

    static void assertRerunsAsWritten(Recipe r, Path dir) throws Exception {
        Recipe again = reread(r, dir);
        assertEquals(r.resolved(), again.resolved(), r.source() + ": the settings resolve to themselves");
        assertEquals(effective(r), effective(again), r.source() + ": the run they describe");
        Recipe thrice = reread(again, dir.resolve("again"));
        assertEquals(r.resolved(), thrice.resolved(), r.source().toString());
    }

    @Test
    void everyShippedRecipesSettingsRerunAsWritten(@TempDir Path tmp) throws Exception {
        List<Path> recipes;
        try (Stream<Path> s = Files.walk(Path.of("recipes"))) {
            recipes = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
        assertTrue(recipes.size() >= 8, recipes.toString());
        int i = 0;
        for (Path p : recipes) {
            assertRerunsAsWritten(RecipeLoader.load(p, List.of()), tmp.resolve("r" + i++));
        }
    }

    @Test
    void everyFormOfTeacherRerunsAsWritten(@TempDir Path tmp) throws Exception {
        Path recipeDir = Files.createDirectories(tmp.resolve("recipes/ds/m"));
        Path zip = Files.write(recipeDir.resolve("teacher.zip"), new byte[] {1});
        org.distill4j.store.StoreHeader h = new org.distill4j.store.StoreHeader(org.distill4j.store.StoreHeader.Layout.TOP_K,
                org.distill4j.store.ValueCodec.F16, org.distill4j.store.StoreHeader.ValueKind.LOG_PROBS, 10, 2, 3, 4, 1.0, "{}");
        try (org.distill4j.store.StoreWriter w = org.distill4j.store.StoreWriter.open(recipeDir.resolve("top2.d4j"), h)) {
            w.writeTopK(new int[] {1, 2, 3, 4, 5, 6}, new float[] {-0.1f, -2.5f, -0.2f, -3, -0.3f, -4}, 3);
            w.finish();
        }
        String onnx = MODELS.resolve("cnn-teacher.onnx").toString();
        String pt = MODELS.resolve("cnn-teacher.pt").toString();
        String rest = "student: {hidden: [7, 5]}\ntraining: {epochs: 3, seeds: [3, -1], schedules: {temperature: {from: 4, to: 2}}}\n"
                + "loss:\n  - {name: kd, temperature: 3, alpha: 0.25}\n";
        List<String> teachers = List.of(
                "teacher: {hidden: [9, 11], dropout: 0.1, epochs: 2}\n",
                "teacher: {model: teacher.zip}\n",
                "teacher: {model: " + onnx + "}\n",
                "teacher: {model: " + onnx + ", engine: onnxruntime, inputShape: [1, 28, 28], logits: logits}\n",
                "teacher: {model: " + onnx + ", engine: auto}\n",
                "teacher: {model: " + pt + ", outputNames: [logits, embedding], logits: logits}\n",
                "teacher:\n  ensemble:\n    - {hidden: [9], epochs: 1}\n    - {model: teacher.zip, weight: 2.5}\n"
                        + "    - {model: " + pt + ", engine: pt, outputNames: [logits, embedding]}\n  combine: logits\n",
                "teacher: {hidden: [9], store: {path: ../stores/dense.d4j, topk: 0, dtype: bf16}}\n");
        int i = 0;
        for (String teacher : teachers) {
            for (String data : List.of("", "data: {path: embedded, teacherSamples: 300, transferSamples: 200, testSamples: 100}\n",
                    "data: {path: ../../idx, shuffle: false}\n")) {
                Recipe r = RecipeLoader.parse("name: form-" + i + "\ndescription: form " + i + "\n" + data + teacher + rest,
                        recipeDir.resolve("r" + i + ".yaml"), List.of());
                assertRerunsAsWritten(r, tmp.resolve("out" + i++));
            }
        }
        // a teacher made only of stored outputs (its layout is read from the store), with named rows
        Recipe stored = RecipeLoader.parse("name: stored\ndata: {shuffle: false, transferSamples: 3}\nteacher: {store: {path: top2.d4j}}\n"
                + "student: {hidden: [4]}\nloss:\n  a: [{name: topk-kd, temperature: 2}]\n  b: [{name: ce, weight: 0.1}, {name: topk-kd}]\n",
                recipeDir.resolve("stored.yaml"), List.of());
        assertRerunsAsWritten(stored, tmp.resolve("stored"));
        // feature terms between hidden layers, in named rows
        Recipe features = RecipeLoader.parse("name: feat\nteacher: {hidden: [9, 8]}\nstudent: {hidden: [4, 3]}\nloss:\n"
                + "  sp: [{name: kd}, {name: sp, student: 1, teacher: 1, gamma: 10}]\n"
                + "  hint: [{name: kd}, {name: hint, weight: 0.5, student: 0, teacher: 1, learningRate: 0.01}]\n",
                recipeDir.resolve("feat.yaml"), List.of());
        assertRerunsAsWritten(features, tmp.resolve("feat"));
    }
}
