package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Dataset;
import org.distill4j.loss.FeatureLoss;
import org.distill4j.loss.ProbabilisticTransfer;
import org.distill4j.loss.RelationalKd;
import org.distill4j.loss.SimilarityPreserving;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.learning.config.Adam;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A relational feature loss (rkd, sp, pkt) on a training set whose last batch holds one or two samples: the run trains every
 * epoch. rkd's angles need three samples and its distances two, so such a batch used to fail the run at the end of its
 * first epoch ("rkd relates samples of a batch: it needs at least 3 samples").
 */
class RelationalLastBatchTest {
    private static final int D = 12;
    private static final int K = 5;

    @Test
    void aLastBatchOfOneOrTwoSamplesTrains() {
        MultiLayerNetwork teacherNet = Nets.logitsMlp(D, 32, K, new Adam(1e-2), 7, 0);
        for (int size : new int[]{129, 130}) { // batches of 64: the last one holds 1 or 2 samples
            Dataset train = DistillerTest.blobs(size, 1, "blobs/train-" + size);
            for (FeatureLoss f : new FeatureLoss[]{new RelationalKd(25, 50), new SimilarityPreserving(3000),
                    new ProbabilisticTransfer(30000)}) {
                org.deeplearning4j.nn.graph.ComputationGraph g = Dl4jStudent.withFeatureOutputs(
                        Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0).toComputationGraph(), "0");
                DistillResult r = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(g))
                        .loss(new SoftTargetKd(4, 0.2)).featureLoss(1, f, "0", "layer0")
                        .trainData(train).epochs(2).batchSize(64).seed(2).backend(new CpuBackend()).build().run();
                assertTrue(r.epochs().size() == 2 && Double.isFinite(r.epochs().get(1).loss()),
                        f.name() + " with " + size + " samples: " + r.epochs());
            }
        }
    }
}
