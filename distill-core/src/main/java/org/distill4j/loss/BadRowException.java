package org.distill4j.loss;

/**
 * Bad input in one row of a batch (a NaN student logit, a teacher row without mass, a label out of range), with the
 * row as data: {@link #row()} is the row of the batch the loss was given. The built-in losses and {@link LogitBatch}
 * throw it where their message names a row ({@code "... at row 3, class 7 is NaN ..."}); the trainer uses
 * {@link #row()} to name the training sample that row holds (the batches are shuffled), and never reads the row out
 * of the text. A loss of your own may throw it too, to have its bad row traced the same way; a plain
 * {@link IllegalArgumentException} is reported with its message alone.
 *
 * <p>The message is {@code before + row + after}, so a loss that runs another on some of its rows (a wrapper) can name
 * the row in its own batch with {@link #atRow}.
 */
public class BadRowException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    /** The message's text before the row number, kept so that {@link #atRow} can name another row. */
    private final String before;
    /** The bad row of the batch, from 0. */
    private final int row;
    /** The message's text after the row number, kept so that {@link #atRow} can name another row. */
    private final String after;

    /**
     * The message {@code before + row + after}.
     *
     * @param before the text before the row number, e.g. {@code "student logit at row "}
     * @param row    the row of the batch, from 0
     * @param after  the text after it, e.g. {@code ", class 3 is NaN, expected a finite value"}
     * @throws IllegalArgumentException when {@code row < 0}
     */
    public BadRowException(String before, int row, String after) {
        super(before + row + after);
        if (row < 0) {
            throw new IllegalArgumentException("a bad row is a row of the batch, from 0; got " + row);
        }
        this.before = before;
        this.row = row;
        this.after = after;
    }

    /** The bad row: its index in the batch the loss was given, from 0. */
    public int row() {
        return row;
    }

    /**
     * The same failure named at row {@code newRow}: for a loss that ran another on rows {@code [from, ...)} of its
     * batch as a batch of their own, {@code atRow(from + row())} names the row in its own batch. The result keeps this
     * one's cause, suppressed exceptions and stack trace.
     */
    public BadRowException atRow(int newRow) {
        BadRowException e = new BadRowException(before, newRow, after);
        if (getCause() != null) {
            e.initCause(getCause());
        }
        e.setStackTrace(getStackTrace());
        for (Throwable s : getSuppressed()) {
            e.addSuppressed(s);
        }
        return e;
    }
}
