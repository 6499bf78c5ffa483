package org.distill4j.examples;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A teacher's kind from its model file's extension, the engine names a recipe and --engine take, and the specs' fields. */
class TeacherSpecTest {
    @Test
    void extensionsSayWhichModelsAreForeignAndTheirEngine() {
        for (String f : new String[] {"a.onnx", "B.ONNX", "dir.zip/c.onnx"}) {
            assertTrue(TeacherSpec.isForeignModel(Path.of(f)), f);
            assertEquals("onnxruntime", TeacherSpec.engineOf(Path.of(f)), f);
        }
        for (String f : new String[] {"a.pt", "a.PTH", "x/a.torchscript"}) {
            assertTrue(TeacherSpec.isForeignModel(Path.of(f)), f);
            assertEquals("pytorch", TeacherSpec.engineOf(Path.of(f)), f);
        }
        for (String f : new String[] {"teacher.zip", "onnx", "a.onnx.zip", "a.ptx", "pt", "/"}) {
            assertFalse(TeacherSpec.isForeignModel(Path.of(f)), f);
            assertNull(TeacherSpec.engineOf(Path.of(f)), f);
        }
    }

    @Test
    void engineNamesAreTakenInAnyCaseAndNothingElse() {
        assertEquals("onnxruntime", TeacherSpec.engine("onnxruntime"));
        assertEquals("onnxruntime", TeacherSpec.engine(" ORT "));
        assertEquals("onnxruntime", TeacherSpec.engine("Onnx"));
        assertEquals("pytorch", TeacherSpec.engine("PyTorch"));
        assertEquals("pytorch", TeacherSpec.engine("torchscript"));
        assertEquals("pytorch", TeacherSpec.engine("pt"));
        for (String n : new String[] {"auto", "tensorflow", "", "onnx runtime", "pth"}) {
            assertNull(TeacherSpec.engine(n), n);
        }
        assertEquals("onnxruntime (or onnx, ort), pytorch (or torchscript, pt)", TeacherSpec.engineNames());
    }

    @Test
    void eachKindOfSpecHoldsItsOwnFields() {
        int[] hidden = {13, 7};
        TeacherSpec t = TeacherSpec.trained(hidden, 0.25, 3, 2.5);
        hidden[0] = 99;
        assertArrayEquals(new int[] {13, 7}, t.hidden(), "the spec keeps its own copy of the sizes");
        assertEquals(0.25, t.dropout());
        assertEquals(3, t.epochs());
        assertEquals(2.5, t.weight());
        assertNull(t.model());
        assertNull(t.djl());
        TeacherSpec d = TeacherSpec.dl4j(Path.of("t.zip"), 0.5);
        assertEquals(Path.of("t.zip"), d.model());
        assertNull(d.hidden());
        assertNull(d.djl());
        assertEquals(0.5, d.weight());
        TeacherSpec.Djl djl = new TeacherSpec.Djl("pytorch", new long[] {1, 28, 28}, "logits", List.of("logits"));
        TeacherSpec f = TeacherSpec.djl(Path.of("m.pt"), djl, 1.5);
        assertEquals(Path.of("m.pt"), f.model());
        assertEquals(djl, f.djl());
        assertNull(f.hidden());
        assertEquals(1.5, f.weight());
    }
}
