package org.distill4j.examples.recipe;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Damaged recipes, from the shipped ones: YAML text inserted and deleted (anchors, aliases, tags, block scalars, deep
 * nesting, huge numbers, NaN and infinity spellings), lines repeated and dropped, bytes changed (invalid UTF-8), and
 * {@code --set} overrides of odd keys and values. Each is read as a recipe or refused with a {@link RecipeException}
 * naming the file; nothing else escapes (no ClassCastException, NumberFormatException, IndexOutOfBounds, stack
 * overflow), and none takes long. Seed: {@code -Ddistill.fuzz.seed}; cases: {@code -Ddistill.fuzz.cases}.
 */
class RecipeFuzzTest {
    static final long SEED = Long.getLong("distill.fuzz.seed", 20261122L);
    static final int CASES = Integer.getInteger("distill.fuzz.cases", 150);
    static final String[] INSERTS = {":", ": ", "-", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "&a [1, 2]", "<<: *a\n", "!!str ",
            "!!int ", "!!float ", "!!map ", "!!seq ", "!!binary ", "!!python/object:os.system ", "!<tag:yaml.org,2002:str> ", "!x ",
            "? ", "|\n", ">-\n", "\t", "'", "\"", "#", "~", "null", ".nan", ".inf", "-.inf", "NaN", "Infinity", "-Infinity",
            "1e999", "-1e999", "1e-999", "99999999999999999999", "9223372036854775808", "-9223372036854775809", "2147483648",
            "-2147483648", "0x10", "0o7", "0b11", "1_000", "+5", "-0", "0.0", "4f", "4d", "0x1p3", "---\n", "...\n", "%YAML 1.1\n",
            "\u0000", "\uFEFF", "\u0085", "\u2028", "\uD800", "é", " ", "\n", "\n  ", "  ", "[".repeat(2000), "{a: ".repeat(500),
            "- ".repeat(300), "name", "loss", "teacher", "store", "ensemble", "seeds", "hidden", "path", "schedules", "row[0]",
            "kd", "dkd", "topk-kd", "ce", "hint", "rkd", "sp", "pkt", "at", "temperature", "alpha", "weight", "[0]", "yes", "no", "on", "off",
            "True", "FALSE"};

    static List<Path> recipes() throws IOException {
        try (Stream<Path> s = Files.walk(Path.of("recipes"))) {
            return s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
    }

    /** Parses {@code text} as {@code source}: a recipe, or a RecipeException naming the file; anything else fails. */
    static boolean check(String text, Path source, List<String> overrides, String what) {
        try {
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> RecipeLoader.parse(text, source, overrides), what);
            return true;
        } catch (RecipeException e) {
            assertTrue(e.getMessage() != null && e.getMessage().startsWith(source.toString()), what + ": the message does not start "
                    + "with the file: " + e.getMessage());
            return false;
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
            throw new AssertionError(what + ": " + e + " escaped", e);
        }
    }

    static String shown(String s) {
        return s.length() > 400 ? s.substring(0, 400) + "..." : s;
    }

    @Test
    void editedRecipesAreReadOrRefusedNamingTheFile() throws IOException {
        Random rnd = new Random(SEED);
        List<Path> recipes = recipes();
        assertFalse(recipes.isEmpty());
        for (Path r : recipes) {
            String valid = Files.readString(r);
            assertTrue(check(valid, r, List.of(), r + " as shipped"));
            for (int c = 0; c < CASES / 2; c++) {
                StringBuilder s = new StringBuilder(valid);
                for (int j = 1 + rnd.nextInt(3); j > 0; j--) {
                    int at = rnd.nextInt(s.length() + 1);
                    switch (rnd.nextInt(4)) {
                        case 0 -> s.delete(at, Math.min(s.length(), at + 1 + rnd.nextInt(8)));
                        case 1 -> { // a line repeated or dropped
                            int from = s.lastIndexOf("\n", Math.max(0, at - 1)) + 1;
                            int to = s.indexOf("\n", at);
                            to = to < 0 ? s.length() : to + 1;
                            if (rnd.nextBoolean()) {
                                s.insert(from, s.substring(from, to));
                            } else {
                                s.delete(from, to);
                            }
                        }
                        default -> s.insert(at, INSERTS[rnd.nextInt(INSERTS.length)]);
                    }
                }
                check(s.toString(), r, List.of(), "seed " + SEED + ", " + r + ", case " + c + ":\n" + shown(s.toString()));
            }
        }
    }

    @Test
    void oddOverridesAreAppliedOrRefusedNamingTheFile() throws IOException {
        Random rnd = new Random(SEED);
        String[] keys = {"name", "data.path", "data.transferSamples", "teacher", "teacher.hidden", "teacher.hidden[0]",
                "teacher.hidden[1]", "teacher.hidden[9]", "teacher.hidden[-1]", "teacher.hidden[99999999999]", "teacher.store.topk",
                "teacher.ensemble[0].hidden", "student.hidden[0]", "training.epochs", "training.seeds", "training.seeds[0]",
                "training.schedules.temperature.from", "loss", "loss[0]", "loss[0].name", "loss[0].temperature", "loss[5].alpha",
                "loss.kd", "loss.kd[0].name", "", ".", "..", "a..b", "loss[", "loss]", "loss[0][0]", "[0]", "loss[0].", " name",
                "training.epochs.x", "name.x", "data[0]"};
        String[] values = {"", "1", "0", "-1", "1e999", "NaN", "[1, 2]", "{a: 1}", "[", "{", "*a", "&a 1", "!!binary aGk=",
                "!!python/object:os.system x", "kd", "{name: kd, temperature: 4}", "[{name: ce}]", "true", "null", "~", "é", "\u0000",
                "a\nb: c", "- 1", "99999999999999999999", "[".repeat(1000)};
        Path r = Path.of("recipes", "fashion-mnist", "kd", "mlp400_from_mlp1200.yaml");
        String valid = Files.readString(r);
        for (int c = 0; c < CASES; c++) {
            List<String> overrides = new ArrayList<>();
            for (int j = 1 + rnd.nextInt(2); j > 0; j--) {
                String o = keys[rnd.nextInt(keys.length)] + (rnd.nextInt(10) == 0 ? "" : "=") + values[rnd.nextInt(values.length)];
                overrides.add(o);
            }
            check(valid, r, overrides, "seed " + SEED + ", case " + c + ": --set " + shown(String.join(" --set ", overrides)));
        }
    }

    @Test
    void damagedBytesAreReadOrRefusedNamingTheFile(@TempDir Path tmp) throws IOException {
        Random rnd = new Random(SEED);
        Path r = Path.of("recipes", "fashion-mnist", "kd", "mlp400_from_mlp1200.yaml");
        byte[] valid = Files.readAllBytes(r);
        Path file = tmp.resolve("r.yaml");
        for (int c = 0; c < CASES; c++) {
            byte[] b = valid.clone();
            for (int j = 1 + rnd.nextInt(3); j > 0; j--) {
                b[rnd.nextInt(b.length)] = (byte) rnd.nextInt(256);
            }
            Files.write(file, b);
            String what = "seed " + SEED + ", case " + c + ":\n" + shown(new String(b, StandardCharsets.ISO_8859_1));
            try {
                assertTimeoutPreemptively(Duration.ofSeconds(10), () -> RecipeLoader.load(file, List.of()), what);
            } catch (RecipeException e) {
                assertTrue(e.getMessage() != null && e.getMessage().startsWith(file.toString()), what + ": " + e.getMessage());
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw new AssertionError(what + ": " + e + " escaped", e);
            }
        }
    }
}
