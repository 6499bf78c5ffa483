package org.distill4j.cuda;

import org.bytedeco.cuda.cublas.cublasLtContext;
import org.bytedeco.cuda.cublas.cublasLtMatmulDescOpaque_t;
import org.bytedeco.cuda.cublas.cublasLtMatmulHeuristicResult_t;
import org.bytedeco.cuda.cublas.cublasLtMatmulPreferenceOpaque_t;
import org.bytedeco.cuda.cublas.cublasLtMatrixLayoutOpaque_t;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * cuBLASLt on a {@link DeviceContext}'s stream: a handle and a workspace, and {@link Matmul} plans (the
 * descriptors and the algorithm the heuristic picked for one GEMM shape), made once and run every step.
 * Column-major, as cuBLAS is: {@code D[m, n] = op(A)[m, k] op(B)[k, n]}, A and B fp32 (no TF32) or bf16,
 * D fp32, fp32 accumulation, with an optional epilogue. Every status is checked and raised as a
 * {@link CudaException} naming the call and the shape.
 * <p>
 * Its lock is its context's: planning, running and closing are calls on the context, serialized with the others
 * (one lock, so no order of taking two can deadlock). Closing the handle closes its open plans and returns the
 * workspace; closing its {@link DeviceContext} closes the handle (and its plans) if it is still open, and a later
 * plan or run then raises an IllegalStateException saying so. Closing twice, or after the context, is harmless.
 * <p>
 * A GEMM run while its context captures a {@link DeviceGraph} ({@link DeviceContext#capture}) is replayed by that graph
 * with this handle's workspace. Closing the handle returns the workspace to the pool, where another buffer may take it,
 * so the graph then refuses to replay (an IllegalStateException saying so): close such graphs, or capture them again,
 * before or after closing the handle.
 */
public final class CublasLt implements AutoCloseable {
    /** Element types of A and B. */
    public enum Type {
        /** IEEE float32, 4 bytes per element; multiplied in full fp32 (no TF32). */
        F32(cudart.CUDA_R_32F, 4),
        /** bfloat16, 2 bytes per element; products accumulated in fp32. */
        BF16(cudart.CUDA_R_16BF, 2);

        final int cuda;
        final int bytes;

        Type(int cuda, int bytes) {
            this.cuda = cuda;
            this.bytes = bytes;
        }
    }

    /**
     * What follows the product (see {@code cublasLtEpilogue_t}). Every one but NONE takes the bias pointer
     * (the bias it adds, or the bias gradient it writes); RELU_AUX_BIAS writes and DRELU_BGRAD reads the
     * ReLU bit-mask at the aux pointer.
     */
    public enum Epilogue {
        /** The product alone: {@code D = op(A) op(B)}; no bias or aux pointer. */
        NONE(cublas.CUBLASLT_EPILOGUE_DEFAULT),
        /** {@code D = op(A) op(B) + bias}, the bias (m fp32 values) added to every column of D. */
        BIAS(cublas.CUBLASLT_EPILOGUE_BIAS),
        /** {@code D = relu(op(A) op(B) + bias)}, the bias (m fp32 values) added to every column first. */
        RELU_BIAS(cublas.CUBLASLT_EPILOGUE_RELU_BIAS),
        /**
         * {@code D = op(A) op(B)}, and the bias gradient of A written to the bias pointer: A summed over the GEMM's k
         * dimension, m values.
         */
        BGRADA(cublas.CUBLASLT_EPILOGUE_BGRADA),
        /**
         * As {@link #RELU_BIAS}, and the ReLU's bit-mask (which elements were positive) written at the aux pointer, for a
         * later {@link #DRELU_BGRAD}.
         */
        RELU_AUX_BIAS(cublas.CUBLASLT_EPILOGUE_RELU_AUX_BIAS),
        /**
         * {@code D = op(A) op(B)} times the ReLU's derivative read from the bit-mask at the aux pointer (as a
         * {@link #RELU_AUX_BIAS} wrote it), and the bias gradient, D summed over the GEMM's n dimension (m values), written
         * to the bias pointer.
         */
        DRELU_BGRAD(cublas.CUBLASLT_EPILOGUE_DRELU_BGRAD);

        final int code;

        Epilogue(int code) {
            this.code = code;
        }

        boolean usesAux() {
            return this == RELU_AUX_BIAS || this == DRELU_BGRAD;
        }
    }

    /**
     * One GEMM's shape: transposes, sizes, A/B type, leading dimensions (elements), epilogue, and the ReLU
     * bit-mask's leading dimension in bits (a multiple of 128, at least m) for the epilogues that use one, else 0.
     * Checked where it is made: m, n and k at least 1; each leading dimension at least the rows of its matrix as
     * stored (A: m, or k when transposed; B: k, or n when transposed; D: m); each matrix's extent in bytes, and the
     * bit-mask's in bits, countable in a long. A shape that breaks one of these is refused with an
     * {@link IllegalArgumentException} naming the field, the value it needs and the value it got.
     */
    public record Shape(boolean transA, boolean transB, int m, int n, int k, Type ab, int lda, int ldb, int ldd, Epilogue epilogue,
                        long auxLd) {
        /**
         * Checks the shape as the record's comment says.
         *
         * @throws IllegalArgumentException naming the field, the value it needs and the value it got, for a null type or
         *                                  epilogue, a size below 1, a leading dimension too small, an extent a long
         *                                  cannot count, or a bit-mask leading dimension below m or not a multiple of 128
         *                                  where the epilogue uses one
         */
        public Shape {
            if (ab == null || epilogue == null) {
                throw new IllegalArgumentException("a GEMM shape needs " + (ab == null ? "ab (the type of A and B)" : "an epilogue")
                        + ", got null");
            }
            String what = text(transA, transB, m, n, k, ab, lda, ldb, ldd, epilogue, auxLd);
            positive("m", m, what);
            positive("n", n, what);
            positive("k", k, what);
            leading("lda", lda, transA ? k : m, "the rows of A as stored: " + (transA ? "k, A being transposed" : "m"), what);
            leading("ldb", ldb, transB ? n : k, "the rows of B as stored: " + (transB ? "n, B being transposed" : "k"), what);
            leading("ldd", ldd, m, "the rows of D: m", what);
            extent("A", transA ? k : m, transA ? m : k, lda, ab.bytes, what);
            extent("B", transB ? n : k, transB ? k : n, ldb, ab.bytes, what);
            extent("D", m, n, ldd, Type.F32.bytes, what);
            if (epilogue.usesAux()) {
                if (auxLd < m || auxLd % 128 != 0) {
                    throw new IllegalArgumentException(epilogue + " needs a bit-mask leading dimension auxLd >= " + m
                            + " (m) and a multiple of 128, got " + auxLd + " (" + what + ")");
                }
                try {
                    Math.multiplyExact(auxLd, (long) n);
                } catch (ArithmeticException e) {
                    throw new IllegalArgumentException("the bit-mask of auxLd " + auxLd + " x n " + n + " bits is more than a long counts ("
                            + what + ")");
                }
            }
        }

        private static void positive(String field, int value, String what) {
            if (value < 1) {
                throw new IllegalArgumentException("a GEMM's " + field + " must be >= 1, got " + value + " (" + what + ")");
            }
        }

        private static void leading(String field, int value, int rows, String why, String what) {
            if (value < rows) {
                throw new IllegalArgumentException("a GEMM's " + field + " must be >= " + rows + " (" + why + "), got " + value + " (" + what
                        + ")");
            }
        }

        /** A column-major rows x cols matrix with leading dimension ld spans ld * (cols - 1) + rows elements. */
        private static void extent(String matrix, int rows, int cols, int ld, int elementBytes, String what) {
            try {
                Math.multiplyExact(Math.addExact(Math.multiplyExact((long) ld, cols - 1L), rows), (long) elementBytes);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(matrix + " (" + rows + " x " + cols + ", leading dimension " + ld + ", " + elementBytes
                        + "-byte elements) spans more bytes than a long counts (" + what + ")");
            }
        }

        private static String text(boolean transA, boolean transB, int m, int n, int k, Type ab, int lda, int ldb, int ldd,
                                   Epilogue epilogue, long auxLd) {
            return (transA ? "T" : "N") + (transB ? "T" : "N") + " m " + m + " n " + n + " k " + k + " " + ab + " lda " + lda + " ldb " + ldb
                    + " ldd " + ldd + (epilogue == Epilogue.NONE ? "" : " " + epilogue) + (epilogue.usesAux() ? " auxLd " + auxLd : "");
        }

        @Override
        public String toString() {
            return text(transA, transB, m, n, k, ab, lda, ldb, ldd, epilogue, auxLd);
        }
    }

    /** Raised when cuBLASLt has no algorithm for a shape (e.g. an epilogue it does not support there). */
    public static final class NoAlgorithmException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        NoAlgorithmException(String message) {
            super(message);
        }
    }

    private final DeviceContext ctx;
    private final cublasLtContext handle;
    private final DeviceBuffer workspace;
    /** The open plans (guarded by the context's lock). */
    private final List<Matmul> plans = new ArrayList<>();
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Why it is closed, where not by its own {@link #close}: for the error of a later use. */
    private volatile String closedBy = "";

    private CublasLt(DeviceContext ctx, cublasLtContext handle, DeviceBuffer workspace) {
        this.ctx = ctx;
        this.handle = handle;
        this.workspace = workspace;
    }

    /** A cuBLASLt handle on {@code ctx} with a {@code workspaceBytes} workspace (32 MiB suits Hopper). */
    public static CublasLt create(DeviceContext ctx, long workspaceBytes) {
        synchronized (ctx) {
            ctx.current();
            cublasLtContext h = new cublasLtContext();
            check(cublas.cublasLtCreate(h), "cublasLtCreate");
            try {
                CublasLt lt = new CublasLt(ctx, h, ctx.alloc(workspaceBytes));
                ctx.adopt(lt);
                return lt;
            } catch (RuntimeException e) {
                cublas.cublasLtDestroy(h);
                throw e;
            }
        }
    }

    static void check(int status, String call) {
        if (status != cublas.CUBLAS_STATUS_SUCCESS) {
            String name;
            String message;
            try {
                name = cublas.cublasLtGetStatusName(status).getString();
                message = cublas.cublasLtGetStatusString(status).getString();
            } catch (RuntimeException | LinkageError e) {
                name = "cublasStatus_t " + status;
                message = "";
            }
            throw new CudaException(CudaException.Library.CUBLAS_LT, status, call, name, message);
        }
    }

    /** The largest power of two (at most 256) that divides {@code address}: what the algorithm may assume. */
    static int alignment(long address) {
        long low = address & -address;
        return (int) (address == 0 || low > 256 ? 256 : low);
    }

    /**
     * Plans a GEMM of {@code shape} for operands at these addresses (their alignment narrows the algorithms;
     * the heuristic also reads the alignment of the epilogue's bias and bit-mask pointers, so they are set
     * first). {@code bias} and {@code aux} are null where the epilogue takes none.
     *
     * @throws NoAlgorithmException when cuBLASLt has no algorithm for it
     */
    public Matmul plan(Shape s, DevicePtr a, DevicePtr b, DevicePtr d, DevicePtr bias, DevicePtr aux) {
        synchronized (ctx) {
            if (closed.get()) {
                throw new IllegalStateException("the cuBLASLt handle on " + ctx.describe() + " is closed" + closedBy + "; it plans no GEMM ("
                        + s + ")");
            }
            ctx.current();
            checkOperands(s, a, b, d);
            checkEpilogueArgs(s, bias, aux);
            Matmul mm = new Matmul(s);
            try {
                mm.prepare(a, b, d, bias, aux);
            } catch (RuntimeException e) {
                mm.close();
                throw e;
            }
            plans.add(mm);
            return mm;
        }
    }

    /** For tests: the plans of this handle that are not closed. */
    int openPlans() {
        synchronized (ctx) {
            return plans.size();
        }
    }

    private static void checkOperands(Shape s, DevicePtr a, DevicePtr b, DevicePtr d) {
        if (a == null || b == null || d == null) {
            throw new IllegalArgumentException("a GEMM needs A, B and D, got no " + (a == null ? "A" : b == null ? "B" : "D") + " (" + s + ")");
        }
    }

    private static void checkEpilogueArgs(Shape s, DevicePtr bias, DevicePtr aux) {
        if ((bias == null) != (s.epilogue() == Epilogue.NONE)) {
            throw new IllegalArgumentException("epilogue " + s.epilogue() + (bias == null ? " needs" : " takes no") + " bias pointer");
        }
        if ((aux == null) == s.epilogue().usesAux()) {
            throw new IllegalArgumentException("epilogue " + s.epilogue() + (aux == null ? " needs" : " takes no") + " bit-mask pointer");
        }
    }

    private static final String[] OPERANDS = {"A", "B", "D", "the bias", "the ReLU bit-mask"};

    /** One planned GEMM. */
    public final class Matmul implements AutoCloseable {
        private final Shape shape;
        private cublasLtMatmulDescOpaque_t desc;
        private cublasLtMatrixLayoutOpaque_t la;
        private cublasLtMatrixLayoutOpaque_t lb;
        private cublasLtMatrixLayoutOpaque_t ld;
        private final cublasLtMatmulHeuristicResult_t result = new cublasLtMatmulHeuristicResult_t();
        private final FloatPointer one = new FloatPointer(1).put(1f);
        private final FloatPointer zero = new FloatPointer(1).put(0f);
        private final LongPointer biasAddress = new LongPointer(1);
        private final LongPointer auxAddress = new LongPointer(1);
        private long boundBias;
        private long boundAux;
        /** The alignment of A, B, D, the bias and the bit-mask the algorithm was picked for (0: none). */
        private final int[] planned = new int[5];
        private final AtomicBoolean done = new AtomicBoolean();
        /** Why it is closed, where not by its own {@link #close}: for the error of a later run. */
        private volatile String closedBy = "";

        private Matmul(Shape shape) {
            this.shape = shape;
        }

        private void prepare(DevicePtr a, DevicePtr b, DevicePtr d, DevicePtr bias, DevicePtr aux) {
            String what = "(" + shape + ")";
            DevicePtr[] operands = {a, b, d, bias, aux};
            for (int i = 0; i < operands.length; i++) {
                planned[i] = operands[i] == null ? 0 : alignment(operands[i].address());
            }
            try (PointerPointer<?> out = new PointerPointer<>(1)) {
                check(cublas.cublasLtMatmulDescCreate(out, cublas.CUBLAS_COMPUTE_32F, cudart.CUDA_R_32F), "cublasLtMatmulDescCreate" + what);
                desc = new cublasLtMatmulDescOpaque_t(out.get(0));
                setInt(cublas.CUBLASLT_MATMUL_DESC_TRANSA, shape.transA() ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N, what);
                setInt(cublas.CUBLASLT_MATMUL_DESC_TRANSB, shape.transB() ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N, what);
                setInt(cublas.CUBLASLT_MATMUL_DESC_EPILOGUE, shape.epilogue().code, what);
                bind(bias, aux);
                if (shape.epilogue().usesAux()) {
                    try (LongPointer v = new LongPointer(1).put(shape.auxLd())) {
                        check(cublas.cublasLtMatmulDescSetAttribute(desc, cublas.CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, v, 8),
                                "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_LD)" + what);
                    }
                }
                la = layout(out, shape.ab(), shape.transA() ? shape.k() : shape.m(), shape.transA() ? shape.m() : shape.k(), shape.lda(), "A" + what);
                lb = layout(out, shape.ab(), shape.transB() ? shape.n() : shape.k(), shape.transB() ? shape.k() : shape.n(), shape.ldb(), "B" + what);
                ld = layout(out, Type.F32, shape.m(), shape.n(), shape.ldd(), "D" + what);
                check(cublas.cublasLtMatmulPreferenceCreate(out), "cublasLtMatmulPreferenceCreate");
                cublasLtMatmulPreferenceOpaque_t pref = new cublasLtMatmulPreferenceOpaque_t(out.get(0));
                try (LongPointer ws = new LongPointer(1).put(workspace.capacity()); IntPointer al = new IntPointer(1)) {
                    check(cublas.cublasLtMatmulPreferenceSetAttribute(pref, cublas.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws, 8),
                            "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
                    int[][] aligns = {{cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment(a.address())},
                            {cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment(b.address())},
                            {cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment(d.address())},
                            {cublas.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment(d.address())}};
                    for (int[] x : aligns) {
                        al.put(x[1]);
                        check(cublas.cublasLtMatmulPreferenceSetAttribute(pref, x[0], al, 4), "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");
                    }
                    int[] found = new int[1];
                    int rc = cublas.cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, ld, ld, pref, 1, result, found);
                    // an epilogue the library cannot do with these types is reported as not supported, or by some
                    // versions as an invalid value: either way the caller can do without it
                    boolean refused = rc == cublas.CUBLAS_STATUS_NOT_SUPPORTED
                            || (rc == cublas.CUBLAS_STATUS_INVALID_VALUE && shape.epilogue() != Epilogue.NONE);
                    if (refused || (rc == cublas.CUBLAS_STATUS_SUCCESS && found[0] == 0)) {
                        throw new NoAlgorithmException("cuBLASLt has no algorithm for " + shape + " on " + ctx.describe());
                    }
                    check(rc, "cublasLtMatmulAlgoGetHeuristic" + what);
                } finally {
                    cublas.cublasLtMatmulPreferenceDestroy(pref);
                }
            }
        }

        private void setInt(int attribute, int value, String what) {
            try (IntPointer v = new IntPointer(1).put(value)) {
                check(cublas.cublasLtMatmulDescSetAttribute(desc, attribute, v, 4), "cublasLtMatmulDescSetAttribute(" + attribute + ")" + what);
            }
        }

        private cublasLtMatrixLayoutOpaque_t layout(PointerPointer<?> out, Type t, int rows, int cols, int ldim, String what) {
            check(cublas.cublasLtMatrixLayoutCreate(out, t.cuda, rows, cols, ldim), "cublasLtMatrixLayoutCreate " + what);
            return new cublasLtMatrixLayoutOpaque_t(out.get(0));
        }

        /** The GEMM shape this plan was made for, which every {@link #run} computes. */
        public Shape shape() {
            return shape;
        }

        /** Sets the descriptor's bias and bit-mask pointers where they change. */
        private void bind(DevicePtr bias, DevicePtr aux) {
            if (bias != null && bias.address() != boundBias) {
                biasAddress.put(bias.address());
                check(cublas.cublasLtMatmulDescSetAttribute(desc, cublas.CUBLASLT_MATMUL_DESC_BIAS_POINTER, biasAddress, 8),
                        "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
                boundBias = bias.address();
            }
            if (aux != null && aux.address() != boundAux) {
                auxAddress.put(aux.address());
                check(cublas.cublasLtMatmulDescSetAttribute(desc, cublas.CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, auxAddress, 8),
                        "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_POINTER)");
                boundAux = aux.address();
            }
        }

        /**
         * Queues the GEMM on the context's stream. {@code bias}: the epilogue's bias (BIAS, RELU_BIAS,
         * RELU_AUX_BIAS) or the bias gradient it writes (BGRADA, DRELU_BGRAD); {@code aux}: the ReLU bit-mask
         * (RELU_AUX_BIAS writes it, DRELU_BGRAD reads it); each null where the epilogue takes none. Pointers
         * must keep the alignment of those the plan was made with (its algorithm was picked for it).
         *
         * @throws IllegalArgumentException for a missing operand, or one less aligned than the plan's, before anything is queued
         */
        public void run(DevicePtr a, DevicePtr b, DevicePtr d, DevicePtr bias, DevicePtr aux) {
            if (done.get()) {
                throw closedPlan();
            }
            checkOperands(shape, a, b, d);
            checkEpilogueArgs(shape, bias, aux);
            checkAlignment(a, b, d, bias, aux);
            synchronized (ctx) { // the context's lock, which the plan's, the handle's and the context's close take too
                if (done.get()) { // closed while this run waited for the context: its descriptors are gone
                    throw closedPlan();
                }
                ctx.current();
                ctx.ranGemm(CublasLt.this); // a graph captured now replays it with this handle's workspace
                bind(bias, aux);
                check(cublas.cublasLtMatmul(handle, desc, one, raw(a), la, raw(b), lb, zero, raw(d), ld, raw(d), ld, result.algo(),
                        raw(new DevicePtr(workspace.address())), workspace.capacity(), ctx.stream()), "cublasLtMatmul(" + shape + ")");
            }
        }

        /** Each operand at least as aligned as the one the plan's algorithm was picked for. */
        private void checkAlignment(DevicePtr... operands) {
            for (int i = 0; i < operands.length; i++) {
                if (operands[i] != null && alignment(operands[i].address()) < planned[i]) {
                    throw new IllegalArgumentException(OPERANDS[i] + " at 0x" + Long.toHexString(operands[i].address()) + " is "
                            + alignment(operands[i].address()) + "-byte aligned; the GEMM plan " + shape + " was made for a " + planned[i]
                            + "-byte aligned one (plan it for these operands)");
                }
            }
        }

        private IllegalStateException closedPlan() {
            return new IllegalStateException("the GEMM plan " + shape + " is closed" + closedBy);
        }

        /**
         * Frees the plan's descriptors and leaves its handle; waits for a run of it in progress (under the context's
         * lock, as runs are). Twice, or after its handle or context closed, is harmless.
         */
        @Override
        public void close() {
            synchronized (ctx) {
                if (done.compareAndSet(false, true)) {
                    plans.remove(this);
                    destroy();
                }
            }
        }

        /** Called by its handle as it closes with its context (the context's lock held): marks it closed and frees it, once. */
        private void closeWithContext(String context) {
            if (!done.get()) { // every close holds the context's lock: none can close it meanwhile
                closedBy = " (its DeviceContext on " + context + " closed and freed it)"; // before a run can see it closed
                done.set(true);
                destroy();
            }
        }

        private void destroy() {
            if (la != null) {
                cublas.cublasLtMatrixLayoutDestroy(la);
            }
            if (lb != null) {
                cublas.cublasLtMatrixLayoutDestroy(lb);
            }
            if (ld != null) {
                cublas.cublasLtMatrixLayoutDestroy(ld);
            }
            if (desc != null) {
                cublas.cublasLtMatmulDescDestroy(desc);
            }
            result.close();
            one.close();
            zero.close();
            biasAddress.close();
            auxAddress.close();
        }
    }

    /**
     * A device address as the JavaCPP pointer cuBLASLt's signatures take. (The local must not be named
     * {@code address}: inside the subclass, Pointer's own field of that name would shadow it and the
     * assignment would leave the pointer null.)
     */
    static Pointer raw(DevicePtr p) {
        final long at = p.address();
        return new Pointer() {
            {
                address = at;
            }
        };
    }

    /** Whether it is closed, by its own close or its context's: its workspace is then back in the pool. */
    boolean isClosed() {
        return closed.get();
    }

    /**
     * Closes the open plans, returns the workspace to the context's pool and destroys the handle. Twice, or after its
     * context closed (which closed it), is harmless. A {@link DeviceGraph} captured with GEMMs of it then refuses to
     * replay them (they would use the returned workspace).
     */
    @Override
    public void close() {
        synchronized (ctx) {
            if (!closed.compareAndSet(false, true)) {
                return;
            }
            ctx.forget(this);
            ctx.currentForFreeing();
            new ArrayList<>(plans).forEach(Matmul::close); // each leaves the list
            plans.clear();
            workspace.close();
            cublas.cublasLtDestroy(handle);
        }
    }

    /**
     * Called by its context as it closes (its lock held, its stream idle, before its memory is freed): marks the handle
     * and its open plans closed, saying why in a later use's error, and frees them, once.
     */
    void closeWithContext(String context) {
        if (closed.get()) { // every close holds the context's lock: none can close it meanwhile
            return;
        }
        closedBy = " (its DeviceContext on " + context + " closed and freed it)"; // before a plan can see it closed
        closed.set(true);
        for (Matmul mm : plans) {
            mm.closeWithContext(context);
        }
        plans.clear();
        workspace.close(); // the context frees the memory itself
        cublas.cublasLtDestroy(handle);
    }
}
