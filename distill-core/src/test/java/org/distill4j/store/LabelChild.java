package org.distill4j.store;

import java.nio.file.Path;

/** A child process for the kill -9 test: labels slowly until it is killed. */
public final class LabelChild {
    private LabelChild() {
    }

    public static void main(String[] args) throws Exception {
        LabelerTest.SlowTeacher teacher = new LabelerTest.SlowTeacher(20);
        Labeler.label(teacher, LabelerTest.data(), Path.of(args[0]), LabelerTest.OPTIONS, null);
    }
}
