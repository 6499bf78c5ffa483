package org.distill4j.examples.recipe;

import org.distill4j.examples.Demo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.distill4j.examples.recipe.RecipeTest.base;
import static org.distill4j.examples.recipe.RecipeTest.fails;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code loss} as a mapping of row names to term lists: one recipe compares several objectives, each a distilled row of its
 * own ("distilled: &lt;name&gt;") from the same teacher, transfer set and student start as the other rows.
 */
class NamedRowsRecipeTest {

    private static Recipe parse(String yaml, String... sets) {
        return RecipeLoader.parse(yaml, Path.of("r.yaml"), List.of(sets));
    }

    /**
     * --set overrides any field, list entries too, by index: a term inside a named row, a term of a loss list, a layer size, an
     * ensemble member's key. An index that is not there, or an index on what is not a list, is refused naming the assignment.
     */
    @Test
    void setReachesIntoListsByIndex() throws Exception {
        String rows = base("  T1: [{name: kd, temperature: 1, alpha: 0.1}]\n  T4:\n    - {name: ce, weight: 0.1}\n    - {name: tvd, temperature: 4}\n");
        Recipe r = parse(rows, "loss.T1[0].temperature=2", "loss.T4[1].temperature=3", "loss.T4[0]={name: ce, weight: 0.5}");
        assertEquals(Map.of("temperature", 2.0, "alpha", 0.1), r.objectives().get(0).terms().get(0).settings());
        assertEquals(Map.of("temperature", 3.0), r.objectives().get(1).terms().get(1).settings());
        assertEquals(0.5, r.objectives().get(1).terms().get(0).weight());
        assertEquals(List.of("T1", "T4"), r.objectives().stream().map(Recipe.Objective::row).toList(), "no row added");

        Recipe kd = RecipeLoader.load(RecipeTest.KD, List.of("loss[0].alpha=0.3", "student.hidden[1]=800"));
        assertEquals(0.3, kd.loss().get(0).settings().get("alpha"));
        assertEquals(4.0, kd.loss().get(0).settings().get("temperature"));
        assertEquals("[400, 800]", java.util.Arrays.toString(kd.student().hidden()));
        Recipe multi = RecipeLoader.load(ForeignTeacherRecipeTest.MULTI_RECIPE, List.of("teacher.ensemble[1].weight=3",
                "teacher.ensemble[0].hidden[0]=64"));
        assertEquals(3.0, multi.teacher().members().get(1).weight());
        assertEquals("[64, 1200]", java.util.Arrays.toString(multi.teacher().members().get(0).hidden()));

        RecipeException e = assertThrows(RecipeException.class, () -> parse(rows, "loss.T1[3].temperature=2"));
        assertEquals("r.yaml: --set loss.T1[3].temperature=2: 'loss.T1' has 1 entry; expected an index from 0 to 0, got [3]", e.getMessage());
        e = assertThrows(RecipeException.class, () -> parse(rows, "loss.T9[0].temperature=2"));
        assertEquals("r.yaml: --set loss.T9[0].temperature=2: 'loss.T9' is not in the recipe, so it has no entry [0]; set the whole"
                + " list instead, e.g. --set 'loss.T9=[...]'", e.getMessage());
        e = assertThrows(RecipeException.class, () -> parse(rows, "student[0]=3"));
        assertEquals("r.yaml: --set student[0]=3: 'student' is not a list, so it has no entry [0]", e.getMessage());
        e = assertThrows(RecipeException.class, () -> parse(rows, "loss.T1[0].temperature.x=3"));
        assertEquals("r.yaml: --set loss.T1[0].temperature.x=3: 'loss.T1[0].temperature' is a value, not a section, so it has no key"
                + " 'x'", e.getMessage());
        e = assertThrows(RecipeException.class, () -> parse(rows, "loss.T1[0].temperature=-1"));
        assertEquals("r.yaml: --set loss.T1[0].temperature=-1 (at character 1 of the value): loss.T1[0]: kd temperature must be a"
                + " finite number > 0, got -1.0", e.getMessage(), "the value set is checked as the file's would be, and placed in the"
                + " assignment (the file's line 10 holds temperature: 1)");
    }

    @Test
    void eachNamedListIsARowOfItsOwnInTheFilesOrder() {
        Recipe r = parse(base("  kd: [{name: kd, temperature: 4, alpha: 0.1}]\n  mix:\n    - {name: ce}\n"
                + "    - {name: dkd, beta: 8, weight: 0.5}\n  rkd-too:\n    - {name: kd}\n    - {name: rkd, student: 0, teacher: 0}\n"));
        assertTrue(r.namedRows());
        assertEquals(List.of("kd", "mix", "rkd-too"), r.objectives().stream().map(Recipe.Objective::row).toList());
        Recipe.Objective mix = r.objectives().get(1);
        assertEquals(List.of("ce", "dkd"), mix.terms().stream().map(Recipe.LossTerm::name).toList());
        assertEquals(0.5, mix.terms().get(1).weight());
        assertEquals(Map.of("beta", 8.0), mix.terms().get(1).settings());
        assertEquals(List.of("rkd"), RecipeRunner.features(r.objectives().get(2).terms()).stream().map(Demo.FeatureTerm::name).toList());
        assertTrue(RecipeRunner.features(r.objectives().get(0).terms()).isEmpty(), "feature terms belong to their own row");
        IllegalStateException one = assertThrows(IllegalStateException.class, r::loss);
        assertEquals("t has 3 distilled rows; see objectives()", one.getMessage());
        @SuppressWarnings("unchecked")
        Map<String, List<Map<String, Object>>> resolved = (Map<String, List<Map<String, Object>>>) r.resolved().get("loss");
        assertEquals(List.of("kd", "mix", "rkd-too"), List.copyOf(resolved.keySet()), "provenance keeps the rows and their order");
        assertEquals(Map.of("name", "dkd", "weight", 0.5, "beta", 8.0), resolved.get("mix").get(1));

        assertEquals(List.of("loss.kd=[{name: kd}]"), parse(base("  kd: [{name: ce}]\n"), "loss.kd=[{name: kd}]").origin().overrides());
        assertEquals("r.yaml:1:14: description: expected a text value, got a list",
                fails("description: [a]\n" + base("  - {name: kd}\n")).getMessage());
        Recipe list = parse(base("  - {name: kd}\n"));
        assertFalse(list.namedRows(), "a list is the one row 'student distilled', as before");
        assertEquals(1, list.objectives().size());
        assertEquals(null, list.objectives().get(0).row());
    }

    @Test
    void aRowIsReplacedOrAddedWithSet() {
        Recipe r = parse(base("  kd: [{name: kd, temperature: 4}]\n  ce: [{name: ce}]\n"), "loss.kd=[{name: kd, temperature: 2}]",
                "loss.rkl=[{name: reverse-kl}]");
        assertEquals(List.of("kd", "ce", "rkl"), r.objectives().stream().map(Recipe.Objective::row).toList());
        assertEquals(Map.of("temperature", 2.0), r.objectives().get(0).terms().get(0).settings());
        String set = "loss.ce=[{name: ce, alpha: 1}]";
        RecipeException e = assertThrows(RecipeException.class, () -> parse(base("  ce: [{name: ce}]\n"), set));
        assertTrue(e.getMessage().startsWith("r.yaml: --set " + set + " (at character 20 of the value): loss.ce[0].alpha: loss 'ce' has no"
                + " setting 'alpha'"), e.getMessage());
    }

    @Test
    void badRowsAreRefusedWhereTheyAreWritten() {
        assertEquals("r.yaml:10:3: loss: expected at least one row, e.g. kd: [{name: kd, temperature: 4, alpha: 0.1}]",
                fails(base("  {}\n")).getMessage());
        assertEquals("r.yaml:10:7: loss.kd: expected a list of loss terms, e.g. [{name: kd, temperature: 4, alpha: 0.1}]",
                fails(base("  kd: {name: kd}\n")).getMessage());
        String unknown = fails(base("  kd: [{name: kd}]\n  dkd: [{name: ce}, {name: dkdd}]\n")).getMessage();
        assertTrue(unknown.startsWith("r.yaml:11:28: loss.dkd[1].name: unknown loss 'dkdd'"), unknown);
        assertEquals("r.yaml:11:3: loss.kd-t2: rows 'kd T2' and 'kd-t2' would write the same files (distilled-kd-t2.zip,"
                + " checkpoints/distilled-kd-t2): file names keep only a-z, 0-9 and '-', so names must differ in more than case, spaces,"
                + " punctuation and other letters",
                fails(base("  kd T2: [{name: kd}]\n  kd-t2: [{name: kd}]\n")).getMessage());
        assertEquals("r.yaml:10:3: loss.--: a row name needs an ASCII letter or digit: its files are named after it with a-z, 0-9"
                + " and '-' only, e.g. kd-T4",
                fails(base("  \"--\": [{name: kd}]\n")).getMessage());
        String seeded = fails(base("  kd: [{name: kd}]\n  KD: [{name: ce}]\n").replace("  epochs: 2\n", "  epochs: 2\n  seeds: [3, 4]\n"))
                .getMessage();
        assertEquals("r.yaml:12:3: loss.KD: rows 'kd' and 'KD' would write the same files (distilled-kd-seed-3.zip,"
                + " checkpoints/distilled-kd-seed-3): file names keep only a-z, 0-9 and '-', so names must differ in more than case,"
                + " spaces, punctuation and other letters", seeded);
        // a name that only spaces set apart from another is the same row twice (the second would overwrite the first's files)
        assertEquals("r.yaml:11:3: loss.kd: row 'kd' is given twice (spaces around a name are dropped)",
                fails(base("  kd: [{name: kd}]\n  \"kd \": [{name: ce}]\n")).getMessage());
        assertEquals("r.yaml:10:3: loss: a row name is empty (spaces around a name are dropped); expected a name such as kd-T4",
                fails(base("  \" \": [{name: kd}]\n")).getMessage());
        assertEquals("r.yaml:10:3: loss.kd.T2: a row name cannot contain '.', which --set uses between keys (loss.<row>=...); e.g."
                + " kd-T0_5 for T = 0.5", fails(base("  kd.T2: [{name: kd}]\n")).getMessage());
        String unicode = fails(base("  \u84b8\u7559: [{name: kd}]\n")).getMessage();
        assertTrue(unicode.contains("a row name needs an ASCII letter or digit"), unicode);
        String longName = "k".repeat(141);
        String tooLong = fails(base("  " + longName + ": [{name: kd}]\n")).getMessage();
        assertTrue(tooLong.startsWith("r.yaml:10:3: loss." + longName + ": a row name this long makes file names of 151 characters"),
                tooLong);
        assertEquals(List.of("k".repeat(140)), parse(base("  " + "k".repeat(140) + ": [{name: kd}]\n")).objectives().stream()
                .map(Recipe.Objective::row).toList(), "at the limit");
        StringBuilder many = new StringBuilder();
        for (int i = 0; i <= RecipeLoader.MAX_ROWS; i++) {
            many.append("  r").append(i).append(": [{name: ce}]\n");
        }
        assertEquals("r.yaml:10:3: loss: 21 distilled rows; at most 20 (each one trains a student per seed)",
                fails(base(many.toString())).getMessage());
        String weights = fails(base("  kd: [{name: kd}]\n  off: [{name: kd, weight: 0}]\n")).getMessage();
        assertEquals("r.yaml:11:8: loss.off: every term has weight 0, so the distilled student would learn nothing; give at least one"
                + " term a weight > 0", weights);
        String schedule = fails(base("  kd: [{name: kd}]\n  mse: [{name: mse}]\n").replace("  epochs: 2\n",
                "  epochs: 2\n  schedules: {temperature: {from: 4, to: 1}}\n")).getMessage();
        assertTrue(schedule.contains("training.schedules.temperature: loss 'mse' (row 'mse') has no temperature; a schedule applies to"
                + " every distilled row"), schedule);
    }

    /** A loaded teacher's layers are checked per named row before anything trains; the error names the row. */
    @Test
    void aLoadedTeachersLayersAreCheckedPerRow(@TempDir Path tmp) throws Exception {
        org.deeplearning4j.nn.multilayer.MultiLayerNetwork teacher = org.distill4j.examples.DemoModels.mlp(784, new int[]{16}, 10, 0,
                1e-3, 3);
        org.deeplearning4j.util.ModelSerializer.writeModel(teacher, tmp.resolve("t.zip").toFile(), true);
        Path recipe = Files.writeString(tmp.resolve("rows.yaml"), "name: loaded-rows\n"
                + "data: {path: embedded, teacherSamples: 100, transferSamples: 130, testSamples: 100}\n"
                + "teacher: {model: t.zip}\n"
                + "student: {hidden: [12]}\n"
                + "training: {epochs: 1, batchSize: 64}\n"
                + "loss:\n"
                + "  a: [{name: kd}, {name: rkd, student: 0, teacher: 0}]\n"
                + "  b: [{name: kd}, {name: rkd, student: 0, teacher: 9}]\n");
        Path out = tmp.resolve("out");
        assertEquals("distill run: loss.b: feature loss 'rkd': teacher layer 9, but the teacher t.zip has 1 hidden layer (index 0)\n",
                RecipeTest.runFails(2, "run", recipe.toString(), "--out", out.toString(), "--quiet"));
        assertFalse(Files.exists(out.resolve("student-alone.zip")), "no student trained");
    }

    private static final String RECIPE = "name: rows\ndescription: three objectives side by side\n"
            + "data: {path: embedded, teacherSamples: 400, transferSamples: 300, testSamples: 250}\n"
            + "teacher: {hidden: [24, 16], epochs: 1}\n"
            + "student: {hidden: [12, 10]}\n"
            + "training: {epochs: 2, batchSize: 64}\n"
            + "loss:\n";

    private static Demo.Outcome run(Path dir, String loss, boolean resume) throws Exception {
        Path file = Files.writeString(dir.resolve(dir.getFileName() + ".yaml"), RECIPE + loss);
        return RecipeRunner.run(RecipeLoader.load(file, List.of()), dir.resolve("out"), false, resume,
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    }

    private static Demo.Row row(Demo.Outcome o, String name) {
        return o.rows().stream().filter(r -> r.name().equals(name)).findFirst().orElseThrow(() -> new AssertionError(
                name + " not in " + o.rows().stream().map(Demo.Row::name).toList()));
    }

    /**
     * Three named rows train side by side from the same start: the kd row is, to the bit, the one distilled row of the same
     * recipe written as a list; the feature term trains only in its own row; each row saves its own model and gain; a resumed
     * run restores every row as it was.
     */
    @Test
    void namedRowsTrainFromTheSameStartAsOneRowWould(@TempDir Path tmp) throws Exception {
        Path one = Files.createDirectories(tmp.resolve("one"));
        Demo.Outcome single = run(one, "  - {name: kd, temperature: 4, alpha: 0.1}\n", false);
        Path many = Files.createDirectories(tmp.resolve("many"));
        String rows = "  kd: [{name: kd, temperature: 4, alpha: 0.1}]\n"
                + "  kd+rkd:\n    - {name: kd, temperature: 4, alpha: 0.1}\n    - {name: rkd, weight: 0.5, student: 1, teacher: 0}\n"
                + "  rkl: [{name: reverse-kl, temperature: 2}]\n"
                + "  kd+sp0:\n    - {name: kd, temperature: 4, alpha: 0.1}\n    - {name: sp, weight: 0, student: 0, teacher: 0}\n";
        Demo.Outcome named = run(many, rows, false);

        assertEquals(List.of("teacher", "student alone", "distilled: kd", "distilled: kd+rkd", "distilled: rkl", "distilled: kd+sp0"),
                named.rows().stream().map(Demo.Row::name).toList());
        // a feature term of weight 0, on the first of two hidden layers, leaves the row what kd alone is: the logit loss
        // still trains every layer (it froze the layers up to the feature's, and evaluation crashed at an early layer)
        assertEquals(row(named, "distilled: kd").testAccuracy(), row(named, "distilled: kd+sp0").testAccuracy(), 1e-9);
        for (int e = 0; e < 2; e++) {
            assertEquals(named.results().get("distilled: kd").epochs().get(e).loss(),
                    named.results().get("distilled: kd+sp0").epochs().get(e).loss(), 1e-6, "epoch " + (e + 1));
        }
        Demo.Row kd = row(named, "distilled: kd");
        Demo.Row alone = row(single, "student distilled");
        assertEquals(alone.testAccuracy(), kd.testAccuracy(), 0.0, "the kd row is the list recipe's distilled row");
        assertEquals(alone.teacherAgreement(), kd.teacherAgreement(), 0.0);
        assertEquals(row(single, "student alone").testAccuracy(), row(named, "student alone").testAccuracy(), 0.0);
        assertEquals(single.results().get("student distilled").epochs().get(1).loss(),
                named.results().get("distilled: kd").epochs().get(1).loss(), 0.0);
        assertEquals("kd(temperature=4.0, alpha=0.1) + 0.5*rkd(student 1, teacher 0)", row(named, "distilled: kd+rkd").loss());
        assertEquals("kd(temperature=4.0, alpha=0.1)", kd.loss(), "a row's feature terms are its own");
        assertTrue(named.results().get("distilled: kd+rkd").epochs().get(0).terms().containsKey("rkd"));
        assertFalse(named.results().get("distilled: kd").epochs().get(0).terms().containsKey("rkd"));
        assertTrue(row(named, "distilled: rkl").loss().startsWith("reverse-kl"), row(named, "distilled: rkl").loss());

        Path out = many.resolve("out");
        for (String file : List.of("distilled-kd.zip", "distilled-kd-rkd.zip", "distilled-rkl.zip", "distilled-kd-sp0.zip",
                "student-alone.zip")) {
            assertTrue(Files.exists(out.resolve(file)), file);
        }
        String results = Files.readString(out.resolve("results.json"));
        for (String key : List.of("\"kd\": ", "\"kd+rkd\": ", "\"rkl\": ")) {
            assertTrue(results.substring(results.indexOf("\"distillationGain\"")).contains(key), key + " in " + results);
        }
        String provenance = Files.readString(out.resolve("provenance.json"));
        assertTrue(provenance.contains("\"kd+rkd\": ["), provenance);
        // the exact file and command: the recipe's path, the SHA-256 of its bytes, the overrides (none), its description
        Path file = many.resolve("many.yaml");
        String sha = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        assertTrue(provenance.replaceAll("\\s+", "").contains("\"recipeFile\":{\"file\":\"" + file + "\",\"sha256\":\"" + sha
                + "\",\"overrides\":[]}"), provenance);
        assertTrue(provenance.contains("\"description\": \"three objectives side by side\""), provenance);
        String header = Files.readAllLines(out.resolve("metrics.csv")).get(0);
        assertTrue(header.contains(",loss_rkd"), header);

        Demo.Outcome resumed = run(many, rows, true);
        for (Demo.Row r : named.rows()) {
            assertEquals(r.testAccuracy(), row(resumed, r.name()).testAccuracy(), 0.0, r.name());
        }

        Path solo = Files.createDirectories(tmp.resolve("solo"));
        Demo.Outcome oneNamed = run(solo, "  kd-T4: [{name: kd, temperature: 4, alpha: 0.1}]\n", false);
        assertEquals(kd.testAccuracy(), row(oneNamed, "distilled: kd-T4").testAccuracy(), 0.0, "a single named row keeps its name");
    }
}
