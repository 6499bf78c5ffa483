package org.distill4j.examples;

import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;

import java.nio.file.Path;

/** The dataset options that {@code label} and {@code eval} share: {@code --data}, {@code --split}, {@code --limit}. */
final class DataOptions {
    private Path dir;
    private boolean embedded;
    private String split;
    private int limit = Integer.MAX_VALUE;

    DataOptions(String defaultSplit) {
        this.split = defaultSplit;
    }

    /** Whether {@code option} is one of these options (each takes a value). */
    static boolean isOption(String option) {
        return option.equals("--data") || option.equals("--split") || option.equals("--limit");
    }

    /** Takes {@code option value} if it is one of these options; false otherwise. */
    boolean accept(String option, String value) throws Main.UsageException {
        switch (option) {
            case "--data" -> {
                embedded = value.equals("embedded");
                dir = embedded ? null : Main.path(option, value);
            }
            case "--split" -> {
                if (!value.equals("train") && !value.equals("test")) {
                    throw new Main.UsageException("--split must be train or test, got '" + value + "'");
                }
                split = value;
            }
            case "--limit" -> limit = Main.positive(option, value);
            default -> {
                return false;
            }
        }
        return true;
    }

    String split() {
        return split;
    }

    /** The chosen split of Fashion-MNIST (its first {@code --limit} samples), where it came from, and its images' shape. */
    record Loaded(Dataset data, String source, org.distill4j.data.ImageShape image) {
    }

    Loaded load() {
        FashionMnist.Split s = embedded ? FashionMnist.loadEmbedded(DataOptions.class.getClassLoader()) : FashionMnist.load(dir);
        return new Loaded((split.equals("train") ? s.train() : s.test()).head(limit), s.source(), s.image());
    }
}
