package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The GPU suite's command line, which a lent device's minutes should not be spent finding wrong. */
class KdKernelSuiteArgsTest {
    @Test
    void methodsTakeTheKnownNamesAndEverySweepForm() {
        assertEquals(List.of("fused", "two-pass"), KdKernelSuite.methodNames("fused, two-pass"));
        List<String> sweep = List.of("tile-c1-1bps", "tile-c3-2bps", "tile-c5-1bps-staged", "tile-c6-2bps-75pct", "tile-c7-2bps-lb",
                "tile-c8-1bps-50pct-spread-staged", "tile-c16-2bps");
        assertEquals(sweep, KdKernelSuite.methodNames(String.join(",", sweep)));
    }

    @Test
    void badMethodsAreRefusedWithTheNameAndWhatIsTaken() {
        for (String bad : new String[] {"tile-c9-2bps", "tile-c0-2bps", "tile-c4-3bps", "tile-c4-2bps-100pct", "tile-c8-2bps-foo",
                "tile-c8-2bps-staged-lb", "fused-typo"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdKernelSuite.methodNames("fused," + bad));
            assertTrue(e.getMessage().contains("got '" + bad + "'") && e.getMessage().contains("tile-c<C>-<B>bps"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdKernelSuite.methodNames("tile-c1-2bps-lb"));
        assertTrue(e.getMessage().contains("tile-c1-2bps-lb") && e.getMessage().contains("clusters of 2 or more"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KdKernelSuite.methodNames(" , "));
        assertTrue(e.getMessage().contains("at least one name"), e.getMessage());
    }

    @Test
    void optionValuesSayWhatIsWrong() {
        assertArrayEquals(new int[] {4096, 16384}, SuiteArgs.ints("--rows", "4096, 16384"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SuiteArgs.ints("--rows", "4096,lots"));
        assertEquals("--rows takes comma-separated integers, got '4096,lots'", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SuiteArgs.value(new String[] {"--vocab"}, 0));
        assertEquals("option --vocab needs a value", e.getMessage());
    }

    /**
     * Counts of runs are checked before the device is opened: no runs to take a median of (or a typo) must not
     * cost a lent device's start-up and then fail on an empty array or a bare NumberFormatException.
     */
    @Test
    void runCountsAreCheckedBeforeTheDeviceIsOpened(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        String out = dir.resolve("x.csv").toString();
        String[][] bad = {{"--iters", "0"}, {"--iters", "-3"}, {"--warmup", "-1"}, {"--iters", "lots"}};
        for (String[] b : bad) {
            String opt = b[0];
            String got = "got '" + b[1] + "'";
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> KdKernelSuite.main(new String[] {"--out", out, b[0], b[1]}), String.join(" ", b));
            assertTrue(e.getMessage().startsWith(opt + " takes") && e.getMessage().contains(got), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> MlpStepSuite.main(new String[] {"--out", out, b[0], b[1]}));
            assertTrue(e.getMessage().startsWith(opt + " takes") && e.getMessage().contains(got), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> HostPathSuite.main(new String[] {"--out", out, b[0], b[1]}));
            assertTrue(e.getMessage().startsWith(opt + " takes") && e.getMessage().contains(got), e.getMessage());
        }
        assertEquals(1, SuiteArgs.count("--iters", "1", 1));
        // sizes, the temperature and the dtypes too, each error naming its option and what it takes
        String[][] values = {{"--rows", "4096,0", "sizes of at least 1"}, {"--vocab", "-10", "sizes of at least 1"},
                {"--temperature", "0", "a positive number"}, {"--temperature", "hot", "a positive number"},
                {"--temperature", "NaN", "a positive number"}, {"--dtype", "f32,fp8", "f32 and bf16"}, {"--dtype", "f16", "f32 and bf16"}};
        for (String[] b : values) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> KdKernelSuite.main(new String[] {"--out", out, b[0], b[1]}), String.join(" ", b));
            assertTrue(e.getMessage().startsWith(b[0] + " takes " + b[2]), e.getMessage());
        }
        assertEquals(0, SuiteArgs.count("--warmup", " 0", 0));
    }
}
