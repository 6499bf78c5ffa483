package org.distill4j.testing;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Reduction;

import java.util.Map;

/**
 * A test loss that hands the calls of the {@link LogitLoss} contract to {@code inner}, but rowSeparable and computeRows,
 * which keep the interface's defaults (not separable; a copy of each slice); subclasses change what they test.
 */
public abstract class ForwardingLoss implements LogitLoss {
    protected final LogitLoss inner;

    protected ForwardingLoss(LogitLoss inner) {
        this.inner = inner;
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public Map<String, Object> settings() {
        return inner.settings();
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
    public boolean needsTopK() {
        return inner.needsTopK();
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
