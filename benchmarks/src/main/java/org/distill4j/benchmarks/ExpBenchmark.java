package org.distill4j.benchmarks;

import org.distill4j.loss.LossMath;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The exponential in the two kinds of loop the CPU losses run, over one row of V float logits (normal, standard
 * deviation 3, less the row's maximum, as a softmax takes them): {@code sum} only adds e^x up (a log-sum-exp's first
 * pass), {@code store} also writes each e^x to a float gradient row (a softmax's pass). {@code exp} is
 * {@code Math.exp} (HotSpot's intrinsic), {@code StrictMath.exp} (fdlibm, in Java) or {@link LossMath#exp}, what the
 * losses call. One operation = one row; divide by V for the time per element.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class ExpBenchmark {
    @Param({"32000"})
    public int vocab;

    @Param({"Math.exp", "StrictMath.exp", "LossMath.exp"})
    public String exp;

    private float[] logits;
    private float[] out;
    private float max;

    @Setup(Level.Trial)
    public void setup() {
        Random rng = new Random(11);
        logits = new float[vocab];
        max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            logits[i] = (float) (3 * rng.nextGaussian());
            max = Math.max(max, logits[i]);
        }
        out = new float[vocab];
    }

    @Benchmark
    public double sum() {
        final float[] x = logits;
        final float m = max;
        double z = 0;
        switch (exp) {
            case "Math.exp":
                for (int i = 0; i < x.length; i++) {
                    z += Math.exp((double) x[i] - m);
                }
                break;
            case "StrictMath.exp":
                for (int i = 0; i < x.length; i++) {
                    z += StrictMath.exp((double) x[i] - m);
                }
                break;
            default:
                for (int i = 0; i < x.length; i++) {
                    z += LossMath.exp((double) x[i] - m);
                }
        }
        return z;
    }

    @Benchmark
    public double store() {
        final float[] x = logits;
        final float[] g = out;
        final float m = max;
        double z = 0;
        switch (exp) {
            case "Math.exp":
                for (int i = 0; i < x.length; i++) {
                    double e = Math.exp((double) x[i] - m);
                    g[i] = (float) e;
                    z += e;
                }
                break;
            case "StrictMath.exp":
                for (int i = 0; i < x.length; i++) {
                    double e = StrictMath.exp((double) x[i] - m);
                    g[i] = (float) e;
                    z += e;
                }
                break;
            default:
                for (int i = 0; i < x.length; i++) {
                    double e = LossMath.exp((double) x[i] - m);
                    g[i] = (float) e;
                    z += e;
                }
        }
        return z;
    }
}
