package org.distill4j.examples.recipe;

import org.distill4j.examples.AtomicFiles;
import org.distill4j.examples.Demo;
import org.distill4j.train.DistillResult;
import org.distill4j.train.EpochMetrics;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The files a run leaves besides results.json and provenance.json: {@code metrics.csv} (one line per
 * trained row and epoch), {@code curves.png} (test accuracy per epoch), {@code accuracy.png} (final
 * accuracy per row) and {@code report.html}, one page that shows them. Charts are drawn with XChart,
 * headless. A row trained over several seeds ({@code training.seeds}) has a metrics line per seed and
 * epoch (a {@code seed} column, empty for the rows trained once), its curve is the per-epoch mean over
 * the seeds, its bar has an error bar of one standard deviation, and the table shows mean ± std.
 */
public final class Report {
    private Report() {
    }

    public static void write(Path dir, String title, Demo.Outcome o) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Files.createDirectories(dir);
        Map<String, Map<Long, DistillResult>> runs = runs(o);
        AtomicFiles.writeString(dir.resolve("metrics.csv"), metricsCsv(runs, !o.runs().isEmpty()));
        curves(dir.resolve("curves.png"), title, runs);
        accuracy(dir.resolve("accuracy.png"), title, o.rows());
        AtomicFiles.writeString(dir.resolve("report.html"), html(title, o.rows()));
    }

    /**
     * Every trained row's runs in the order of the rows: by seed for a row over seeds, else its one result under a null
     * seed.
     */
    static Map<String, Map<Long, DistillResult>> runs(Demo.Outcome o) {
        Map<String, Map<Long, DistillResult>> out = new LinkedHashMap<>();
        for (Demo.Row r : o.rows()) {
            if (o.runs().containsKey(r.name())) {
                out.put(r.name(), o.runs().get(r.name()));
            } else if (o.results().containsKey(r.name())) {
                Map<Long, DistillResult> one = new LinkedHashMap<>();
                one.put(null, o.results().get(r.name()));
                out.put(r.name(), one);
            }
        }
        return out;
    }

    /** The lines of {@code runs}; with {@code seedColumn} a {@code seed} column after {@code row} (empty for rows trained once). */
    static String metricsCsv(Map<String, Map<Long, DistillResult>> runs, boolean seedColumn) {
        // sorted: EpochMetrics keeps its terms in an immutable map, whose order differs from one JVM to the next
        Set<String> terms = new TreeSet<>();
        runs.values().forEach(m -> m.values().forEach(r -> r.epochs().forEach(e -> terms.addAll(e.terms().keySet()))));
        StringBuilder sb = new StringBuilder(seedColumn ? "row,seed,epoch,loss" : "row,epoch,loss");
        terms.forEach(t -> sb.append(",loss_").append(t));
        sb.append(",temperature,alpha,test_accuracy,teacher_agreement,teacher_kl,samples_per_second,train_seconds,eval_seconds\n");
        for (Map.Entry<String, Map<Long, DistillResult>> row : runs.entrySet()) {
            for (Map.Entry<Long, DistillResult> r : row.getValue().entrySet()) {
                for (EpochMetrics e : r.getValue().epochs()) {
                    sb.append('"').append(row.getKey().replace("\"", "\"\"")).append('"').append(',');
                    if (seedColumn) {
                        sb.append(r.getKey() == null ? "" : r.getKey().toString()).append(',');
                    }
                    sb.append(e.epoch() + 1).append(',').append(num(e.loss()));
                    for (String t : terms) {
                        Double v = e.terms().get(t);
                        sb.append(',').append(v == null ? "" : num(v));
                    }
                    sb.append(',').append(num(e.temperature())).append(',').append(num(e.alpha())).append(',').append(num(e.testAccuracy()))
                            .append(',').append(num(e.teacherAgreement())).append(',').append(num(e.teacherKl()))
                            .append(',').append(num(e.samplesPerSecond()))
                            .append(',').append(num(e.trainSeconds())).append(',').append(num(e.evalSeconds())).append('\n');
                }
            }
        }
        return sb.toString();
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.6g", v);
    }

    /** Test accuracy per epoch, one line per row: over seeds, the mean of the seeds' accuracies at each epoch. */
    static void curves(Path png, String title, Map<String, Map<Long, DistillResult>> runs) throws IOException {
        XYChart c = new XYChartBuilder().width(900).height(540).title(title + ": test accuracy per epoch")
                .xAxisTitle("epoch").yAxisTitle("test accuracy (%)").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideSE);
        c.getStyler().setMarkerSize(5);
        for (Map.Entry<String, Map<Long, DistillResult>> r : runs.entrySet()) {
            int epochs = r.getValue().values().stream().mapToInt(d -> d.epochs().size()).min().orElse(0);
            if (epochs == 0) {
                continue; // nothing to draw (XChart refuses an empty series)
            }
            double[] x = new double[epochs];
            double[] y = new double[epochs];
            for (int i = 0; i < x.length; i++) {
                int epoch = i;
                x[i] = i + 1;
                y[i] = 100 * Demo.mean(r.getValue().values().stream().map(d -> d.epochs().get(epoch).testAccuracy()).toList());
            }
            c.addSeries(r.getValue().size() > 1 ? r.getKey() + " (mean of " + r.getValue().size() + " seeds)" : r.getKey(), x, y);
        }
        save(c, png);
    }

    /** An accuracy in percent to two decimals, as the table shows it (a bar's label prints its value as given). */
    static double percent(double accuracy) {
        return Double.parseDouble(String.format(Locale.ROOT, "%.2f", 100 * accuracy)); // the table's rounding (Row.accuracyText)
    }

    static void accuracy(Path png, String title, List<Demo.Row> rows) throws IOException {
        save(accuracyChart(title, rows), png);
    }

    /**
     * The final test accuracy per row, as bars. A row over several seeds has an error bar of one standard deviation; a row
     * without a spread (the teacher, trained once; a single seed) has none. XChart draws an error bar at every bar of a
     * series given errors (a flat cap for an error of 0), so the rows without a spread share a series without errors, and
     * each row with one is a series of its own that has its value at its category only (null elsewhere: not drawn). The
     * series overlap, in one colour: one bar a row.
     */
    static CategoryChart accuracyChart(String title, List<Demo.Row> rows) {
        CategoryChart c = new CategoryChartBuilder().width(900).height(540).title(title + ": final test accuracy")
                .xAxisTitle("model").yAxisTitle("test accuracy (%)").build();
        c.getStyler().setLegendVisible(false);
        c.getStyler().setLabelsVisible(true);
        c.getStyler().setOverlapped(true);
        if (rows.size() > 4 || rows.stream().anyMatch(r -> r.name().length() > 14)) {
            c.getStyler().setXAxisLabelRotation(30); // side by side, row names such as "distilled: reverse-kl" overlap
        }
        List<String> names = new ArrayList<>();
        List<Double> once = new ArrayList<>();
        double min = 100;
        for (Demo.Row r : rows) {
            names.add(r.name());
            boolean known = !Double.isNaN(r.testAccuracy()); // no bar for an accuracy that is not known (XChart fails on a NaN)
            once.add(r.repeated() || !known ? null : percent(r.testAccuracy()));
            if (known) {
                min = Math.min(min, 100 * r.testAccuracy() - (r.repeated() && !Double.isNaN(r.testAccuracyStd()) ? 100 * r.testAccuracyStd() : 0));
            }
        }
        c.getStyler().setYAxisMin(Math.max(0, Math.floor(min / 5) * 5 - 5));
        c.getStyler().setYAxisMax(100.0);
        java.awt.Color color = c.getStyler().getSeriesColors()[0];
        if (once.stream().anyMatch(java.util.Objects::nonNull)) {
            c.addSeries("test accuracy", names, once).setFillColor(color);
        }
        for (int i = 0; i < rows.size(); i++) {
            Demo.Row r = rows.get(i);
            if (r.repeated() && !Double.isNaN(r.testAccuracy())) {
                List<Double> mean = new ArrayList<>(java.util.Collections.nCopies(rows.size(), (Double) null));
                mean.set(i, percent(r.testAccuracy()));
                SpreadSeries series = new SpreadSeries("test accuracy: " + r.name(), names, mean, 100 * r.testAccuracyStd());
                series.setFillColor(color);
                c.getSeriesMap().put(series.getName(), series); // what CategoryChart.addSeries does, with this series
            }
        }
        if (c.getSeriesMap().isEmpty()) { // no accuracy known: empty axes (XChart cannot draw a chart without a series)
            SpreadSeries none = new SpreadSeries("test accuracy", names, new ArrayList<>(java.util.Collections.nCopies(rows.size(), (Double) null)), 0);
            c.getSeriesMap().put(none.getName(), none);
        }
        if (rows.stream().anyMatch(Demo.Row::repeated)) {
            c.setTitle(title + ": final test accuracy (mean ± std over seeds)");
        }
        return c;
    }

    /**
     * Bars with an error bar each, whose values may be null (no bar): XChart's own series reads every value with its error
     * when it finds its range, and fails on a null. Every bar has the same error, because XChart pairs the errors with the
     * bars it draws (it takes none for a null it skips), not with the categories.
     */
    private static final class SpreadSeries extends CategorySeries {
        SpreadSeries(String name, List<String> categories, List<Double> values, double error) {
            super(name, categories, values, java.util.Collections.nCopies(values.size(), error),
                    org.knowm.xchart.internal.series.Series.DataType.String);
        }

        @Override
        protected void calculateMinMax() {
            xMin = Double.NaN; // categories: no numeric range, as XChart's own
            xMax = Double.NaN;
            yMin = Double.MAX_VALUE;
            yMax = -Double.MAX_VALUE;
            java.util.Iterator<? extends Number> errors = getExtraValues().iterator();
            for (Number v : getYData()) {
                double e = errors.next().doubleValue();
                if (v != null) {
                    yMin = Math.min(yMin, v.doubleValue() - e);
                    yMax = Math.max(yMax, v.doubleValue() + e);
                }
            }
        }
    }

    private static void save(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart, Path png) throws IOException {
        // the temporary name ends in .png: XChart adds the extension to a name without it
        AtomicFiles.write(png, ".tmp.png",
                tmp -> BitmapEncoder.saveBitmap(chart, tmp.toString(), BitmapEncoder.BitmapFormat.PNG));
    }

    private static final String ALONE = "student alone";

    /**
     * A distilled row's test accuracy minus the student alone's, in points: over seeds the mean ± sample std of the paired
     * per-seed differences (results.json's distillationGain), else the one difference.
     */
    static String gainText(Demo.Row r, Demo.Row alone) {
        if (Double.isNaN(r.testAccuracy()) || Double.isNaN(alone.testAccuracy())) {
            return "-";
        }
        List<Double> a = alone.testAccuracyRuns();
        List<Double> d = r.testAccuracyRuns();
        if (r.repeated() && alone.repeated() && r.seeds().equals(alone.seeds())) {
            List<Double> diff = new ArrayList<>();
            for (int i = 0; i < d.size(); i++) {
                diff.add(100 * (d.get(i) - a.get(i)));
            }
            return String.format(Locale.ROOT, "%+.2f ± %.2f", Demo.mean(diff), Demo.std(diff));
        }
        return String.format(Locale.ROOT, "%+.2f", 100 * (r.testAccuracy() - alone.testAccuracy()));
    }

    static String html(String title, List<Demo.Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").append(esc(title))
                .append(" - Distill4J run</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:960px}"
                        + "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
                        + "td:first-child,th:first-child,td:nth-child(2){text-align:left}</style></head><body>\n");
        sb.append("<h1>").append(esc(title)).append("</h1>\n<table>\n<tr><th>row</th><th>model</th><th>loss</th><th>samples</th>"
                + "<th>epochs</th><th>test accuracy</th><th>gain over alone</th><th>agreement</th><th>samples/s</th><th>wall s</th></tr>\n");
        Demo.Row alone = rows.stream().filter(r -> r.name().equals(ALONE)).findFirst().orElse(null);
        boolean after = false; // the rows after the student alone are the distilled ones
        for (Demo.Row r : rows) {
            sb.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td>"
                            + "<td>%s</td><td>%.1f</td></tr>%n", esc(r.name()), esc(r.model()), esc(r.loss()), r.trainSamples(), r.epochs(),
                    r.accuracyText(" ± ") + (r.repeated() ? " (" + r.seeds().size() + " seeds)" : ""),
                    after && alone != null ? gainText(r, alone) : "-",
                    Double.isNaN(r.teacherAgreement()) ? "-" : String.format(Locale.ROOT, "%.2f%%", 100 * r.teacherAgreement()),
                    Double.isNaN(r.samplesPerSecond()) ? "-" : String.format(Locale.ROOT, "%,.0f", r.samplesPerSecond()), r.wallSeconds()));
            after |= r == alone;
        }
        sb.append("</table>\n<h2>Training curves</h2>\n<img src=\"curves.png\" alt=\"test accuracy per epoch\" width=\"900\">\n"
                + "<h2>Accuracy</h2>\n<img src=\"accuracy.png\" alt=\"final test accuracy per model\" width=\"900\">\n"
                + "<p>Files: <a href=\"results.json\">results.json</a>, <a href=\"metrics.csv\">metrics.csv</a>, "
                + "<a href=\"provenance.json\">provenance.json</a></p>\n</body></html>\n");
        return sb.toString();
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
