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
import static org.junit.jupiter.api.Assertions.assertFalse;
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

    /** A row over {@code runs} with {@code std} as given (a results.json restored without one has NaN). */
    private static Demo.Row spread(String name, List<Double> runs, double std) {
        List<Long> seeds = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            seeds.add((long) i + 1);
        }
        return new Demo.Row(name, "784-8-10", 100, 300, 2, "kd", Demo.mean(runs), Double.NaN, Double.NaN, 1.0, seeds, runs, std);
    }

    /**
     * accuracy.png's layout follows its rows: names are rotated once there are more than four rows or a name longer than 14
     * characters; the y axis starts at the multiple of 5 below the lowest bar (a spread's lower end included), less 5; the
     * title says when rows are means over seeds.
     */
    @Test
    void theAccuracyChartsAxesAndTitleFollowItsRows() {
        List<Demo.Row> four = List.of(row("teacher", 0.85, null), row("student alone", 0.80, null), row("a", 0.81, null),
                row("fourteen-chars", 0.82, null));
        assertEquals(14, four.get(3).name().length());
        CategoryChart c = Report.accuracyChart("t", four);
        assertEquals(0, c.getStyler().getXAxisLabelRotation(), "four short names fit side by side");
        assertEquals("t: final test accuracy", c.getTitle());
        // lowest bar 80% -> floor(80 / 5) * 5 - 5 = 75
        assertEquals(75.0, c.getStyler().getYAxisMin(), 0.0);
        assertEquals(100.0, c.getStyler().getYAxisMax(), 0.0);
        List<Demo.Row> five = new ArrayList<>(four);
        five.add(row("b", 0.83, null));
        assertEquals(30, Report.accuracyChart("t", five).getStyler().getXAxisLabelRotation(), "five rows");
        List<Demo.Row> longName = new ArrayList<>(four.subList(0, 3));
        longName.add(row("fifteen-chars-x", 0.82, null));
        assertEquals(30, Report.accuracyChart("t", longName).getStyler().getXAxisLabelRotation(), "a 15-character name");

        // over seeds: the lowest end is the mean less one std: 100 * (0.72 - 0.0282843) = 69.17 -> 65 - 5 = 60; a row without
        // a known accuracy and a row of one seed do not lower it (a one-seed row at 75%), nor one whose std is unknown
        List<Demo.Row> seeded = List.of(row("teacher", 0.85, null), row("student alone", 0, List.of(0.70, 0.74)),
                row("not known", Double.NaN, null), row("one seed", 0, List.of(0.75)), spread("std lost", List.of(0.80, 0.90), Double.NaN));
        CategoryChart s = Report.accuracyChart("t", seeded);
        assertEquals(60.0, s.getStyler().getYAxisMin(), 0.0);
        assertEquals("t: final test accuracy (mean ± std over seeds)", s.getTitle());
        // the lowest bar near 0: the axis starts at 0, not below
        assertEquals(0.0, Report.accuracyChart("t", List.of(row("low", 0.03, null))).getStyler().getYAxisMin(), 0.0);
        assertEquals(10.0, Report.accuracyChart("t", List.of(row("at 15", 0.15, null))).getStyler().getYAxisMin(), 0.0);
        assertEquals(10.0, Report.accuracyChart("t", List.of(row("at 19.9", 0.199, null))).getStyler().getYAxisMin(), 0.0);
    }

    /**
     * Every series of accuracy.png draws a bar (one bar a row): when every row is over seeds there is no series of nulls
     * beside theirs; a row over seeds whose accuracy is not known has no bar and no series, and the chart is still drawn.
     */
    @Test
    void everySeriesOfTheAccuracyChartDrawsABar(@TempDir Path tmp) throws Exception {
        List<Demo.Row> rows = List.of(row("student alone", 0, List.of(0.70, 0.74)), row("student distilled", 0, List.of(0.80, 0.86)),
                row("lost", 0, List.of(Double.NaN, Double.NaN)));
        CategoryChart c = Report.accuracyChart("t", rows);
        assertEquals(List.of("test accuracy: student alone", "test accuracy: student distilled"), new ArrayList<>(c.getSeriesMap().keySet()));
        for (CategorySeries s : c.getSeriesMap().values()) {
            assertEquals(1, new ArrayList<>(s.getYData()).stream().filter(java.util.Objects::nonNull).count(), s.getName());
        }
        Path png = tmp.resolve("a.png");
        Report.accuracy(png, "t", rows);
        assertEquals(900, ImageIO.read(png.toFile()).getWidth());
    }

    /** The pixels of {@code png}. */
    private static int[] pixels(Path png) throws Exception {
        BufferedImage img = ImageIO.read(png.toFile());
        return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    }

    private static Map<Long, org.distill4j.train.DistillResult> once(org.distill4j.train.DistillResult r) {
        Map<Long, org.distill4j.train.DistillResult> m = new LinkedHashMap<>();
        m.put(null, r);
        return m;
    }

    /**
     * curves.png draws, for a row over seeds, the per-epoch mean of its seeds' test accuracies (in percent, at epochs 1, 2,
     * ...), over the epochs every seed has, named with the number of seeds: the same picture as one row with those means.
     * A row of one seed is named plainly, and a row without epochs is left out.
     */
    @Test
    void theCurveOverSeedsIsThePerEpochMeanOfItsSeeds(@TempDir Path tmp) throws Exception {
        Map<String, Map<Long, org.distill4j.train.DistillResult>> seeded = new LinkedHashMap<>();
        seeded.put("teacher", once(result(List.of("ce"), 0.55, 0.65, 0.71)));
        Map<Long, org.distill4j.train.DistillResult> two = new LinkedHashMap<>();
        two.put(3L, result(List.of("kd"), 0.40, 0.62, 0.99));
        two.put(-8L, result(List.of("kd"), 0.60, 0.70));
        seeded.put("d", two);
        Map<Long, org.distill4j.train.DistillResult> one = new LinkedHashMap<>();
        one.put(5L, result(List.of("kd"), 0.30, 0.45, 0.52));
        seeded.put("single", one);
        seeded.put("empty", once(result(List.of())));
        Map<String, Map<Long, org.distill4j.train.DistillResult>> expected = new LinkedHashMap<>();
        expected.put("teacher", once(result(List.of("ce"), 0.55, 0.65, 0.71)));
        expected.put("d (mean of 2 seeds)", once(result(List.of("kd"), (0.40 + 0.60) / 2, (0.62 + 0.70) / 2)));
        expected.put("single", once(result(List.of("kd"), 0.30, 0.45, 0.52)));
        Report.curves(tmp.resolve("seeded.png"), "t", seeded);
        Report.curves(tmp.resolve("expected.png"), "t", expected);
        assertTrue(java.util.Arrays.equals(pixels(tmp.resolve("expected.png")), pixels(tmp.resolve("seeded.png"))),
                "curves.png over seeds differs from the chart of the per-epoch means");
        // and the picture does depend on the values (the comparison can fail)
        expected.put("d (mean of 2 seeds)", once(result(List.of("kd"), 0.40, 0.62)));
        Report.curves(tmp.resolve("other.png"), "t", expected);
        assertFalse(java.util.Arrays.equals(pixels(tmp.resolve("other.png")), pixels(tmp.resolve("seeded.png"))));
    }

    /**
     * metrics.csv of a run over seeds has a seed column after the row: each seed's epochs under its seed, in the order of
     * the rows, and the rows trained once (the teacher) with the column empty; a run without seeds has no such column.
     */
    @Test
    void metricsOverSeedsHaveASeedColumn(@TempDir Path tmp) throws Exception {
        List<Demo.Row> rows = List.of(row("teacher", 0.9, null), row("student alone", 0, List.of(0.5, 0.6)),
                row("student distilled", 0, List.of(0.7, 0.8)));
        Map<String, org.distill4j.train.DistillResult> results = new LinkedHashMap<>();
        results.put("teacher", result(List.of("ce"), 0.9));
        results.put("unlisted", result(List.of("ce"), 0.1)); // not a row of the table: not in the file
        Map<String, Map<Long, org.distill4j.train.DistillResult>> runs = new LinkedHashMap<>();
        Map<Long, org.distill4j.train.DistillResult> distilled = new LinkedHashMap<>();
        distilled.put(7L, result(List.of("kd"), 0.7));
        distilled.put(-2L, result(List.of("kd"), 0.8));
        runs.put("student distilled", distilled); // not in the rows' order: the file follows the rows
        Map<Long, org.distill4j.train.DistillResult> alone = new LinkedHashMap<>();
        alone.put(7L, result(List.of("ce"), 0.5));
        alone.put(-2L, result(List.of("ce"), 0.6));
        runs.put("student alone", alone);
        List<Demo.Row> withUntrained = new ArrayList<>(rows);
        withUntrained.add(1, row("not trained here", 0.5, null)); // a row without per-epoch results: no lines
        assertEquals(List.of("teacher", "student alone", "student distilled"),
                List.copyOf(Report.runs(new Demo.Outcome(withUntrained, results, runs)).keySet()));
        Report.write(tmp, "t", new Demo.Outcome(withUntrained, results, runs));
        List<String> lines = Files.readAllLines(tmp.resolve("metrics.csv"));
        assertEquals("row,seed,epoch,loss,loss_ce,loss_kd,temperature,alpha,test_accuracy,teacher_agreement,teacher_kl,"
                + "samples_per_second,train_seconds,eval_seconds", lines.get(0));
        assertEquals(List.of("\"teacher\",,1,1.25000,0.500000,,", "\"student alone\",7,1,1.25000,0.500000,,",
                "\"student alone\",-2,1,1.25000,0.500000,,", "\"student distilled\",7,1,1.25000,,0.500000,",
                "\"student distilled\",-2,1,1.25000,,0.500000,"),
                lines.subList(1, lines.size()).stream().map(l -> l.substring(0, l.indexOf(",4.00000,") + 1)).toList());
        assertEquals(List.of("0.500000", "0.600000", "0.700000", "0.800000"), lines.subList(2, lines.size()).stream()
                .map(l -> l.split(",")[8]).toList(), "each seed's own accuracy");

        Path plain = tmp.resolve("plain");
        Report.write(plain, "t", new Demo.Outcome(List.of(row("teacher", 0.9, null)), Map.of("teacher", result(List.of("ce"), 0.9))));
        assertEquals(List.of("row,epoch,loss,loss_ce,temperature,alpha,test_accuracy,teacher_agreement,teacher_kl,"
                        + "samples_per_second,train_seconds,eval_seconds", "\"teacher\",1,1.25000,0.500000,4.00000,0.100000,0.900000,,,100.000,"
                        + "1.00000,1.00000"), Files.readAllLines(plain.resolve("metrics.csv")));
    }

    /**
     * report.html: the gain over the student alone is "-" where either accuracy is not known, and a single difference where
     * the two rows were not trained over the same seeds; agreement and samples/s are shown where known, "-" elsewhere; and
     * without a student alone row no row has a gain.
     */
    @Test
    void theReportsGainAgreementAndSpeedColumns() {
        Demo.Row alone = row("student alone", 0, List.of(0.70, 0.74));
        String html = Report.html("t", List.of(row("teacher", 0.85, null), alone,
                row("distilled: nan", Double.NaN, null),
                row("distilled: once", 0.80, null),
                new Demo.Row("distilled: other seeds", "m", 1, 1, 1, "kd", 0.75, 0.912345, 12345.6, 2.0, List.of(8L, 9L),
                        List.of(0.74, 0.76), Demo.std(List.of(0.74, 0.76)))));
        assertTrue(html.contains("<td>distilled: nan</td><td>784-8-10</td><td>ce</td><td>300</td><td>2</td><td>NaN%</td><td>-</td>"),
                html);
        assertTrue(html.contains("<td>80.00%</td><td>+8.00</td><td>-</td><td>-</td><td>1.0</td>"), html);
        assertTrue(html.contains("<td>85.00%</td><td>-</td><td>-</td><td>-</td><td>1.0</td>"), "the teacher has no gain: " + html);
        assertTrue(html.contains("<td>72.00 ± 2.83% (2 seeds)</td><td>-</td>"), "nor the student alone: " + html);
        assertTrue(html.contains("<td>75.00 ± 1.41% (2 seeds)</td><td>+3.00</td><td>91.23%</td><td>12,346</td><td>2.0</td>"), html);
        assertEquals("-", Report.gainText(row("d", 0.8, null), row("student alone", Double.NaN, null)), "the alone's not known");
        assertEquals("+10.00", Report.gainText(row("d", 0.8, null), row("student alone", 0.7, null)));
        assertEquals("-2.00", Report.gainText(row("student alone", 0, List.of(0.72, 0.68)), row("d", 0.72, null)),
                "one row over seeds, the other once: the difference of the means");
        String none = Report.html("t", List.of(row("teacher", 0.85, null), row("student distilled", 0.8, null)));
        assertEquals(0, none.split("<td>[+-][0-9]", -1).length - 1, "no student alone: no gain: " + none);
    }
}
