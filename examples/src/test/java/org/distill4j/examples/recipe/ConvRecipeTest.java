package org.distill4j.examples.recipe;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.ImageShape;
import org.distill4j.examples.DemoModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.distill4j.examples.recipe.RecipeTest.fails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Convolutional students and teachers in recipes ({@code conv: [channels...]} before {@code hidden}), and the feature terms
 * that name their blocks ({@code student: conv1}), attention transfer among them.
 */
class ConvRecipeTest {

    /** A recipe with a CNN teacher (conv [6, 5]) and a CNN student (conv [3, 4]) and the given loss list. */
    static String cnn(String loss) {
        return "name: c\n"
                + "teacher:\n  conv: [6, 5]\n  hidden: [8]\n  epochs: 1\n"
                + "student:\n  conv: [3, 4]\n  hidden: [7]\n"
                + "training:\n  epochs: 2\n"
                + "loss:\n" + loss;
    }

    private static Recipe parse(String yaml) {
        return RecipeLoader.parse(yaml, Path.of("r.yaml"), List.of());
    }

    @Test
    void blocksAndHiddenLayersAreNamedAndIndexedAmongTheNetworksLayers() {
        Recipe r = parse(cnn("  - name: kd\n  - {name: at, student: conv1, teacher: conv1, beta: 500}\n"
                + "  - {name: rkd, student: 0, teacher: conv0}\n"));
        assertArrayEquals(new int[]{3, 4}, r.student().conv());
        assertArrayEquals(new int[]{7}, r.student().hidden());
        assertArrayEquals(new int[]{6, 5}, r.teacher().members().get(0).conv());
        Recipe.LossTerm at = r.loss().get(1);
        // a block is a convolution and a pool: block 1's convolution is layer 2, hidden layer 0 after two blocks is layer 4
        assertEquals(List.of(2, 2, "conv1", "conv1"), List.of(at.studentLayer(), at.teacherLayer(), at.studentName(), at.teacherName()));
        Recipe.LossTerm rkd = r.loss().get(2);
        assertEquals(List.of(4, 0, "0", "conv0"), List.of(rkd.studentLayer(), rkd.teacherLayer(), rkd.studentName(), rkd.teacherName()));
        assertEquals(Map.of("conv", List.of(3, 4), "hidden", List.of(7)), r.resolved().get("student"));
        @SuppressWarnings("unchecked")
        Map<String, Object> teacher = (Map<String, Object>) r.resolved().get("teacher");
        assertEquals(List.of(6, 5), teacher.get("conv"));
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> loss = (List<Map<String, Object>>) r.resolved().get("loss");
        assertEquals(Map.of("name", "at", "weight", 1.0, "student", "conv1", "teacher", "conv1", "beta", 500.0), loss.get(1));
        assertEquals(Map.of("name", "rkd", "weight", 1.0, "student", 0, "teacher", "conv0"), loss.get(2));
        // an MLP recipe resolves as before: no conv field
        Recipe mlp = parse(RecipeTest.base("  - name: kd\n"));
        assertEquals(Map.of("hidden", List.of(4)), mlp.resolved().get("student"));
        assertArrayEquals(new int[0], mlp.student().conv());
    }

    @Test
    void badBlocksAndMapTermsAreRefusedWhereTheyAreWritten() {
        assertEquals("r.yaml:7:13: student.conv[1]: expected a positive channel count, got '0'",
                fails(cnn("  - name: kd\n").replace("conv: [3, 4]", "conv: [3, 0]")).getMessage());
        assertEquals("r.yaml:7:9: student.conv: expected a list of channel counts, one per convolution block (3x3 convolution,"
                + " ReLU, 2x2 max pool), e.g. [16, 32]", fails(cnn("  - name: kd\n").replace("conv: [3, 4]", "conv: []")).getMessage());
        assertEquals("r.yaml:13:25: loss[1].student: 'at' compares the activation maps {C, H, W} of convolution blocks; name one"
                + " of student.conv's blocks (conv0 to conv1), not hidden layer 0",
                fails(cnn("  - name: kd\n  - {name: at, student: 0, teacher: conv0}\n")).getMessage());
        assertEquals("r.yaml:13:41: loss[1].teacher: 'at' compares the activation maps {C, H, W} of convolution blocks; name one"
                + " of teacher.conv's blocks (conv0 to conv1), not hidden layer 0",
                fails(cnn("  - name: kd\n  - {name: at, student: conv0, teacher: 0}\n")).getMessage());
        assertEquals("r.yaml:13:41: loss[1].teacher: 'at' compares maps of the same height and width, and block conv1's sides are"
                + " not conv0's (each block's pool halves them); name the same block in both, e.g. student: conv0, teacher: conv0",
                fails(cnn("  - name: kd\n  - {name: at, student: conv0, teacher: conv1}\n")).getMessage());
        assertEquals("r.yaml:13:25: loss[1].student: expected the index of a hidden layer, 0 to 0 (student.hidden has 1), or a"
                + " convolution block, conv0 to conv1 (student.conv has 2), got 'conv2'",
                fails(cnn("  - name: kd\n  - {name: sp, student: conv2, teacher: conv0}\n")).getMessage());
        assertEquals("r.yaml:13:25: loss[1].student: expected the index of a hidden layer, 0 to 0 (student.hidden has 1), or a"
                + " convolution block, conv0 to conv1 (student.conv has 2), got 'layer1'",
                fails(cnn("  - name: kd\n  - {name: sp, student: layer1, teacher: conv0}\n")).getMessage());
        assertEquals("r.yaml:11:25: loss[1].student: 'conv0' names a convolution block, and student has none (no student.conv);"
                + " expected the index of a hidden layer, 0 to 0 (student.hidden has 1)",
                fails(RecipeTest.base("  - name: kd\n  - {name: sp, student: conv0, teacher: 0}\n")).getMessage());
        assertEquals("r.yaml:3:9: teacher.conv: a teacher is either loaded (model) or trained (conv, hidden, dropout, epochs), not"
                + " both", fails("name: c\nteacher:\n  conv: [4]\n  model: t.zip\nstudent: {hidden: [4]}\nloss: [{name: kd}]\n")
                .getMessage());
    }

    @Test
    void aConvNetworkHasItsBlocksThenItsDenseLayersAndTakesFlatImages() {
        ImageShape image = ImageShape.grayscale(9, 7); // odd sides: the pools round down, 9x7 -> 4x3 -> 2x1
        MultiLayerNetwork net = DemoModels.model(image, new int[]{3, 5}, new int[]{6}, 4, 0.0, new Adam(1e-3), 11);
        assertEquals(6, net.getnLayers(), "two blocks of convolution and pool, a hidden layer, the logits");
        // parameters: 9*1*3+3, 9*3*5+5, (5*2*1)*6+6, 6*4+4
        assertEquals(30 + 140 + 66 + 28, net.numParams());
        INDArray x = Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 2, image.size());
        assertArrayEquals(new long[]{2, 4}, net.output(x).shape());
        List<INDArray> acts = net.feedForward(x, false);
        assertArrayEquals(new long[]{2, 3, 9, 7}, acts.get(1).shape(), "block 0's map keeps the image's sides");
        assertArrayEquals(new long[]{2, 5, 4, 3}, acts.get(3).shape(), "block 1's map is on the pooled sides");
        assertArrayEquals(new int[]{2, 1}, DemoModels.convSides(image, 2));
        assertEquals("9x7-conv3-conv5-6-4", DemoModels.shape(image, new int[]{3, 5}, new int[]{6}, 4));
        assertEquals("2x9x7-conv3-6-4", DemoModels.shape(new ImageShape(2, 9, 7), new int[]{3}, new int[]{6}, 4));
        // without blocks: the MLP, the same weights for the same seed
        assertArrayEquals(DemoModels.mlp(63, new int[]{6}, 4, 0.0, new Adam(1e-3), 11).params().toFloatVector(),
                DemoModels.model(image, new int[0], new int[]{6}, 4, 0.0, new Adam(1e-3), 11).params().toFloatVector());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DemoModels.checkConv("student.conv", image, new int[]{3, 5, 2}));
        assertEquals("student.conv: 3 convolution blocks, but 1x9x7 images take at most 2 (each block's 2x2 pool halves the"
                + " sides: 9x7, 4x3, 2x1)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DemoModels.checkFits("student.conv", image, new int[]{70_000, 70_000},
                image.size(), new int[]{6}, 4, new Adam(1e-3), Long.MAX_VALUE));
        assertTrue(e.getMessage().startsWith("student.conv: the 9x7-conv70000-conv70000-6-4 model's 3x3 convolution from 70000 to"
                + " 70000 channels has 44,100,000,000 weights"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DemoModels.checkFits("student.conv", image, new int[]{3, 5},
                image.size(), new int[]{6}, 4, new Adam(1e-3), 1000));
        assertTrue(e.getMessage().contains("model has 264 parameters"), e.getMessage());
    }

    /**
     * A CNN recipe with kd and attention transfer runs end to end: the table names the blocks, the at term is in the metrics,
     * and the saved student is the trained CNN (its accuracy on the run's test set is the row's reported accuracy).
     */
    @Test
    void aCnnRecipeWithAttentionTransferTrainsAndSavesTheTrainedStudent(@TempDir Path tmp) throws Exception {
        Path recipe = Files.writeString(tmp.resolve("at.yaml"), "name: at\n"
                + "data: {path: embedded, teacherSamples: 300, transferSamples: 200, testSamples: 150}\n"
                + "teacher: {conv: [6, 5], hidden: [12], epochs: 1}\n"
                + "student: {conv: [3, 4], hidden: [7]}\n"
                + "training: {epochs: 2, batchSize: 64}\n"
                + "loss:\n"
                + "  - {name: kd, temperature: 4, alpha: 0.1}\n"
                + "  - {name: at, student: conv1, teacher: conv1}\n"
                + "  - {name: sp, weight: 0.01, student: conv0, teacher: 0}\n");
        Path out = tmp.resolve("out");
        RecipeTest.run("run", recipe.toString(), "--out", out.toString(), "--quiet");
        String results = Files.readString(out.resolve("results.json"));
        assertTrue(results.contains("kd(temperature=4.0, alpha=0.1) + at(student conv1, teacher conv1) + 0.01*sp(student conv0,"
                + " teacher 0)"), results);
        assertTrue(results.contains("28x28-conv3-conv4-7-10") && results.contains("28x28-conv6-conv5-12-10, dropout 0.0"), results);
        String header = Files.readAllLines(out.resolve("metrics.csv")).get(0);
        assertTrue(header.contains(",loss_at") && header.contains(",loss_sp"), header);

        double reported = FeatureRecipeTest.assertSavedStudentIsTheTrainedOne(out, results, 150);
        // and distill eval reads the saved CNN as it reads an MLP
        String eval = RecipeTest.run("eval", out.resolve("student-distilled.zip").toString(), "--data", "embedded", "--limit", "150");
        assertTrue(eval.contains(String.format(java.util.Locale.ROOT, "%.2f%%", 100 * reported)), eval);
    }

    /**
     * A loaded DL4J CNN teacher: attention transfer on one of its layers whose maps have other sides than the student's
     * block fails when it loads, before any student trains, naming both shapes; a layer with the same sides trains.
     */
    @Test
    void attentionTransferOnALoadedTeacherChecksTheMapsWhenItLoads(@TempDir Path tmp) throws Exception {
        MultiLayerNetwork teacher = DemoModels.model(ImageShape.grayscale(28, 28), new int[]{5, 6}, new int[]{8}, 10, 0.0,
                new Adam(1e-3), 3);
        org.deeplearning4j.util.ModelSerializer.writeModel(teacher, tmp.resolve("t.zip").toFile(), true);
        String recipe = "name: loaded\n"
                + "data: {path: embedded, teacherSamples: 100, transferSamples: 130, testSamples: 100}\n"
                + "teacher: {model: t.zip}\n"
                + "student: {conv: [3], hidden: [10]}\n"
                + "training: {epochs: 1, batchSize: 64}\n"
                + "loss:\n"
                + "  - {name: kd}\n";
        Path named = Files.writeString(tmp.resolve("named.yaml"), recipe + "  - {name: at, student: conv0, teacher: conv0}\n");
        String message = assertThrows(RecipeException.class, () -> RecipeLoader.load(named, List.of())).getMessage();
        assertTrue(message.endsWith("loss[1].teacher: a loaded teacher's layers are named by their index in the model as DL4J"
                + " counts them (0-based, a convolution and its pool being two layers), not by block name; got 'conv0'"), message);
        Path bad = Files.writeString(tmp.resolve("bad.yaml"), recipe + "  - {name: at, student: conv0, teacher: 2}\n");
        Path out = tmp.resolve("out");
        assertEquals("distill run: " + bad + ": loss: feature loss 'at' compares maps {C, H, W} of the same height and width, and"
                + " student layer conv0 gives 3x28x28 maps, teacher layer 2 gives 6x14x14 maps\n",
                RecipeTest.runFails(2, "run", bad.toString(), "--out", out.toString(), "--quiet"));
        assertTrue(!Files.exists(out.resolve("student-alone.zip")), "no student trained");
        Path beyond = Files.writeString(tmp.resolve("beyond.yaml"), recipe + "  - {name: at, student: conv0, teacher: 5}\n");
        assertEquals("distill run: loss: feature loss 'at': teacher layer 5, but the teacher t.zip has 5 layers (indexes 0 to 4)"
                + " before its output layer: 0 ConvolutionLayer, 1 SubsamplingLayer, 2 ConvolutionLayer, 3 SubsamplingLayer,"
                + " 4 DenseLayer\n", RecipeTest.runFails(2, "run", beyond.toString(), "--out", out.toString(), "--quiet"));
        Path good = Files.writeString(tmp.resolve("good.yaml"), recipe + "  - {name: at, student: conv0, teacher: 0}\n");
        RecipeTest.run("run", good.toString(), "--out", out.toString(), "--quiet");
        assertTrue(Files.readString(out.resolve("results.json")).contains("at(student conv0, teacher 0)"));
    }

    /**
     * A saved CNN reads images of one size: on data of other images (fewer values, or as many in another layout) it is
     * refused when it loads, naming the file and both shapes (eval and label: a failed run, as for an MLP of another width;
     * a recipe's teacher: a recipe error), where DL4J failed at the first batch without naming either, or ran on the wrong
     * layout.
     */
    @Test
    void aSavedCnnOnImagesOfAnotherSizeIsRefusedWhenItLoads(@TempDir Path tmp) throws Exception {
        Path zip = tmp.resolve("cnn.zip");
        org.deeplearning4j.util.ModelSerializer.writeModel(DemoModels.model(ImageShape.grayscale(28, 28), new int[]{3}, new int[]{5},
                10, 0.0, new Adam(1e-3), 5), zip.toFile(), true);
        Path small = Files.createDirectories(tmp.resolve("small")); // 9x7 images: 63 values
        Path tall = Files.createDirectories(tmp.resolve("tall"));   // 16x49 images: 784 values, as 28x28
        for (String split : List.of("train", "t10k")) {
            org.distill4j.examples.EvalAndLabelCommandTest.writeIdx(small, split, 40, 9, 7);
            org.distill4j.examples.EvalAndLabelCommandTest.writeIdx(tall, split, 40, 16, 49);
        }
        String err = RecipeTest.runFails(1, "eval", zip.toString(), "--data", small.toString());
        assertTrue(err.contains(zip + ": a DL4J model of 1x28x28 images (channels x height x width), 784 inputs, but the data "),
                err);
        assertTrue(err.contains(" has 63 features (1x9x7 images)"), err);
        err = RecipeTest.runFails(1, "eval", zip.toString(), "--data", tall.toString());
        assertTrue(err.contains(zip + ": a DL4J model of 1x28x28 images (channels x height x width), but the data ")
                && err.contains(" has 1x16x49 images: as many values, in another layout"), err);
        err = RecipeTest.runFails(1, "label", "--teacher", zip.toString(), "--data", tall.toString(), "--out", tmp.resolve("s.d4j").toString());
        assertTrue(err.contains("has 1x16x49 images: as many values, in another layout"), err);
        Path recipe = Files.writeString(tmp.resolve("r.yaml"), "name: r\n"
                + "data: {path: tall, teacherSamples: 40, transferSamples: 30, testSamples: 20}\n"
                + "teacher: {model: cnn.zip}\nstudent: {hidden: [4]}\ntraining: {epochs: 1}\nloss: [{name: kd}]\n");
        err = RecipeTest.runFails(2, "run", recipe.toString(), "--out", tmp.resolve("out").toString(), "--quiet");
        assertTrue(err.contains("teacher.model: cannot load " + zip + ": a DL4J model of 1x28x28 images (channels x height x width),"
                + " but the data has 1x16x49 images: as many values, in another layout"), err);
    }
}
