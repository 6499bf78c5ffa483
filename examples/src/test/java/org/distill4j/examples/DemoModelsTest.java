package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.cuda.CudaBackend;
import org.distill4j.cuda.nn.CudaMlpEngineProvider;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.train.StepEngineProvider;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The demo's default models are ones the GPU MLP engine runs, so on a machine with the cuda backend the
 * demo's distillation steps run whole on the device: given a cuda backend with no device (this machine),
 * the engine passes every check of the models and the loss and declines only because it cannot start.
 */
class DemoModelsTest {
    @Test
    void theDemosTeacherAndStudentAreRunByTheGpuEngine() {
        Demo.Settings s = new Demo.Settings();
        MultiLayerNetwork teacher = DemoModels.mlp(784, s.teacherHidden, 10, s.teacherDropout, s.learningRate, s.seed);
        MultiLayerNetwork student = DemoModels.mlp(784, s.studentHidden, 10, 0, s.learningRate, s.seed + 1);
        StepEngineProvider.Setup setup = new StepEngineProvider.Setup(Dl4jTeacher.of(teacher), Dl4jStudent.of(student),
                new SoftTargetKd(s.temperature, s.alpha), new CudaBackend(null), s.batchSize, List.of(), s.seed);
        StepEngineProvider.Offer o = new CudaMlpEngineProvider().offer(setup);
        assertNull(o.engine());
        assertTrue(o.reason().startsWith("the engine could not start on the cuda backend (no device context)"), o.reason());
    }
}
