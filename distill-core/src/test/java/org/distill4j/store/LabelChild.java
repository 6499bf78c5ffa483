package org.distill4j.store;

import java.nio.file.Path;

/** A child process for the kill -9 tests: labels slowly (20 ms a batch, or the milliseconds given) until it is killed. */
public final class LabelChild {
    private LabelChild() {
    }

    public static void main(String[] args) throws Exception {
        LabelerTest.SlowTeacher teacher = new LabelerTest.SlowTeacher(args.length > 1 ? Long.parseLong(args[1]) : 20);
        Labeler.label(teacher, LabelerTest.data(), Path.of(args[0]), LabelerTest.OPTIONS, null);
    }
}
