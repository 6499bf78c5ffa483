package org.distill4j.loss;

/**
 * The exponential the CPU losses use, public so that a custom {@link LogitLoss} can compute exactly what the built-in
 * ones do.
 *
 * <p><b>Why not {@link Math#exp}.</b> On JDK 17, HotSpot's {@code Math.exp} intrinsic runs about four times slower in
 * a row loop that converts float logits to double and stores each result as a float (as {@code ce}'s softmax pass does)
 * than in one that only sums the results: 16.1 ns against 4.2 ns per element on this project's AMD EPYC build machine,
 * where {@link #exp} takes 4.2 and 4.0 ns; on JDK 25 the intrinsic takes 4.7 ns in the storing loop
 * ({@code ExpBenchmark}, benchmarks/results/cpu-exp-jdk17-2026-11-24 and -jdk25-). The slow case is consistent with
 * JDK-8318562 (fixed in JDK 23, redone as JDK-8323116): C2's AVX scalar conversions (here the double-to-float of each
 * result) merge into their destination register's old contents, which can chain each element to the previous one's exp.
 * In the losses, {@code ce}, whose softmax pass stores each exp as a float, ran about 3 times faster with {@link #exp}
 * (benchmarks/results/cpu-exp-ab-2026-11-24); losses that keep their exps in double scratch rows (e.g. {@code kd}) were
 * not slowed by the intrinsic, and there the two are within this machine's run-to-run noise.
 *
 * <p><b>Accuracy and reproducibility.</b> {@link #exp} is within 0.54 ulp of e<sup>x</sup> (about one final rounding;
 * {@code StrictMath.exp} is within 1 ulp, so the two differ by at most 1 ulp), gives {@code StrictMath.exp}'s own value
 * outside [{@value #LOW}, {@value #HIGH}] (NaN, the infinities, underflow to subnormals and 0, overflow), and, being
 * plain Java arithmetic (strict IEEE 754 since Java 17), returns the same bits on every JVM, JIT tier and processor,
 * which {@code Math.exp} does not promise.
 *
 * <p><b>Method.</b> Table-driven, after Tang (ACM TOMS 15(2), 1989): x = (32k + j)·ln2/32 + r with |r| ≤ ln2/64
 * (Cody and Waite's two-part ln2/32, exact for |32k + j| &lt; 2<sup>21</sup>), e<sup>x</sup> =
 * 2<sup>k</sup>·2<sup>j/32</sup>·e<sup>r</sup>, e<sup>r</sup> − 1 by its Taylor polynomial of degree 7 (truncation
 * error below 3e-20), 2<sup>j/32</sup> from a table of the 32 values in two parts (a double and the rest) and
 * 2<sup>k</sup> added to the exponent bits (the result is normal on [{@value #LOW}, {@value #HIGH}]).
 */
public final class LossMath {
    private LossMath() {
    }

    /** The interval on which {@link #exp} computes its own result; outside it, {@link StrictMath#exp}'s. */
    static final double LOW = -708.0;
    static final double HIGH = 709.0;

    /** 32 / ln 2, rounded. */
    private static final double THIRTY_TWO_OVER_LN2 = 0x1.71547652b82fep+5;
    /** ln 2 / 32 in two parts: the first with 32 significant bits, so n · HI is exact for |n| &lt; 2^21. */
    private static final double LN2_OVER_32_HI = 0x1.62e42fee00000p-6;
    private static final double LN2_OVER_32_LO = 0x1.a39ef35793c76p-38;
    /** 1.5 · 2^52: adding it rounds a double of magnitude below 2^51 to an integer held in the low bits. */
    private static final double ROUND = 0x1.8p52;

    /** 2^(j/32) for j = 0 … 31, each correctly rounded ({@link #TWO_TO_J_OVER_32_LO} holds what the rounding left). */
    private static final double[] TWO_TO_J_OVER_32 = {
            0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0, 0x1.11301d0125b51p+0,
            0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0, 0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0,
            0x1.306fe0a31b715p+0, 0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
            0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0, 0x1.6247eb03a5585p+0,
            0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0, 0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0,
            0x1.8ace5422aa0dbp+0, 0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
            0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0, 0x1.cb720dcef9069p+0,
            0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0, 0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
    };

    /** 2^(j/32) − {@code TWO_TO_J_OVER_32[j]}, rounded: with it the table's values carry about 107 bits. */
    private static final double[] TWO_TO_J_OVER_32_LO = {
            0.0, 0x1.d73e2a475b465p-55, 0x1.8a62e4adc610bp-54, -0x1.6c51039449b3ap-54,
            -0x1.19041b9d78a76p-55, 0x1.e016e00a2643cp-54, 0x1.9b07eb6c70573p-54, 0x1.612e8afad1255p-55,
            0x1.6f46ad23182e4p-55, -0x1.63aeabf42eae2p-54, 0x1.ada0911f09ebcp-55, 0x1.89b7a04ef80d0p-59,
            0x1.d4397afec42e2p-56, -0x1.07abe1db13cadp-55, 0x1.6324c054647adp-54, -0x1.383c17e40b497p-54,
            -0x1.bdd3413b26456p-54, -0x1.16e4786887a99p-55, -0x1.41577ee04992fp-55, -0x1.d4c1dd41532d8p-54,
            0x1.6e9f156864b27p-54, -0x1.75fc781b57ebcp-57, 0x1.c7c46b071f2bep-56, -0x1.d2f6edb8d41e1p-54,
            0x1.7a1cd345dcc81p-54, -0x1.5584f7e54ac3bp-56, 0x1.11065895048ddp-55, 0x1.503cbd1e949dbp-56,
            0x1.2ed02d75b3707p-55, -0x1.1a5cd4f184b5cp-54, -0x1.e9c23179c2893p-54, 0x1.9d3e12dd8a18bp-54,
    };

    /**
     * e<sup>x</sup>, within 1 ulp of {@link StrictMath#exp} and the same bits on every JVM: {@code exp(-Infinity)} is 0,
     * {@code exp(NaN)} NaN, and results beyond the largest double are {@code +Infinity}, as {@code StrictMath.exp}'s.
     */
    public static double exp(double x) {
        if (!(x >= LOW && x <= HIGH)) { // NaN and the infinities fail both tests
            return StrictMath.exp(x);
        }
        final double shifted = x * THIRTY_TWO_OVER_LN2 + ROUND;
        final int n = (int) Double.doubleToRawLongBits(shifted); // round(x · 32 / ln 2), two's complement in the low bits
        final double nd = shifted - ROUND;
        final double r = (x - nd * LN2_OVER_32_HI) - nd * LN2_OVER_32_LO;
        final double expm1 = r + r * r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040))))));
        final int j = n & 31;
        final double t = TWO_TO_J_OVER_32[j];
        final double v = t + (TWO_TO_J_OVER_32_LO[j] + t * expm1); // in [0.98, 2.03): normal after adding k
        return Double.longBitsToDouble(Double.doubleToRawLongBits(v) + ((long) (n >> 5) << 52));
    }
}
