package org.distill4j.loss;

import java.util.Map;

/**
 * A loss over rows of logits that returns its value and its gradient with respect to the student
 * logits in one call.
 *
 * <p>The contract is plain row-major float buffers (see {@link LogitBatch}), so the CPU code here
 * does not depend on ND4J and a GPU backend can implement the same loss under the same
 * {@link #name()}. Implementations are immutable and thread-safe; the {@code compute} method is the
 * CPU implementation, which backends without a kernel of their own fall back to.
 */
public interface LogitLoss {

    /** The registered name, the same in every layer (recipes, backends, kernels), e.g. {@code kd}. */
    String name();

    /** The loss settings, for logs and provenance. */
    Map<String, Object> settings();

    /** Whether {@link #compute} reads teacher values. */
    boolean needsTeacher();

    /** Whether {@link #compute} reads hard labels. */
    boolean needsLabels();

    /**
     * Whether a row labeled {@link LogitBatch#UNLABELED} is one this loss computes (its hard-label terms 0 on it, as the
     * batch's class comment says); false for a loss that needs every row's label for a teacher term ({@code dkd}), which
     * refuses such a row. The {@code Distiller} checks it before training on data with unlabeled samples.
     */
    default boolean acceptsUnlabeledRows() {
        return true;
    }

    /** Whether {@link #compute} reads a sparse top-k teacher ({@link LogitBatch#ofTopK}). */
    default boolean needsTopK() {
        return false;
    }

    /**
     * Whether {@link #compute} is a sum over rows of terms that each depend on their own row only (and on the
     * batch's {@linkplain LogitBatch#rowWeight row weight}): its value, every term and every counted row are then
     * the sums over the {@linkplain LogitBatch#slice slices} of any split of the rows, and each row's gradient is
     * the one it gets in its slice. The CPU backend then computes the slices of a large batch on several threads.
     * False unless a loss says so: a loss that looks across rows (batch statistics, pairs of rows) must not.
     */
    default boolean rowSeparable() {
        return false;
    }

    /** How rows are reduced; {@link Reduction#MEAN} unless configured otherwise. */
    Reduction reduction();

    /**
     * Computes the reduced loss and writes {@code upstream * dLoss/dStudentLogits} into
     * {@code gradOut} (every element is written; the previous content is ignored). Rows that do not
     * count ({@link LogitBatch#counts}) add nothing and get a zero gradient.
     *
     * @param batch    inputs
     * @param gradOut  gradient output, same length as {@code batch.student()}; may not alias any input (student,
     *                 teacher or top-k log-probabilities)
     * @param upstream the gradient of the final objective with respect to this loss (1 for a loss
     *                 used alone; the term weight inside a weighted sum); must be finite
     * @throws IllegalArgumentException for a non-finite {@code upstream}, and for inputs the loss cannot use
     * @return the reduced value (not multiplied by {@code upstream}) and its components
     */
    LossResult compute(LogitBatch batch, float[] gradOut, float upstream);

    /**
     * Rows {@code [from, to)} of {@code batch}, read where they are: the result {@link #compute} gives for
     * {@link LogitBatch#slice batch.slice(from, to)}, bit for bit, with the gradient of row {@code from + j} written to
     * {@code gradOut[gradOffset + j * classes]} onwards ({@code (to - from) * classes} elements; no other element of
     * {@code gradOut} is touched). Its value, terms and counted rows are those of the slice, weighted as the batch
     * weighs its rows ({@link LogitBatch#rowWeight}). Meant for {@linkplain #rowSeparable row-separable} losses: the CPU
     * backend computes each slice of a large batch this way, straight into the batch's gradient buffer
     * ({@code gradOffset = from * classes}).
     *
     * <p>The built-in losses read the rows in place, so no row is copied, and name the batch's rows in their errors.
     * This default copies the rows ({@code batch.slice}, unless they are the whole batch) and runs {@code compute} on
     * them, into {@code gradOut} when the gradient fills it, else into a scratch buffer of the thread's whose content
     * it then copies to {@code gradOut}; a loss that reads its rows in place overrides it. A {@link BadRowException}
     * from {@code compute} names a row of the slice; it is rethrown naming the row of {@code batch}
     * ({@code from + row}).
     *
     * @param gradOffset where row {@code from}'s gradient starts in {@code gradOut}, which needs at least
     *                   {@code gradOffset + (to - from) * classes} elements and may not alias an input
     * @throws IllegalArgumentException unless {@code 0 <= from < to <= batch.rows()}, for a gradient buffer too short
     *                                  or aliasing an input, a non-finite {@code upstream}, and for inputs the loss
     *                                  cannot use
     */
    default LossResult computeRows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        checkRows(batch, from, to, gradOut, gradOffset, upstream);
        LogitBatch part = from == 0 && to == batch.rows() ? batch : batch.slice(from, to);
        int n = part.student().length;
        try {
            if (gradOffset == 0 && gradOut.length == n) {
                return compute(part, gradOut, upstream); // the gradient is the whole buffer
            }
            try (Scratch sc = Scratch.acquire()) {
                float[] g = sc.floats(0, n);
                LossResult r = compute(part, g, upstream);
                System.arraycopy(g, 0, gradOut, gradOffset, n);
                return r;
            }
        } catch (BadRowException e) {
            // the loss named a row of the slice it was given: name the row of this batch
            throw from == 0 ? e : e.atRow(from + e.row());
        }
    }

    /**
     * Checks the arguments of {@link #computeRows}: the range of rows, the gradient buffer's room from
     * {@code gradOffset} (and that it aliases no input), the inputs this loss needs and the upstream factor; shared by
     * implementations, which call it first in {@code computeRows}.
     */
    default void checkRows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        batch.checkRange(from, to);
        long need = (long) gradOffset + (long) (to - from) * batch.classes();
        if (gradOut == null || gradOffset < 0 || gradOut.length < need) {
            throw new IllegalArgumentException("gradient buffer for loss '" + name() + "' has "
                    + (gradOut == null ? "no array" : gradOut.length + " elements") + ", expected room for rows [" + from + ", " + to
                    + ") x " + batch.classes() + " classes = " + (long) (to - from) * batch.classes() + " elements from offset "
                    + gradOffset);
        }
        checkAliasesAndNeeds(batch, gradOut);
        requireFiniteUpstream(name(), upstream);
    }

    /**
     * Checks the gradient buffer, the inputs this loss needs and the upstream factor (finite, see
     * {@link #requireFiniteUpstream}); shared by implementations, which call it first in {@link #compute}.
     */
    default void checkInputs(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut);
        requireFiniteUpstream(name(), upstream);
    }

    /**
     * Throws when {@code upstream} is NaN or infinite: it multiplies every gradient element, so a
     * non-finite factor would turn a finite loss into NaN gradients without any other sign.
     *
     * @param loss the loss's registered name, for the message
     * @return {@code upstream}
     */
    static float requireFiniteUpstream(String loss, float upstream) {
        if (!Float.isFinite(upstream)) {
            throw new IllegalArgumentException("upstream gradient factor for loss '" + loss + "' is " + upstream
                    + ", expected a finite number (1 for a loss used alone, the term weight inside a weighted sum)");
        }
        return upstream;
    }

    /** Checks the gradient buffer and the inputs this loss needs (not the upstream factor: see the overload). */
    default void checkInputs(LogitBatch batch, float[] gradOut) {
        if (gradOut == null || gradOut.length != batch.student().length) {
            throw new IllegalArgumentException("gradient buffer for loss '" + name() + "' has "
                    + (gradOut == null ? "no array" : gradOut.length + " elements")
                    + ", expected rows x classes = " + batch.rows() + " x " + batch.classes());
        }
        checkAliasesAndNeeds(batch, gradOut);
    }

    /** The alias and input checks of {@link #checkInputs(LogitBatch, float[])} and {@link #checkRows}. */
    private void checkAliasesAndNeeds(LogitBatch batch, float[] gradOut) {
        String alias = gradOut == batch.student() ? "the student logits"
                : gradOut == batch.teacher() ? "the teacher values"
                : gradOut == batch.topkLogProbs() ? "the top-k log-probabilities" // same length only when k = classes
                : null;
        if (alias != null) {
            throw new IllegalArgumentException("gradient buffer for loss '" + name() + "' is the same array as " + alias
                    + "; it must not alias an input (the loss reads them while it writes the gradient)");
        }
        if (needsTeacher()) {
            batch.requireTeacher(name());
        }
        if (needsLabels()) {
            batch.requireLabels(name());
        }
        if (needsTopK()) {
            batch.requireTopK(name());
        }
    }
}
