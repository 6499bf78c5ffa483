package org.distill4j.examples.recipe;

import org.distill4j.examples.Demo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategorySeries;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
            double bar = new ArrayList<>(bars.get(0).getYData()).get(i).doubleValue();
            assertEquals(100 * r.testAccuracy(), bar, 0.005, r.name());
            // a bar's label prints its value: two decimals, as in the table (not 81.33333333333333)
            assertTrue(new java.math.BigDecimal(Double.toString(bar)).scale() <= 2, r.name() + ": " + bar);
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

        // a bar says what the table says, also where the mean of two seeds' accuracies falls on a .xx5 tie
        for (int a = 0; a < 10_000; a += 7) {
            Demo.Row pair = row("pair", 0, List.of(a / 10_000.0, (a + 1) / 10_000.0));
            CategoryChart one = Report.accuracyChart("t", List.of(pair));
            double bar = one.getSeriesMap().values().stream().map(x -> new ArrayList<>(x.getYData()).get(0)).filter(java.util.Objects::nonNull)
                    .findFirst().orElseThrow().doubleValue();
            assertEquals(pair.accuracyText("±").split("±")[0], String.format(java.util.Locale.ROOT, "%.2f", bar), "seeds " + a + ", " + (a + 1));
        }

        // without seeds: one series, no error bars at all
        CategoryChart once = Report.accuracyChart("t", List.of(row("teacher", 0.85, null), row("student alone", 0.7, null)));
        assertEquals(1, once.getSeriesMap().size());
        assertNull(once.getSeriesMap().values().iterator().next().getExtraValues());
    }

    /** A result of one epoch per accuracy, its loss terms in the order given (as Distiller adds them). */
    private static org.distill4j.train.DistillResult result(List<String> terms, double... accuracies) {
        List<org.distill4j.train.EpochMetrics> epochs = new ArrayList<>();
        for (int e = 0; e < accuracies.length; e++) {
            Map<String, Double> t = new LinkedHashMap<>();
            for (int i = 0; i < terms.size(); i++) {
                t.put(terms.get(i), i + 0.5);
            }
            epochs.add(new org.distill4j.train.EpochMetrics(e, accuracies.length, 1.25, t, 4, 0.1, accuracies[e], Double.NaN, Double.NaN,
                    100, 1, 1));
        }
        return new org.distill4j.train.DistillResult(epochs, accuracies.length == 0 ? Double.NaN : accuracies[accuracies.length - 1],
                Double.NaN, 100, 1, "cpu", "cpu");
    }

    /**
     * metrics.csv has the same columns in the same order on every run: the loss terms' columns were in the order of an
     * immutable map's iteration, which differs from one JVM to the next, so two runs of one recipe gave different files.
     */
    /**
     * report.html's gain column: each distilled row's accuracy minus the student alone's, in points, over seeds the mean ±
     * sample std of the paired differences; none for the teacher and the student alone.
     */
    @Test
    void theReportShowsEachDistilledRowsPairedGain() {
        List<Demo.Row> seeded = List.of(row("teacher", 0.85, null), row("student alone", 0, List.of(0.70, 0.74, 0.72)),
                row("distilled: kd", 0, List.of(0.80, 0.81, 0.76)), row("distilled: dkd", 0, List.of(0.69, 0.75, 0.73)));
        String html = Report.html("t", seeded);
        // kd: differences 10, 7, 4 points -> mean 7, sample std 3; dkd: -1, 1, 1 -> mean 1/3, std 1.1547
        assertTrue(html.contains("<td>79.00 ± 2.65% (3 seeds)</td><td>+7.00 ± 3.00</td>"), html);
        assertTrue(html.contains("<td>+0.33 ± 1.15</td>"), html);
        assertTrue(html.contains("<td>teacher</td>") && html.split("<td>-</td>", -1).length - 1 >= 2, "teacher and alone have none");
        String once = Report.html("t", List.of(row("teacher", 0.85, null), row("student alone", 0.70, null),
                row("student distilled", 0.7525, null)));
        assertTrue(once.contains("<td>+5.25</td>"), once);
    }

    @Test
    void metricsColumnsDoNotDependOnTheJvm() {
        List<String> terms = List.of("kd", "ce", "zeta", "alpha", "b", "hint", "rkd", "sp");
        Map<String, Map<Long, org.distill4j.train.DistillResult>> runs = new LinkedHashMap<>();
        Map<Long, org.distill4j.train.DistillResult> one = new LinkedHashMap<>();
        one.put(null, result(terms, 0.5));
        runs.put("student distilled", one);
        String csv = Report.metricsCsv(runs, false);
        assertEquals("row,epoch,loss,loss_alpha,loss_b,loss_ce,loss_hint,loss_kd,loss_rkd,loss_sp,loss_zeta,temperature,alpha,"
                + "test_accuracy,teacher_agreement,teacher_kl,samples_per_second,train_seconds,eval_seconds", csv.lines().findFirst().orElseThrow());
        assertTrue(csv.contains("\n\"student distilled\",1,1.25000,3.50000,4.50000,1.50000,5.50000,0.500000,6.50000,7.50000,2.50000,4.00000,"
                + "0.100000,0.500000,,,100.000,"), csv);
    }

    /**
     * The report is written whatever its rows hold: a row trained one epoch, a test accuracy that is NaN (an epoch without
     * test data, a restored row without history), a row without epochs; names with CSV and HTML specials are quoted and
     * escaped.
     */
    @Test
    void oneEpochNaNAndOddNamesStillGiveEveryFile(@TempDir Path tmp) throws Exception {
        String odd = "a \"b\", <i>c</i> & d\ne";
        Map<String, org.distill4j.train.DistillResult> results = new LinkedHashMap<>();
        results.put("teacher", result(List.of("ce"), 0.9));
        results.put(odd, result(List.of("ce", "kd"), Double.NaN, 0.3));
        results.put("not a number", result(List.of("ce"), Double.NaN));
        results.put("no epochs", result(List.of()));
        List<Demo.Row> rows = new ArrayList<>();
        results.forEach((name, r) -> rows.add(new Demo.Row(name, "784-8-10 <x>", 100, 300, r.epochs().size(), "ce", r.testAccuracy(),
                Double.NaN, Double.NaN, 1.0)));
        Report.write(tmp, "t <&> \"q\"", new Demo.Outcome(rows, results));
        for (String png : new String[] {"curves.png", "accuracy.png"}) {
            assertEquals(900, ImageIO.read(tmp.resolve(png).toFile()).getWidth(), png);
        }
        String csv = Files.readString(tmp.resolve("metrics.csv"));
        assertTrue(csv.contains("\n\"a \"\"b\"\", <i>c</i> & d\ne\",1,1.25000,0.500000,1.50000,4.00000,0.100000,,,,100.000,"), csv);
        assertTrue(csv.contains("\n\"not a number\",1,1.25000,0.500000,,4.00000,0.100000,,,,100.000,"), csv);
        String html = Files.readString(tmp.resolve("report.html"));
        assertTrue(html.contains("<title>t &lt;&amp;&gt; &quot;q&quot; - Distill4J run</title>")
                && html.contains("<tr><td>a &quot;b&quot;, &lt;i&gt;c&lt;/i&gt; &amp; d\ne</td><td>784-8-10 &lt;x&gt;</td>")
                && !html.contains("<i>"), html);
        try (var files = Files.list(tmp)) {
            assertEquals(List.of("accuracy.png", "curves.png", "metrics.csv", "report.html"),
                    files.map(f -> f.getFileName().toString()).sorted().toList(), "no temporary files left");
        }
        // no row with a known accuracy: empty axes, still a picture
        Path none = tmp.resolve("none.png");
        Report.accuracy(none, "t", List.of(rows.get(2), rows.get(3)));
        assertEquals(900, ImageIO.read(none.toFile()).getWidth());
    }
}
