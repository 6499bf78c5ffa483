package org.distill4j.examples.recipe;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each limit of a recipe's values at its edge: the last value taken and the first refused, with the field named; and the
 * errors' wording where it depends on where the field is (a named row, a --set value, a section).
 */
class RecipeLimitsTest {
    private static final String BASE = RecipeTest.base("  - name: kd\n");

    private static Recipe ok(String yaml, String... set) {
        return RecipeLoader.parse(yaml, Path.of("r.yaml"), List.of(set));
    }

    private static String refused(String yaml, String... set) {
        return assertThrows(RecipeException.class, () -> RecipeLoader.parse(yaml, Path.of("r.yaml"), List.of(set)),
                String.join(" ", set)).getMessage();
    }

    private static void contains(String message, String part) {
        assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
    }

    @Test
    void wholeNumbersAtTheirLimits() {
        assertEquals(1, ok(BASE, "training.batchSize=1").training().batchSize());
        assertEquals(Integer.MAX_VALUE, ok(BASE, "training.batchSize=2147483647").training().batchSize());
        contains(refused(BASE, "training.batchSize=0"), "training.batchSize: expected a positive whole number, got 0");
        contains(refused(BASE, "training.batchSize=2147483648"), "training.batchSize: expected a positive whole number, got 2147483648");
        assertEquals(1, ok(BASE, "student.hidden=[1]").student().hidden()[0]);
        contains(refused(BASE, "student.hidden=[3, 0]"), "student.hidden[1]: expected a positive layer size, got '0'");
        contains(refused(BASE, "student.hidden=4"), "student.hidden: expected a list of layer sizes, e.g. [400, 400]");
        contains(refused(BASE, "student.hidden=[]"), "student.hidden: expected a list of layer sizes, e.g. [400, 400]");

        Recipe c = ok(BASE, "training.checkpoint={everySteps: 2147483647, minSeconds: 1e9}");
        assertEquals(Integer.MAX_VALUE, c.training().checkpointEverySteps());
        assertEquals(java.time.Duration.ofSeconds(1_000_000_000L), c.training().checkpointMinInterval());
        assertEquals(java.time.Duration.ZERO, ok(BASE, "training.checkpoint={minSeconds: 0}").training().checkpointMinInterval());
        contains(refused(BASE, "training.checkpoint={everySteps: 2147483648}"), "got 2147483648");
        contains(refused(BASE, "training.checkpoint={minSeconds: 1.000001e9}"), "training.checkpoint.minSeconds: expected a number"
                + " of seconds from 0 to 1e9, got 1.000001E9");

        List<String> twenty = new ArrayList<>();
        for (int i = 1; i <= 20; i++) {
            twenty.add(String.valueOf(i));
        }
        assertEquals(20, ok(BASE, "training.seeds=[" + String.join(",", twenty) + "]").training().seeds().size());
        contains(refused(BASE, "training.seeds=[" + String.join(",", twenty) + ",21]"),
                "training.seeds: expected a list of 1 to 20 distinct whole numbers, e.g. [1, 2, 3], got 21 entries");
        contains(refused(BASE, "training.seeds=[]"), "got 0 entries");
    }

    @Test
    void numbersAtTheirLimits() {
        assertEquals(1e-3, ok(BASE).training().learningRate(), 0.0, "the default learning rate");
        assertEquals(1e-300, ok(BASE, "training.learningRate=1e-300").training().learningRate(), 0.0);
        contains(refused(BASE, "training.learningRate=0"), "training.learningRate: expected a number > 0, got 0.0");
        contains(refused(BASE, "training.learningRate=Infinity"), "training.learningRate: expected a number > 0, got Infinity");
        contains(refused(BASE, "training.learningRate=NaN"), "training.learningRate: expected a number > 0, got NaN");

        assertEquals(0.0, ok(BASE, "teacher.dropout=0").teacher().members().get(0).dropout(), 0.0);
        assertEquals(0.25, ok(BASE, "teacher.dropout=0.25").teacher().members().get(0).dropout(), 0.0);
        assertEquals(0.999, ok(BASE, "teacher.dropout=0.999").teacher().members().get(0).dropout(), 0.0);
        assertEquals(0.25, ((Map<?, ?>) ok(BASE, "teacher.dropout=0.25").resolved().get("teacher")).get("dropout"));
        contains(refused(BASE, "teacher.dropout=1"), "teacher.dropout: expected a number in [0, 1), got 1.0");
        contains(refused(BASE, "teacher.dropout=-0.01"), "teacher.dropout: expected a number in [0, 1), got -0.01");

        contains(refused(RecipeTest.base("  - {name: kd, weight: -1}\n")), "loss[0].weight: expected a finite weight >= 0"
                + " (0 turns the term off), got -1.0");
        assertEquals(0.0, ok(RecipeTest.base("  - {name: kd, weight: 0}\n  - {name: ce}\n")).loss().get(0).weight(), 0.0);

        String ensemble = "name: t\nteacher:\n  ensemble:\n    - {hidden: [8], epochs: 1, weight: WEIGHT}\n    - {hidden: [6], epochs: 1}\n"
                + "student:\n  hidden: [4]\nloss:\n  - name: kd\n";
        assertEquals(1e-300, ok(ensemble.replace("WEIGHT", "1e-300")).teacher().members().get(0).weight(), 0.0);
        contains(refused(ensemble.replace("WEIGHT", "0")), "teacher.ensemble[0].weight: expected a weight > 0, got 0.0");

        assertFalse(ok(BASE, "data.shuffle=false").data().shuffle());
        assertEquals(false, ((Map<?, ?>) ok(BASE, "data.shuffle=false").resolved().get("data")).get("shuffle"));
        assertTrue(ok(BASE, "data.shuffle=true").data().shuffle());
    }

    @Test
    void featureTermsAtTheirLimits(@TempDir Path tmp) throws Exception {
        String features = "name: t\nteacher:\n  hidden: [8, 6]\n  epochs: 1\nstudent:\n  hidden: [4, 3]\nloss:\n  - name: kd\n"
                + "  - {name: rkd, student: S, teacher: T, weight: W}\n";
        Recipe r = ok(features.replace("S", "1").replace("T", "1").replace("W", "0"));
        assertEquals(1, r.loss().get(1).studentLayer());
        assertEquals(1, r.loss().get(1).teacherLayer());
        assertEquals(0.0, r.loss().get(1).weight(), 0.0);
        contains(refused(features.replace("S", "2").replace("T", "0").replace("W", "1")),
                "loss[1].student: expected the index of a hidden layer, 0 to 1 (student.hidden has 2), got 2");
        contains(refused(features.replace("S", "-1").replace("T", "0").replace("W", "1")), "loss[1].student: expected the index of"
                + " a hidden layer, 0 to 1 (student.hidden has 2), got -1");
        contains(refused(features.replace("S", "0").replace("T", "2").replace("W", "1")),
                "loss[1].teacher: expected the index of a hidden layer, 0 to 1 (teacher.hidden has 2), got 2");
        contains(refused(features.replace("S", "0").replace("T", "0").replace("W", "-0.5")),
                "loss[1].weight: expected a finite weight >= 0 (0 turns the term off), got -0.5");
        contains(refused(features.replace("S", "0").replace("T", "0").replace("W", "Infinity")), "got Infinity");

        // a loaded teacher's layers are checked when it loads: any index from 0 to Integer.MAX_VALUE is taken here
        Path model = Files.writeString(tmp.resolve("t.zip"), "not read here");
        String loaded = "name: t\nteacher:\n  model: " + model + "\nstudent:\n  hidden: [4]\nloss:\n  - name: kd\n"
                + "  - {name: rkd, student: 0, teacher: T}\n";
        assertEquals(Integer.MAX_VALUE, ok(loaded.replace("T", "2147483647")).loss().get(1).teacherLayer());
        assertEquals(0, ok(loaded.replace("T", "0")).loss().get(1).teacherLayer());
        for (String bad : new String[] {"-1", "2147483648"}) {
            contains(refused(loaded.replace("T", bad)), "loss[1].teacher: expected the index of a hidden layer of the teacher model, a"
                    + " whole number >= 0 (its layers are checked when it is loaded), got " + bad);
        }
    }

    @Test
    void aStoresTopKAtItsLimitsAndTheLossesItFeeds() {
        String stored = "name: t\nteacher:\n  hidden: [8]\n  epochs: 1\n  store: {path: s.d4j, topk: K}\nstudent:\n  hidden: [4]\n"
                + "loss:\n  - name: LOSS\n";
        assertEquals(10, ok(stored.replace("K", "10").replace("LOSS", "topk-kd")).teacher().store().topK());
        assertEquals("f16", ok(stored.replace("K", "10").replace("LOSS", "topk-kd")).teacher().store().dtype(), "the default dtype");
        assertEquals(0, ok(stored.replace("K", "0").replace("LOSS", "kd")).teacher().store().topK());
        contains(refused(stored.replace("K", "11").replace("LOSS", "topk-kd")), "teacher.store.topk: expected 0 (dense rows) or a k"
                + " from 1 to 10 (the classes of fashion-mnist), got 11");
        contains(refused(stored.replace("K", "-1").replace("LOSS", "kd")), "got -1");
        contains(refused(stored.replace("K", "3").replace("LOSS", "kd")), "teacher.store.topk: a top-3 store feeds topk-kd (and ce);"
                + " loss[0] is 'kd'");
        assertEquals("ce", ok(stored.replace("K", "3").replace("LOSS", "ce")).loss().get(0).name(), "ce reads labels only");
        contains(refused(stored.replace("K", "0").replace("LOSS", "topk-kd")), "teacher.store: loss[0] is topk-kd, which needs a top-k"
                + " store: set teacher.store.topk");
        // without a store, any loss
        assertEquals("topk-kd", ok(RecipeTest.base("  - name: topk-kd\n")).loss().get(0).name());
    }

    @Test
    void namedRowsAtTheirLimit() {
        StringBuilder rows = new StringBuilder();
        for (int i = 1; i <= 20; i++) {
            rows.append("  r").append(i).append(": [{name: kd}]\n");
        }
        assertEquals(20, ok(RecipeTest.base(rows.toString())).objectives().size());
        contains(refused(RecipeTest.base(rows + "  r21: [{name: kd}]\n")), "loss: 21 distilled rows; at most 20");
        contains(refused(RecipeTest.base("  kd: {name: kd}\n")), "loss.kd: expected a list of loss terms, e.g. [{name: kd,"
                + " temperature: 4, alpha: 0.1}]");
        assertFalse(refused(RecipeTest.base("  kd: {name: kd}\n")).contains("or a mapping of row names"));
        contains(refused(RecipeTest.base("  []\n")), "loss: expected a list of loss terms, e.g. - {name: kd, temperature: 4, alpha:"
                + " 0.1}, or a mapping of row names");
    }

    /** A schedule that does not fit a row names the row; one that leaves the loss's range names the epoch, counted from 1. */
    @Test
    void scheduleErrorsNameTheRowAndTheEpoch() {
        String rows = RecipeTest.base("  plain: [{name: ce}]\n  kd: [{name: kd}]\n");
        String m = refused(rows, "training.schedules.temperature=3");
        contains(m, "training.schedules.temperature: loss 'ce' (row 'plain') has no temperature; a schedule applies to every"
                + " distilled row");
        m = refused(RecipeTest.base("  two: [{name: kd}, {name: ce}]\n"), "training.schedules.alpha=0.5");
        contains(m, "training.schedules.alpha: alpha schedules apply to a single kd loss term (row 'two'); for several terms set"
                + " their weights; a schedule applies to every distilled row");
        m = refused(RecipeTest.base("  - name: ce\n"), "training.schedules.temperature=3");
        assertTrue(m.endsWith("training.schedules.temperature: loss 'ce' has no temperature"), m);
        m = refused(RecipeTest.base("  - {name: kd}\n  - {name: ce}\n"), "training.schedules.alpha=0.5");
        assertTrue(m.endsWith("alpha schedules apply to a single kd loss term; for several terms set their weights"), m);

        // epochs: 2 in base; 3 here: the last epoch's temperature 0 is out of range
        m = refused(RecipeTest.base("  - name: kd\n"), "training.epochs=3", "training.schedules.temperature={from: 4, to: 0}");
        contains(m, "training.schedules.temperature: at epoch 3: ");
        m = refused(RecipeTest.base("  kd: [{name: kd}]\n"), "training.schedules.alpha={from: 0.5, to: 2}");
        contains(m, "training.schedules.alpha: at epoch 2 (row 'kd'): ");
        Recipe r = ok(RecipeTest.base("  - name: kd\n"), "training.schedules.temperature={from: 4, to: 1}");
        assertEquals(Map.of("from", 4.0, "to", 1.0),
                ((Map<?, ?>) ((Map<?, ?>) r.resolved().get("training")).get("schedules")).get("temperature"));
        assertFalse(((Map<?, ?>) ok(BASE).resolved().get("training")).containsKey("schedules"), "none given: none recorded");
    }

    /**
     * Every --set mistake names the assignment as written (its key and value) and what was expected. An unknown key or
     * section, and a row that is not in the recipe, said "r.yaml (--set): ..." without the assignment (the keys --set adds
     * carried no record of it); a key with an empty part ("training.=3") replaced the whole section, or was called unknown
     * key ''; a key under a list or a value said only "is not a section"; a loss setting's own check (a number, a range)
     * named the file's line of the term although the value came from --set.
     */
    @Test
    void everySetMistakeNamesTheAssignmentAndWhatWasExpected() {
        String keys = "; valid keys in training: backend, batchSize, checkpoint, epochs, flip, learningRate, mixup, optimizer, schedules, seed, seeds, shift";
        assertEquals("r.yaml: --set training.epoch=5: training.epoch: unknown key 'epoch' (did you mean 'epochs'?)" + keys,
                refused(BASE, "training.epoch=5"));
        assertEquals("r.yaml: --set trainin.epochs=5: trainin: unknown key 'trainin' (did you mean 'training'?); valid keys: data,"
                + " description, loss, name, student, teacher, training", refused(BASE, "trainin.epochs=5"));
        assertEquals("r.yaml: --set x=1: x: unknown key 'x'; valid keys: data, description, loss, name, student, teacher, training",
                refused(BASE, "x=1"));
        contains(refused(BASE, "student.hidden[x]=3"), "r.yaml: --set student.hidden[x]=3: student.hidden[x]: unknown key 'hidden[x]'");
        String rows = RecipeTest.base("  T1: [{name: kd, temperature: 1}]\n");
        assertEquals("r.yaml: --set loss.T2.temperature=2: loss.T2: expected a list of loss terms, e.g. [{name: kd, temperature: 4,"
                + " alpha: 0.1}]", refused(rows, "loss.T2.temperature=2"));

        for (String empty : new String[] {"training.=3", ".epochs=3", "training..epochs=3", "=3", " =3"}) {
            String key = empty.substring(0, empty.indexOf('=')).trim();
            contains(refused(BASE, empty), "r.yaml: --set " + empty + ": " + (key.isEmpty() ? "expected key.path=value"
                    : "the key '" + key + "' has an empty part; expected keys joined by single dots, e.g. training.epochs=5"));
        }
        assertEquals("r.yaml: --set loss.T1.temperature=2: 'loss' is a list, not a section, so it has no key 'T1'; reach an entry by"
                + " its index, e.g. loss[0]", refused(BASE, "loss.T1.temperature=2"));
        assertEquals("r.yaml: --set name.x=3: 'name' is a value, not a section, so it has no key 'x'", refused(BASE, "name.x=3"));

        assertEquals("r.yaml: --set loss[0].temperature=hot (at character 1 of the value): loss[0]: loss 'kd' setting 'temperature'"
                + " must be a number, got 'hot'", refused(BASE, "loss[0].temperature=hot"));
        contains(refused(rows, "loss.T1[0].temperature=-1"), "r.yaml: --set loss.T1[0].temperature=-1 (at character 1 of the value):"
                + " loss.T1[0]: ");
        String sp = "  - name: kd\n  - {name: sp, student: 0, teacher: 0}\n";
        contains(refused(RecipeTest.base(sp), "loss[1].gamma=-1"), "r.yaml: --set loss[1].gamma=-1 (at character 1 of the value):"
                + " loss[1]: ");
        // in the file the same mistakes are placed at the setting, not at the term
        contains(refused(RecipeTest.base("  - {name: kd, temperature: 4f}\n")), "r.yaml:10:29: loss[0]: loss 'kd' setting 'temperature'"
                + " must be a number, got '4f'");
        contains(refused(RecipeTest.base("  - name: kd\n  - {name: sp, student: 0, teacher: 0, gamma: -1}\n")), "r.yaml:11:47: loss[1]: ");
        // a term with a weight: the message "sp weight gamma must be ..." names gamma, not the term's weight
        contains(refused(RecipeTest.base("  - name: kd\n  - {name: sp, student: 0, teacher: 0, weight: 0.5, gamma: -1}\n")),
                "r.yaml:11:60: loss[1]: ");
        contains(refused(RecipeTest.base("  - name: kd\n  - {name: sp, student: 0, teacher: 0, weight: 0.5}\n"), "loss[1].gamma=-1"),
                "r.yaml: --set loss[1].gamma=-1 (at character 1 of the value): loss[1]: ");
    }

    /** Errors in --set name the assignment, and where the value itself is wrong the character in it. */
    @Test
    void setErrorsNameTheAssignment() {
        contains(refused(BASE, "=3"), "r.yaml: --set =3: expected key.path=value");
        contains(refused(BASE, "name=[a"), "r.yaml: --set name=[a: name: the value is not valid YAML: ");
        contains(refused(BASE, "name=[a"), " of '[a')");
        assertEquals("", ok(BASE, "description=").resolved().get("description"), "an empty value is empty text");
        assertEquals(7, ok(BASE, "training. batchSize =7").training().batchSize(), "blanks around a key's parts, as around '='");
        assertEquals(3, ok(BASE, " student .hidden[0]= 3").student().hidden()[0]);
        contains(refused(BASE, "training.epochs=x"), "r.yaml: --set training.epochs=x (at character 1 of the value): training.epochs:"
                + " expected a whole number, got 'x'");
        contains(refused(BASE, "student.hidden=[4, 0]"), "r.yaml: --set student.hidden=[4, 0] (at character 5 of the value):"
                + " student.hidden[1]: expected a positive layer size, got '0'");
        contains(refused(BASE, "student.hidden[1]=3"), "r.yaml: --set student.hidden[1]=3: 'student.hidden' has 1 entry; expected an"
                + " index from 0 to 0, got [1]");
        contains(refused(BASE, "student.hidden=[]", "student.hidden[0]=3"), "'student.hidden' has 0 entries, got [0]");
        contains(refused(BASE, "student.hidden=[4, 5]", "student.hidden[2]=3"), "'student.hidden' has 2 entries; expected an index"
                + " from 0 to 1, got [2]");
        assertEquals(7, ok(BASE, "student.hidden=[4, 5]", "student.hidden[1]=7").student().hidden()[1]);
    }

    /** Errors about a section's shape name the section, and top-level ones say so without a section. */
    @Test
    void structureErrorsNameTheirSection() {
        contains(refused(BASE + "data: [1]\n"), "data: expected a mapping of dataset, path, shuffle, teacherSamples, testSamples,"
                + " transferSamples");
        contains(refused(BASE + "data:\n  path: a\n  path: b\n"), "data.path: duplicate key 'path' (first at line ");
        contains(refused(BASE + "data:\n  path: a\n  path: b\n"), "; a key may appear once in data: remove one of them");
        String top = refused(BASE + "name: again\n");
        contains(top, "name: duplicate key 'name' (first at line 1, column 1); a key may appear once: remove one of them");
        contains(refused(BASE + "data: {pth: a}\n"), "data.pth: unknown key 'pth' (did you mean 'path'?); valid keys in data: dataset,");
        contains(refused(BASE + "studnt: {}\n"), "studnt: unknown key 'studnt' (did you mean 'student'?); valid keys: data,");
        contains(refused(BASE.replace("name: t\n", "")), "r.yaml:1:1: name: missing required field");
        contains(refused(BASE.replace("student:\n  hidden: [4]\n", "student: {}\n")), "student.hidden: missing required field");
        contains(refused(BASE.replace("name: t", "name: [t]")), "name: expected a text value, got a list");
        contains(refused(BASE.replace("name: t", "name: {t: 1}")), "name: expected a text value, got a mapping");
        contains(refused(BASE + "? [a]\n: 1\n"), "keys must be plain words");
        contains(refused(BASE + "data: {!!binary cGF0aA==: a}\n"), "is not allowed: recipes are plain data");
        contains(refused("- a\n"), "r.yaml: a recipe is a mapping of sections (name, data, teacher, student, training, loss)");
        contains(refused("a: [\n"), "r.yaml:2:1: not valid YAML: ");
    }

    /** The message of reading {@code bytes} as a recipe file, after the file name. */
    private static String readError(Path tmp, byte[] bytes) throws Exception {
        Path f = Files.write(tmp.resolve("r" + System.nanoTime() + ".yaml"), bytes);
        String m = assertThrows(RecipeException.class, () -> RecipeLoader.load(f, List.of())).getMessage();
        assertTrue(m.startsWith(f.toString()), m);
        return m.substring(f.toString().length());
    }

    private static byte[] concat(String before, int... after) {
        byte[] b = before.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] out = java.util.Arrays.copyOf(b, b.length + after.length);
        for (int i = 0; i < after.length; i++) {
            out[b.length + i] = (byte) after[i];
        }
        return out;
    }

    /**
     * The size limit is inclusive; a byte that is not UTF-8 is named with its neighbours as the decoder found them, and a
     * character cut by the end of the file (a 2-, 3- or 4-byte one) is told apart from a bad byte there.
     */
    @Test
    void theFileSizeLimitAndUtf8ErrorsAtTheirEdges(@TempDir Path tmp) throws Exception {
        String text = BASE + "description: ";
        byte[] exact = (BASE + "#" + "x".repeat(RecipeLoader.MAX_RECIPE_BYTES - BASE.length() - 2) + "\n")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(RecipeLoader.MAX_RECIPE_BYTES, exact.length);
        assertEquals("t", RecipeLoader.load(Files.write(tmp.resolve("exact.yaml"), exact), List.of()).name(), "exactly the limit loads");

        int line = (int) BASE.lines().count() + 1;
        int at = text.length();
        int col = "description: ".length() + 1;
        String where = ":" + line + ":" + col + ": not UTF-8 text: ";
        String tail = "; expected a recipe saved as UTF-8 text";
        assertEquals(where + "the file ends inside a character (bytes 0xe2 0x82 at byte offset " + at + ")" + tail,
                readError(tmp, concat(text, 0xe2, 0x82)));
        assertEquals(where + "the file ends inside a character (bytes 0xf0 0x9f 0x98 at byte offset " + at + ")" + tail,
                readError(tmp, concat(text, 0xf0, 0x9f, 0x98)));
        assertEquals(where + "the file ends inside a character (byte 0xd0 at byte offset " + at + ")" + tail,
                readError(tmp, concat(text, 0xd0)));
        assertEquals(where + "byte 0x80 at byte offset " + at + " is not valid UTF-8" + tail, readError(tmp, concat(text, 0x80)));
        assertEquals(where + "byte 0xc3 at byte offset " + at + " is not valid UTF-8" + tail, readError(tmp, concat(text, 0xc3, '(')));
        assertEquals(where + "bytes 0xe2 0x82 at byte offset " + at + " are not valid UTF-8" + tail,
                readError(tmp, concat(text, 0xe2, 0x82, 'x', '\n')));
        // the column counts characters, not bytes: two 2-byte characters before the bad byte are columns 1 and 2
        assertEquals(":" + line + ":" + (col + 2) + ": not UTF-8 text: byte 0xff at byte offset " + (at + 4) + " is not valid UTF-8"
                + tail, readError(tmp, concat(text + "éé", 0xff, '\n')));
    }

    /** Names that cannot be one folder inside distill-out are refused; names that merely contain dots are taken. */
    @Test
    void namesAndRowNamesThatCannotNameAFolderOrFile() {
        for (String bad : new String[] {"''", "'.'", "'..'", "a/b", "\"a\\x01\""}) {
            contains(refused(BASE.replace("name: t", "name: " + bad)), "cannot name the run's folder (distill-out/<name>)");
        }
        for (String good : new String[] {".a", "a..b", "'...'"}) {
            assertFalse(ok(BASE.replace("name: t", "name: " + good)).name().isEmpty(), good);
        }
        contains(refused(RecipeTest.base("  \"kd\\x01\": [{name: kd}]\n")), "a row name 'kd\\u0001' names a table row and its files;"
                + " expected text without control characters");
    }

    /** data.path: absent or "auto" is the lookup chain (recorded as auto), "./auto" a folder by that name. */
    @Test
    void dataPathAutoIsTheLookupChain(@TempDir Path tmp) {
        for (String given : new String[] {"", "data: {path: auto}\n"}) {
            Recipe r = RecipeLoader.parse(BASE + given, tmp.resolve("r.yaml"), List.of());
            assertEquals(null, r.data().path(), given);
            assertEquals("auto", ((Map<?, ?>) r.resolved().get("data")).get("path"), given);
        }
        Recipe folder = RecipeLoader.parse(BASE + "data: {path: ./auto}\n", tmp.resolve("r.yaml"), List.of());
        assertEquals("./auto", folder.data().path());
        assertEquals(tmp.resolve("auto").toAbsolutePath().toString(), ((Map<?, ?>) folder.resolved().get("data")).get("path"));
    }

    /**
     * The forms of teacher: an ensemble needs two members and takes weights there only; a teacher that does not train
     * records no teacherSamples; a foreign model's DJL settings are checked and recorded; feature terms name what kind of
     * teacher they cannot read.
     */
    @Test
    void teacherFormsAreCheckedAndRecorded(@TempDir Path tmp) throws Exception {
        String rest = "student:\n  hidden: [4]\nloss:\n  - name: kd\n";
        contains(refused("name: t\nteacher:\n  ensemble:\n    - {hidden: [8]}\n" + rest), "teacher.ensemble: expected a list of at"
                + " least two teachers");
        contains(refused("name: t\nteacher:\n  ensemble: {hidden: [8]}\n" + rest), "teacher.ensemble: expected a list of at least two");
        contains(refused("name: t\nteacher:\n  hidden: [8]\n  weight: 2\n" + rest), "teacher.weight: weight applies to members of"
                + " teacher.ensemble");
        contains(refused("name: t\nteacher:\n  hidden: [8]\n  combine: logits\n" + rest), "teacher.combine: combine applies to an"
                + " ensemble");

        Path onnx = Files.writeString(tmp.resolve("m.onnx"), "not read here");
        Path zip = Files.writeString(tmp.resolve("t.zip"), "not read here");
        Recipe loaded = ok("name: t\nteacher:\n  model: " + zip + "\n" + rest);
        assertFalse(((Map<?, ?>) loaded.resolved().get("data")).containsKey("teacherSamples"), "a loaded teacher does not train");
        Recipe mixed = ok("name: t\nteacher:\n  ensemble:\n    - {model: " + zip + "}\n    - {hidden: [8], epochs: 1}\n" + rest);
        assertEquals(10_000, ((Map<?, ?>) mixed.resolved().get("data")).get("teacherSamples"), "one member trains");
        Recipe trainedAndStored = ok("name: t\nteacher:\n  hidden: [8]\n  store: {path: s.d4j, dtype: f32}\n" + rest);
        assertEquals(1, trainedAndStored.teacher().members().size(), "hidden with a store: a trained teacher labels it");
        assertEquals("f32", trainedAndStored.teacher().store().dtype());

        String djl = "name: t\nteacher:\n  model: " + onnx + "\nMORE" + rest;
        Recipe plain = ok(djl.replace("MORE", ""));
        Map<?, ?> rt = (Map<?, ?>) plain.resolved().get("teacher");
        assertEquals("auto", rt.get("engine"));
        assertFalse(rt.containsKey("inputShape") || rt.containsKey("logits") || rt.containsKey("outputNames"), rt.toString());
        assertEquals(null, plain.teacher().members().get(0).djl().engine());
        Recipe full = ok(djl.replace("MORE", "  engine: ORT\n  inputShape: [1, 28, 28]\n  logits: out\n  outputNames: [out, emb]\n"));
        rt = (Map<?, ?>) full.resolved().get("teacher");
        assertEquals("onnxruntime", rt.get("engine"));
        assertEquals(List.of(1L, 28L, 28L), rt.get("inputShape"));
        assertEquals("out", rt.get("logits"));
        assertEquals(List.of("out", "emb"), rt.get("outputNames"));
        org.distill4j.examples.TeacherSpec.Djl d = full.teacher().members().get(0).djl();
        assertEquals("onnxruntime", d.engine());
        assertEquals(List.of(1L, 28L, 28L), java.util.Arrays.stream(d.inputShape()).boxed().toList());
        assertEquals("out", d.logitsOutput());
        assertEquals(List.of("out", "emb"), d.outputNames());
        contains(refused(djl.replace("MORE", "  engine: pytorch\n")), "teacher.engine: engine 'pytorch' is pytorch, which cannot load"
                + " m.onnx (a model for onnxruntime); expected onnxruntime or auto");
        contains(refused(djl.replace("MORE", "  outputNames: []\n")), "teacher.outputNames: expected a list of names");
        contains(refused(djl.replace("MORE", "  outputNames: out\n")), "teacher.outputNames: expected a list of names");

        String feature = "student:\n  hidden: [4]\nloss:\n  - name: kd\n  - {name: hint, student: 0, teacher: 0}\n";
        contains(refused("name: t\nteacher:\n  model: " + onnx + "\n" + feature), "this recipe has an ONNX or TorchScript teacher");
        contains(refused("name: t\nteacher:\n  ensemble:\n    - {hidden: [8]}\n    - {hidden: [6]}\n" + feature),
                "this recipe has an ensemble of 2 teachers");
        contains(refused("name: t\nteacher:\n  hidden: [8]\n  store: {path: s.d4j}\n" + feature),
                "this recipe has a teacher whose outputs come from a store (teacher.store)");
        contains(refused("name: t\nteacher:\n  hidden: [8]\n" + feature.replace("teacher: 0}", "teacher: 0, studentSize: 4}")),
                "loss[1].studentSize: a recipe's hint takes its sizes from the layers 'student' and 'teacher' name; remove 'studentSize'");
        contains(refused("name: t\nteacher:\n  hidden: [8]\n" + feature.replace("teacher: 0}", "teacher: 0, teacherSize: 4}")),
                "remove 'teacherSize'");
    }

    /** Odds and ends the other tests leave open, each a mutant that survived them. */
    @Test
    void remainingEdges(@TempDir Path tmp) throws Exception {
        // provenance's origin: the SHA-256 of the file's text
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", RecipeLoader.sha256("abc"));
        Path file = Files.writeString(tmp.resolve("r.yaml"), BASE);
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file))),
                RecipeLoader.load(file, List.of()).origin().sha256());
        // aliases of collections are limited (a recipe is small; many aliases are an expansion attack)
        StringBuilder aliases = new StringBuilder(BASE + "description: &a [x]\nextra:\n");
        for (int i = 0; i < 11; i++) {
            aliases.append("  - *a\n");
        }
        contains(refused(aliases.toString()), "not valid YAML: ");
        // suggestions use the edit distance
        assertEquals(3, RecipeLoader.distance("kitten", "sitting"));
        assertEquals(3, RecipeLoader.distance("", "abc"));
        assertEquals(3, RecipeLoader.distance("abc", ""));
        assertEquals(1, RecipeLoader.distance("ab", "abc"));
        // a list index past any list is refused, not read as another
        contains(refused(BASE, "student.hidden[99999999999]=3"), "'student.hidden' has 1 entry; expected an index from 0 to 0");
        // errors inside a --set mapping name the assignment
        contains(refused(BASE, "teacher={hidden: [8], epochs: x}"), "--set teacher={hidden: [8], epochs: x} (at character ");
        // weights and engines at their edges
        String ensemble = "name: t\nteacher:\n  ensemble:\n    - {hidden: [8], epochs: 1, weight: W}\n    - {hidden: [6], epochs: 1}\n"
                + "student:\n  hidden: [4]\nloss:\n  - name: kd\n";
        assertEquals(2.0, ok(ensemble.replace("W", "2")).teacher().members().get(0).weight(), 0.0);
        contains(refused(ensemble.replace("W", "Infinity")), "teacher.ensemble[0].weight: expected a weight > 0, got Infinity");
        Path bin = Files.writeString(tmp.resolve("m.bin"), "not read here");
        Recipe chosen = ok("name: t\nteacher:\n  model: " + bin + "\n  engine: pytorch\nstudent:\n  hidden: [4]\nloss:\n  - name: kd\n");
        assertEquals("pytorch", chosen.teacher().members().get(0).djl().engine(), "no extension: the engine given");
        // a loaded model with a store labels it; a stored-only teacher takes its layout from the store
        Path zip = Files.writeString(tmp.resolve("t.zip"), "not read here");
        Recipe labels = ok("name: t\nteacher:\n  model: " + zip + "\n  store: {path: s.d4j}\nstudent:\n  hidden: [4]\nloss:\n  - name: kd\n");
        assertEquals(zip, labels.teacher().members().get(0).model());
        assertEquals(Path.of("s.d4j").toAbsolutePath(), labels.teacher().store().path(), "beside r.yaml");
        for (String k : new String[] {"topk: 3", "dtype: f32"}) {
            contains(refused("name: t\nteacher:\n  store: {path: s.d4j, " + k + "}\nstudent:\n  hidden: [4]\nloss:\n  - name: kd\n"),
                    "a teacher made only of stored outputs takes '" + k.substring(0, k.indexOf(':')) + "' from the store itself");
        }
        // feature layers: the first hidden layer on both sides; unknown settings list the term's own
        String features = "name: t\nteacher:\n  hidden: [8, 6]\n  epochs: 1\nstudent:\n  hidden: [4, 3]\nloss:\n  - name: kd\n";
        Recipe first = ok(features + "  - {name: rkd, student: 0, teacher: 0}\n");
        assertEquals(0, first.loss().get(1).studentLayer());
        assertEquals(0, first.loss().get(1).teacherLayer());
        String m = refused(features + "  - {name: hint, student: 0, teacher: 0, bogus: 1}\n");
        contains(m, "loss[1].bogus: feature loss 'hint' has no setting 'bogus'; its settings: name, weight, student, teacher");
        assertFalse(m.contains("studentSize") || m.contains("teacherSize"), m);
    }
}
