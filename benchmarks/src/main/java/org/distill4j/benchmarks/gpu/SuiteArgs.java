package org.distill4j.benchmarks.gpu;

import java.util.Arrays;

/** Command-line pieces the GPU suites share: {@code --option value} pairs and comma-separated integers. */
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

    /** "128,1024, 8192" as integers, or an error naming the option and the text. */
    static int[] ints(String option, String v) {
        try {
            return Arrays.stream(v.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes comma-separated integers, got '" + v + "'", e);
        }
    }
}
