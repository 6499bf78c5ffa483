package org.distill4j.testing;

import org.distill4j.data.Batch;
import org.distill4j.loss.TeacherValues;
import org.distill4j.teacher.SparseTeacher;

import java.util.function.Function;

/** A top-k teacher of entries only (a top-k store, API logprobs): its rows come from a function, it has no dense rows. */
public final class EntriesTeacher implements SparseTeacher {
    private final String name;
    private final int classes;
    private final int k;
    private final Function<Batch, TopK> rows;

    public EntriesTeacher(String name, int classes, int k, Function<Batch, TopK> rows) {
        this.name = name;
        this.classes = classes;
        this.k = k;
        this.rows = rows;
    }

    /** One whose rows a test never asks for. */
    public static EntriesTeacher neverAsked(String name, int classes, int k) {
        return new EntriesTeacher(name, classes, k, b -> {
            throw new AssertionError("not asked");
        });
    }

    @Override
    public int k() {
        return k;
    }

    @Override
    public TopK topK(Batch batch) {
        return rows.apply(batch);
    }

    @Override
    public boolean hasDenseOutputs() {
        return false;
    }

    @Override
    public int classes() {
        return classes;
    }

    @Override
    public TeacherValues values() {
        return TeacherValues.LOGITS;
    }

    @Override
    public float[] outputs(Batch batch) {
        throw new UnsupportedOperationException("entries only");
    }

    @Override
    public String describe() {
        return name;
    }
}
