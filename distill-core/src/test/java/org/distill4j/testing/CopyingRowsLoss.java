package org.distill4j.testing;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Reduction;

import java.util.Map;

/**
 * A row-separable loss of a user's that delegates to {@code inner} but does not override computeRows: the interface's
 * default runs it, on a copy of each slice of rows.
 */
public record CopyingRowsLoss(LogitLoss inner) implements LogitLoss {
    @Override
    public String name() {
        return "copying-rows";
    }

    @Override
    public Map<String, Object> settings() {
        return Map.of();
    }

    @Override
    public boolean needsTeacher() {
        return inner.needsTeacher();
    }

    @Override
    public boolean needsLabels() {
        return inner.needsLabels();
    }

    @Override
    public boolean rowSeparable() {
        return true;
    }

    @Override
    public Reduction reduction() {
        return inner.reduction();
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        return inner.compute(batch, gradOut, upstream);
    }
}
