package org.distill4j.loss;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The registry of feature losses by their stable names: {@code hint} (settings {@code studentSize},
 * {@code teacherSize}, both required; {@code learningRate} 1e-3; {@code seed} 0), {@code at}
 * ({@code beta} 1000), {@code rkd} ({@code distance} 25, {@code angle} 50), {@code sp} ({@code gamma} 3000) and {@code pkt}
 * ({@code beta} 30000). Unknown names and settings fail with the list of what exists.
 */
public final class FeatureLosses {
    /** One registered feature loss. */
    public record Entry(String name, String description, List<String> settings,
                        Function<Map<String, Object>, FeatureLoss> factory) {
    }

    private static final Map<String, Entry> ENTRIES = new LinkedHashMap<>();

    static {
        register(new Entry(HintLoss.NAME, "FitNets hint (ICLR 2015): MSE through a learned linear regressor to the teacher feature",
                List.of("studentSize", "teacherSize", "learningRate", "seed"),
                s -> new HintLoss(required(s, "studentSize"), required(s, "teacherSize"), number(s, "hint", "learningRate", 1e-3),
                        LossSettings.wholeLong(s, "feature loss 'hint'", "seed", 0))));
        register(new Entry(AttentionTransfer.NAME, "attention transfer (ICLR 2017): beta/2 * squared distance of normalized spatial attention maps",
                List.of("beta"), s -> new AttentionTransfer(number(s, "at", "beta", 1000))));
        register(new Entry(RelationalKd.NAME, "relational KD (CVPR 2019): Huber on normalized pairwise distances and angles",
                List.of("distance", "angle"),
                s -> new RelationalKd(number(s, "rkd", "distance", 25), number(s, "rkd", "angle", 50))));
        register(new Entry(SimilarityPreserving.NAME, "similarity-preserving KD (ICCV 2019): gamma/b^2 * squared distance of the"
                + " batch's row-normalized Gram matrices", List.of("gamma"),
                s -> new SimilarityPreserving(number(s, "sp", "gamma", SimilarityPreserving.DEFAULT_GAMMA))));
        register(new Entry(ProbabilisticTransfer.NAME, "probabilistic knowledge transfer (ECCV 2018): beta/b^2 * sum over samples of"
                + " KL(teacher || student) of their cosine-kernel neighbour distributions in the batch", List.of("beta"),
                s -> new ProbabilisticTransfer(number(s, "pkt", "beta", ProbabilisticTransfer.DEFAULT_BETA))));
    }

    private FeatureLosses() {
    }

    private static void register(Entry e) {
        ENTRIES.put(e.name(), e);
    }

    /** Every registered feature loss, in registration order; an unmodifiable list. */
    public static List<Entry> entries() {
        return List.copyOf(new ArrayList<>(ENTRIES.values()));
    }

    /**
     * The registered names ({@code hint}, {@code at}, {@code rkd}, {@code sp}, {@code pkt}), in registration order; an
     * unmodifiable list.
     */
    public static List<String> names() {
        return List.copyOf(ENTRIES.keySet());
    }

    /** Creates a registered feature loss from its settings. */
    public static FeatureLoss create(String name, Map<String, Object> settings) {
        Entry e = ENTRIES.get(name);
        if (e == null) {
            throw new IllegalArgumentException("unknown feature loss '" + name + "'; registered feature losses: "
                    + String.join(", ", names()));
        }
        LossSettings.checkKnown("feature loss '" + name + "'", settings, e.settings());
        return e.factory().apply(settings);
    }

    private static double number(Map<String, Object> s, String loss, String key, double dflt) {
        return LossSettings.number(s, "feature loss '" + loss + "'", key, dflt);
    }

    private static int required(Map<String, Object> s, String key) {
        return LossSettings.requiredPositive(s, "feature loss 'hint'", key);
    }
}
