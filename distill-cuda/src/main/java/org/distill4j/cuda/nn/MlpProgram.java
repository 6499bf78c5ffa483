package org.distill4j.cuda.nn;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One distillation step of the GPU MLP engine as data: the buffers it uses and the operations over them,
 * in order (teacher forward, student forward with dropout, loss, backward, optimizer). The device engine
 * runs a program with cuBLASLt and the {@code mlp_*} kernels; a test runs the same program on the host
 * (cuBLAS's column-major GEMM semantics taken literally) and compares it with {@link MlpReference}, so
 * the GEMM shapes, transposes, leading dimensions and buffer wiring are checked without a GPU.
 *
 * <p><b>Layouts.</b> Activations are row-major {@code [rows, features]}; each layer's W is row-major
 * {@code [in][out]} as in {@link MlpWeights}, and all of a network's parameters live in one buffer
 * (per layer W then b), so one optimizer launch updates them all. cuBLAS is column-major: a row-major
 * {@code [r, c]} matrix is the column-major {@code [c, r]} matrix with leading dimension {@code c}, so
 * {@code Z = X W} is issued as {@code Z^T = W^T X^T}: {@code m = out, n = rows, k = in}.
 *
 * <p><b>Precision.</b> {@link Precision#F32}: fp32 everywhere (GEMMs without TF32).
 * {@link Precision#BF16}: bf16 GEMM inputs (weights, activations, gradients of pre-activations) with fp32
 * accumulation and outputs, fp32 master weights, optimizer state, pre-activations and logits.
 *
 * <p><b>Epilogues.</b> With {@code fusedEpilogues} (fp32 only) a layer with identity or ReLU activation
 * takes its bias and ReLU in the GEMM's epilogue, and the weight-gradient GEMM also gives the bias
 * gradient (BGRADA). A student's hidden ReLU layer whose output the next layer takes without dropout
 * also stores cuBLASLt's ReLU bit-mask (RELU_AUX_BIAS), and the next layer's input-gradient GEMM applies
 * {@code relu'} and gives this layer's bias gradient in its epilogue (DRELU_BGRAD), so that layer's
 * backward needs no kernel at all. (With dropout between them the bias gradient must come after the
 * dropout's backward, so the kernels do it.) cuBLASLt's GELU epilogue is the tanh approximation, not
 * DL4J's {@code x sigmoid(1.702 x)}, so GELU, tanh and sigmoid layers always use the {@code mlp_bias_act}
 * kernel. A ReLU layer keeps no pre-activation: {@code relu'(z) = [y > 0]}, so its output serves as the
 * backward's input.
 */
public final class MlpProgram {
    /** How the GEMMs compute. */
    public enum Precision {
        /** fp32 everywhere, the GEMMs without TF32. */
        F32,
        /**
         * bf16 GEMM inputs (weights, activations, gradients of pre-activations) with fp32 accumulation and outputs; fp32
         * master weights, optimizer state, pre-activations and logits.
         */
        BF16
    }

    /** Element types of buffers. */
    public enum Elem {
        /** IEEE float32, 4 bytes. */
        F32(4),
        /** bfloat16, 2 bytes. */
        BF16(2),
        /** Unsigned bytes: dropout masks and cuBLASLt's ReLU bit-masks (8 bits a byte). */
        U8(1),
        /** 32-bit signed integers: the labels. */
        I32(4);

        private final int bytes;

        Elem(int bytes) {
            this.bytes = bytes;
        }

        /** Bytes per element. */
        public int bytes() {
            return bytes;
        }
    }

    /** A named device allocation of {@code elements} values. */
    public record Buffer(String name, Elem elem, long elements) {
        /**
         * Checks the buffer.
         *
         * @throws NullPointerException     if {@code name} is null
         * @throws IllegalArgumentException if {@code elements} is not {@code > 0}
         */
        public Buffer {
            Objects.requireNonNull(name, "name");
            if (elements <= 0) {
                throw new IllegalArgumentException("buffer " + name + " needs a positive size, got " + elements);
            }
        }

        /** The buffer's size in bytes: {@code elements} times the element size. */
        public long bytes() {
            return elements * elem.bytes();
        }

        /** The whole buffer as one slice. */
        public Slice all() {
            return new Slice(this, 0, elements);
        }
    }

    /** Elements {@code [offset, offset + length)} of a buffer. */
    public record Slice(Buffer buffer, long offset, long length) {
        /**
         * Checks the slice.
         *
         * @throws NullPointerException     if {@code buffer} is null
         * @throws IllegalArgumentException unless {@code offset >= 0}, {@code length > 0} and the slice ends within the
         *                                  buffer, naming the buffer
         */
        public Slice {
            Objects.requireNonNull(buffer, "buffer");
            if (offset < 0 || length <= 0 || offset + length > buffer.elements()) {
                throw new IllegalArgumentException("slice [" + offset + ", " + (offset + length) + ") is outside " + buffer.name()
                        + " (" + buffer.elements() + " elements)");
            }
        }

        /** The element type of the slice's buffer. */
        public Elem elem() {
            return buffer.elem();
        }

        @Override
        public String toString() {
            return offset == 0 && length == buffer.elements() ? buffer.name() : buffer.name() + "[" + offset + "+" + length + "]";
        }
    }

    /** An operation of the step. */
    public sealed interface Op permits Gemm, BiasAct, ActBackward, ToBf16, BiasGrad, Dropout, DropoutBackward, Loss, Update {
    }

    /** What a GEMM does after the product. */
    public enum Epilogue {
        /** The product alone: {@code D = op(A) op(B)}; no bias. */
        NONE,
        /** {@code D += bias} (bias of length m, one per row of D, i.e. per output feature). */
        BIAS,
        /** {@code D = relu(D + bias)}. */
        RELU_BIAS,
        /** {@code bias[i] = sum over the k dimension of A(i, p)}: the bias gradient, next to the weight gradient. */
        BGRADA,
        /** {@code D = relu(D + bias)}, and {@code aux} bit {@code i + j * auxLd} set where {@code D(i, j) > 0}. */
        RELU_AUX_BIAS,
        /**
         * {@code D = (op(A) op(B)) * aux bit (i + j * auxLd)}: relu' from a RELU_AUX_BIAS mask of the same
         * shape; then {@code bias[i] = sum over j of D(i, j)}, the gradient of that layer's bias.
         */
        DRELU_BGRAD;

        /** Whether it takes cuBLASLt's ReLU bit-mask. */
        public boolean usesAux() {
            return this == RELU_AUX_BIAS || this == DRELU_BGRAD;
        }
    }

    /** The ReLU bit-mask's leading dimension for {@code m} rows: bits, a multiple of 128 (cuBLASLt's rule). */
    public static int reluAuxLd(int m) {
        return (m + 127) / 128 * 128;
    }

    /**
     * A cuBLAS GEMM, column-major: {@code D[m, n] = op(A)[m, k] op(B)[k, n]}, where a column-major matrix
     * {@code M[i, j]} is element {@code i + j * ld}, and {@code op} transposes when asked. D is fp32; A and B
     * are fp32, or both bf16. {@code aux} (bytes) and {@code auxLd} (bits) hold the ReLU bit-mask of the
     * epilogues that use one, else null and 0.
     */
    public record Gemm(boolean transA, boolean transB, int m, int n, int k, Slice a, int lda, Slice b, int ldb, Slice d, int ldd,
                       Epilogue epilogue, Slice bias, Slice aux, int auxLd) implements Op {
        /** A GEMM whose epilogue needs no bit-mask. */
        public Gemm(boolean transA, boolean transB, int m, int n, int k, Slice a, int lda, Slice b, int ldb, Slice d, int ldd,
                    Epilogue epilogue, Slice bias) {
            this(transA, transB, m, n, k, a, lda, b, ldb, d, ldd, epilogue, bias, null, 0);
        }

        /**
         * Checks the GEMM's wiring.
         *
         * @throws IllegalArgumentException when the epilogue and the bit-mask or bias disagree (given where it takes none,
         *                                  missing where it needs one), the bit-mask is not U8 or its leading dimension is
         *                                  below m, not a multiple of 128 or too large for its slice, the types are not
         *                                  fp32 or bf16 A and B of one type and fp32 D, a matrix does not fit its slice
         *                                  with its leading dimension, or the bias is not fp32 of length m
         */
        public Gemm {
            if (epilogue.usesAux() != (aux != null)) {
                throw new IllegalArgumentException("epilogue " + epilogue + (aux == null ? " needs" : " takes no") + " ReLU bit-mask");
            }
            if (aux != null && (aux.elem() != Elem.U8 || auxLd < m || auxLd % 128 != 0 || (long) auxLd / 8 * n > aux.length())) {
                throw new IllegalArgumentException("the ReLU bit-mask of a " + m + " x " + n + " GEMM needs a leading dimension of at "
                        + "least " + m + " bits that is a multiple of 128 and " + "(ld / 8) * " + n + " bytes; got " + aux + " with ld "
                        + auxLd);
            }
            if (d.elem() != Elem.F32 || a.elem() != b.elem() || (a.elem() != Elem.F32 && a.elem() != Elem.BF16)) {
                throw new IllegalArgumentException("a GEMM takes fp32 or bf16 A and B of one type and gives fp32 D, got " + a.elem()
                        + ", " + b.elem() + " -> " + d.elem());
            }
            need(a, transA ? k : m, transA ? m : k, lda, "A");
            need(b, transB ? n : k, transB ? k : n, ldb, "B");
            need(d, m, n, ldd, "D");
            if ((epilogue == Epilogue.NONE) != (bias == null)) {
                throw new IllegalArgumentException("epilogue " + epilogue + (bias == null ? " needs" : " takes no") + " bias vector");
            }
            if (bias != null && (bias.length() != m || bias.elem() != Elem.F32)) {
                throw new IllegalArgumentException("the epilogue's bias vector must be fp32 of length m = " + m + ", got " + bias);
            }
        }

        private static void need(Slice s, int rows, int cols, int ld, String what) {
            if (ld < rows || (long) ld * (cols - 1) + rows > s.length()) {
                throw new IllegalArgumentException(what + " (" + s + ") is too small for a column-major " + rows + " x " + cols
                        + " matrix with leading dimension " + ld);
            }
        }

        @Override
        public String toString() {
            return "gemm " + d + " [" + m + "x" + n + "] = " + (transA ? "T(" : "(") + a + ") . " + (transB ? "T(" : "(") + b + "), k "
                    + k + (epilogue == Epilogue.NONE ? "" : ", " + epilogue + " " + bias) + (aux == null ? "" : ", mask " + aux + " ld " + auxLd);
        }
    }

    /**
     * {@code y = act(z + bias)} over row-major {@code [rows, cols]}: in place on {@code z} (fp32) when
     * {@code yBf16} is null, else into {@code yBf16}; the pre-activation goes to {@code pre} when not null
     * ({@code pre} may be {@code z}). {@code bias} may be null (added by an epilogue).
     */
    public record BiasAct(Slice z, Slice bias, int rows, int cols, MlpSpec.Activation act, Slice pre, Slice yBf16) implements Op {
    }

    /** {@code dy *= act'(pre)} in place (fp32); also written to {@code dzBf16} when not null. */
    public record ActBackward(Slice dy, Slice pre, int rows, int cols, MlpSpec.Activation act, Slice dzBf16) implements Op {
    }

    /** {@code dst = bf16(src)}, rounded to nearest even. */
    public record ToBf16(Slice src, Slice dst, long n) implements Op {
    }

    /** {@code db[c] = sum over rows of dz[r, c]}, deterministic. */
    public record BiasGrad(Slice dz, int rows, int cols, Slice db) implements Op {
    }

    /**
     * Inverted dropout in place on {@code x} (fp32 or bf16), mask to {@code mask}; {@code stream} tells the
     * runner which counter range the masks of this (step, layer) draw from.
     */
    public record Dropout(Slice x, Slice mask, long n, double dropProb, int stream) implements Op {
    }

    /** The backward of dropout: {@code dx = mask ? dx / (1 - p) : 0}. */
    public record DropoutBackward(Slice dx, Slice mask, long n, double dropProb) implements Op {
    }

    /**
     * The loss over the student's logits: gradient of the reduced loss into {@code grad}, per-row parts
     * (kl, ce, bad) into {@code rowOut}. The loss's settings (temperature, alpha) come with each run.
     */
    public record Loss(Slice studentLogits, Slice teacherLogits, Slice labels, Slice grad, Slice rowOut, int rows, int classes) implements Op {
    }

    /** One optimizer step over all parameters; writes the bf16 copy too when not null. */
    public record Update(Slice params, Slice grads, Slice m, Slice v, Slice paramsBf16, long n) implements Op {
    }

    /** Where one network's parameters live. */
    public record Net(MlpSpec spec, Buffer params, Buffer paramsBf16, List<Slice> w, List<Slice> b, List<Slice> wBf16) {
    }

    private final Precision precision;
    private final boolean fusedEpilogues;
    private final boolean reluMasks;
    private final int rows;
    private final Net student;
    private final Net teacher;
    private final Buffer features;
    private final Buffer labels;
    private final Buffer rowOut;
    private final Buffer studentLogits;
    private final Buffer teacherLogits;
    private final Buffer grads;
    private final Buffer adamM;
    private final Buffer adamV;
    private final Map<String, Buffer> buffers = new LinkedHashMap<>();
    private final List<Op> init = new ArrayList<>();
    private final List<Op> step = new ArrayList<>();

    private MlpProgram(MlpSpec studentSpec, MlpSpec teacherSpec, int rows, Precision precision, boolean fusedEpilogues, boolean reluMasks) {
        if (rows <= 0) {
            throw new IllegalArgumentException("a step needs at least one row, got " + rows);
        }
        if (fusedEpilogues && precision != Precision.F32) {
            throw new IllegalArgumentException("fused GEMM epilogues are used with fp32 GEMMs; bf16 layers fuse bias, activation and "
                    + "rounding in the mlp_bias_act_bf16out kernel");
        }
        if (teacherSpec != null && teacherSpec.inputs() != studentSpec.inputs()) {
            throw new IllegalArgumentException("the teacher takes " + teacherSpec.inputs() + " features, the student " + studentSpec.inputs());
        }
        if (teacherSpec != null && teacherSpec.outputs() != studentSpec.outputs()) {
            throw new IllegalArgumentException("the teacher gives " + teacherSpec.outputs() + " logits, the student " + studentSpec.outputs());
        }
        this.precision = precision;
        this.fusedEpilogues = fusedEpilogues;
        this.reluMasks = reluMasks;
        this.rows = rows;
        boolean bf16 = precision == Precision.BF16;
        int in = studentSpec.inputs();
        int classes = studentSpec.outputs();
        features = buffer("x", Elem.F32, (long) rows * in);
        labels = buffer("labels", Elem.I32, rows);
        rowOut = buffer("rowOut", Elem.F32, 3L * rows);
        Slice x = features.all();
        Slice xIn = x;
        if (bf16) {
            xIn = buffer("x.bf16", Elem.BF16, (long) rows * in).all();
            step.add(new ToBf16(x, xIn, (long) rows * in));
        }
        student = net("s", studentSpec);
        teacher = teacherSpec != null ? net("t", teacherSpec) : null;
        if (teacher != null) {
            teacherLogits = forward(teacher, xIn, false).logits;
        } else {
            teacherLogits = null;
        }
        Forward sf = forward(student, xIn, true);
        studentLogits = sf.logits;
        long p = student.params.elements(); // the parameters with their alignment padding
        grads = buffer("s.grads", Elem.F32, p);
        Buffer dLogits = buffer("s.dlogits", Elem.F32, (long) rows * classes);
        step.add(new Loss(studentLogits.all(), teacherLogits != null ? teacherLogits.all() : null, labels.all(), dLogits.all(),
                rowOut.all(), rows, classes));
        backward(sf, dLogits.all());
        boolean adam = studentSpec.optimizer().kind() == MlpSpec.Optimizer.Kind.ADAM;
        adamM = adam ? buffer("s.adam.m", Elem.F32, p) : null;
        adamV = adam ? buffer("s.adam.v", Elem.F32, p) : null;
        step.add(new Update(student.params.all(), grads.all(), adam ? adamM.all() : null, adam ? adamV.all() : null,
                bf16 ? student.paramsBf16.all() : null, p));
    }

    /** The program of one step over {@code rows} rows; {@code teacher} may be null (cross-entropy only). */
    public static MlpProgram build(MlpSpec student, MlpSpec teacher, int rows, Precision precision, boolean fusedEpilogues) {
        return build(student, teacher, rows, precision, fusedEpilogues, fusedEpilogues);
    }

    /**
     * As above; {@code reluMasks} (with fused epilogues) lets hidden ReLU layers keep cuBLASLt's bit-mask
     * for a DRELU_BGRAD backward; without it they take the ReLU kernel's backward (for a cuBLASLt that has
     * no algorithm for those epilogues).
     */
    public static MlpProgram build(MlpSpec student, MlpSpec teacher, int rows, Precision precision, boolean fusedEpilogues,
                                   boolean reluMasks) {
        return new MlpProgram(Objects.requireNonNull(student, "student"), teacher, rows, precision, fusedEpilogues,
                fusedEpilogues && reluMasks);
    }

    private Buffer buffer(String name, Elem elem, long elements) {
        Buffer b = new Buffer(name, elem, elements);
        if (buffers.putIfAbsent(name, b) != null) {
            throw new IllegalStateException("buffer " + name + " declared twice");
        }
        return b;
    }

    /** Parameter slices start at multiples of this many elements: 256 bytes in fp32, 128 in bf16. */
    public static final int PARAM_ALIGN = 64;

    private static long align(long elements) {
        return (elements + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    }

    /**
     * A network's parameter buffer: per layer W then b, each starting at a multiple of {@link #PARAM_ALIGN}
     * elements (cuBLASLt's epilogues read and write bias vectors with wide accesses, and a bias of an odd
     * layer would otherwise sit at any multiple of 4 bytes). The gradients and Adam's moments use the same
     * layout; the padding stays zero.
     */
    private Net net(String prefix, MlpSpec spec) {
        long total = 0;
        for (MlpSpec.Layer l : spec.layers()) {
            total = align(align(total + (long) l.in() * l.out()) + l.out());
        }
        Buffer params = buffer(prefix + ".params", Elem.F32, total);
        Buffer paramsBf16 = precision == Precision.BF16 ? buffer(prefix + ".params.bf16", Elem.BF16, total) : null;
        List<Slice> w = new ArrayList<>();
        List<Slice> b = new ArrayList<>();
        List<Slice> wb = new ArrayList<>();
        long off = 0;
        for (MlpSpec.Layer l : spec.layers()) {
            long nw = (long) l.in() * l.out();
            w.add(new Slice(params, off, nw));
            if (paramsBf16 != null) {
                wb.add(new Slice(paramsBf16, off, nw));
            }
            long bOff = align(off + nw);
            b.add(new Slice(params, bOff, l.out()));
            off = align(bOff + l.out());
        }
        if (paramsBf16 != null) {
            init.add(new ToBf16(params.all(), paramsBf16.all(), total));
        }
        return new Net(spec, params, paramsBf16, List.copyOf(w), List.copyOf(b), List.copyOf(wb));
    }

    /**
     * What the backward needs of a forward: per layer its (dropped) input, its output, its pre-activation,
     * its dropout mask and its ReLU bit-mask (each null where there is none).
     */
    private record Forward(List<Slice> inputs, List<Slice> outputs, List<Slice> pre, List<Slice> masks, List<Slice> reluAux, Buffer logits) {
    }

    private Forward forward(Net net, Slice x, boolean training) {
        String p = net == student ? "s" : "t";
        List<MlpSpec.Layer> layers = net.spec.layers();
        boolean bf16 = precision == Precision.BF16;
        List<Slice> inputs = new ArrayList<>();
        List<Slice> outputs = new ArrayList<>();
        List<Slice> pres = new ArrayList<>();
        List<Slice> masks = new ArrayList<>();
        List<Slice> reluAux = new ArrayList<>();
        Slice a = x;
        Buffer logits = null;
        for (int li = 0; li < layers.size(); li++) {
            MlpSpec.Layer l = layers.get(li);
            boolean last = li == layers.size() - 1;
            long nIn = (long) rows * l.in();
            long nOut = (long) rows * l.out();
            Slice mask = null;
            if (training && l.dropout() > 0) {
                mask = buffer(p + ".mask" + li, Elem.U8, nIn).all();
                step.add(new Dropout(a, mask, nIn, l.dropout(), li));
            }
            masks.add(mask);
            inputs.add(a);
            Slice w = bf16 ? net.wBf16.get(li) : net.w.get(li);
            Slice bias = net.b.get(li);
            MlpSpec.Activation act = l.activation();
            boolean keepPre = training && act != MlpSpec.Activation.IDENTITY;
            Slice out;
            Slice pre = null;
            Slice aux = null;
            if (last || !bf16) {
                // fp32 output: the logits, or every layer in F32
                out = last ? (logits = buffer(p + ".logits", Elem.F32, nOut)).all() : buffer(p + ".y" + li, Elem.F32, nOut).all();
                boolean epilogue = fusedEpilogues && (act == MlpSpec.Activation.IDENTITY || act == MlpSpec.Activation.RELU);
                // the next layer's input gradient applies relu' from the bit-mask, unless dropout comes between
                boolean reluMask = epilogue && reluMasks && training && act == MlpSpec.Activation.RELU && !last && layers.get(li + 1).dropout() == 0;
                if (reluMask) {
                    int auxLd = reluAuxLd(l.out());
                    aux = buffer(p + ".relumask" + li, Elem.U8, (long) auxLd / 8 * rows).all();
                    step.add(new Gemm(false, false, l.out(), rows, l.in(), w, l.out(), a, l.in(), out, l.out(), Epilogue.RELU_AUX_BIAS, bias,
                            aux, auxLd));
                } else if (epilogue) {
                    step.add(gemmForward(l, w, a, out, act == MlpSpec.Activation.RELU ? Epilogue.RELU_BIAS : Epilogue.BIAS, bias));
                    pre = keepPre ? out : null; // relu' from the output
                } else {
                    step.add(gemmForward(l, w, a, out, Epilogue.NONE, null));
                    if (keepPre && act != MlpSpec.Activation.RELU) {
                        pre = buffer(p + ".pre" + li, Elem.F32, nOut).all();
                    } else if (keepPre) {
                        pre = out;
                    }
                    step.add(new BiasAct(out, bias, rows, l.out(), act, pre == out ? null : pre, null));
                }
            } else {
                // bf16: fp32 GEMM output holds the pre-activation; the activation goes out in bf16 for the next GEMM
                Slice z = buffer(p + ".pre" + li, Elem.F32, nOut).all();
                out = buffer(p + ".y" + li + ".bf16", Elem.BF16, nOut).all();
                step.add(gemmForward(l, w, a, z, Epilogue.NONE, null));
                step.add(new BiasAct(z, bias, rows, l.out(), act, z, out));
                pre = keepPre ? z : null;
            }
            outputs.add(out);
            pres.add(pre);
            reluAux.add(aux);
            a = out;
        }
        return new Forward(inputs, outputs, pres, masks, reluAux, logits);
    }

    /** {@code out[rows, out] = x[rows, in] W[in, out]} as {@code out^T = W^T x^T}. */
    private Gemm gemmForward(MlpSpec.Layer l, Slice w, Slice x, Slice out, Epilogue e, Slice bias) {
        return new Gemm(false, false, l.out(), rows, l.in(), w, l.out(), x, l.in(), out, l.out(), e, bias);
    }

    private void backward(Forward f, Slice dLogits) {
        List<MlpSpec.Layer> layers = student.spec.layers();
        boolean bf16 = precision == Precision.BF16;
        Slice dy = dLogits;
        for (int li = layers.size() - 1; li >= 0; li--) {
            MlpSpec.Layer l = layers.get(li);
            long nOut = (long) rows * l.out();
            Slice dzBf16 = bf16 ? buffer("s.dz" + li + ".bf16", Elem.BF16, nOut).all() : null;
            boolean doneByNextLayer = f.reluAux.get(li) != null; // dz and db came from layer li+1's DRELU_BGRAD
            if (doneByNextLayer) {
                // nothing to apply
            } else if (l.activation() != MlpSpec.Activation.IDENTITY) {
                // relu' from the output also holds after dropout (a later layer's input dropout scales kept units,
                // and a dropped unit's gradient is already 0)
                step.add(new ActBackward(dy, f.pre.get(li), rows, l.out(), l.activation(), dzBf16));
            } else if (dzBf16 != null) {
                step.add(new ToBf16(dy, dzBf16, nOut));
            }
            Slice dz = bf16 ? dzBf16 : dy;
            Slice dW = like(grads, student.w.get(li));
            Slice db = like(grads, student.b.get(li));
            // dW[in, out] = x^T dz  as  dW^T[out, in] = dz^T[out, rows] . x[rows, in]
            boolean bgrad = fusedEpilogues && !doneByNextLayer;
            step.add(new Gemm(false, true, l.out(), l.in(), rows, dz, l.out(), f.inputs.get(li), l.in(), dW, l.out(),
                    bgrad ? Epilogue.BGRADA : Epilogue.NONE, bgrad ? db : null));
            if (!bgrad && !doneByNextLayer) {
                step.add(new BiasGrad(dy, rows, l.out(), db));
            }
            if (li > 0) {
                // dx[rows, in] = dz W^T  as  dx^T[in, rows] = W[in, out] (stored [out, in], transposed) . dz^T[out, rows]
                Slice w = bf16 ? student.wBf16.get(li) : student.w.get(li);
                Slice dx = buffer("s.dy" + (li - 1), Elem.F32, (long) rows * l.in()).all();
                Slice prevAux = f.reluAux.get(li - 1);
                if (prevAux != null) {
                    // dz of layer li-1 = (dz W^T) * relu'(z), and its bias gradient, in one GEMM
                    Slice prevDb = like(grads, student.b.get(li - 1));
                    step.add(new Gemm(true, false, l.in(), rows, l.out(), w, l.out(), dz, l.out(), dx, l.in(), Epilogue.DRELU_BGRAD, prevDb,
                            prevAux, reluAuxLd(l.in())));
                } else {
                    step.add(new Gemm(true, false, l.in(), rows, l.out(), w, l.out(), dz, l.out(), dx, l.in(), Epilogue.NONE, null));
                }
                if (f.masks.get(li) != null) {
                    step.add(new DropoutBackward(dx, f.masks.get(li), (long) rows * l.in(), l.dropout()));
                }
                dy = dx;
            }
        }
    }

    /** The slice of {@code b} at {@code s}'s place (gradients and Adam's moments are laid out as the parameters). */
    public static Slice like(Buffer b, Slice s) {
        return new Slice(b, s.offset(), s.length());
    }

    /** How this program's GEMMs compute. */
    public Precision precision() {
        return precision;
    }

    /** Whether bias, ReLU and bias gradients are fused into the GEMMs' cuBLASLt epilogues (fp32 programs only). */
    public boolean fusedEpilogues() {
        return fusedEpilogues;
    }

    /** Rows per step this program was built for. */
    public int rows() {
        return rows;
    }

    /** The student's parameters: where its weights and biases (and their bf16 copies) live. */
    public Net student() {
        return student;
    }

    /** The teacher's parameters, or null. */
    public Net teacher() {
        return teacher;
    }

    /** The step's input: features, fp32 {@code [rows, inputs]}. */
    public Buffer features() {
        return features;
    }

    /** The step's input: labels, int32 {@code [rows]}. */
    public Buffer labels() {
        return labels;
    }

    /** The step's output: per row (kl, ce, bad) in fp32. */
    public Buffer rowOut() {
        return rowOut;
    }

    /** The student's logits of the step, fp32 {@code [rows, classes]} row-major. */
    public Buffer studentLogits() {
        return studentLogits;
    }

    /** The teacher's logits, or null. */
    public Buffer teacherLogits() {
        return teacherLogits;
    }

    /** The student's parameter gradients (same layout as its parameters). */
    public Buffer grads() {
        return grads;
    }

    /** Adam's first moments, or null for SGD. */
    public Buffer adamM() {
        return adamM;
    }

    /** Adam's second moments, or null for SGD. */
    public Buffer adamV() {
        return adamV;
    }

    /** Every buffer, in declaration order. */
    public Map<String, Buffer> buffers() {
        return Collections.unmodifiableMap(buffers);
    }

    /** What runs once after the parameters are uploaded (the bf16 copies of the weights). */
    public List<Op> init() {
        return List.copyOf(init);
    }

    /** The step's operations in order. */
    public List<Op> step() {
        return List.copyOf(step);
    }

    /** Device bytes of all buffers. */
    public long bytes() {
        return buffers.values().stream().mapToLong(Buffer::bytes).sum();
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("MLP step program, " + rows + " rows, " + precision + (fusedEpilogues ? ", fused epilogues" + (reluMasks ? " with ReLU masks" : "") : "")
                + ", " + bytes() + " device bytes\n");
        for (Op op : step) {
            s.append("  ").append(op).append('\n');
        }
        return s.toString();
    }
}
