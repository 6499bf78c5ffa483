package org.distill4j.cuda.nn;

import org.distill4j.cuda.CublasLt;
import org.distill4j.cuda.DType;
import org.distill4j.cuda.DeviceBuffer;
import org.distill4j.cuda.DeviceContext;
import org.distill4j.cuda.DevicePtr;
import org.distill4j.cuda.KdRows;
import org.distill4j.cuda.KernelPlan;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.Reduction;

import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs {@link MlpProgram}s on a GPU: one device allocation per named buffer (shared by the programs of
 * different row counts, sized by the first, largest one), a cuBLASLt plan per GEMM made once, and the
 * {@code mlp_*} kernels and the fused kd kernel for the other operations, all queued on the context's
 * stream. Nothing is copied to the host inside a step.
 */
final class DeviceMlpRunner implements AutoCloseable {
    static final int THREADS = 256;
    static final int MAX_GRID = 8192;
    /** mlp_bias_grad_f32's fixed block (DISTILL_MLP_BG_THREADS) and columns per block. */
    static final int BIAS_GRAD_THREADS = 1024;
    static final int BIAS_GRAD_COLS = 32;

    /** Makes one GEMM's plan: {@link CublasLt#plan}, or in tests one that refuses a GEMM on purpose. */
    @FunctionalInterface
    interface Planner {
        CublasLt.Matmul plan(CublasLt.Shape shape, DevicePtr a, DevicePtr b, DevicePtr d, DevicePtr bias, DevicePtr aux);
    }

    private final DeviceContext ctx;
    private final Planner lt;
    private final long seed;
    private final Map<String, DeviceBuffer> memory = new HashMap<>();
    private final Map<MlpProgram, Map<MlpProgram.Gemm, CublasLt.Matmul>> plans = new IdentityHashMap<>();
    private final AtomicBoolean closed = new AtomicBoolean();
    /**
     * One int32 on the device: not 0 once a step's loss flagged a row (mlp_step_guard); the optimizer's kernels then
     * change nothing, in that step and the steps queued after it. Zeroed when allocated (the first prepare).
     */
    private DeviceBuffer halted;

    DeviceMlpRunner(DeviceContext ctx, CublasLt lt, long seed) {
        this(ctx, lt::plan, seed);
    }

    DeviceMlpRunner(DeviceContext ctx, Planner planner, long seed) {
        this.ctx = ctx;
        this.lt = planner;
        this.seed = seed;
    }

    /**
     * Allocates {@code p}'s buffers (those not yet allocated) and plans its GEMMs.
     *
     * @throws CublasLt.NoAlgorithmException when cuBLASLt has no algorithm for one of its GEMMs
     */
    void prepare(MlpProgram p) {
        if (halted == null) {
            halted = ctx.alloc(4);
            ctx.fill32(halted, 0, 1);
        }
        for (MlpProgram.Buffer b : p.buffers().values()) {
            DeviceBuffer d = memory.get(b.name());
            if (d == null) {
                memory.put(b.name(), ctx.alloc(b.bytes()));
            } else if (d.capacity() < b.bytes()) {
                throw new IllegalStateException("buffer " + b.name() + " needs " + b.bytes() + " bytes, " + d.capacity()
                        + " were allocated: prepare the largest program first");
            }
        }
        Map<MlpProgram.Gemm, CublasLt.Matmul> mine = new IdentityHashMap<>();
        try {
            for (MlpProgram.Op op : p.step()) {
                if (op instanceof MlpProgram.Gemm g) {
                    CublasLt.Shape shape = new CublasLt.Shape(g.transA(), g.transB(), g.m(), g.n(), g.k(),
                            g.a().elem() == MlpProgram.Elem.BF16 ? CublasLt.Type.BF16 : CublasLt.Type.F32, g.lda(), g.ldb(), g.ldd(),
                            CublasLt.Epilogue.valueOf(g.epilogue().name()), g.auxLd());
                    mine.put(g, lt.plan(shape, ptr(g.a()), ptr(g.b()), ptr(g.d()), optional(g.bias()), optional(g.aux())));
                }
            }
        } catch (RuntimeException | Error e) {
            // the program is not prepared: the plans made for it so far would stay open until the handle closes
            mine.values().forEach(CublasLt.Matmul::close);
            throw e;
        }
        plans.put(p, mine);
    }

    /** The device buffer behind {@code b}. */
    DeviceBuffer buffer(MlpProgram.Buffer b) {
        DeviceBuffer d = memory.get(b.name());
        if (d == null) {
            throw new IllegalStateException("buffer " + b.name() + " is not allocated: prepare its program first");
        }
        return d;
    }

    /** The address of a slice. */
    DevicePtr ptr(MlpProgram.Slice s) {
        long unit = s.elem().bytes();
        return buffer(s.buffer()).at(s.offset() * unit, s.length() * unit);
    }

    private DevicePtr optional(MlpProgram.Slice s) {
        return s != null ? ptr(s) : null;
    }

    /** Bytes of a step's scalars on the device for a replayed graph: the dropout seed (u64), then Adam's alphaT (f32). */
    static final int STEP_SCALARS_BYTES = 16;

    /** Queues {@code ops} of a prepared program; {@code step} (0, 1, ...) picks the dropout masks and Adam's bias correction. */
    void run(MlpProgram p, Iterable<MlpProgram.Op> ops, LogitLoss loss, long step) {
        run(p, ops, loss, step, null);
    }

    /**
     * As above; with {@code scalars} (a {@link #STEP_SCALARS_BYTES} device block, see {@link #stepScalars}) the
     * dropout and Adam kernels read the step's seed and alphaT from there instead of their immediate
     * arguments, so a CUDA graph captured once replays any step.
     */
    void run(MlpProgram p, Iterable<MlpProgram.Op> ops, LogitLoss loss, long step, DevicePtr scalars) {
        DevicePtr seedDev = scalars;
        DevicePtr alphaDev = scalars != null ? new DevicePtr(scalars.address() + 8) : null;
        Map<MlpProgram.Gemm, CublasLt.Matmul> mine = plans.get(p);
        if (mine == null) {
            throw new IllegalStateException("the program is not prepared");
        }
        for (MlpProgram.Op op : ops) {
            if (op instanceof MlpProgram.Gemm g) {
                mine.get(g).run(ptr(g.a()), ptr(g.b()), ptr(g.d()), optional(g.bias()), optional(g.aux()));
            } else if (op instanceof MlpProgram.BiasAct o) {
                long n = (long) o.rows() * o.cols();
                Object bias = o.bias() != null ? ptr(o.bias()) : null;
                Object pre = o.pre() != null ? ptr(o.pre()) : null;
                if (o.yBf16() != null) {
                    ctx.launch(grid("mlp_bias_act_bf16out", n), ptr(o.z()), bias, (long) o.rows(), o.cols(), o.act().ordinal(), ptr(o.yBf16()), pre);
                } else {
                    ctx.launch(grid("mlp_bias_act_f32", n), ptr(o.z()), bias, (long) o.rows(), o.cols(), o.act().ordinal(), pre);
                }
            } else if (op instanceof MlpProgram.ActBackward o) {
                long n = (long) o.rows() * o.cols();
                if (o.dzBf16() != null) {
                    ctx.launch(grid("mlp_act_backward_bf16out", n), ptr(o.dy()), ptr(o.pre()), (long) o.rows(), o.cols(), o.act().ordinal(),
                            ptr(o.dzBf16()));
                } else {
                    ctx.launch(grid("mlp_act_backward_f32", n), ptr(o.dy()), ptr(o.pre()), (long) o.rows(), o.cols(), o.act().ordinal());
                }
            } else if (op instanceof MlpProgram.ToBf16 o) {
                ctx.launch(grid("mlp_to_bf16", o.n()), ptr(o.src()), ptr(o.dst()), o.n());
            } else if (op instanceof MlpProgram.BiasGrad o) {
                int blocks = Math.max(1, Math.min(MAX_GRID, (o.cols() + BIAS_GRAD_COLS - 1) / BIAS_GRAD_COLS));
                ctx.launch(new KernelPlan("mlp_bias_grad_f32", BIAS_GRAD_THREADS, blocks), ptr(o.dz()), (long) o.rows(), o.cols(), ptr(o.db()));
            } else if (op instanceof MlpProgram.Dropout o) {
                String k = o.x().elem() == MlpProgram.Elem.BF16 ? "mlp_dropout_bf16" : "mlp_dropout_f32";
                ctx.launch(grid(k, o.n()), ptr(o.x()), ptr(o.mask()), o.n(), (float) o.dropProb(), MlpDropoutMask.stepSeed(seed, step),
                        MlpDropoutMask.layerOffset(o.stream()), seedDev);
            } else if (op instanceof MlpProgram.DropoutBackward o) {
                ctx.launch(grid("mlp_dropout_backward_f32", o.n()), ptr(o.dx()), ptr(o.mask()), o.n(), (float) o.dropProb());
            } else if (op instanceof MlpProgram.Loss o) {
                double w = loss.reduction() == Reduction.SUM ? 1.0 : 1.0 / o.rows();
                KdRows.launch(ctx, DType.F32, loss, ptr(o.studentLogits()), o.teacherLogits() != null ? ptr(o.teacherLogits()) : null,
                        ptr(o.labels()), null, ptr(o.grad()), ptr(o.rowOut()), o.rows(), o.classes(), w, 1f, false);
            } else if (op instanceof MlpProgram.Update o) {
                // the loss ran before (MlpProgram puts the update last): a flagged row of this step halts the update
                ctx.launch(grid("mlp_step_guard", p.rows()), ptr(p.rowOut().all()), p.rows(), halted);
                update(p.student().spec().optimizer(), o, step + 1, alphaDev);
            } else {
                throw new IllegalStateException("no device rule for " + op);
            }
        }
    }

    private void update(MlpSpec.Optimizer opt, MlpProgram.Update o, long t, DevicePtr alphaDev) {
        Object bf = o.paramsBf16() != null ? ptr(o.paramsBf16()) : null;
        if (opt.kind() == MlpSpec.Optimizer.Kind.SGD) {
            ctx.launch(grid("mlp_sgd_f32", o.n()), ptr(o.params()), ptr(o.grads()), o.n(), (float) opt.learningRate(), bf, halted);
            return;
        }
        ctx.launch(grid("mlp_adam_f32", o.n()), ptr(o.params()), ptr(o.grads()), ptr(o.m()), ptr(o.v()), o.n(), (float) opt.learningRate(),
                (float) opt.beta1(), (float) opt.beta2(), (float) opt.epsilon(), (float) opt.weightDecay(), adamAlphaT(opt, t), bf, alphaDev,
                halted);
    }

    /**
     * Adam's step size at step {@code t} (1, 2, ...) with the bias correction folded in, as DL4J 1.0.0-M2.1's native Adam
     * updater computes it for fp32 parameters (measured, bit for bit: {@code Dl4jMlpTest.adamStepSizeIsDl4jsBitForBit}): the
     * learning rate and betas rounded to fp32, their t-th powers in fp32, {@code 1 - beta2^t} in float64 and rounded to fp32
     * under an fp32 square root, times the learning rate in fp32, divided by {@code 1 - beta1^t} in float64, rounded to fp32.
     * The moments use the fp32 betas too, so their {@code 1 - beta2} cancels this one's; from the float64 betas, as computed
     * before, every update was about 6.7e-6 larger than DL4J's at beta2 = 0.999. Unlike DL4J, a step size of 0 (learning
     * rate 0) stays 0: DL4J's updater then uses epsilon as the step size.
     */
    static float adamAlphaT(MlpSpec.Optimizer opt, long t) {
        float lr = (float) opt.learningRate();
        float beta1T = (float) Math.pow((float) opt.beta1(), t);
        float beta2T = (float) Math.pow((float) opt.beta2(), t);
        return (float) ((double) (lr * (float) Math.sqrt((float) (1.0 - beta2T))) / (1.0 - beta1T));
    }

    /**
     * The step scalars a replayed graph reads, as four little-endian 32-bit words: the dropout seed of
     * {@code step} of a run seeded {@code runSeed} (low word, high word), Adam's alphaT for it (0 for SGD),
     * and 0: what {@link #run} passes as immediates.
     */
    static int[] stepScalars(long runSeed, MlpSpec.Optimizer opt, long step) {
        long seed = MlpDropoutMask.stepSeed(runSeed, step);
        float alphaT = opt.kind() == MlpSpec.Optimizer.Kind.ADAM ? adamAlphaT(opt, step + 1) : 0f;
        return new int[] {(int) seed, (int) (seed >>> 32), Float.floatToRawIntBits(alphaT), 0};
    }

    /** Queues writing {@code step}'s scalars to {@code scalars} (word fills: no host buffer, nothing to wait for). */
    void writeStepScalars(DevicePtr scalars, MlpSpec.Optimizer opt, long step) {
        int[] words = stepScalars(seed, opt, step);
        for (int i = 0; i < words.length; i++) {
            ctx.fill32(new DevicePtr(scalars.address() + 4L * i), words[i], 1);
        }
    }

    /** A grid-stride kernel over {@code n} elements. */
    static KernelPlan grid(String kernel, long n) {
        long blocks = (n + THREADS - 1) / THREADS;
        return new KernelPlan(kernel, THREADS, (int) Math.max(1, Math.min(MAX_GRID, blocks)));
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        plans.values().forEach(m -> m.values().forEach(CublasLt.Matmul::close));
        plans.clear();
        memory.values().forEach(DeviceBuffer::close);
        memory.clear();
        if (halted != null) {
            halted.close();
            halted = null;
        }
    }
}
