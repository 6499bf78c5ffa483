package org.distill4j.store;

/** A store file that is not valid: wrong magic or version, truncated, corrupt (checksum), or incomplete. */
public final class StoreFormatException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** An exception with the given message, which should name the file and say what is wrong with it. */
    public StoreFormatException(String message) {
        super(message);
    }
}
