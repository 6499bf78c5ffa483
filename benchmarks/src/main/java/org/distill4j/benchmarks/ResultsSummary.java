package org.distill4j.benchmarks;

import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns a JMH JSON result file into a long-format CSV with one row per benchmark and parameter set:
 * the median, minimum and maximum over the measurement iterations (not JMH's mean), so results are
 * quoted as medians. A run with {@code -prof gc} adds a row {@code <benchmark>:gc.alloc.rate.norm} per parameter set:
 * the bytes allocated per operation.
 *
 * <pre>java -cp distill-benchmarks.jar org.distill4j.benchmarks.ResultsSummary jmh.json summary.csv</pre>
 */
public final class ResultsSummary {
    private ResultsSummary() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            throw new IllegalArgumentException("usage: ResultsSummary JMH_JSON OUT_CSV");
        }
        String summary = summarize(new ObjectMapper().readTree(Path.of(args[0]).toFile()));
        org.distill4j.examples.AtomicFiles.writeString(Path.of(args[1]), summary);
    }

    static String summarize(JsonNode results) {
        StringBuilder sb = new StringBuilder("benchmark,params,mode,unit,median,min,max,iterations\n");
        for (JsonNode r : results) {
            String name = r.get("benchmark").asText().replace("org.distill4j.benchmarks.", "");
            List<String> params = new ArrayList<>();
            JsonNode p = r.get("params");
            if (p != null) {
                for (Iterator<Map.Entry<String, JsonNode>> it = p.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    params.add(e.getKey() + "=" + e.getValue().asText());
                }
            }
            row(sb, name, params, r.get("mode").asText(), r.get("primaryMetric"));
            JsonNode secondary = r.get("secondaryMetrics");
            JsonNode alloc = secondary == null ? null
                    : secondary.has("gc.alloc.rate.norm") ? secondary.get("gc.alloc.rate.norm")
                    : secondary.get("\u00b7gc.alloc.rate.norm"); // the name before JMH 1.37
            if (alloc != null) { // with -prof gc: bytes allocated per operation
                row(sb, name + ":gc.alloc.rate.norm", params, r.get("mode").asText(), alloc);
            }
        }
        return sb.toString();
    }

    /** One CSV row: the median, minimum and maximum of a metric's measurement iterations. */
    private static void row(StringBuilder sb, String name, List<String> params, String mode, JsonNode metric) {
        List<Double> values = new ArrayList<>();
        for (JsonNode fork : metric.get("rawData")) {
            for (JsonNode v : fork) {
                values.add(v.asDouble());
            }
        }
        double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        sb.append(String.format(Locale.ROOT, "%s,%s,%s,%s,%.6g,%.6g,%.6g,%d%n", name, String.join(";", params),
                mode, metric.get("scoreUnit").asText(), median(v), v[0], v[v.length - 1], v.length));
    }

    static double median(double[] sorted) {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
