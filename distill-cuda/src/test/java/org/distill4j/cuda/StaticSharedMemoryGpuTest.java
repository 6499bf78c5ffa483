package org.distill4j.cuda;

import org.distill4j.backend.CpuBackend;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.TopKKd;
import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Launches whose dynamic shared memory fits the 48 KiB a block has without opting in, but not beside the kernel's static
 * shared memory ({@code __shared__} variables: kd_tile's 1104 bytes, topk_block's 196): a function's default maximum
 * dynamic shared memory is 48 KiB less its static part, so such a launch fails (CUDA_ERROR_INVALID_VALUE) unless
 * {@link DeviceContext} opts the function in. Until 2026-11-24 it opted in only above 48 KiB of dynamic shared memory,
 * and every launch here failed. Each shape is one the planners pick: a whole row cached by one block (fp32 V 6144 and
 * bf16 V 12288, 2 x 6144 x 4 bytes), two rows of fp32 V 3072 in a double-buffered cache, and the top-k membership
 * bitmap of the widest vocabulary (393,216 bits).
 */
class StaticSharedMemoryGpuTest extends GpuTest {
    /** The band: dynamic shared memory at most 48 KiB, and within the static part of it. */
    private static void assertInTheBand(KernelPlan plan) {
        assertTrue(plan.sharedBytes() > 47 * 1024 && plan.sharedBytes() <= 48 * 1024,
                plan + ": not a launch within 1 KiB of 48 KiB of dynamic shared memory");
    }

    @ParameterizedTest(name = "rows {0}, V {1}")
    @CsvSource({"3, 6144", "5, 6144"})
    void kdThroughTheBackendWithAWholeRowCached(int rows, int v) {
        Random rng = new Random(6144L * rows + v);
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        float[] t = Inputs.logits(rng, rows, v, 3.0);
        int[] labels = Inputs.labels(rng, rows, v);
        LogitBatch batch = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels);
        SoftTargetKd loss = new SoftTargetKd(2.0, 0.2);
        float upstream = 0.7f;
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, upstream);
        KernelPlan launched = ctx.lastLaunch();
        assertTrue(launched.function().startsWith("kd_tile_f32"), "the tiled kernel ran: " + launched);
        assertInTheBand(launched);
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.kd(s, t, false, labels, rows, v, 2.0, 0.2, upstream, refGrad);
        String what = "kd V " + v + " on " + launched;
        Tolerances.assertKernelValueClose(ref, r.value(), Tolerances.KERNEL_F32_VALUE_REL, what);
        Tolerances.assertKernelGradClose(refGrad, grad, Tolerances.KERNEL_F32_GRAD, what + " gradient");
        LossResult cpu;
        try (CpuBackend cpuBackend = new CpuBackend()) {
            cpu = cpuBackend.logitLoss(loss, batch, new float[rows * v], upstream);
        }
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, what + " vs cpu");
    }

    /** bf16 V 12288 with the plan {@link KdPlan#choose} picks, and fp32 V 3072 double-buffered, looping over the rows. */
    @ParameterizedTest(name = "{0} V {1}, double buffer {2}")
    @CsvSource({"BF16, 12288, false", "F32, 3072, true"})
    void kdPlansInTheBandMatchTheReference(DType dtype, int v, boolean doubleBuffer) {
        int rows = 4;
        Random rng = new Random(v + dtype.ordinal());
        float[] s = dtype.round(Inputs.logits(rng, rows, v, 3.0));
        float[] t = dtype.round(Inputs.logits(rng, rows, v, 3.0));
        int[] labels = Inputs.labels(rng, rows, v);
        double temperature = 2.0;
        double alpha = 0.2;
        float upstream = 0.9f;
        KdPlan plan = doubleBuffer
                ? KdPlan.pipelined(ctx.limits(), KdPlan.doubleBuffered(ctx.limits(), KdPlan.TILE_BLOCKS_PER_SM, rows, v, dtype), rows, v,
                        dtype, 1, 1)
                : KdPlan.choose(ctx.limits(), rows, v, dtype);
        assertTrue(plan.tiled() && plan.cached() == v, plan + ": one block caching the whole row");
        assertEquals(doubleBuffer ? KdPlan.Prefetch.DOUBLE_BUFFER : KdPlan.Prefetch.NONE, plan.prefetch(), plan.toString());
        assertInTheBand(plan.kernel());
        float[][] got = CudaKernelsGpuTest.runKd(plan, dtype, s, t, labels, null, rows, v, temperature, alpha, upstream / rows, false);
        double value = 0;
        for (int r = 0; r < rows; r++) {
            value += alpha * got[0][3 * r + 1] + (1 - alpha) * got[0][3 * r];
        }
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.kd(s, t, false, labels, rows, v, temperature, alpha, upstream, refGrad);
        boolean f32 = dtype == DType.F32;
        String what = dtype + " V " + v + " on " + plan;
        Tolerances.assertKernelValueClose(ref, value / rows, f32 ? Tolerances.KERNEL_F32_VALUE_REL : Tolerances.KERNEL_F16_VALUE_REL, what);
        Tolerances.assertKernelGradClose(refGrad, got[1], f32 ? Tolerances.KERNEL_F32_GRAD : Tolerances.KERNEL_F16_GRAD, what + " gradient");
    }

    /** The widest vocabulary top-k KD takes on the GPU: a 48 KiB membership bitmap beside topk_block's static shared memory. */
    @Test
    void topKAtTheWidestVocabulary() {
        int rows = 2;
        int v = KernelPlan.MAX_DYNAMIC_SHARED * 8;
        int k = 32;
        Random rng = new Random(393_216);
        float[] s = Inputs.logits(rng, rows, v, 4.0);
        float[] teacher = Inputs.logits(rng, rows, v, 4.0);
        KernelInputs.TopK top = KernelInputs.topK(teacher, rows, v, k);
        LogitBatch batch = LogitBatch.ofTopK(rows, v, s, top.ids(), top.logProbs(), k, new int[rows]);
        TopKKd loss = new TopKKd(2.0, TopKKd.Tail.REST_BUCKET);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, 0.9f);
        KernelPlan launched = ctx.lastLaunch();
        assertTrue(launched.function().startsWith("topk_block"), "the block kernel ran: " + launched);
        assertInTheBand(launched);
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = loss.compute(batch, cpuGrad, 0.9f);
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "topk V " + v);
        Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), grad, Tolerances.KERNEL_F32_GRAD, "topk V " + v + " gradient");
    }
}
