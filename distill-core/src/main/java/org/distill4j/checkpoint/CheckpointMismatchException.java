package org.distill4j.checkpoint;

/**
 * A checkpoint that a run with other settings wrote (another loss, number of epochs, data, teacher, or a student of
 * another configuration): resuming from it would not continue this run. The message names what differs. It is a setting
 * to change, not a failure of the run: resume with the settings the checkpoint was written with, or start over.
 */
public class CheckpointMismatchException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    /** An exception with the given message, which should name the checkpoint and what differs. */
    public CheckpointMismatchException(String message) {
        super(message);
    }

    /** With the refusal of the part that did not fit. */
    public CheckpointMismatchException(String message, Throwable cause) {
        super(message, cause);
    }
}
