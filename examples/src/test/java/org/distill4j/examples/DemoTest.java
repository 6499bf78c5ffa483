package org.distill4j.examples;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DemoTest {
    private static float[] initialWeights(Demo.Settings s, Long runSeed) {
        return Demo.initialStudent(s, org.distill4j.data.ImageShape.grayscale(3, 4), 3, runSeed).params().toFloatVector();
    }

    @Test
    void rowsCheckpointAtTheSettingsCadence() {
        Demo.Settings s = new Demo.Settings();
        s.out = Path.of("out");
        org.distill4j.train.Checkpoints dflt = Demo.checkpoints(s, "student alone");
        assertEquals(Path.of("out", "checkpoints", "student-alone"), dflt.dir());
        assertEquals(0, dflt.everySteps(), "at epoch ends only");
        assertEquals(java.time.Duration.ofSeconds(30), dflt.minInterval());
        s.checkpointEverySteps = 17;
        s.checkpointMinInterval = java.time.Duration.ofMillis(1500);
        org.distill4j.train.Checkpoints c = Demo.checkpoints(s, "teacher");
        assertEquals(17, c.everySteps());
        assertEquals(java.time.Duration.ofMillis(1500), c.minInterval());
    }

    /**
     * With --seeds (training.seeds) a student row's initial weights are its run's seed's: the same seed starts every row
     * alike (the rows stay paired), another seed elsewhere, and --seed (the teacher's and the data draw's) plays no part.
     * Without seeds the students start from --seed + 1.
     */
    @Test
    void aStudentsInitialWeightsDependOnItsRunsSeedAlone() {
        Demo.Settings s = new Demo.Settings();
        s.studentHidden = new int[]{5};
        float[] five = initialWeights(s, 5L);
        assertEquals(12 * 5 + 5 + 5 * 3 + 3, five.length, "12-5-3, weights and biases");
        assertArrayEquals(five, initialWeights(s, 5L), "the same seed, the same initial student");
        assertFalse(Arrays.equals(five, initialWeights(s, 6L)), "another seed, another initial student");
        s.seed = 7;
        assertArrayEquals(five, initialWeights(s, 5L), "--seed does not move a seeded run's student");
        assertArrayEquals(initialWeights(s, 8L), initialWeights(s, null), "without seeds: --seed + 1");
        s.seed = 8;
        assertFalse(Arrays.equals(initialWeights(s, 8L), initialWeights(s, null)), "without seeds: --seed + 1, not --seed");
    }

    /** Each run has files of its own: seed -4's checkpoints and model are not seed 4's (a resume would mix them up). */
    @Test
    void aNegativeSeedsRunHasFilesOfItsOwn() {
        assertEquals("student-alone-seed-4", Demo.fileName("student alone seed 4"));
        assertEquals("student-alone-seed-minus-4", Demo.fileName("student alone seed -4"));
        assertEquals("distilled-kd-stored-f16-seed-minus-12", Demo.fileName("distilled: kd, stored f16 seed -12"));
        assertEquals("distilled-dkd-beta-minus-2", Demo.fileName("distilled: dkd:beta=-2"), "not dkd:beta=2's");
        assertEquals("distilled-topk-kd-k-2", Demo.fileName("distilled: topk-kd:k=2"), "a dash between words stays one");
        assertEquals("distilled-kd-temperature-1e-3", Demo.fileName("distilled: kd:temperature=1e-3"));
        Demo.Settings s = new Demo.Settings();
        s.out = Path.of("out");
        assertNotEquals(Demo.checkpointDir(s, "student alone seed -4"), Demo.checkpointDir(s, "student alone seed 4"));
        assertEquals(Path.of("out", "checkpoints", "student-alone-seed-minus-4"), Demo.checkpointDir(s, "student alone seed -4"));
    }

    /**
     * A foreign model's content id is the CRC32C of its bytes, read in pieces (a TorchScript file can exceed the 2 GiB
     * an array holds): the same id as the whole file's, so stores labeled before still match.
     */
    @Test
    void aModelFilesIdIsTheCrcOfItsBytesReadInPieces(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        byte[] bytes = new byte[200_003]; // three pieces and a short one
        new java.util.Random(9).nextBytes(bytes);
        Path f = java.nio.file.Files.write(tmp.resolve("m.onnx"), bytes);
        java.util.zip.CRC32C whole = new java.util.zip.CRC32C();
        whole.update(bytes);
        assertEquals("file-" + Long.toHexString(whole.getValue()), Demo.fileId(f));
        bytes[150_000] ^= 1;
        assertNotEquals(Demo.fileId(f), Demo.fileId(java.nio.file.Files.write(tmp.resolve("n.onnx"), bytes)));
    }
    /** results.json without the rows' timings, which a row trained again (not restored) does not repeat. */
    private static String withoutTimings(Path results) throws Exception {
        return java.nio.file.Files.readAllLines(results).stream()
                .filter(l -> !l.contains("\"samplesPerSecond\"") && !l.contains("\"wallSeconds\""))
                .collect(java.util.stream.Collectors.joining("\n"));
    }

    private static int demo(java.io.ByteArrayOutputStream out, java.io.ByteArrayOutputStream err, String... args) {
        out.reset();
        err.reset();
        return Main.run(args, new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8),
                new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
    }

    /**
     * distill demo --seeds ... --resume (not only a recipe's training.seeds): a demo over seeds [5, -5] with two distilled
     * rows and a stored-teacher row, interrupted in its second distilled row (that row's second seed, the rows after it and
     * the store are gone, as are the records), resumed, gives the uninterrupted run's results.json but for timings: every
     * row's accuracy and agreement per seed, the std and the paired gains. The rows that had finished are restored, not
     * trained again (their timings are the saved ones).
     */
    @Test
    void anInterruptedDemoOverSeedsResumesToTheUninterruptedRunsNumbers(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("demo");
        Path store = tmp.resolve("s.d4j");
        String[] args = {"demo", "--quiet", "--data", "embedded", "--out", out.toString(), "--seeds", "5,-5",
                "--teacher-samples", "300", "--teacher-epochs", "1", "--teacher-hidden", "16", "--transfer-samples", "200",
                "--student-epochs", "2", "--student-hidden", "8", "--test-samples", "200", "--compare", "kd,tvd",
                "--store", store.toString()};
        java.io.ByteArrayOutputStream o = new java.io.ByteArrayOutputStream();
        java.io.ByteArrayOutputStream e = new java.io.ByteArrayOutputStream();
        assertEquals(0, demo(o, e, args), e.toString());
        Path results = out.resolve("results.json");
        String uninterrupted = withoutTimings(results);
        String timed = java.nio.file.Files.readString(results);
        assertTrue(uninterrupted.contains("\"testAccuracyRuns\": [") && uninterrupted.contains("\"kd (stored f16)\""), uninterrupted);

        Path ckpts = out.resolve("checkpoints");
        java.util.List<String> lost = java.util.List.of("distilled-tvd-seed-minus-5", "distilled-kd-stored-f16-seed-5",
                "distilled-kd-stored-f16-seed-minus-5");
        for (String r : lost) {
            assertTrue(java.nio.file.Files.deleteIfExists(ckpts.resolve(r).resolve(org.distill4j.train.Checkpoints.FILE_NAME)), r);
        }
        java.nio.file.Files.delete(store);
        java.nio.file.Files.delete(results);
        java.nio.file.Files.delete(out.resolve("provenance.json"));
        String[] resume = java.util.stream.Stream.concat(java.util.stream.Stream.of(args), java.util.stream.Stream.of("--resume"))
                .toArray(String[]::new);
        assertEquals(0, demo(o, e, resume), e.toString());
        assertEquals(uninterrupted, withoutTimings(results), "every row and seed: accuracies, agreement, std, runs, gains");
        // the rows that had finished every seed are restored with their saved training speed (the wall time of a run that
        // was not interrupted also counts its last checkpoint's save, which the checkpoint cannot hold)
        String resumed = java.nio.file.Files.readString(results);
        for (String row : new String[] {"teacher", "student alone", "distilled: kd"}) {
            assertEquals(rowJson(timed, row).replaceAll(",\\s*\"wallSeconds\": [0-9.e-]+", ""),
                    rowJson(resumed, row).replaceAll(",\\s*\"wallSeconds\": [0-9.e-]+", ""), row + " restored, not trained again");
        }
        assertNotEquals(rowJson(timed, "distilled: tvd"), rowJson(resumed, "distilled: tvd"), "a check that can fail: its seed -5 trained again");
        assertTrue(java.nio.file.Files.isRegularFile(store) && java.nio.file.Files.isRegularFile(out.resolve("provenance.json")));
    }

    /** The JSON object of {@code row} in a results.json. */
    private static String rowJson(String results, String row) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\{\\s*\"row\": \"" + java.util.regex.Pattern.quote(row)
                + "\"[^{}]*}").matcher(results);
        assertTrue(m.find(), row + " in " + results);
        return m.group();
    }
    /**
     * --unlabeled-samples gives the distilled rows that many more training samples without their labels: the header and
     * the provenance say so, the distilled row trains on them (its samples column and samples/s count them), the student
     * alone leaves them out and trains as in the run without them; asking for more than the split has uses what there is,
     * with a note.
     */
    @Test
    void unlabeledSamplesTrainTheDistilledRowsOnly(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream out = new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8);
        Demo.Settings s = tiny(tmp.resolve("unlabeled"));
        s.unlabeledSamples = 50;
        java.util.List<Demo.Row> result = Demo.run(s, out);
        String printed = bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(printed.contains("students on a transfer set of 30 + 50 unlabeled, test 30"), printed);
        java.util.Map<String, Demo.Row> rows = new java.util.HashMap<>();
        result.forEach(r -> rows.put(r.name(), r));
        assertEquals(30, rows.get("student alone").trainSamples(), "the student alone has no teacher term: labeled samples only");
        assertEquals(80, rows.get("student distilled").trainSamples(), "the distilled student trains on both");
        java.util.List<Demo.Row> plain = Demo.run(tiny(tmp.resolve("plain")), out);
        Demo.Row alone = plain.stream().filter(r -> r.name().equals("student alone")).findFirst().orElseThrow();
        assertEquals(alone.testAccuracy(), rows.get("student alone").testAccuracy(), 0.0, "the student alone trains as without them");
        assertEquals(alone.teacherAgreement(), rows.get("student alone").teacherAgreement(), 0.0);
        String provenance = java.nio.file.Files.readString(s.out.resolve("provenance.json"));
        assertTrue(provenance.contains("\"unlabeledSamples\": 50") && provenance.contains("\"unlabeled\": 50"), provenance);

        bytes.reset();
        Demo.Settings many = tiny(tmp.resolve("capped"));
        many.unlabeledSamples = Integer.MAX_VALUE;
        java.util.List<Demo.Row> capped = Demo.run(many, out);
        printed = bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
        int trainSplit = org.distill4j.data.FashionMnist.loadEmbedded(Demo.class.getClassLoader()).train().size();
        assertTrue(printed.contains("note: --unlabeled-samples is " + Integer.MAX_VALUE + ", but the training split has "
                + (trainSplit - 30) + " samples after the transfer set's: the run uses " + (trainSplit - 30)), printed);
        assertEquals(trainSplit, capped.stream().filter(r -> r.name().equals("student distilled")).findFirst().orElseThrow()
                .trainSamples());
    }

    /**
     * --mixup mixes the distilled rows' batches: the row says so and its student ends with other weights than the plain
     * run's distilled one, while the student alone ends with the plain run's weights; the provenance records it; with a
     * stored teacher (--store) it is refused before anything trains.
     */
    @Test
    void mixupAppliesToTheDistilledRowsOnly(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        java.io.PrintStream out = new java.io.PrintStream(new java.io.ByteArrayOutputStream(), true, java.nio.charset.StandardCharsets.UTF_8);
        Demo.Settings s = tiny(tmp.resolve("mixup"));
        s.mixup = 0.4;
        s.studentEpochs = 3;
        s.saveModels = true;
        java.util.List<Demo.Row> mixed = Demo.run(s, out);
        Demo.Settings p = tiny(tmp.resolve("plain"));
        p.studentEpochs = 3;
        p.saveModels = true;
        java.util.List<Demo.Row> plain = Demo.run(p, out);
        assertArrayEquals(params(p, "student alone"), params(s, "student alone"), "the student alone trains as in the plain run");
        assertFalse(java.util.Arrays.equals(params(p, "student distilled"), params(s, "student distilled")),
                "the distilled student trained on mixed inputs");
        Demo.Row alone = mixed.stream().filter(r -> r.name().equals("student alone")).findFirst().orElseThrow();
        Demo.Row plainAlone = plain.stream().filter(r -> r.name().equals("student alone")).findFirst().orElseThrow();
        assertEquals(plainAlone.testAccuracy(), alone.testAccuracy(), 0.0);
        assertFalse(alone.loss().contains("mixup"), alone.loss());
        Demo.Row distilled = mixed.stream().filter(r -> r.name().equals("student distilled")).findFirst().orElseThrow();
        assertTrue(distilled.loss().contains("mixup(0.4)"), distilled.loss());
        String provenance = java.nio.file.Files.readString(s.out.resolve("provenance.json"));
        assertTrue(provenance.contains("\"mixup\": 0.4"), provenance);

        Demo.Settings stored = tiny(tmp.resolve("stored"));
        stored.mixup = 0.4;
        stored.store = tmp.resolve("stored.d4j");
        org.distill4j.examples.recipe.RecipeException e = org.junit.jupiter.api.Assertions.assertThrows(
                org.distill4j.examples.recipe.RecipeException.class, () -> Demo.run(stored, out));
        assertTrue(e.getMessage().startsWith("--mixup needs a teacher that runs"), e.getMessage());
        assertTrue(java.nio.file.Files.notExists(Demo.checkpointDir(stored, "teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME)),
                "nothing trained");
    }

    /**
     * --shift and --flip move and mirror every student row's batches, the student alone's as well (they keep the labels):
     * both rows say so and train otherwise than the plain run's, the teacher trains as in the plain run; the provenance
     * records them; a shift as large as the images' side, or either with a stored teacher, is refused before anything trains.
     */
    @Test
    void shiftAndFlipApplyToEveryStudentRow(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        java.io.PrintStream out = new java.io.PrintStream(new java.io.ByteArrayOutputStream(), true, java.nio.charset.StandardCharsets.UTF_8);
        Demo.Settings s = tiny(tmp.resolve("images"));
        s.shift = 2;
        s.flip = true;
        s.studentEpochs = 3;
        s.saveModels = true;
        java.util.List<Demo.Row> moved = Demo.run(s, out);
        Demo.Settings p = tiny(tmp.resolve("plain"));
        p.studentEpochs = 3;
        p.saveModels = true;
        java.util.List<Demo.Row> plain = Demo.run(p, out);
        for (String name : new String[]{"student alone", "student distilled"}) {
            Demo.Row m = moved.stream().filter(r -> r.name().equals(name)).findFirst().orElseThrow();
            assertTrue(m.loss().contains(", shift(2), flip"), m.loss());
            assertFalse(m.loss().contains("mixup"), m.loss());
            assertFalse(java.util.Arrays.equals(params(s, name), params(p, name)), name + " trained on other inputs");
        }
        assertArrayEquals(params(p, "teacher"), params(s, "teacher"), "the teacher trains on the images as they are");
        String provenance = java.nio.file.Files.readString(s.out.resolve("provenance.json"));
        assertTrue(provenance.contains("\"shift\": 2") && provenance.contains("\"flip\": true"), provenance);

        Demo.Settings far = tiny(tmp.resolve("far"));
        far.shift = 28;
        org.distill4j.examples.recipe.RecipeException e = org.junit.jupiter.api.Assertions.assertThrows(
                org.distill4j.examples.recipe.RecipeException.class, () -> Demo.run(far, out));
        assertTrue(e.getMessage().startsWith("--shift: the largest move must be below the images' sides (28x28 pixels in embedded"),
                e.getMessage());
        Demo.Settings stored = tiny(tmp.resolve("stored"));
        stored.flip = true;
        stored.store = tmp.resolve("stored.d4j");
        e = org.junit.jupiter.api.Assertions.assertThrows(org.distill4j.examples.recipe.RecipeException.class, () -> Demo.run(stored, out));
        assertTrue(e.getMessage().startsWith("--flip needs a teacher that runs"), e.getMessage());
        assertTrue(java.nio.file.Files.notExists(Demo.checkpointDir(stored, "teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME)),
                "nothing trained");
        assertTrue(java.nio.file.Files.notExists(Demo.checkpointDir(far, "teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME)));
    }

    /**
     * With unlabeled samples: a loss that needs every row's label (dkd) is refused before the teacher trains; a teacher that
     * runs and labels a store first (a recipe's teacher + teacher.store) labels the transfer set with its unlabeled samples
     * and distills from it; that store alone then serves a run over the same images (the same rows), as does a store
     * labeled with every label; a run over other images is refused, naming the data settings that match the store.
     */
    @Test
    void unlabeledSamplesWithDkdAreRefusedAndAStoreServesThemWhereItWasLabeledOnTheSameImages(@org.junit.jupiter.api.io.TempDir Path tmp)
            throws Exception {
        java.io.PrintStream out = new java.io.PrintStream(new java.io.ByteArrayOutputStream(), true, java.nio.charset.StandardCharsets.UTF_8);
        Demo.Settings dkd = tiny(tmp.resolve("dkd"));
        dkd.unlabeledSamples = 50;
        dkd.compare = java.util.List.of("kd", "dkd");
        org.distill4j.examples.recipe.RecipeException e = org.junit.jupiter.api.Assertions.assertThrows(
                org.distill4j.examples.recipe.RecipeException.class, () -> Demo.run(dkd, out));
        assertTrue(e.getMessage().startsWith("dkd: ce + dkd(") && e.getMessage().contains("needs a hard label on every row")
                && e.getMessage().contains(
                "--unlabeled-samples gives the distilled rows 50 unlabeled samples"), e.getMessage());
        assertTrue(java.nio.file.Files.notExists(Demo.checkpointDir(dkd, "teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME)),
                "the teacher did not train");
        Demo.Settings mixed = tiny(tmp.resolve("dkd-mixup"));
        mixed.mixup = 0.4;
        mixed.compare = java.util.List.of("kd", "dkd");
        e = org.junit.jupiter.api.Assertions.assertThrows(org.distill4j.examples.recipe.RecipeException.class, () -> Demo.run(mixed, out));
        assertTrue(e.getMessage().startsWith("dkd: ce + dkd(") && e.getMessage().contains("needs a hard label on every row it trains"
                + " on, but --mixup takes the labels of the rows it mixes; use a loss that takes unlabeled rows"), e.getMessage());
        assertTrue(java.nio.file.Files.notExists(Demo.checkpointDir(mixed, "teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME)),
                "the teacher did not train");

        Demo.Settings labelsAStore = tiny(tmp.resolve("labels-a-store"));
        labelsAStore.unlabeledSamples = 40;
        labelsAStore.storeOnly = true;
        labelsAStore.store = tmp.resolve("labeled.d4j");
        labelsAStore.teachers = java.util.List.of(TeacherSpec.trained(new int[] {8}, 0, 1, 1));
        java.util.List<Demo.Row> rows = Demo.run(labelsAStore, out);
        Demo.Row distilled = rows.stream().filter(r -> r.name().startsWith("student distilled")).findFirst().orElseThrow();
        assertEquals(70, distilled.trainSamples(), "distilled from the store over the 30 labeled and 40 unlabeled samples");
        try (org.distill4j.store.SoftTargetStore st = org.distill4j.store.SoftTargetStore.open(labelsAStore.store)) {
            assertEquals(70, st.rows(), "the store holds every row");
        }

        // that store alone serves a later run over the same images, unlabeled ones included
        Demo.Settings storeOnly = tiny(tmp.resolve("store-only"));
        storeOnly.unlabeledSamples = 40;
        storeOnly.storeOnly = true;
        storeOnly.store = labelsAStore.store;
        storeOnly.teachers = java.util.List.of();
        Demo.Row fromStore = Demo.run(storeOnly, out).stream().filter(r -> r.name().startsWith("student distilled")).findFirst()
                .orElseThrow();
        assertEquals(70, fromStore.trainSamples());
        assertEquals(distilled.testAccuracy(), fromStore.testAccuracy(), 0.0, "the same rows as the run that labeled the store");

        // a store labeled with every label (70 labeled transfer samples) serves the same images with 40 of them unlabeled
        Demo.Settings allLabeled = tiny(tmp.resolve("all-labeled"));
        allLabeled.transferSamples = 70;
        allLabeled.storeOnly = true;
        allLabeled.store = tmp.resolve("labeled70.d4j");
        allLabeled.teachers = java.util.List.of(TeacherSpec.trained(new int[] {8}, 0, 1, 1));
        Demo.run(allLabeled, out);
        Demo.Settings partly = tiny(tmp.resolve("partly-unlabeled"));
        partly.unlabeledSamples = 40;
        partly.storeOnly = true;
        partly.store = allLabeled.store;
        partly.teachers = java.util.List.of();
        assertEquals(70, Demo.run(partly, out).stream().filter(r -> r.name().startsWith("student distilled")).findFirst().orElseThrow()
                .trainSamples(), "its 70 rows serve 30 labeled and 40 unlabeled samples");

        // a store of other sizes: the advice names the data settings that match it, the unlabeled samples' count first
        Demo.Settings more = tiny(tmp.resolve("store-only-more"));
        more.unlabeledSamples = 50;
        more.storeOnly = true;
        more.store = allLabeled.store;
        more.teachers = java.util.List.of();
        e = org.junit.jupiter.api.Assertions.assertThrows(org.distill4j.examples.recipe.RecipeException.class, () -> Demo.run(more, out));
        assertTrue(e.getMessage().contains("holds 70 rows, not this run's transfer set (80 samples"), e.getMessage());
        assertTrue(e.getMessage().endsWith("its rows are the training split's first 70 samples shuffled with seed 42 (as a run with"
                + " these data settings labels them): set data.unlabeledSamples: 40"), e.getMessage());
        Demo.Settings fewer = tiny(tmp.resolve("store-only-fewer"));
        fewer.transferSamples = 75;
        fewer.unlabeledSamples = 5;
        fewer.storeOnly = true;
        fewer.store = allLabeled.store;
        fewer.teachers = java.util.List.of();
        e = org.junit.jupiter.api.Assertions.assertThrows(org.distill4j.examples.recipe.RecipeException.class, () -> Demo.run(fewer, out));
        assertTrue(e.getMessage().endsWith(": set data.transferSamples: 70 and data.unlabeledSamples: 0"), e.getMessage());
    }

    /**
     * A run whose teacher runs and labels a store first (a recipe's teacher + teacher.store, or --store) over a store that
     * an earlier run labeled on the same images with every label: now with 40 of them unlabeled (data.unlabeledSamples),
     * the store is reused as it is (the teacher's outputs depend on the images alone), not refused as labeled "from other
     * data" as it used to be; not a byte of it is rewritten.
     */
    @Test
    void aRunWhoseTeacherRunsReusesAStoreLabeledOnTheSameImagesWithOtherLabels(@org.junit.jupiter.api.io.TempDir Path tmp)
            throws Exception {
        java.io.PrintStream quiet = new java.io.PrintStream(new java.io.ByteArrayOutputStream(), true, java.nio.charset.StandardCharsets.UTF_8);
        Demo.Settings allLabeled = tiny(tmp.resolve("all-labeled"));
        allLabeled.transferSamples = 70;
        allLabeled.storeOnly = true;
        allLabeled.store = tmp.resolve("labeled70.d4j");
        allLabeled.teachers = java.util.List.of(TeacherSpec.trained(new int[] {8}, 0, 1, 1));
        Demo.run(allLabeled, quiet);
        java.nio.file.Files.setLastModifiedTime(allLabeled.store, java.nio.file.attribute.FileTime.fromMillis(1_600_000_000_000L));
        byte[] labeled = java.nio.file.Files.readAllBytes(allLabeled.store);

        Demo.Settings partly = tiny(tmp.resolve("partly-unlabeled"));
        partly.unlabeledSamples = 40;
        partly.storeOnly = true;
        partly.store = allLabeled.store;
        partly.teachers = allLabeled.teachers;
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        java.util.List<Demo.Row> rows = Demo.run(partly, new java.io.PrintStream(printed, true, java.nio.charset.StandardCharsets.UTF_8));
        String text = printed.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(text.contains("reusing the stored 70 rows in " + allLabeled.store), text);
        assertEquals(70, rows.stream().filter(r -> r.name().startsWith("student distilled")).findFirst().orElseThrow().trainSamples(),
                "its 70 rows serve 30 labeled and 40 unlabeled samples");
        assertTrue(java.nio.file.Files.readString(partly.out.resolve("provenance.json")).contains("\"use\": \"reused\""));

        // the same with --store (label, then add a row trained from the store)
        Demo.Settings withStore = tiny(tmp.resolve("with-store"));
        withStore.unlabeledSamples = 40;
        withStore.store = allLabeled.store;
        withStore.teachers = allLabeled.teachers;
        printed.reset();
        rows = Demo.run(withStore, new java.io.PrintStream(printed, true, java.nio.charset.StandardCharsets.UTF_8));
        text = printed.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(text.contains("reusing the stored 70 rows in " + allLabeled.store), text);
        assertEquals(70, rows.stream().filter(r -> r.name().equals("distilled: kd, stored f16")).findFirst().orElseThrow().trainSamples());

        assertArrayEquals(labeled, java.nio.file.Files.readAllBytes(allLabeled.store), "the store as the first run labeled it");
        assertEquals(1_600_000_000_000L, java.nio.file.Files.getLastModifiedTime(allLabeled.store).toMillis(), "never written to");
    }

    /** The parameters of the model the run saved for the row {@code row}. */
    private static float[] params(Demo.Settings s, String row) throws java.io.IOException {
        return org.deeplearning4j.util.ModelSerializer.restoreMultiLayerNetwork(s.out.resolve(Demo.fileName(row) + ".zip").toFile())
                .params().toFloatVector();
    }

    /** The demo's smallest settings on the embedded subset, into {@code out}. */
    private static Demo.Settings tiny(Path out) {
        Demo.Settings s = new Demo.Settings();
        s.embedded = true;
        s.out = out;
        s.progress = false;
        s.teacherSamples = 60;
        s.teacherEpochs = 1;
        s.teacherHidden = new int[] {8};
        s.transferSamples = 30;
        s.studentEpochs = 1;
        s.studentHidden = new int[] {4};
        s.testSamples = 30;
        return s;
    }

    /** A step engine provider that declines every run. */
    private static org.distill4j.train.StepEngineProvider declining(String name) {
        return new org.distill4j.train.StepEngineProvider() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Offer offer(Setup setup) {
                return Offer.decline("it takes no run (a test engine)");
            }
        };
    }

    /**
     * A step engine asked for by name that declines the first row (its models, its loss: known only when the row asks, after
     * the data is read) is a setting to change, like an unknown engine or backend: nothing goes to standard output before
     * the error (the data-source line came first, so 'distill demo > table.txt' kept a line of a run that never ran). A run
     * whose engine accepts prints that line first, as always.
     */
    @Test
    void aDecliningStepEngineLeavesNothingOnStandardOutput(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream out = new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8);
        Demo.Settings s = tiny(tmp.resolve("declined"));
        s.stepEngines = java.util.List.of(declining("test-declines"));
        s.engine = "test-declines";
        org.distill4j.train.StepEngines.UnavailableEngineException e = org.junit.jupiter.api.Assertions.assertThrows(
                org.distill4j.train.StepEngines.UnavailableEngineException.class, () -> Demo.run(s, out));
        assertTrue(e.getMessage().contains("'test-declines'") && e.getMessage().contains("it takes no run (a test engine)"), e.getMessage());
        assertEquals("", bytes.toString(java.nio.charset.StandardCharsets.UTF_8), "nothing printed before the error");
        assertTrue(java.nio.file.Files.notExists(Demo.checkpointDir(s, "teacher").resolve(org.distill4j.train.Checkpoints.FILE_NAME)),
                "the teacher did not train");

        Demo.Settings auto = tiny(tmp.resolve("auto"));
        auto.stepEngines = s.stepEngines;
        auto.engine = "auto"; // the engine declines, the DL4J path runs
        Demo.run(auto, out);
        String printed = bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(printed.startsWith("Fashion-MNIST from embedded subset") && printed.indexOf("student alone") > 0, printed);
    }
}
