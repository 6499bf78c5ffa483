package org.distill4j.testing;

import org.distill4j.data.Batch;
import org.distill4j.student.Student;

/** A student that passes every call to another one: a test overrides what it watches or changes. */
public abstract class ForwardingStudent implements Student {
    protected final Student inner;

    protected ForwardingStudent(Student inner) {
        this.inner = inner;
    }

    @Override
    public int classes() {
        return inner.classes();
    }

    @Override
    public float[] forward(Batch batch, boolean training) {
        return inner.forward(batch, training);
    }

    @Override
    public void backward(float[] dLogits) {
        inner.backward(dLogits);
    }

    @Override
    public void endEpoch() {
        inner.endEpoch();
    }

    @Override
    public long parameterCount() {
        return inner.parameterCount();
    }

    @Override
    public String describe() {
        return inner.describe();
    }
}
