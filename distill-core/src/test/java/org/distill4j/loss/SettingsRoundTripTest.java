package org.distill4j.loss;

import org.distill4j.testing.Inputs;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * What a loss reports about itself (its registered name, {@code settings()} for logs and provenance, its reduction,
 * and for temperature-scaled losses {@code withTemperature}) is the loss: {@link Losses#create} from the name and the
 * settings rebuilds one that gives the same value and gradient, bit for bit. Each loss is configured away from its
 * defaults (reduction sum, temperatures, weights and tails not the registry's), so a setting left out or misreported
 * rebuilds another loss.
 */
class SettingsRoundTripTest {
    static final int ROWS = 5;
    static final int V = 11;
    static final int K = 4;
    static final float UP = 0.73f;

    static Stream<Arguments> configured() {
        return Stream.of(
                Arguments.of("kd", new SoftTargetKd(2.5, 0.35, Reduction.SUM),
                        Map.of("temperature", 2.5, "alpha", 0.35, "reduction", "sum")),
                Arguments.of("ce", new CrossEntropy(Reduction.SUM), Map.of("reduction", "sum")),
                Arguments.of("reverse-kl", new ReverseKl(1.7, Reduction.SUM), Map.of("temperature", 1.7, "reduction", "sum")),
                Arguments.of("gjsd", new GeneralizedJsd(0.35, 2.5, Reduction.SUM),
                        Map.of("beta", 0.35, "temperature", 2.5, "reduction", "sum")),
                Arguments.of("skew-kl", new SkewKl(0.15, 2.5, Reduction.SUM),
                        Map.of("alpha", 0.15, "temperature", 2.5, "reduction", "sum")),
                Arguments.of("skew-rkl", new SkewReverseKl(0.3, 1.5),
                        Map.of("alpha", 0.3, "temperature", 1.5, "reduction", "mean")),
                Arguments.of("akl", new AdaptiveKl(0.35, 2.5, Reduction.SUM),
                        Map.of("mu", 0.35, "temperature", 2.5, "reduction", "sum")),
                Arguments.of("abkd", new AlphaBetaDivergence(0.2, 0.7, 1.5),
                        Map.of("alpha", 0.2, "beta", 0.7, "temperature", 1.5, "reduction", "mean")),
                Arguments.of("tvd", new TotalVariation(3, Reduction.SUM), Map.of("temperature", 3.0, "reduction", "sum")),
                Arguments.of("mse", new LogitMse(Reduction.SUM), Map.of("reduction", "sum")),
                Arguments.of("dkd", new Dkd(0.5, 2, 3, 7).withReduction(Reduction.SUM),
                        Map.of("alpha", 0.5, "beta", 2.0, "warmup", 7, "temperature", 3.0, "reduction", "sum")),
                Arguments.of("dist", new Dist(2, 0.5, 4), Map.of("beta", 2.0, "gamma", 0.5, "temperature", 4.0, "reduction", "mean")),
                Arguments.of("logit-std", LogitStandardization.of(new GeneralizedJsd(0.2, 3, Reduction.SUM)),
                        Map.of("loss", "gjsd", "beta", 0.2, "temperature", 3.0, "reduction", "sum")),
                Arguments.of("logit-std", LogitStandardization.of(new SoftTargetKd(3, 0.25)),
                        Map.of("loss", "kd", "temperature", 3.0, "alpha", 0.25, "reduction", "mean")),
                Arguments.of("topk-kd", new TopKKd(2.5, TopKKd.Tail.REST_BUCKET, Reduction.SUM),
                        Map.of("temperature", 2.5, "tail", "rest", "reduction", "sum")),
                Arguments.of("topk-kd", new TopKKd(0.7, TopKKd.Tail.RENORMALIZE),
                        Map.of("temperature", 0.7, "tail", "renormalize", "reduction", "mean")));
    }

    static LogitBatch batch(LogitLoss loss, Random rng) {
        float[] s = Inputs.logits(rng, ROWS, V, 2.5);
        int[] y = Inputs.labels(rng, ROWS, V);
        if (!loss.needsTopK()) {
            return LogitBatch.of(ROWS, V, s, Inputs.logits(rng, ROWS, V, 2.5), TeacherValues.LOGITS, y);
        }
        float[] z = Inputs.logits(rng, ROWS, V, 2.5);
        int[] ids = new int[ROWS * K];
        float[] lps = new float[ROWS * K];
        for (int r = 0; r < ROWS; r++) {
            double[] lp = FamilyReference.logSoftmax(FamilyReference.widen(z), r * V, V, 1);
            for (int j = 0; j < K; j++) {
                int id = (2 * r + 5 * j) % V;
                ids[r * K + j] = id;
                lps[r * K + j] = (float) lp[id];
            }
        }
        return LogitBatch.ofTopK(ROWS, V, s, ids, lps, K, y);
    }

    static void assertSameBits(LogitLoss expected, LogitLoss actual, LogitBatch b, String what) {
        float[] ge = Inputs.poisoned(ROWS * V);
        float[] ga = Inputs.poisoned(ROWS * V);
        LossResult re = expected.compute(b, ge, UP);
        LossResult ra = actual.compute(b, ga, UP);
        assertEquals(Double.doubleToRawLongBits(re.value()), Double.doubleToRawLongBits(ra.value()),
                what + ": value " + re.value() + " vs " + ra.value());
        assertEquals(re.terms(), ra.terms(), what + ": terms");
        for (int i = 0; i < ge.length; i++) {
            assertEquals(Float.floatToRawIntBits(ge[i]), Float.floatToRawIntBits(ga[i]), what + ": gradient element " + i);
        }
    }

    @ParameterizedTest(name = "{0} {2}")
    @MethodSource("configured")
    void theRegistryRebuildsTheSameLossFromItsNameAndSettings(String name, LogitLoss loss, Map<String, Object> settings) {
        assertEquals(name, loss.name(), "the registered name");
        assertEquals(settings, loss.settings());
        assertEquals(settings.get("reduction"), loss.reduction().name().toLowerCase(java.util.Locale.ROOT));
        LogitLoss rebuilt = Losses.create(loss.name(), loss.settings());
        assertSame(loss.getClass(), rebuilt.getClass());
        assertEquals(settings, rebuilt.settings());
        assertEquals(loss.reduction(), rebuilt.reduction());
        assertSameBits(loss, rebuilt, batch(loss, new Random(name.hashCode() + settings.hashCode())), name + " rebuilt from " + settings);
    }

    /** A temperature schedule's step: the same loss at the new temperature, every other setting kept. */
    @ParameterizedTest(name = "{0} {2}")
    @MethodSource("configured")
    void withTemperatureChangesTheTemperatureAlone(String name, LogitLoss loss, Map<String, Object> settings) {
        if (!(loss instanceof TemperatureScaled ts)) {
            assertEquals(null, settings.get("temperature"), name + " has a temperature setting but is not TemperatureScaled");
            return;
        }
        assertEquals(((Number) settings.get("temperature")).doubleValue(), ts.temperature());
        LogitLoss hot = ts.withTemperature(5.5);
        assertInstanceOf(TemperatureScaled.class, hot);
        assertEquals(5.5, ((TemperatureScaled) hot).temperature());
        Map<String, Object> expected = new LinkedHashMap<>(settings);
        expected.put("temperature", 5.5);
        assertEquals(expected, hot.settings());
        assertEquals(loss.reduction(), hot.reduction());
        LogitBatch b = batch(loss, new Random(name.hashCode() * 7L + settings.hashCode()));
        assertSameBits(Losses.create(name, expected), hot, b, name + " at T = 5.5");
        float[] g = new float[ROWS * V];
        assertNotEquals(loss.compute(b, g, UP).value(), hot.compute(b, g, UP).value(), name + ": the temperature matters");
    }
}
