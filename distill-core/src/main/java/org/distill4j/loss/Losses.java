package org.distill4j.loss;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The registry of logit losses by their stable names, shared by recipes, the CLI and backends.
 *
 * <p>Settings are plain values by name (as they come from a recipe): {@code kd} takes
 * {@code temperature} (default 4) and {@code alpha} (default 0.1); every loss takes
 * {@code reduction} ({@code mean} or {@code sum}, default {@code mean}). Unknown names and unknown
 * settings fail with the list of what exists.
 */
public final class Losses {
    /** One registered loss: its name, a one-line description and its factory. */
    public record Entry(String name, String description, List<String> settings,
                        Function<Map<String, Object>, LogitLoss> factory) {
    }

    private static final Map<String, Entry> ENTRIES = new LinkedHashMap<>();

    static {
        register(new Entry(SoftTargetKd.NAME,
                "Hinton soft-target KD: alpha*CE + (1-alpha)*T^2*KL(softmax(t/T) || softmax(s/T))",
                List.of("temperature", "alpha", "reduction"),
                s -> new SoftTargetKd(number(s, "kd", "temperature", 4.0), number(s, "kd", "alpha", 0.1),
                        reduction(s, "kd"))));
        register(new Entry(CrossEntropy.NAME,
                "hard-label cross-entropy: -log softmax(s)_y",
                List.of("reduction"),
                s -> new CrossEntropy(reduction(s, "ce"))));
    }

    private Losses() {
    }

    private static void register(Entry e) {
        ENTRIES.put(e.name(), e);
    }

    /** All registered losses, in registration order. */
    public static List<Entry> entries() {
        return Collections.unmodifiableList(new ArrayList<>(ENTRIES.values()));
    }

    /** Registered names, in registration order. */
    public static List<String> names() {
        return List.copyOf(ENTRIES.keySet());
    }

    /**
     * Creates a registered loss from its settings.
     *
     * @throws IllegalArgumentException for an unknown name or setting, naming what exists
     */
    public static LogitLoss create(String name, Map<String, Object> settings) {
        Entry e = ENTRIES.get(name);
        if (e == null) {
            throw new IllegalArgumentException("unknown loss '" + name + "'; registered losses: " + String.join(", ", names()));
        }
        for (String key : settings.keySet()) {
            if (!e.settings().contains(key)) {
                throw new IllegalArgumentException("loss '" + name + "' has no setting '" + key + "'; its settings: "
                        + String.join(", ", e.settings()));
            }
        }
        return e.factory().apply(settings);
    }

    private static double number(Map<String, Object> s, String loss, String key, double dflt) {
        Object v = s.get(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        try {
            return Double.parseDouble(v.toString().trim());
        } catch (NumberFormatException ex) {
            throw new IllegalArgumentException("loss '" + loss + "' setting '" + key + "' must be a number, got '" + v + "'");
        }
    }

    private static Reduction reduction(Map<String, Object> s, String loss) {
        Object v = s.get("reduction");
        if (v == null) {
            return Reduction.MEAN;
        }
        for (Reduction r : Reduction.values()) {
            if (r.name().equalsIgnoreCase(v.toString().trim())) {
                return r;
            }
        }
        throw new IllegalArgumentException("loss '" + loss + "' setting 'reduction' must be mean or sum, got '" + v + "'");
    }
}
