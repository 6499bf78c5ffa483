package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.testing.Nets;
import org.nd4j.linalg.learning.config.Adam;

import java.nio.file.Path;

/** A child process for the kill -9 test: a long run that saves a checkpoint after every step, until it is killed. */
public final class DistillChild {
    /** 20 epochs of 40 batches. */
    static final int STEPS = 20 * 40;
    private DistillChild() {
    }

    static MultiLayerNetwork student() {
        return Nets.logitsMlp(12, 64, 5, new Adam(5e-3), 11, 0.2);
    }

    /** No teacher (hard labels), so parent and child need nothing but the same data and seed. */
    static Distiller.Builder builder(MultiLayerNetwork net, Checkpoints c) {
        Distiller.Builder b = Distiller.builder().student(Dl4jStudent.of(net)).loss(new CrossEntropy())
                .trainData(DistillerTest.blobs(2000, 9, "blobs/child")).epochs(20).batchSize(50).seed(3).backend(new CpuBackend());
        if (c != null) {
            b.checkpoints(c);
        }
        return b;
    }

    public static void main(String[] args) {
        builder(student(), Checkpoints.in(Path.of(args[0])).everySteps(1)).build().run();
    }
}
