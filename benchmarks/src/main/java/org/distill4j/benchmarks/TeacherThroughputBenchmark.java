package org.distill4j.benchmarks;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.distill4j.examples.DemoModels;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.djl.DjlTeacher;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Teacher inference throughput per engine, in samples per second: the shipped Fashion-MNIST CNN
 * (examples/models/fashion-mnist, ~207k parameters) as ONNX on ONNX Runtime and as TorchScript on
 * libtorch, both through DJL, and for scale a DL4J 784-1200-1200-10 MLP (the demo's teacher, 2.4M
 * parameters, a different model) on ND4J. Batches of 256 embedded test images; each call gets a new batch
 * object, so DjlTeacher's last-batch cache never answers. One intra-op thread everywhere (ONNX Runtime's
 * {@code intraOpNumThreads=1}; libtorch and ND4J follow {@code OMP_NUM_THREADS}, which run-cpu.sh sets
 * to 1). The models live at {@code -Ddistill.models=DIR} (default: examples/models/fashion-mnist, from
 * the repository root).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class TeacherThroughputBenchmark {
    @Param({"onnxruntime", "pytorch", "dl4j-mlp1200"})
    public String engine;

    static final int BATCH = 256;

    private Teacher teacher;
    private Batch[] batches;
    private int next;

    @Setup(Level.Trial)
    public void setup() {
        Dataset test = FashionMnist.loadEmbedded(DemoModels.class.getClassLoader()).test();
        batches = new Batch[4];
        for (int i = 0; i < batches.length; i++) {
            batches[i] = Batch.range(test, i * BATCH, (i + 1) * BATCH);
        }
        Path models = Path.of(System.getProperty("distill.models", "examples/models/fashion-mnist"));
        teacher = switch (engine) {
            case "onnxruntime" -> DjlTeacher.builder().setModelPath(models.resolve("cnn-teacher.onnx")).setInputShape(784)
                    .optEngineOption("intraOpNumThreads", "1").build();
            case "pytorch" -> DjlTeacher.builder().setModelPath(models.resolve("cnn-teacher.pt")).setInputShape(784)
                    .optOutputNames("logits", "embedding").build();
            case "dl4j-mlp1200" -> {
                MultiLayerNetwork net = DemoModels.mlp(784, new int[] {1200, 1200}, 10, 0.2, 1e-3, 42);
                yield Dl4jTeacher.of(net);
            }
            default -> throw new IllegalArgumentException("engine " + engine);
        };
    }

    @TearDown(Level.Trial)
    public void close() throws Exception {
        if (teacher instanceof AutoCloseable c) {
            c.close();
        }
    }

    /** One batch of 256 rows of teacher logits; the score is samples (rows) per second. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void outputs(Blackhole bh) {
        Batch b = batches[next++ & 3];
        bh.consume(teacher.outputs(b));
    }
}
