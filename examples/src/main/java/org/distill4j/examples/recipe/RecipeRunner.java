package org.distill4j.examples.recipe;

import org.distill4j.examples.Demo;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.Losses;
import org.distill4j.loss.WeightedSum;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a {@link Recipe}: the demo's experiment with the recipe's models and losses (the teacher, the student alone, and a
 * distilled row per objective), plus the report.
 */
public final class RecipeRunner {
    private RecipeRunner() {
    }

    /** A distilled row's logit objective: its single logit term, or a weighted sum of its logit terms (feature terms apart). */
    public static LogitLoss loss(List<Recipe.LossTerm> terms) {
        List<Recipe.LossTerm> logit = terms.stream().filter(t -> !t.feature()).toList();
        if (logit.size() == 1 && logit.get(0).weight() == 1.0) {
            return Losses.create(logit.get(0).name(), logit.get(0).settings());
        }
        WeightedSum.Builder b = WeightedSum.builder();
        for (Recipe.LossTerm t : logit) {
            b.add(t.weight(), Losses.create(t.name(), t.settings()));
        }
        return b.build();
    }

    /** A distilled row's feature terms. */
    static List<Demo.FeatureTerm> features(List<Recipe.LossTerm> terms) {
        return terms.stream().filter(Recipe.LossTerm::feature)
                .map(t -> new Demo.FeatureTerm(t.name(), t.weight(), t.settings(), t.studentLayer(), t.teacherLayer(), t.studentName(),
                        t.teacherName())).toList();
    }

    /** Runs {@code r} into {@code out}; with {@code resume} each row continues from its checkpoint there. */
    public static Demo.Outcome run(Recipe r, Path out, boolean progress, boolean resume, PrintStream console) throws IOException {
        Demo.Outcome o = Demo.runDetailed(settings(r, out, progress, resume), console);
        console.println("wrote " + out.resolve("report.html") + " (with metrics.csv, curves.png, accuracy.png) and the trained"
                + " models as <row>.zip (distill eval)");
        return o;
    }

    /** The demo's settings that run {@code r}. */
    static Demo.Settings settings(Recipe r, Path out, boolean progress, boolean resume) {
        Demo.Settings s = new Demo.Settings();
        s.embedded = "embedded".equals(r.data().path());
        s.data = r.data().path() == null || s.embedded ? null : RecipeLoader.relative(r.source(), r.data().path());
        s.teacherSamples = r.data().teacherSamples();
        s.transferSamples = r.data().transferSamples();
        s.unlabeledSamples = r.data().unlabeledSamples();
        s.testSamples = r.data().testSamples();
        s.shuffle = r.data().shuffle();
        s.teachers = r.teacher().members();
        s.combine = r.teacher().combine();
        if (r.teacher().store() != null) {
            s.store = r.teacher().store().path();
            s.storeOnly = true;
            s.storeTopK = r.teacher().store().topK();
            s.storeCodec = org.distill4j.store.ValueCodec.parse(r.teacher().store().dtype());
        }
        s.studentHidden = r.student().hidden();
        s.studentConv = r.student().conv();
        s.studentEpochs = r.training().epochs();
        s.batchSize = r.training().batchSize();
        s.learningRate = r.training().learningRate();
        s.seed = r.training().seed();
        s.seeds = r.training().seeds();
        s.backend = r.training().backend();
        s.optimizer = r.training().optimizer();
        s.temperatureSchedule = r.training().temperature();
        s.alphaSchedule = r.training().alpha();
        s.mixup = r.training().mixup();
        s.shift = r.training().shift();
        s.flip = r.training().flip();
        s.checkpointEverySteps = r.training().checkpointEverySteps();
        s.checkpointMinInterval = r.training().checkpointMinInterval();
        // one row "student distilled" (its gain under the recipe's name), or a row "distilled: <name>" per named objective
        List<Map.Entry<String, LogitLoss>> losses = new ArrayList<>();
        Map<String, List<Demo.FeatureTerm>> features = new LinkedHashMap<>();
        for (Recipe.Objective o : r.objectives()) {
            String key = o.row() == null ? r.name() : o.row();
            losses.add(Map.entry(key, loss(o.terms())));
            features.put(key, features(o.terms()));
        }
        s.losses = losses;
        s.rowFeatures = features;
        s.namedRows = r.namedRows();
        s.recipe = r.resolved();
        s.recipeOrigin = r.origin() == null ? null : r.origin().asMap();
        s.out = out;
        s.saveModels = true;
        s.progress = progress;
        s.resume = resume;
        s.report = (dir, outcome) -> Report.write(dir, r.name(), outcome); // while the run holds the folder
        return s;
    }
}
