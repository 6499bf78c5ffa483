package org.distill4j.cuda.nn;

import org.distill4j.cuda.CublasLt;
import org.distill4j.cuda.DeviceBuffer;
import org.distill4j.cuda.DeviceContext;
import org.distill4j.cuda.DeviceEvent;
import org.distill4j.cuda.DeviceGraph;
import org.distill4j.cuda.DevicePtr;
import org.distill4j.cuda.DeviceStager;
import org.distill4j.cuda.KdRows;
import org.distill4j.cuda.PinnedBuffer;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.BadRowException;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Reduction;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.train.StepEngine;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The whole distillation step of an MLP teacher and student on one GPU ({@code cuda-mlp}). Each step:
 * <ol>
 *   <li>stages the batch's features and labels once, through the batching core's {@link DeviceStager}:
 *       the host writes them into pinned memory and the copy engine moves them on a stream of its own;</li>
 *   <li>queues, on the compute stream, a move of those bytes into the step's input buffers (a
 *       device-side copy, so the staging slot is free again at once), the teacher's forward, the student's
 *       forward with dropout, the fused kd/ce kernel, the backward and one optimizer launch over all
 *       parameters (an {@link MlpProgram} run by cuBLASLt and the {@code mlp_*} kernels);</li>
 *   <li>queues the read-back of the rows' loss parts (12 bytes a row) into pinned memory: the only bytes
 *       that come back, for the metrics.</li>
 * </ol>
 * {@link #submit} returns when that is queued, so with the Distiller submitting batch i+1 before it asks
 * for batch i's result, the host gathers and stages the next batch while the device runs the current
 * step. {@link #syncToStudent} writes the weights and Adam's moments back into the DL4J student.
 */
public final class CudaMlpEngine implements StepEngine {
    private static final Logger log = LoggerFactory.getLogger(CudaMlpEngine.class);
    /** cuBLASLt workspace: 32 MiB, what Hopper's heuristics ask for at most. */
    static final long WORKSPACE = 32L << 20;

    /**
     * How the engine runs: GEMM precision, whether epilogues are fused into the GEMMs (fp32 only), and
     * whether each step is a replayed CUDA graph (captured once per batch size and loss setting: one launch a
     * step instead of one per kernel and GEMM; the step's dropout seed and Adam step size are read from device
     * memory, so replays give the bits of launching the kernels one by one).
     */
    public record Options(MlpProgram.Precision precision, boolean fusedEpilogues, boolean graphs) {
        /**
         * The options as given, except that {@code fusedEpilogues} is taken as false for a precision other than
         * {@link MlpProgram.Precision#F32} (bf16 fuses bias, activation and rounding into one kernel of its own).
         *
         * @throws NullPointerException if {@code precision} is null
         */
        public Options {
            java.util.Objects.requireNonNull(precision, "precision");
            if (fusedEpilogues && precision != MlpProgram.Precision.F32) {
                fusedEpilogues = false; // bf16 fuses bias, activation and rounding into one kernel instead
            }
        }

        /**
         * Steps launched kernel by kernel.
         *
         * @throws NullPointerException if {@code precision} is null
         */
        public Options(MlpProgram.Precision precision, boolean fusedEpilogues) {
            this(precision, fusedEpilogues, false);
        }

        /**
         * {@code distill.cuda.mlp.precision} (f32 | bf16, default f32), {@code distill.cuda.mlp.epilogues}
         * (fused | kernels, default fused) and {@code distill.cuda.mlp.graphs} (true | false, default true: on an
         * H100 replayed steps were 1.03-6.1x faster at batch 128, 1024 and 8192, in fp32 and bf16;
         * benchmarks/results/gpu-mlp-step-2026-11-22.csv).
         */
        public static Options fromSystemProperties() {
            String p = property("distill.cuda.mlp.precision", "f32");
            MlpProgram.Precision precision = switch (p) {
                case "f32", "fp32", "float32" -> MlpProgram.Precision.F32;
                case "bf16", "bfloat16" -> MlpProgram.Precision.BF16;
                default -> throw invalid("distill.cuda.mlp.precision", "f32 or bf16");
            };
            String e = property("distill.cuda.mlp.epilogues", "fused");
            if (!e.equals("fused") && !e.equals("kernels")) {
                throw invalid("distill.cuda.mlp.epilogues", "fused or kernels");
            }
            String g = property("distill.cuda.mlp.graphs", "true");
            if (!g.equals("true") && !g.equals("false")) {
                throw invalid("distill.cuda.mlp.graphs", "true or false");
            }
            return new Options(precision, e.equals("fused"), g.equals("true"));
        }

        private static String property(String key, String absent) {
            return System.getProperty(key, absent).trim().toLowerCase(java.util.Locale.ROOT);
        }

        /** The property's value cannot be read: an error that fails the run (StepEngines does not take it as a decline). */
        private static org.distill4j.train.StepEngineProvider.InvalidSettingException invalid(String key, String expected) {
            return new org.distill4j.train.StepEngineProvider.InvalidSettingException(key, System.getProperty(key), expected);
        }
    }

    private final DeviceContext ctx;
    private final WriteBack sink;
    private final MlpSpec studentSpec;
    private final MlpSpec teacherSpec;
    private final int maxRows;
    private final CublasLt lt;
    private final DeviceMlpRunner runner;
    private final Map<Integer, MlpProgram> programs = new HashMap<>();
    private final MlpProgram.Precision precision;
    private boolean fused;
    /** Whether hidden ReLU layers keep cuBLASLt's bit-mask for a DRELU_BGRAD backward (with fused epilogues). */
    private boolean reluMasks;
    private long steps;
    private int epochs;
    /** Steps that may be pending at once (the Distiller keeps two); each has a staging slot and a read-back slot. */
    static final int IN_FLIGHT = 2;
    private final DeviceStager stager;
    private final PinnedBuffer[] rowsBack = new PinnedBuffer[IN_FLIGHT];
    private final DeviceEvent[] rowsReady = new DeviceEvent[IN_FLIGHT];
    /** Each read-back slot's step and rows, for {@link #syncToStudent} with steps not yet collected. */
    private final long[] slotStep = new long[IN_FLIGHT];
    private final int[] slotRows = new int[IN_FLIGHT];
    private long submitted;
    private long collected;
    /**
     * The features of the last submitted batch (the caller's array, not a copy) and its rows, from which
     * {@link #timeResidentStep} restores an input its step's dropout changed in place.
     */
    private float[] lastFeatures;
    private int lastRows;
    private boolean graphs;
    /** The step's scalars for replayed graphs (seed, alphaT), written before each replay; null without graphs. */
    private DeviceBuffer stepScalars;
    /** Captured steps by batch size and loss setting; the oldest is dropped beyond {@value #MAX_GRAPHS}. */
    private final Map<String, DeviceGraph> captured = new java.util.LinkedHashMap<>();
    static final int MAX_GRAPHS = 8;
    private final AtomicBoolean closed = new AtomicBoolean();
    /**
     * The step (0, 1, ...) whose loss flagged a row, or -1. The device skipped its update and those of the steps queued
     * after it (mlp_step_guard), so the weights and optimizer state are those after the steps before it; the engine takes
     * no more steps.
     */
    private long failedStep = -1;

    /** Where {@link #syncToStudent} puts the weights and optimizer state (e.g. {@link Dl4jMlp#writeBack} into the student). */
    @FunctionalInterface
    public interface WriteBack {
        /**
         * Takes the student's weights and optimizer state (the step and epoch counts, and Adam's moments or null) as the
         * device holds them, read back for this call, on the thread that called {@link #syncToStudent}.
         */
        void write(MlpWeights weights, MlpOptimizerState state);
    }

    /**
     * Uploads the networks and prepares the step for batches of up to {@code maxRows} rows.
     *
     * @param teacherSpec the teacher, or null (cross-entropy only), with {@code teacherWeights}
     * @param sink        what {@link #syncToStudent} writes to
     */
    public CudaMlpEngine(DeviceContext ctx, MlpSpec studentSpec, MlpWeights studentWeights, MlpSpec teacherSpec, MlpWeights teacherWeights,
                         int maxRows, Options options, long seed, WriteBack sink) {
        this(ctx, studentSpec, studentWeights, MlpOptimizerState.fresh(), teacherSpec, teacherWeights, maxRows, options, seed, sink);
    }

    /**
     * As above, for a student whose training goes on from {@code start}: its step count (Adam's bias
     * correction and the dropout masks count from it), epoch count and Adam moments, e.g. what
     * {@link Dl4jMlp#readState} read from a student DL4J has trained.
     */
    public CudaMlpEngine(DeviceContext ctx, MlpSpec studentSpec, MlpWeights studentWeights, MlpOptimizerState start, MlpSpec teacherSpec,
                         MlpWeights teacherWeights, int maxRows, Options options, long seed, WriteBack sink) {
        if (maxRows <= 0) {
            throw new IllegalArgumentException("maxRows must be > 0, got " + maxRows);
        }
        if ((teacherSpec == null) != (teacherWeights == null)) {
            throw new IllegalArgumentException("a teacher spec comes with its weights and weights with their spec; got "
                    + (teacherSpec != null ? "a spec and no weights" : "weights and no spec"));
        }
        java.util.Objects.requireNonNull(sink, "sink (where syncToStudent writes the weights)");
        studentWeights.check(studentSpec);
        if (teacherSpec != null) {
            teacherWeights.check(teacherSpec);
        }
        if (studentSpec.optimizer().kind() == MlpSpec.Optimizer.Kind.ADAM) {
            if (start.m() != null) {
                start.m().check(studentSpec);
                start.v().check(studentSpec);
            } else if (start.steps() > 0) {
                throw new IllegalArgumentException("the student's optimizer is Adam, " + start.steps() + " steps taken, but the state holds "
                        + "no moments: pass them (Dl4jMlp.readState), or a fresh state");
            }
        }
        this.ctx = ctx;
        this.sink = sink;
        this.studentSpec = studentSpec;
        this.teacherSpec = teacherSpec;
        this.maxRows = maxRows;
        this.precision = options.precision();
        this.steps = start.steps();
        this.epochs = start.epochs();
        this.fused = options.fusedEpilogues();
        this.graphs = options.graphs();
        this.reluMasks = fused;
        CublasLt l = CublasLt.create(ctx, WORKSPACE);
        DeviceMlpRunner r = new DeviceMlpRunner(ctx, l, seed);
        DeviceStager st = null;
        try {
            MlpProgram first = null;
            while (first == null) {
                try {
                    first = program(maxRows, r);
                } catch (CublasLt.NoAlgorithmException e) {
                    if (reluMasks) {
                        log.info("cuda-mlp: {}; using fused epilogues without the ReLU bit-masks", e.getMessage());
                        reluMasks = false;
                    } else if (fused) {
                        log.info("cuda-mlp: {}; using the epilogue kernels instead of fused GEMM epilogues", e.getMessage());
                        fused = false;
                    } else {
                        throw e;
                    }
                    r.close();
                    r = new DeviceMlpRunner(ctx, l, seed);
                    programs.clear();
                }
            }
            // the alignment padding between parameter slices stays zero in every buffer laid out like them (unless a
            // test poisons the gradients; nothing reads the padding)
            for (MlpProgram.Buffer b : new MlpProgram.Buffer[] {first.student().params(), first.grads(), first.adamM(), first.adamV(),
                    teacherSpec != null ? first.teacher().params() : null}) {
                if (b != null) {
                    ctx.fill32(r.buffer(b), 0, b.elements());
                }
            }
            upload(r, first.student(), studentWeights, first.student().params());
            if (teacherSpec != null) {
                upload(r, first.teacher(), teacherWeights, first.teacher().params());
            }
            if (first.adamM() != null && start.m() != null) {
                upload(r, first.student(), start.m(), first.adamM());
                upload(r, first.student(), start.v(), first.adamV());
            }
            r.run(first, first.init(), null, 0);
            st = new DeviceStager(ctx, IN_FLIGHT, inputBytes(maxRows));
            if (graphs) {
                stepScalars = ctx.alloc(DeviceMlpRunner.STEP_SCALARS_BYTES);
            }
            for (int i = 0; i < IN_FLIGHT; i++) {
                rowsBack[i] = ctx.pinned(KdRows.ROW_OUT_BYTES * maxRows);
                rowsReady[i] = ctx.event();
            }
            ctx.synchronize();
            log.info("cuda-mlp: student {} and teacher {} on {}, {} of device memory for batches of {}", studentSpec.parameters() + " parameters",
                    teacherSpec == null ? "none" : teacherSpec.parameters() + " parameters", ctx.describe(), first.bytes() + " bytes", maxRows);
        } catch (RuntimeException e) {
            if (st != null) {
                st.close();
            }
            if (stepScalars != null) {
                stepScalars.close();
            }
            closeReadBack();
            r.close();
            l.close();
            throw e;
        }
        this.lt = l;
        this.runner = r;
        this.stager = st;
    }

    /** Bytes of one batch's inputs as staged: the features (fp32, row-major), then the labels (int32). */
    private long inputBytes(int rows) {
        return 4L * rows * studentSpec.inputs() + 4L * rows;
    }

    private void closeReadBack() {
        for (int i = 0; i < IN_FLIGHT; i++) {
            if (rowsReady[i] != null) {
                rowsReady[i].close();
            }
            if (rowsBack[i] != null) {
                rowsBack[i].close();
            }
        }
    }

    private MlpProgram program(int rows, DeviceMlpRunner r) {
        MlpProgram p = programs.get(rows);
        if (p == null) {
            p = MlpProgram.build(studentSpec, teacherSpec, rows, precision, fused, reluMasks);
            try {
                r.prepare(p);
            } catch (CublasLt.NoAlgorithmException e) {
                if (!fused || rows == maxRows) {
                    throw e; // the constructor steps down for the full batch
                }
                // a short batch whose shapes the heuristic refuses: its step uses the kernels (same buffers, same numbers
                // up to rounding)
                log.info("cuda-mlp: {}; batches of {} rows use the epilogue kernels", e.getMessage(), rows);
                p = MlpProgram.build(studentSpec, teacherSpec, rows, precision, false, false);
                r.prepare(p);
            }
            programs.put(rows, p);
        }
        return p;
    }

    /** Writes {@code w} into {@code target} (the net's parameters, or a buffer laid out like them: Adam's moments). */
    private void upload(DeviceMlpRunner r, MlpProgram.Net net, MlpWeights w, MlpProgram.Buffer target) {
        for (int l = 0; l < w.w().length; l++) {
            MlpProgram.Slice ws = net.w().get(l);
            MlpProgram.Slice bs = net.b().get(l);
            upload(r, MlpProgram.like(target, ws), w.w()[l], TRANSFER_CHUNK_BYTES);
            upload(r, MlpProgram.like(target, bs), w.b()[l], TRANSFER_CHUNK_BYTES);
        }
    }

    /**
     * Host-device copies of parameters and other buffers go in pieces of at most this many bytes: a network's
     * parameters may pass 2 GiB (a byte array's limit) and 2^31 elements (an int offset's).
     */
    static final long TRANSFER_CHUNK_BYTES = 64L << 20;

    /**
     * {@code s} cut into consecutive pieces of at most {@code chunkBytes} bytes each (at least one element),
     * offsets and lengths in elements, as longs.
     */
    static java.util.List<MlpProgram.Slice> pieces(MlpProgram.Slice s, long chunkBytes) {
        long per = Math.max(1, chunkBytes / s.elem().bytes());
        java.util.List<MlpProgram.Slice> out = new java.util.ArrayList<>();
        for (long done = 0; done < s.length(); done += per) {
            out.add(new MlpProgram.Slice(s.buffer(), s.offset() + done, Math.min(per, s.length() - done)));
        }
        return out;
    }

    /** Writes {@code values} (fp32) into slice {@code s}, in pieces of at most {@code chunkBytes}. */
    private void upload(DeviceMlpRunner r, MlpProgram.Slice s, float[] values, long chunkBytes) {
        if (s.elem() != MlpProgram.Elem.F32 || values.length != s.length()) {
            throw new IllegalArgumentException(values.length + " fp32 values for " + s + " (" + s.length() + " " + s.elem() + ")");
        }
        int at = 0;
        for (MlpProgram.Slice piece : pieces(s, chunkBytes)) {
            ctx.upload(r.ptr(piece), floats(values, at, (int) piece.length()));
            at += (int) piece.length();
        }
    }

    /** Slice {@code s} (fp32) read back, in pieces of at most {@code chunkBytes} (waits for the queued work). */
    private float[] download(DeviceMlpRunner r, MlpProgram.Slice s, long chunkBytes) {
        if (s.elem() != MlpProgram.Elem.F32) {
            throw new IllegalArgumentException(s + " holds " + s.elem() + " values, not fp32");
        }
        if (s.length() > MlpWeights.MAX_ARRAY) {
            throw new IllegalArgumentException(s + " holds " + s.length() + " values, more than a Java array holds (" + MlpWeights.MAX_ARRAY + ")");
        }
        float[] f = new float[(int) s.length()];
        int at = 0;
        for (MlpProgram.Slice piece : pieces(s, chunkBytes)) {
            int n = (int) piece.length();
            byte[] raw = new byte[4 * n];
            ctx.download(r.ptr(piece), raw);
            ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f, at, n);
            at += n;
        }
        return f;
    }

    /** For tests: {@link #upload(DeviceMlpRunner, MlpProgram.Slice, float[], long)} with the engine's runner. */
    void upload(MlpProgram.Slice s, float[] values, long chunkBytes) {
        upload(runner, s, values, chunkBytes);
    }

    /** For tests: {@link #download(DeviceMlpRunner, MlpProgram.Slice, long)} with the engine's runner. */
    float[] download(MlpProgram.Slice s, long chunkBytes) {
        return download(runner, s, chunkBytes);
    }

    @Override
    public String describe() {
        return "cuda-mlp " + precision.name().toLowerCase(java.util.Locale.ROOT) + (graphs ? " graphs" : "") + (fused ? " fused epilogues" + (reluMasks ? "" : " (no ReLU masks)") : "") + " on " + ctx.describe();
    }

    /** The step's precision and whether epilogues ended up fused (the heuristic may refuse them). */
    public Options options() {
        return new Options(precision, fused, graphs);
    }

    @Override
    public LossResult step(Batch batch, LogitLoss loss) {
        return submit(batch, loss).result();
    }

    /**
     * Stages the batch and queues its step and the read-back of its rows' loss parts; returns without
     * waiting for the device. At most {@value #IN_FLIGHT} steps may be pending; results are collected in
     * submission order.
     */
    @Override
    public Pending submit(Batch batch, LogitLoss loss) {
        if (closed.get()) {
            throw new IllegalStateException("the cuda-mlp engine is closed");
        }
        refuseAfterFailure();
        if (!KdRows.supports(loss)) {
            throw new IllegalArgumentException("the cuda-mlp engine runs kd and ce, not '" + loss.name() + "'");
        }
        if (loss instanceof SoftTargetKd && teacherSpec == null) {
            throw new IllegalArgumentException("loss 'kd' needs the teacher, but this cuda-mlp engine was prepared without one (ce only)");
        }
        int rows = batch.size();
        if (rows > maxRows) {
            throw new IllegalArgumentException("a batch of " + rows + " rows; the engine was prepared for " + maxRows);
        }
        int features = studentSpec.inputs();
        if (batch.featureCount() != features) {
            throw new IllegalArgumentException("the batch has " + batch.featureCount() + " features per row, the student takes " + features);
        }
        int[] labels = batch.labels();
        for (int r = 0; r < rows; r++) {
            if ((labels[r] < 0 || labels[r] >= studentSpec.outputs()) && labels[r] != Dataset.UNLABELED) {
                throw new BadRowException("label of row ", r, " is " + labels[r] + ", expected a class in [0, "
                        + studentSpec.outputs() + ") or UNLABELED (" + Dataset.UNLABELED + ")");
            }
        }
        float[] x = batch.features();
        // A NaN feature would vanish in a first-layer ReLU on the device (max(0, NaN) is 0 there) and the run would
        // train on, where the DL4J step flags the row's NaN logits: refused here, naming the row (about 0.1 ms for
        // 128 rows of 784 features, while the previous step runs on the device).
        for (int r = 0; r < rows; r++) {
            for (int j = r * features, end = j + features; j < end; j++) {
                if (!Float.isFinite(x[j])) {
                    throw new BadRowException("cuda-mlp step " + (steps + 1) + ": feature " + (j - r * features) + " of row ", r,
                            " is " + x[j] + ", expected a finite value");
                }
            }
        }
        if (submitted - collected >= IN_FLIGHT) {
            throw new IllegalStateException(IN_FLIGHT + " cuda-mlp steps are pending; collect the result of step " + collected
                    + " before submitting another");
        }
        MlpProgram p = program(rows, runner);
        long featureBytes = 4L * rows * features;
        DeviceStager.Batch staged = stager.stage(pinned -> {
            pinned.asFloatBuffer().put(x, 0, rows * features);
            pinned.position((int) featureBytes);
            pinned.asIntBuffer().put(labels, 0, rows);
            return inputBytes(rows);
        });
        DeviceBuffer in = stager.acquire(staged);
        ctx.copy(runner.ptr(p.features().all()), in.at(0, featureBytes), featureBytes);
        ctx.copy(runner.ptr(p.labels().all()), in.at(featureBytes, 4L * rows), 4L * rows);
        stager.release(staged); // the slot may take the next batch once these copies have run
        lastFeatures = x;
        lastRows = rows;
        long step = steps++;
        runStep(p, loss, step);
        long sequence = submitted++;
        int slot = (int) (sequence % IN_FLIGHT);
        ctx.downloadAsync(runner.ptr(p.rowOut().all()), rowsBack[slot], KdRows.ROW_OUT_BYTES * rows);
        rowsReady[slot].record();
        slotStep[slot] = step;
        slotRows[slot] = rows;
        return () -> collect(sequence, slot, rows, loss, step);
    }

    /**
     * Queues step {@code step} of {@code p}: the kernels one by one, or the step's scalars and a graph replay.
     * A batch size and loss setting seen for the first time runs kernel by kernel (which loads the kernels
     * and cuBLASLt's, outside any capture) and is captured for the next steps.
     */
    private void runStep(MlpProgram p, LogitLoss loss, long step) {
        if (!graphs) {
            runner.run(p, p.step(), loss, step);
            return;
        }
        String key = p.rows() + " " + loss.name() + " " + loss.settings();
        DeviceGraph g = captured.get(key);
        if (g == null) {
            runner.run(p, p.step(), loss, step);
            try {
                capture(key, p, loss);
            } catch (RuntimeException e) {
                // the step ran; later steps launch kernel by kernel
                log.warn("cuda-mlp: capturing the step as a CUDA graph failed ({}); launching kernel by kernel", e.toString());
                graphs = false;
            }
            return;
        }
        runner.writeStepScalars(stepScalars.at(0, DeviceMlpRunner.STEP_SCALARS_BYTES), studentSpec.optimizer(), step);
        g.launch();
    }

    /** Captures the step of {@code p} with {@code loss}'s settings, its seed and Adam step size read from {@link #stepScalars}. */
    private void capture(String key, MlpProgram p, LogitLoss loss) {
        DevicePtr scalars = stepScalars.at(0, DeviceMlpRunner.STEP_SCALARS_BYTES);
        captured.put(key, ctx.capture(() -> runner.run(p, p.step(), loss, 0, scalars)));
        if (captured.size() > MAX_GRAPHS) {
            var eldest = captured.entrySet().iterator();
            eldest.next().getValue().close(); // e.g. an earlier epoch's temperature; waits for queued replays
            eldest.remove();
        }
        log.debug("cuda-mlp: captured the step of {} rows with {} {}", p.rows(), loss.name(), loss.settings());
    }

    private LossResult collect(long sequence, int slot, int rows, LogitLoss loss, long step) {
        if (sequence < collected) {
            throw new IllegalStateException("the result of cuda-mlp step " + sequence + " was already collected");
        }
        if (sequence > collected) {
            throw new IllegalStateException("the result of cuda-mlp step " + sequence + " was asked for before step " + collected
                    + "'s; collect in submission order");
        }
        if (closed.get()) {
            throw new IllegalStateException("the cuda-mlp engine is closed");
        }
        float[] rowOut = rowsOf(slot, rows);
        collected++;
        if (failedStep != step) { // (a sync with this step pending may have found its bad row already)
            refuseAfterFailure();
        }
        int bad = KdRows.firstBadRow(rowOut, rows);
        if (bad >= 0) {
            failed(step);
            // an argument error, as the CPU loss raises for the same row: the Distiller names the epoch, batch and sample
            throw new BadRowException("cuda-mlp step " + (step + 1) + ": row ", bad, " has a student logit that is not finite, "
                    + "a teacher logit of NaN or +Infinity, no teacher class with mass (every teacher logit -Infinity), or logits "
                    + "beyond the kernel's range (|logit| / T of 7.4e8 or more, or above FLT_MAX * T); lower the learning rate or check the inputs. The "
                    + "weights and optimizer state stay those after step " + step);
        }
        return KdRows.result(loss, rowOut, rows, rows, loss.reduction() == Reduction.SUM ? 1.0 : 1.0 / rows);
    }

    /** The loss parts (kl, ce, bad) of the {@code rows} rows read back into {@code slot}, once they are there. */
    private float[] rowsOf(int slot, int rows) {
        rowsReady[slot].await();
        float[] rowOut = new float[3 * rows];
        rowsBack[slot].view().asFloatBuffer().get(rowOut);
        return rowOut;
    }

    /** Step {@code step} flagged a row: the device left its update out, and those of the steps queued after it. */
    private void failed(long step) {
        failedStep = step;
        steps = step;
    }

    /**
     * Steps submitted and not collected (a run that threw syncs with a step pending): waits for them and, where one
     * flagged a row, counts the steps before it only, as its collection would. Their results can still be collected.
     */
    private void settlePending() {
        for (long s = collected; s < submitted && failedStep < 0; s++) {
            int slot = (int) (s % IN_FLIGHT);
            int rows = slotRows[slot];
            if (KdRows.firstBadRow(rowsOf(slot, rows), rows) >= 0) {
                failed(slotStep[slot]);
            }
        }
    }

    /** After a step that flagged a row: the device applies no more updates, so the engine takes no more steps. */
    private void refuseAfterFailure() {
        if (failedStep >= 0) {
            throw new IllegalStateException("cuda-mlp step " + (failedStep + 1) + " failed (a row its loss flagged); the engine keeps the "
                    + "weights and optimizer state after step " + failedStep + " and takes no more steps: sync them to the student "
                    + "and start a new engine");
        }
    }

    /**
     * For benchmarks: one more step on the batch the last {@link #step} of {@code rows} rows uploaded, timed
     * on the device with CUDA events (teacher forward, student step, update); no copies, no metrics read
     * back. Returns milliseconds. Where the step's input dropout runs in place on the features (fp32, a
     * first layer with dropout), the last batch's features are uploaded again before the timed step, so
     * each step drops the batch's features once, with its own mask.
     */
    public float timeResidentStep(LogitLoss loss, int rows) {
        refuseAfterFailure();
        MlpProgram p = programs.get(rows);
        if (p == null) {
            throw new IllegalStateException("no step of " + rows + " rows has uploaded a batch yet");
        }
        if (dropsItsInputInPlace(p)) {
            if (lastFeatures == null || lastRows != rows) {
                throw new IllegalStateException("the last step had " + lastRows + " rows, not " + rows + ": a resident step of a student "
                        + "with input dropout restores the last batch's features, so take a step of " + rows + " rows first");
            }
            ctx.upload(runner.ptr(p.features().all()), floats(lastFeatures, 0, rows * studentSpec.inputs()));
        }
        long step = steps;
        float ms = ctx.time(() -> runStep(p, loss, step));
        steps++;
        return ms;
    }

    /** Whether a step of {@code p} writes its dropout into the features buffer (the batch's input) itself. */
    private static boolean dropsItsInputInPlace(MlpProgram p) {
        return p.step().stream().anyMatch(op -> op instanceof MlpProgram.Dropout d && d.x().buffer().equals(p.features()));
    }

    /** The loss of the last step from the rows' parts on the device (a host read; for benchmarks' sanity lines). */
    public double lastLoss(LogitLoss loss, int rows) {
        float[] rowOut = rowOut(programs.get(rows), rows);
        return KdRows.result(loss, rowOut, rows, rows, loss.reduction() == Reduction.SUM ? 1.0 : 1.0 / rows).value();
    }

    /** The rows' loss parts (kl, ce, bad) of the last step, read back (waits for the step). */
    private float[] rowOut(MlpProgram p, int rows) {
        return Arrays.copyOf(download(p.rowOut()), 3 * rows);
    }

    /** Device bytes of the engine's buffers (the largest program's). */
    public long deviceBytes() {
        return programs.get(maxRows).bytes();
    }

    /** Optimizer steps taken, counting those of the state the engine started from. */
    public long steps() {
        return steps;
    }

    /** The student's parameters on the device now. */
    public MlpWeights studentWeights() {
        MlpProgram p = programs.get(maxRows);
        return read(p.student().w(), p.student().b(), p.student().params());
    }

    /** The layers' slices of {@code params} (the parameters, or a buffer laid out like them), each read back on its own. */
    private MlpWeights read(java.util.List<MlpProgram.Slice> w, java.util.List<MlpProgram.Slice> b, MlpProgram.Buffer params) {
        float[][] ws = new float[w.size()][];
        float[][] bs = new float[b.size()][];
        for (int l = 0; l < w.size(); l++) {
            ws[l] = download(runner, MlpProgram.like(params, w.get(l)), TRANSFER_CHUNK_BYTES);
            bs[l] = download(runner, MlpProgram.like(params, b.get(l)), TRANSFER_CHUNK_BYTES);
        }
        return new MlpWeights(ws, bs);
    }

    private float[] download(MlpProgram.Buffer b) {
        return download(runner, b.all(), TRANSFER_CHUNK_BYTES);
    }

    /** Reads a buffer of the largest program (tests compare gradients and logits with the reference). */
    float[] read(MlpProgram.Buffer b) {
        return download(b);
    }

    /**
     * Fills every buffer a step writes with NaN (keeping parameters, their bf16 copies and optimizer
     * state), so a test sees any element a step fails to write.
     */
    void poisonScratch() {
        for (MlpProgram.Buffer b : programs.get(maxRows).buffers().values()) {
            String n = b.name();
            if (n.endsWith(".params") || n.endsWith(".params.bf16") || n.contains(".adam.")) {
                continue;
            }
            long bytes = b.bytes();
            ctx.fill32(runner.buffer(b), 0x7fc00000, bytes / 4); // U8/BF16 buffers: NaN words as bytes still poison
        }
        ctx.synchronize();
    }

    /** The program of batches of {@code rows} rows (built and prepared on first use). */
    MlpProgram programFor(int rows) {
        return program(rows, runner);
    }

    /** Counts a finished epoch (written back as DL4J's epoch count). */
    @Override
    public void endEpoch() {
        epochs++;
    }

    /**
     * Writes the weights, Adam's moments and the step and epoch counts back. With steps pending (results not collected, as
     * when a run throws), it waits for them first: the state written is that after every step the device applied, which
     * after a step that flagged a row is the state before it.
     */
    @Override
    public void syncToStudent() {
        if (closed.get()) {
            throw new IllegalStateException("the cuda-mlp engine is closed");
        }
        settlePending();
        MlpProgram p = programs.get(maxRows);
        MlpWeights w = studentWeights();
        MlpOptimizerState state = p.adamM() == null ? new MlpOptimizerState(Math.toIntExact(steps), epochs, null, null)
                : new MlpOptimizerState(Math.toIntExact(steps), epochs, read(p.student().w(), p.student().b(), p.adamM()),
                read(p.student().w(), p.student().b(), p.adamV()));
        sink.write(w, state);
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        stager.close(); // waits for the copies and steps in flight
        captured.values().forEach(DeviceGraph::close);
        captured.clear();
        if (stepScalars != null) {
            stepScalars.close();
        }
        closeReadBack();
        runner.close();
        lt.close();
    }

    static byte[] floats(float[] x) {
        return floats(x, 0, x.length);
    }

    /** {@code x[from, from + n)} as little-endian bytes ({@code n} at most 2^29: a byte array's 2 GiB). */
    static byte[] floats(float[] x, int from, int n) {
        ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(4, n)).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(x, from, n);
        return b.array();
    }

    static byte[] ints(int[] x) {
        ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(x);
        return b.array();
    }
}
