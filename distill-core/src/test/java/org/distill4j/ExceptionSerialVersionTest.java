package org.distill4j;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every exception of distill-core declares {@code private static final long serialVersionUID = 1L}, the project's
 * convention: without it the serialized form's id is computed from the class's members, and changes with them.
 */
class ExceptionSerialVersionTest {

    @Test
    void everyExceptionDeclaresItsSerialVersionUid() throws IOException, URISyntaxException {
        Path classes = Path.of(org.distill4j.store.StoreHeader.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        assertTrue(Files.isDirectory(classes), "expected distill-core's classes as a directory, got " + classes);
        List<String> checked = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        try (Stream<Path> files = Files.walk(classes)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".class")).sorted().toList()) {
                String name = classes.relativize(f).toString().replace(f.getFileSystem().getSeparator(), ".");
                name = name.substring(0, name.length() - ".class".length());
                Class<?> c;
                try {
                    c = Class.forName(name, false, getClass().getClassLoader());
                } catch (ClassNotFoundException | LinkageError e) {
                    continue; // a class of an optional dependency that is not on the test class path
                }
                if (!Throwable.class.isAssignableFrom(c)) {
                    continue;
                }
                checked.add(c.getName());
                try {
                    Field uid = c.getDeclaredField("serialVersionUID");
                    int m = uid.getModifiers();
                    uid.setAccessible(true);
                    if (uid.getType() != long.class || !Modifier.isPrivate(m) || !Modifier.isStatic(m) || !Modifier.isFinal(m)
                            || uid.getLong(null) != 1L) {
                        missing.add(c.getName() + " (declared, but not private static final long = 1L)");
                    }
                } catch (NoSuchFieldException e) {
                    missing.add(c.getName());
                } catch (IllegalAccessException e) {
                    throw new AssertionError(e);
                }
            }
        }
        assertTrue(checked.contains("org.distill4j.store.StoreMismatchException")
                && checked.contains("org.distill4j.checkpoint.CheckpointMismatchException"), "the scan found " + checked);
        assertEquals(List.of(), missing, "exceptions without serialVersionUID = 1L");
    }
}
