package org.distill4j.examples.recipe;

import org.distill4j.examples.Demo;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.WeightedSum;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every setting of a recipe reaches the run that RecipeRunner starts (without training anything). */
class RecipeRunnerSettingsTest {
    private static Recipe parse(Path dir, String text) {
        return RecipeLoader.parse(text, dir.resolve("r.yaml"), List.of());
    }

    @Test
    void everyRecipeSettingReachesTheRun(@TempDir Path tmp) throws Exception {
        Recipe r = parse(tmp, "name: every-setting\n"
                + "data: {path: data/fm, teacherSamples: 77, transferSamples: 33, testSamples: 21, shuffle: false}\n"
                + "teacher: {hidden: [9, 5], dropout: 0.25, epochs: 3}\n"
                + "student: {hidden: [6, 4]}\n"
                + "training: {epochs: 5, batchSize: 17, learningRate: 0.0025, seed: -9, seeds: [4, 2], backend: cpu,"
                + " optimizer: sgd, schedules: {temperature: {from: 6, to: 2}, alpha: 0.3},"
                + " checkpoint: {everySteps: 11, minSeconds: 2.5}}\n"
                + "loss: [{name: kd, temperature: 3, alpha: 0.2}]\n");
        Path out = tmp.resolve("out");
        Demo.Settings s = RecipeRunner.settings(r, out, true, true);
        assertFalse(s.embedded);
        assertEquals(tmp.resolve("data/fm").toAbsolutePath(), s.data, "relative to the recipe's folder");
        assertEquals(77, s.teacherSamples);
        assertEquals(33, s.transferSamples);
        assertEquals(21, s.testSamples);
        assertFalse(s.shuffle);
        assertEquals(r.teacher().members(), s.teachers);
        assertArrayEquals(new int[] {9, 5}, s.teachers.get(0).hidden());
        assertEquals(r.teacher().combine(), s.combine);
        assertNull(s.store);
        assertFalse(s.storeOnly);
        assertArrayEquals(new int[] {6, 4}, s.studentHidden);
        assertEquals(5, s.studentEpochs);
        assertEquals(17, s.batchSize);
        assertEquals(0.0025, s.learningRate, 0.0);
        assertEquals(-9L, s.seed);
        assertEquals(List.of(4L, 2L), s.seeds);
        assertEquals("cpu", s.backend);
        assertEquals("sgd", s.optimizer);
        assertSame(r.training().temperature(), s.temperatureSchedule);
        assertEquals(6.0, s.temperatureSchedule.at(0, 5), 1e-12);
        assertEquals(2.0, s.temperatureSchedule.at(4, 5), 1e-12);
        assertEquals(0.3, s.alphaSchedule.at(2, 5), 1e-12);
        assertEquals(11, s.checkpointEverySteps);
        assertEquals(java.time.Duration.ofMillis(2500), s.checkpointMinInterval);
        assertEquals(1, s.losses.size());
        assertEquals("every-setting", s.losses.get(0).getKey(), "one row: under the recipe's name");
        SoftTargetKd kd = (SoftTargetKd) s.losses.get(0).getValue();
        assertEquals(3.0, kd.temperature(), 0.0);
        assertEquals(0.2, kd.alpha(), 0.0);
        assertEquals(Map.of("every-setting", List.of()), s.rowFeatures);
        assertFalse(s.namedRows);
        assertSame(r.resolved(), s.recipe);
        assertEquals(r.origin().asMap(), s.recipeOrigin);
        assertEquals(out, s.out);
        assertTrue(s.saveModels);
        assertTrue(s.progress);
        assertTrue(s.resume);
        assertNotNull(s.report);

        Demo.Settings quiet = RecipeRunner.settings(r, out, false, false);
        assertFalse(quiet.progress);
        assertFalse(quiet.resume);

        // the report is the recipe's, written where the run says
        Path dir = tmp.resolve("report");
        s.report.write(dir, new Demo.Outcome(List.of(new Demo.Row("teacher", "m", 1, 1, 1, "ce", 0.5, Double.NaN, Double.NaN, 1.0)),
                Map.of()));
        assertTrue(java.nio.file.Files.readString(dir.resolve("report.html")).contains("<h1>every-setting</h1>"));
        // a recipe made in code, without an origin: none recorded
        Recipe noOrigin = new Recipe(r.name(), r.source(), r.data(), r.teacher(), r.student(), r.training(), r.objectives(),
                r.resolved(), null);
        assertNull(RecipeRunner.settings(noOrigin, out, false, false).recipeOrigin);
    }

    @Test
    void theDataSourceAndAStoreReachTheRun(@TempDir Path tmp) {
        String rest = "teacher: {hidden: [8], epochs: 1, store: {path: s/kd.d4j, topk: 4, dtype: f32}}\n"
                + "student: {hidden: [4]}\n"
                + "loss: [{name: topk-kd}]\n";
        Demo.Settings embedded = RecipeRunner.settings(parse(tmp, "name: e\ndata: {path: embedded}\n" + rest), tmp, false, false);
        assertTrue(embedded.embedded);
        assertNull(embedded.data);
        assertEquals(tmp.resolve("s/kd.d4j").toAbsolutePath(), embedded.store);
        assertTrue(embedded.storeOnly);
        assertEquals(4, embedded.storeTopK);
        assertEquals(org.distill4j.store.ValueCodec.F32, embedded.storeCodec);
        Demo.Settings auto = RecipeRunner.settings(parse(tmp, "name: a\n" + rest), tmp, false, false);
        assertFalse(auto.embedded);
        assertNull(auto.data, "no data.path: the lookup chain");
    }

    /** Named rows: a loss per row under its name, each with its own feature terms; a weighted or several-term row is a sum. */
    @Test
    void namedRowsReachTheRunWithTheirOwnLossesAndFeatures(@TempDir Path tmp) {
        Recipe r = parse(tmp, "name: rows\n"
                + "teacher: {hidden: [8, 6], epochs: 1}\n"
                + "student: {hidden: [4, 3]}\n"
                + "loss:\n"
                + "  kd: [{name: kd, temperature: 2}]\n"
                + "  half: [{name: kd, weight: 0.5}]\n"
                + "  mixed: [{name: ce, weight: 0.25}, {name: kd, weight: 2}, {name: rkd, weight: 0.75, student: 1, teacher: 0}]\n"
                + "  first-whole: [{name: kd}, {name: ce, weight: 0.5}]\n");
        Demo.Settings s = RecipeRunner.settings(r, tmp, false, false);
        assertTrue(s.namedRows);
        assertEquals(List.of("kd", "half", "mixed", "first-whole"), s.losses.stream().map(Map.Entry::getKey).toList());
        assertTrue(s.losses.get(0).getValue() instanceof SoftTargetKd, "a single term of weight 1 is the loss itself");
        WeightedSum half = (WeightedSum) s.losses.get(1).getValue();
        assertEquals(1, half.terms().size());
        assertEquals(0.5, half.terms().get(0).currentWeight(), 0.0);
        WeightedSum mixed = (WeightedSum) s.losses.get(2).getValue();
        assertEquals(List.of("ce", "kd"), mixed.terms().stream().map(t -> t.loss().name()).toList(), "the logit terms only");
        assertEquals(List.of(0.25, 2.0), mixed.terms().stream().map(WeightedSum.Term::currentWeight).toList());
        WeightedSum firstWhole = (WeightedSum) s.losses.get(3).getValue();
        assertEquals(List.of(1.0, 0.5), firstWhole.terms().stream().map(WeightedSum.Term::currentWeight).toList(),
                "two logit terms are a sum, also when the first has weight 1");
        assertEquals(List.of(), s.rowFeatures.get("kd"));
        List<Demo.FeatureTerm> f = s.rowFeatures.get("mixed");
        assertEquals(1, f.size());
        assertEquals("rkd", f.get(0).name());
        assertEquals(0.75, f.get(0).weight(), 0.0);
        assertEquals(1, f.get(0).studentLayer());
        assertEquals(0, f.get(0).teacherLayer());
        LogitLoss one = RecipeRunner.loss(List.of(new Recipe.LossTerm("kd", 1.0, Map.of("temperature", 5.0))));
        assertEquals(5.0, ((SoftTargetKd) one).temperature(), 0.0);
    }
}
