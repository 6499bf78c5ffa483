package org.distill4j.cuda.nn;

import org.distill4j.cuda.CublasLt;
import org.distill4j.cuda.GpuTest;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The device runner's resources: what a program's preparation made is released when a later part of it fails. */
class DeviceMlpRunnerGpuTest extends GpuTest {

    /** CublasLt's count of open plans (package-private there, for tests). */
    private static int openPlans(CublasLt lt) throws Exception {
        Method m = CublasLt.class.getDeclaredMethod("openPlans");
        m.setAccessible(true);
        return (Integer) m.invoke(lt);
    }

    /**
     * A program whose third GEMM has no plan (cuBLASLt refuses it: here a shape with an impossible leading
     * dimension, as the heuristic refuses an epilogue) fails to prepare; the two plans made before it are
     * closed then, not left open until the handle closes (the engine prepares the kernels' program next, and
     * a short batch's refused program stays refused for the whole run).
     */
    @Test
    void aPlanThatFailsClosesThePlansMadeBeforeIt() throws Exception {
        MlpSpec s = CudaMlpEngineGpuTest.student(MlpSpec.Activation.TANH, 0);
        MlpProgram p = MlpProgram.build(s, CudaMlpEngineGpuTest.teacher(), 11, MlpProgram.Precision.F32, true);
        try (CublasLt lt = CublasLt.create(ctx, CudaMlpEngine.WORKSPACE)) {
            int[] calls = {0};
            DeviceMlpRunner.Planner refusesTheThird = (shape, a, b, d, bias, aux) -> {
                if (++calls[0] == 3) {
                    CublasLt.Shape bad = new CublasLt.Shape(shape.transA(), shape.transB(), shape.m(), shape.n(), shape.k(), shape.ab(), 0,
                            shape.ldb(), shape.ldd(), CublasLt.Epilogue.BIAS, 0);
                    return lt.plan(bad, a, b, d, bias != null ? bias : d, null);
                }
                return lt.plan(shape, a, b, d, bias, aux);
            };
            try (DeviceMlpRunner r = new DeviceMlpRunner(ctx, refusesTheThird, 1)) {
                RuntimeException e = assertThrows(RuntimeException.class, () -> r.prepare(p));
                assertTrue(calls[0] == 3, "planning stopped at the refused GEMM, after " + calls[0] + " plans (" + e + ")");
                assertEquals(0, openPlans(lt), "plans left open after the refusal");
            }
            try (DeviceMlpRunner r = new DeviceMlpRunner(ctx, lt::plan, 1)) {
                r.prepare(p);
                long gemms = p.step().stream().filter(op -> op instanceof MlpProgram.Gemm).count();
                assertEquals(gemms, openPlans(lt), "one plan per GEMM");
            }
            assertEquals(0, openPlans(lt), "closing the runner closes its plans");
        }
    }
}
