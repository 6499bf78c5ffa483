package org.distill4j.examples;

import org.distill4j.data.Dataset;
import org.distill4j.data.FashionMnist;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --data, --split and --limit of label and eval: what each takes, what it refuses, and the samples it loads. */
class DataOptionsTest {
    @Test
    void theThreeOptionsAreTheirsAndOthersAreLeft() throws Exception {
        for (String o : new String[] {"--data", "--split", "--limit"}) {
            assertTrue(DataOptions.isOption(o), o);
        }
        for (String o : new String[] {"--out", "--data=embedded", "data", "--Limit", ""}) {
            assertFalse(DataOptions.isOption(o), o);
        }
        DataOptions d = new DataOptions("test");
        assertFalse(d.accept("--out", "train"), "not one of these: left to the command");
        assertEquals("test", d.split(), "the default split, unchanged by another option");
        assertTrue(d.accept("--split", "train"));
        assertEquals("train", d.split());
        Main.UsageException e = assertThrows(Main.UsageException.class, () -> d.accept("--split", "validation"));
        assertEquals("--split must be train or test, got 'validation'", e.getMessage());
        assertEquals("train", d.split(), "a refused value changes nothing");
        for (String bad : new String[] {"0", "-3", "x", "3000000000"}) {
            Main.UsageException l = assertThrows(Main.UsageException.class, () -> d.accept("--limit", bad), bad);
            assertTrue(l.getMessage().startsWith("--limit") && l.getMessage().contains(bad), l.getMessage());
        }
        assertThrows(Main.UsageException.class, () -> d.accept("--data", "a\u0000b"));
    }

    /** The chosen split's first --limit samples, from the embedded subset or the folder given; the last --data wins. */
    @Test
    void theChosenSplitsFirstSamplesAreLoaded(@TempDir Path tmp) throws Exception {
        FashionMnist.Split all = FashionMnist.loadEmbedded(DataOptions.class.getClassLoader());
        DataOptions d = new DataOptions("train");
        assertTrue(d.accept("--data", tmp.toString()));
        assertTrue(d.accept("--data", "embedded"));
        assertTrue(d.accept("--limit", "37"));
        DataOptions.Loaded l = d.load();
        assertEquals(all.source(), l.source());
        same(all.train().head(37), l.data());
        assertTrue(d.accept("--split", "test"));
        same(all.test().head(37), d.load().data());
        assertTrue(d.accept("--limit", "2147483647"));
        same(all.test(), d.load().data());

        // a folder after embedded: that folder is read (here it has no dataset: an error naming it)
        assertTrue(d.accept("--data", tmp.toString()));
        RuntimeException e = assertThrows(RuntimeException.class, d::load);
        assertTrue(e.getMessage().contains(tmp.toString()), e.getMessage());
    }

    private static void same(Dataset expected, Dataset actual) {
        assertEquals(expected.size(), actual.size());
        assertArrayEquals(expected.labels(), actual.labels());
        assertArrayEquals(expected.features(), actual.features());
    }
}
