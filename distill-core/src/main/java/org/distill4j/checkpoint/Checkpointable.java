package org.distill4j.checkpoint;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

/**
 * Something whose training state can be written into a checkpoint and read back: a student's
 * parameters and optimizer state, a feature loss's learned projection. {@link #readState} must
 * consume exactly the bytes {@link #writeState} wrote, and leave this object as the writer was, so a
 * resumed run continues bit for bit where the interrupted one stopped.
 */
public interface Checkpointable {

    /** Writes the whole training state (parameters, optimizer moments, step counters). */
    void writeState(DataOutputStream out) throws IOException;

    /**
     * Reads and checks a state {@link #writeState} wrote, without changing this object: the returned
     * {@link Restore} puts it in place. A checkpoint applies the states of all its parts only after every
     * part has been read and accepted, so a refused checkpoint changes nothing.
     *
     * @throws IllegalArgumentException when the state belongs to something of another shape or
     *                                  configuration (say which, and what was expected)
     */
    Restore readState(DataInputStream in) throws IOException;

    /** Puts a state that {@link #readState} read and accepted in place. */
    @FunctionalInterface
    interface Restore {
        /**
         * Sets the object's training state to the one read. Called once, after every part of the checkpoint was read and
         * accepted; it should not fail, since the parts applied before it are not undone.
         */
        void apply();
    }
}
