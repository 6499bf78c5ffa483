package org.distill4j.benchmarks;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.examples.Demo;
import org.distill4j.examples.DemoModels;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * One training step of the demo's student (784-400-400-10 by default) on real Fashion-MNIST
 * batches: {@code distilled} = teacher forward (784-1200-1200-10) + student forward + fused KD loss +
 * backward + Adam step; {@code alone} = the same without the teacher, with cross-entropy. Throughput
 * is reported per sample ({@link OperationsPerInvocation} = batch size), so the score is samples/s.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(1)
public class DistillStepBenchmark {
    static final int BATCH = 128;

    @Param({"128"})
    public int batchSize;

    private Dl4jTeacher teacher;
    private Dl4jStudent student;
    private final CpuBackend backend = new CpuBackend();
    private final SoftTargetKd kd = new SoftTargetKd(4.0, 0.1);
    private final CrossEntropy ce = new CrossEntropy();
    private Batch[] batches;
    private float[] grad;
    private int next;

    @Setup(Level.Trial)
    public void setup() {
        if (batchSize != BATCH) {
            throw new IllegalArgumentException("OperationsPerInvocation is fixed at " + BATCH + "; batchSize must match");
        }
        Demo.Settings d = new Demo.Settings();
        Dataset train = FashionMnist.loadEmbedded(DistillStepBenchmark.class.getClassLoader()).train();
        MultiLayerNetwork t = DemoModels.mlp(784, d.teacherHidden, 10, d.teacherDropout, d.learningRate, 1);
        MultiLayerNetwork s = DemoModels.mlp(784, d.studentHidden, 10, 0, d.learningRate, 2);
        teacher = Dl4jTeacher.of(t);
        student = Dl4jStudent.of(s);
        batches = new Batch[16];
        for (int i = 0; i < batches.length; i++) {
            batches[i] = Batch.range(train, i * batchSize, (i + 1) * batchSize);
        }
        grad = new float[batchSize * 10];
    }

    private Batch nextBatch() {
        Batch b = batches[next];
        next = (next + 1) % batches.length;
        return b;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public double distilled() {
        Batch b = nextBatch();
        float[] t = teacher.outputs(b);
        float[] logits = student.forward(b, true);
        double v = backend.logitLoss(kd, LogitBatch.of(b.size(), 10, logits, t, teacher.values(), b.labels()), grad, 1f).value();
        student.backward(grad);
        return v;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public double alone() {
        Batch b = nextBatch();
        float[] logits = student.forward(b, true);
        double v = backend.logitLoss(ce, LogitBatch.ofLabels(b.size(), 10, logits, b.labels()), grad, 1f).value();
        student.backward(grad);
        return v;
    }
}
