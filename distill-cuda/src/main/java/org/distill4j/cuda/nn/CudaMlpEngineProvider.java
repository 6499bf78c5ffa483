package org.distill4j.cuda.nn;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.cuda.CudaBackend;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.train.StepEngineProvider;

/**
 * The GPU MLP engine's provider ({@code cuda-mlp}): offers the whole distillation step on the device when
 * the run's compute backend is {@code cuda}, the student (and the teacher, if any) are DL4J dense networks
 * the engine runs exactly ({@link Dl4jMlp#importFrom}), the loss is {@code kd} or {@code ce}, and there
 * are no feature losses. A {@code ce} run does not use its teacher, so any teacher (or none) will do. Otherwise it declines with the first reason, which the run logs and records.
 *
 * <p>It runs where the {@code cuda} backend it needs is active: by default on the architectures where the GPU
 * tests have passed ({@link org.distill4j.cuda.CudaBackendProvider#VALIDATED_ARCHITECTURES}), elsewhere with
 * {@code -Ddistill.cuda.unvalidated=true}.
 * {@code -Ddistill.cuda.mlp.precision=bf16} selects bf16 GEMMs; {@code -Ddistill.cuda.mlp.epilogues=kernels}
 * turns off the fused cuBLASLt epilogues. A value of these it cannot read fails the run
 * ({@link org.distill4j.train.StepEngineProvider.InvalidSettingException}), also under {@code auto} and on the CPU backend.
 */
public final class CudaMlpEngineProvider implements StepEngineProvider {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(CudaMlpEngineProvider.class);
    /** The engine's name, {@value}: what {@code -Ddistill.engine=cuda-mlp} (or {@code DISTILL_ENGINE}) asks for. */
    public static final String NAME = "cuda-mlp";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Offer offer(Setup setup) {
        // first, whatever the setup: a malformed option fails the run (InvalidSettingException), also where the engine
        // could not run anyway, rather than being noticed only on the machine with the GPU
        CudaMlpEngine.Options options = CudaMlpEngine.Options.fromSystemProperties();
        String why = unsupported(setup);
        if (why != null) {
            return Offer.decline(why);
        }
        CudaBackend backend = (CudaBackend) setup.backend();
        MultiLayerNetwork studentNet = ((Dl4jStudent) setup.student()).multiLayerNetwork();
        Dl4jMlp.Imported student = Dl4jMlp.importFrom(studentNet);
        Dl4jMlp.Imported teacher = setup.teacher() != null && setup.loss().needsTeacher()
                ? Dl4jMlp.importForInference(((Dl4jTeacher) setup.teacher()).multiLayerNetwork()) : null;
        try {
            MlpOptimizerState start = Dl4jMlp.readState(studentNet, student.spec()); // a pretrained student's Adam state goes on
            return Offer.of(new CudaMlpEngine(backend.context(), student.spec(), student.weights(), start, teacher != null ? teacher.spec() : null,
                    teacher != null ? teacher.weights() : null, setup.batchSize(), options, setup.seed(),
                    (w, state) -> Dl4jMlp.writeBack(studentNet, student.spec(), w, state)));
        } catch (RuntimeException | LinkageError e) {
            String where = backend.context() != null ? backend.device() : "the cuda backend (no device context)";
            log.warn("cuda-mlp could not start on {}: {}", where, e.toString());
            return Offer.decline("the engine could not start on " + where + ": " + e);
        }
    }

    @Override
    public String unavailableOn(org.distill4j.backend.ComputeBackend backend) {
        return backend instanceof CudaBackend ? null : "the compute backend is '" + backend.name() + "', not cuda";
    }

    /** Why the engine cannot run this setup, or null when it can. */
    static String unsupported(Setup setup) {
        String off = new CudaMlpEngineProvider().unavailableOn(setup.backend());
        if (off != null) {
            return off;
        }
        if (!setup.featureTerms().isEmpty()) {
            return "feature losses run on the DL4J path only";
        }
        if (!(setup.loss() instanceof SoftTargetKd) && !(setup.loss() instanceof CrossEntropy)) {
            return "loss '" + setup.loss().name() + "' has no GPU step (kd and ce do)";
        }
        if (!(setup.student() instanceof Dl4jStudent ds) || ds.multiLayerNetwork() == null) {
            return "the student (" + setup.student().describe() + ") is not a DL4J MultiLayerNetwork";
        }
        String s = importProblem(ds.multiLayerNetwork(), "student");
        if (s != null) {
            return s;
        }
        if (!setup.loss().needsTeacher()) {
            return null; // ce: the engine runs without the teacher, whatever model it is
        }
        if (setup.teacher() == null) {
            return "loss '" + setup.loss().name() + "' needs a teacher";
        }
        if (!(setup.teacher() instanceof Dl4jTeacher dt) || dt.multiLayerNetwork() == null) {
            return "the teacher (" + setup.teacher().describe() + ") is not a DL4J MultiLayerNetwork; the engine runs MLP teachers";
        }
        return importProblem(dt.multiLayerNetwork(), "teacher");
    }

    private static String importProblem(MultiLayerNetwork net, String role) {
        try {
            // a teacher only runs forward: what only its training used (its updater, regularization, ...) does not matter
            Dl4jMlp.Imported imported = role.equals("teacher") ? Dl4jMlp.importForInference(net) : Dl4jMlp.importFrom(net);
            if (role.equals("student") && imported.softmaxHead()) {
                return "the student ends in a softmax OutputLayer; the engine trains students whose last layer gives logits";
            }
            return null;
        } catch (IllegalArgumentException e) {
            return role + ": " + e.getMessage();
        }
    }
}
