package org.distill4j.testing;

import org.distill4j.loss.LogitLoss;

import java.util.Map;

/**
 * A row-separable loss of a user's that delegates to {@code inner} but does not override computeRows: the interface's
 * default runs it, on a copy of each slice of rows.
 */
public final class CopyingRowsLoss extends ForwardingLoss {
    public CopyingRowsLoss(LogitLoss inner) {
        super(inner);
    }

    @Override
    public String name() {
        return "copying-rows";
    }

    @Override
    public Map<String, Object> settings() {
        return Map.of();
    }

    @Override
    public boolean needsTopK() {
        return false;
    }

    @Override
    public boolean rowSeparable() {
        return true;
    }
}
