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
 * <p>Settings are plain values by name (as they come from a recipe), with defaults: {@code kd}
 * temperature 4, alpha 0.1; {@code reverse-kl}, {@code gjsd}, {@code skew-kl}, {@code skew-rkl}, {@code akl},
 * {@code abkd}, {@code tvd}, {@code topk-kd} temperature 1; {@code gjsd} beta 0.5; {@code skew-kl} and {@code skew-rkl}
 * alpha (the skew) 0.1; {@code akl} mu 0.5; {@code abkd} alpha 0.8, beta 0.3;
 * {@code dkd} alpha 1, beta 8, temperature 4, warmup 20; {@code dist} beta 1, gamma 1, temperature 1 (mean only);
 * {@code topk-kd} tail renormalize; {@code logit-std} wraps the loss named by its {@code loss}
 * setting (default kd) and passes the other settings to it (an inner kd's alpha-weighted cross-entropy
 * runs on the raw student logits, only its KD term on the standardized ones; inner {@code ce} is
 * rejected). Every loss takes {@code reduction}
 * ({@code mean} or {@code sum}, default {@code mean}). Unknown names and unknown settings fail with
 * the list of what exists.
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
        register(new Entry(ReverseKl.NAME,
                "reverse KL, mode-seeking: T^2*KL(softmax(s/T) || softmax(t/T))",
                List.of("temperature", "reduction"),
                s -> new ReverseKl(number(s, ReverseKl.NAME, "temperature", 1.0), reduction(s, ReverseKl.NAME))));
        register(new Entry(GeneralizedJsd.NAME,
                "generalized JSD (GKD): beta=0 forward KL, beta=1 reverse KL, between: JSD with mixture beta*p+(1-beta)*q",
                List.of("beta", "temperature", "reduction"),
                s -> new GeneralizedJsd(number(s, GeneralizedJsd.NAME, "beta", 0.5),
                        number(s, GeneralizedJsd.NAME, "temperature", 1.0), reduction(s, GeneralizedJsd.NAME))));
        register(new Entry(SkewKl.NAME,
                "skew forward KL (DistiLLM): T^2*KL(p || alpha*p + (1-alpha)*q); alpha=0 forward KL",
                List.of("alpha", "temperature", "reduction"),
                s -> new SkewKl(number(s, SkewKl.NAME, "alpha", 0.1), number(s, SkewKl.NAME, "temperature", 1.0),
                        reduction(s, SkewKl.NAME))));
        register(new Entry(SkewReverseKl.NAME,
                "skew reverse KL (DistiLLM): T^2*KL(q || (1-alpha)*p + alpha*q); alpha=0 reverse KL",
                List.of("alpha", "temperature", "reduction"),
                s -> new SkewReverseKl(number(s, SkewReverseKl.NAME, "alpha", 0.1),
                        number(s, SkewReverseKl.NAME, "temperature", 1.0), reduction(s, SkewReverseKl.NAME))));
        register(new Entry(AdaptiveKl.NAME,
                "adaptive KL (AKL, COLING 2025): T^2*(w_head*KL(p || q) + w_tail*KL(q || p)), weights from the student's gaps on the teacher's head (mass mu) and tail",
                List.of("mu", "temperature", "reduction"),
                s -> new AdaptiveKl(number(s, AdaptiveKl.NAME, "mu", AdaptiveKl.DEFAULT_MU),
                        number(s, AdaptiveKl.NAME, "temperature", 1.0), reduction(s, AdaptiveKl.NAME))));
        register(new Entry(AlphaBetaDivergence.NAME,
                "alpha-beta divergence (ABKD, ICML 2025): T^2*D_AB(p || q); alpha=1, beta->0 forward KL, alpha->0, beta=1 reverse KL",
                List.of("alpha", "beta", "temperature", "reduction"),
                s -> new AlphaBetaDivergence(number(s, AlphaBetaDivergence.NAME, "alpha", AlphaBetaDivergence.DEFAULT_ALPHA),
                        number(s, AlphaBetaDivergence.NAME, "beta", AlphaBetaDivergence.DEFAULT_BETA),
                        number(s, AlphaBetaDivergence.NAME, "temperature", 1.0), reduction(s, AlphaBetaDivergence.NAME))));
        register(new Entry(TotalVariation.NAME,
                "total-variation distance: T^2 * 1/2 * sum |softmax(t/T) - softmax(s/T)|",
                List.of("temperature", "reduction"),
                s -> new TotalVariation(number(s, TotalVariation.NAME, "temperature", 1.0), reduction(s, TotalVariation.NAME))));
        register(new Entry(LogitMse.NAME,
                "mean squared error between student and teacher logits, averaged over classes",
                List.of("reduction"),
                s -> new LogitMse(reduction(s, LogitMse.NAME))));
        register(new Entry(Dkd.NAME,
                "decoupled KD (CVPR 2022): warm*T^2*(alpha*TCKD + beta*NCKD); add ce separately",
                List.of("alpha", "beta", "temperature", "warmup", "reduction"),
                s -> new Dkd(number(s, Dkd.NAME, "alpha", 1.0), number(s, Dkd.NAME, "beta", 8.0),
                        number(s, Dkd.NAME, "temperature", 4.0), integer(s, Dkd.NAME, "warmup", 20))
                        .withReduction(reduction(s, Dkd.NAME))));
        register(new Entry(Dist.NAME,
                "DIST (NeurIPS 2022): T^2*(beta*(1 - Pearson per sample) + gamma*(1 - Pearson per class over the batch)); add ce separately",
                List.of("beta", "gamma", "temperature", "reduction"),
                s -> new Dist(number(s, Dist.NAME, "beta", 1.0), number(s, Dist.NAME, "gamma", 1.0),
                        number(s, Dist.NAME, "temperature", 1.0), reduction(s, Dist.NAME))));
        register(new Entry(LogitStandardization.NAME,
                "logit standardization (CVPR 2024): the inner loss (setting 'loss', default kd) on z-scored logit rows; kd's alpha*CE stays on the raw logits",
                List.of("loss", "...settings of the inner loss"),
                s -> {
                    Map<String, Object> rest = new LinkedHashMap<>(s);
                    Object inner = rest.remove("loss");
                    // as 'reduction' and 'tail': surrounding blanks and case do not matter
                    String innerName = inner == null ? SoftTargetKd.NAME : inner.toString().trim().toLowerCase(java.util.Locale.ROOT);
                    return LogitStandardization.of(create(innerName, rest));
                }));
        register(new Entry(TopKKd.NAME,
                "KD from a top-k teacher (ids + log-probs); tail 'renormalize' (default) or 'rest' bucket",
                List.of("temperature", "tail", "reduction"),
                s -> new TopKKd(number(s, TopKKd.NAME, "temperature", 1.0),
                        TopKKd.Tail.parse(String.valueOf(s.getOrDefault("tail", "renormalize"))), reduction(s, TopKKd.NAME))));
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
        if (!name.equals(LogitStandardization.NAME)) { // it passes the other settings to its inner loss
            LossSettings.checkKnown("loss '" + name + "'", settings, e.settings());
        }
        return e.factory().apply(settings);
    }

    private static double number(Map<String, Object> s, String loss, String key, double dflt) {
        return LossSettings.number(s, "loss '" + loss + "'", key, dflt);
    }

    private static int integer(Map<String, Object> s, String loss, String key, int dflt) {
        return LossSettings.wholeNumber(s, "loss '" + loss + "'", key, dflt);
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
