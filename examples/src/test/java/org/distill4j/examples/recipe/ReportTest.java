package org.distill4j.examples.recipe;

import org.distill4j.examples.Demo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategorySeries;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

class ReportTest {
    /** A row trained once (runs null) or over seeds. */
    private static Demo.Row row(String name, double accuracy, List<Double> runs) {
        if (runs == null) {
            return new Demo.Row(name, "784-8-10", 100, 300, 2, "ce", accuracy, Double.NaN, Double.NaN, 1.0);
        }
        List<Long> seeds = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            seeds.add((long) i + 1);
        }
        return new Demo.Row(name, "784-8-10", 100, 300, 2, "kd", Demo.mean(runs), Double.NaN, Double.NaN, 1.0, seeds, runs,
                Demo.std(runs));
    }

    /**
     * accuracy.png over seeds: each row is one bar at its (mean) accuracy; a row with a spread (several seeds) has an error
     * bar of one standard deviation, and a row without one (the teacher, trained once; a single seed) has none, not a cap of
     * zero height. XChart draws a series' error bars at each of its bars, so this reads the series the chart is given.
     */
    @Test
    void onlyRowsWithASpreadHaveAnErrorBar(@TempDir Path tmp) throws Exception {
        List<Demo.Row> rows = List.of(row("teacher", 0.85, null), row("student alone", 0, List.of(0.70, 0.74)),
                row("student distilled", 0, List.of(0.80, 0.81, 0.83)), row("one seed", 0, List.of(0.75)));
        CategoryChart c = Report.accuracyChart("t", rows);
        for (int i = 0; i < rows.size(); i++) {
            Demo.Row r = rows.get(i);
            List<CategorySeries> bars = new ArrayList<>();
            for (CategorySeries s : c.getSeriesMap().values()) {
                assertEquals(rows.stream().map(Demo.Row::name).toList(), new ArrayList<>(s.getXData()), "every series spans the rows");
                if (new ArrayList<>(s.getYData()).get(i) != null) {
                    bars.add(s);
                }
            }
            assertEquals(1, bars.size(), r.name() + ": one bar");
            assertEquals(100 * r.testAccuracy(), new ArrayList<>(bars.get(0).getYData()).get(i).doubleValue(), 1e-9, r.name());
            List<? extends Number> errors = bars.get(0).getExtraValues() == null ? null : new ArrayList<>(bars.get(0).getExtraValues());
            if (r.repeated()) {
                assertNotNull(errors, r.name() + " has a spread: an error bar");
                assertEquals(100 * r.testAccuracyStd(), errors.get(i).doubleValue(), 1e-9, r.name());
            } else {
                assertNull(errors, r.name() + " has no spread: no error bar (its values: " + errors + ")");
            }
        }
        Path png = tmp.resolve("accuracy.png");
        Report.accuracy(png, "t", rows);
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(900, img.getWidth());

        // without seeds: one series, no error bars at all
        CategoryChart once = Report.accuracyChart("t", List.of(row("teacher", 0.85, null), row("student alone", 0.7, null)));
        assertEquals(1, once.getSeriesMap().size());
        assertNull(once.getSeriesMap().values().iterator().next().getExtraValues());
    }
}
