package org.distill4j.store;

/**
 * A store (or the {@code .partial} of an interrupted one) already at the output path that another teacher, source,
 * dataset or other settings made: labeling or importing there would mix or replace it. The message names what differs.
 * Nothing is changed; delete the file to write it anew, or use the settings it was made with.
 */
public class StoreMismatchException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** An exception with the given message, which should name the file and what differs. */
    public StoreMismatchException(String message) {
        super(message);
    }
}
