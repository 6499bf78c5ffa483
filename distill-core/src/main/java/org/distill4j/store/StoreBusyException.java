package org.distill4j.store;

/**
 * A store is being written by another writer (another labeling or import of it, in this process or another): the
 * writer is refused and the file is left as it is. An {@link IllegalStateException}, as the refusal always was; its own
 * type lets a command report it as the environment's state, in one line, rather than as a bug.
 */
public final class StoreBusyException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** An exception with the given message, which should name the store and say that another writer holds it. */
    public StoreBusyException(String message) {
        super(message);
    }
}
