package org.distill4j.examples.recipe;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.distill4j.examples.recipe.RecipeTest.base;
import static org.distill4j.examples.recipe.RecipeTest.fails;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Feature losses in recipes: a loss term {@code - {name: rkd, student: 0, teacher: 1}} adds the feature loss between the
 * student's and the teacher's hidden layers to the distilled rows, checked where it is written.
 */
class FeatureRecipeTest {

    private static Recipe parse(String yaml) {
        return RecipeLoader.parse(yaml, Path.of("r.yaml"), List.of());
    }

    @Test
    void featureTermsNameTheirLayersAndTakeTheirLossesSettings() {
        Recipe r = parse(base("  - name: kd\n  - {name: rkd, weight: 0.5, student: 0, teacher: 0, angle: 0}\n"
                + "  - {name: hint, student: 0, teacher: 0, learningRate: 0.01}\n  - {name: sp, student: 0, teacher: 0}\n"));
        assertEquals(4, r.loss().size());
        Recipe.LossTerm rkd = r.loss().get(1);
        assertTrue(rkd.feature() && !r.loss().get(0).feature());
        assertEquals(0.5, rkd.weight());
        assertEquals(Map.of("angle", 0.0), rkd.settings());
        assertEquals(0, rkd.studentLayer());
        assertEquals(0, rkd.teacherLayer());
        assertEquals("kd", RecipeRunner.loss(r.loss()).name(), "the logit objective leaves the feature terms out");
        assertEquals(List.of("rkd", "hint", "sp"), RecipeRunner.features(r.loss()).stream().map(org.distill4j.examples.Demo.FeatureTerm::name).toList());
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> resolved = (List<Map<String, Object>>) r.resolved().get("loss");
        assertEquals(Map.of("name", "rkd", "weight", 0.5, "student", 0, "teacher", 0, "angle", 0.0), resolved.get(1));
    }

    @Test
    void badFeatureTermsAreRefusedWhereTheyAreWritten() {
        assertEquals("r.yaml:11:26: loss[1].student: expected the index of a hidden layer, 0 to 0 (student.hidden has 1), got 1",
                fails(base("  - name: kd\n  - {name: rkd, student: 1, teacher: 0}\n")).getMessage());
        assertEquals("r.yaml:11:38: loss[1].teacher: expected the index of a hidden layer, 0 to 0 (teacher.hidden has 1), got -1",
                fails(base("  - name: kd\n  - {name: rkd, student: 0, teacher: -1}\n")).getMessage());
        String missing = fails(base("  - name: kd\n  - {name: sp, teacher: 0}\n")).getMessage();
        assertTrue(missing.contains("loss[1]") && missing.contains("student"), missing);
        assertEquals("r.yaml:11:55: loss[1].studentSize: a recipe's hint takes its sizes from the layers 'student' and 'teacher'"
                + " name; remove 'studentSize'", fails(base("  - name: kd\n  - {name: hint, student: 0, teacher: 0, studentSize: 4}\n"))
                .getMessage());
        String unknown = fails(base("  - name: kd\n  - {name: rkd, student: 0, teacher: 0, angel: 3}\n")).getMessage();
        assertTrue(unknown.contains("loss[1].angel: feature loss 'rkd' has no setting 'angel'") && unknown.contains("angle"), unknown);
        String range = fails(base("  - name: kd\n  - {name: sp, student: 0, teacher: 0, gamma: -1}\n")).getMessage();
        assertTrue(range.contains("loss[1]") && range.contains("gamma"), range);
        String pktRange = fails(base("  - name: kd\n  - {name: pkt, student: 0, teacher: 0, beta: -1}\n")).getMessage();
        assertTrue(pktRange.contains("loss[1]") && pktRange.contains("pkt weight beta must be finite and >= 0, got -1.0"), pktRange);
        assertEquals("r.yaml:10:3: loss: feature losses are added to a logit loss; add a logit loss term, e.g. - {name: kd,"
                + " temperature: 4, alpha: 0.1}", fails(base("  - {name: rkd, student: 0, teacher: 0}\n")).getMessage());
        String ensemble = fails(base("  - name: kd\n  - {name: rkd, student: 0, teacher: 0}\n").replace(
                "teacher:\n  hidden: [8]\n  epochs: 1\n", "teacher:\n  ensemble:\n    - {hidden: [8], epochs: 1}\n"
                        + "    - {hidden: [6], epochs: 1}\n")).getMessage();
        assertTrue(ensemble.contains("loss[1]: feature loss 'rkd' reads the teacher's hidden layers, which need one live DL4J teacher")
                && ensemble.endsWith("this recipe has an ensemble of 2 teachers"), ensemble);
        assertEquals("r.yaml:11:25: loss[1].student: 'at' compares the activation maps {C, H, W} of convolution blocks; name one"
                + " of student.conv's blocks (it has none), not hidden layer 0", fails(base("  - name: kd\n  - {name: at, student: 0,"
                + " teacher: 0}\n")).getMessage());
        assertEquals("r.yaml:10:3: loss: every logit loss term has weight 0, so the student's output layer would learn nothing"
                + " (feature losses train the hidden layers only); give a logit term a weight > 0",
                fails(base("  - {name: kd, weight: 0}\n  - {name: sp, student: 0, teacher: 0}\n")).getMessage());
        // a mistake in a --set value is placed in that value, not at a line of the file
        String set = "loss=[{name: kd}, {name: rkd, student: 5, teacher: 0}]";
        RecipeException e = org.junit.jupiter.api.Assertions.assertThrows(RecipeException.class,
                () -> RecipeLoader.parse(base("  - name: kd\n"), Path.of("r.yaml"), List.of(set)));
        assertEquals("r.yaml: --set " + set + " (at character 35 of the value): loss[1].student: expected the index of a hidden layer,"
                + " 0 to 0 (student.hidden has 1), got 5", e.getMessage());
        String unknownName = fails(base("  - name: kd\n  - {name: rkdd, student: 0, teacher: 0}\n")).getMessage();
        assertTrue(unknownName.contains("unknown loss 'rkdd'") && unknownName.contains("feature losses: hint, at, rkd, sp, pkt"), unknownName);
    }

    /**
     * A DL4J .zip teacher (a hidden Dense layer, then an ActivationLayer, then the logits): a term naming a layer it does not
     * have fails when the teacher is loaded, before any student row trains, as one usage line; a hint on its ActivationLayer
     * takes that layer's width from its output and trains.
     */
    @Test
    void aLoadedTeachersLayersAreCheckedWhenItLoads(@TempDir Path tmp) throws Exception {
        MultiLayerNetwork teacher = new MultiLayerNetwork(new org.deeplearning4j.nn.conf.NeuralNetConfiguration.Builder().seed(3)
                .updater(new org.nd4j.linalg.learning.config.Adam(1e-3)).list()
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(784).nOut(16)
                        .activation(org.nd4j.linalg.activations.Activation.IDENTITY).build())
                .layer(new org.deeplearning4j.nn.conf.layers.ActivationLayer.Builder().activation(org.nd4j.linalg.activations.Activation.RELU)
                        .build())
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(16).nOut(10)
                        .activation(org.nd4j.linalg.activations.Activation.IDENTITY).build())
                .build());
        teacher.init();
        org.deeplearning4j.util.ModelSerializer.writeModel(teacher, tmp.resolve("t.zip").toFile(), true);
        String recipe = "name: loaded\n"
                + "data: {path: embedded, teacherSamples: 100, transferSamples: 130, testSamples: 100}\n"
                + "teacher: {model: t.zip}\n"
                + "student: {hidden: [12, 10]}\n"
                + "training: {epochs: 1, batchSize: 64}\n"
                + "loss:\n"
                + "  - {name: kd}\n";
        Path negative = Files.writeString(tmp.resolve("negative.yaml"), recipe + "  - {name: sp, student: 0, teacher: -1}\n");
        String loaded = org.junit.jupiter.api.Assertions.assertThrows(RecipeException.class, () -> RecipeLoader.load(negative, List.of()))
                .getMessage();
        assertEquals(negative + ":8:37: loss[1].teacher: expected the index of a hidden layer of the teacher model, a whole number"
                + " >= 0 (its layers are checked when it is loaded), got -1", loaded);
        Path bad = Files.writeString(tmp.resolve("bad.yaml"), recipe + "  - {name: sp, student: 0, teacher: 2}\n");
        Path out = tmp.resolve("out");
        assertEquals("distill run: loss: feature loss 'sp': teacher layer 2, but the teacher t.zip has 2 hidden layers (indexes 0"
                + " to 1)\n", RecipeTest.runFails(2, "run", bad.toString(), "--out", out.toString(), "--quiet"));
        assertTrue(!Files.exists(out.resolve("student-alone.zip")), "no student trained");

        Path hint = Files.writeString(tmp.resolve("hint.yaml"), recipe + "  - {name: hint, student: 1, teacher: 1}\n");
        RecipeTest.run("run", hint.toString(), "--out", out.toString(), "--quiet");
        String results = Files.readString(out.resolve("results.json"));
        assertTrue(results.contains("kd(temperature=4.0, alpha=0.1) + hint(student 1, teacher 1)"), results);
    }

    /**
     * A recipe with kd and four feature terms runs end to end: the distilled row's table entry names them, the row trains
     * (its feature terms are in the metrics), and the saved model is the trained one: its accuracy on the run's test set is
     * the row's reported accuracy.
     */
    @Test
    void aRecipeWithFeatureTermsTrainsAndSavesTheTrainedStudent(@TempDir Path tmp) throws Exception {
        Path recipe = Files.writeString(tmp.resolve("features.yaml"), "name: features\n"
                + "data: {path: embedded, teacherSamples: 400, transferSamples: 300, testSamples: 250}\n"
                + "teacher: {hidden: [24, 16], epochs: 1}\n"
                + "student: {hidden: [12, 10]}\n"
                + "training: {epochs: 2, batchSize: 64}\n"
                + "loss:\n"
                + "  - {name: kd, temperature: 4, alpha: 0.1}\n"
                + "  - {name: rkd, weight: 0.5, student: 1, teacher: 0}\n"
                + "  - {name: hint, weight: 0.1, student: 0, teacher: 1}\n"
                + "  - {name: sp, weight: 0.001, student: 1, teacher: 1}\n"
                + "  - {name: pkt, weight: 0.01, student: 0, teacher: 0, beta: 20000}\n");
        Path out = tmp.resolve("out");
        RecipeTest.run("run", recipe.toString(), "--out", out.toString(), "--quiet");
        String results = Files.readString(out.resolve("results.json"));
        assertTrue(results.contains("kd(temperature=4.0, alpha=0.1) + 0.5*rkd(student 1, teacher 0) + 0.1*hint(student 0, teacher 1)"
                + " + 0.001*sp(student 1, teacher 1) + 0.01*pkt(student 0, teacher 0, beta=20000.0)"), results);
        String header = Files.readAllLines(out.resolve("metrics.csv")).get(0);
        for (String term : List.of("kd", "rkd", "hint", "sp", "pkt")) {
            assertTrue(header.contains(",loss_" + term), term + " in " + header);
        }

        assertSavedStudentIsTheTrainedOne(out, results, 250);
    }

    /**
     * The row "student distilled"'s saved model ({@code out/student-distilled.zip}) has the accuracy its row reports in
     * {@code results} on the run's test set (the embedded test split's first {@code testSamples}); returns that accuracy.
     */
    static double assertSavedStudentIsTheTrainedOne(Path out, String results, int testSamples) throws Exception {
        MultiLayerNetwork saved = org.deeplearning4j.util.ModelSerializer.restoreMultiLayerNetwork(
                out.resolve("student-distilled.zip").toFile(), false);
        Dataset test = FashionMnist.loadEmbedded(FeatureRecipeTest.class.getClassLoader()).test().head(testSamples);
        INDArray logits = saved.output(Nd4j.create(test.features(), new long[]{test.size(), test.featureCount()}));
        int right = 0;
        for (int i = 0; i < test.size(); i++) {
            right += logits.getRow(i).argMax().getInt(0) == test.labels()[i] ? 1 : 0;
        }
        double reported = Double.parseDouble(results.replaceAll("(?s).*\"row\": \"student distilled\".*?\"testAccuracy\": ([0-9.]+).*", "$1"));
        assertEquals(reported, (double) right / test.size(), 1e-9, "the saved student is the trained one");
        return reported;
    }
}
