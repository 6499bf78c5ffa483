package org.distill4j.benchmarks.gpu;

import java.util.Arrays;
import java.util.List;

/** Command-line pieces the GPU suites share: {@code --option value} pairs, comma-separated integers and names. */
final class SuiteArgs {
    private SuiteArgs() {
    }

    /** The value after option {@code args[i]}, or an error naming the option that has none. */
    static String value(String[] args, int i) {
        if (i + 1 >= args.length) {
            throw new IllegalArgumentException("option " + args[i] + " needs a value");
        }
        return args[i + 1];
    }

    /** "128,1024, 8192" as positive integers (sizes: rows, vocabularies, batches), or an error naming the option and the text. */
    static int[] ints(String option, String v) {
        int[] out;
        try {
            out = Arrays.stream(v.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes comma-separated integers, got '" + v + "'", e);
        }
        for (int x : out) {
            if (x < 1) {
                throw new IllegalArgumentException(option + " takes sizes of at least 1, got " + x + " in '" + v + "'");
            }
        }
        return out;
    }

    /** A positive finite number such as {@code --temperature}, or an error naming the option and the text. */
    static double positive(String option, String v) {
        double x;
        try {
            x = Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes a positive number, got '" + v + "'", e);
        }
        if (!(x > 0) || Double.isInfinite(x)) {
            throw new IllegalArgumentException(option + " takes a positive number, got '" + v + "'");
        }
        return x;
    }

    /** A count such as {@code --iters}: an integer of at least {@code min}, or an error naming the option and the text. */
    static int count(String option, String v, int min) {
        int n;
        try {
            n = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes an integer of at least " + min + ", got '" + v + "'", e);
        }
        if (n < min) {
            throw new IllegalArgumentException(option + " takes an integer of at least " + min + ", got '" + v + "'");
        }
        return n;
    }

    /** "fused, two-pass" as names from {@code known}, or an error naming the option, the unknown name and the known ones. */
    static List<String> names(String option, String v, List<String> known) {
        return names(option, v, known, null, null);
    }

    /**
     * As {@link #names(String, String, List)}, also taking names that match {@code pattern} (null: none), which
     * the error describes as {@code patternWhat}.
     */
    static List<String> names(String option, String v, List<String> known, java.util.regex.Pattern pattern, String patternWhat) {
        List<String> names = Arrays.stream(v.split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList();
        for (String name : names) {
            if (!known.contains(name) && (pattern == null || !pattern.matcher(name).matches())) {
                throw new IllegalArgumentException(option + " takes names from " + known + (pattern == null ? "" : " or " + patternWhat)
                        + ", got '" + name + "'");
            }
        }
        if (names.isEmpty()) {
            throw new IllegalArgumentException(option + " takes at least one name from " + known);
        }
        return names;
    }
}
