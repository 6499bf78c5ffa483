package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link MlpStepSuite}'s command line, checked before a lent device is opened. */
class MlpStepSuiteArgsTest {
    /**
     * A batch whose features (784 floats a row) are more than a Java array holds is refused naming {@code --batch}, not
     * found on the device as a NegativeArraySizeException after its engine was built.
     */
    @Test
    void aBatchLargerThanAJavaArrayIsRefusedNamingTheOption(@TempDir Path dir) {
        String out = dir.resolve("x.csv").toString();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MlpStepSuite.main(new String[] {"--out", out, "--batch", "1024,2739200"}));
        assertTrue(e.getMessage().startsWith("--batch") && e.getMessage().contains("2739200"), e.getMessage());
    }
}
