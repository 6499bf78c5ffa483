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
     * Replaces this object's training state with one {@link #writeState} wrote.
     *
     * @throws IllegalArgumentException when the state belongs to something of another shape or
     *                                  configuration (say which, and what was expected); nothing is
     *                                  changed then
     */
    void readState(DataInputStream in) throws IOException;
}
