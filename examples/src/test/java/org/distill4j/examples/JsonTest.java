package org.distill4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The JSON of results.json, provenance.json and eval --json: numbers read back exactly, any string is written. */
class JsonTest {
    /**
     * A number reads back as the very double (or float) written: provenance's resolved recipe holds the settings that ran
     * (a learning rate of 0.00123456789, not 0.00123457), and eval's accuracy is its exact fraction. Round numbers stay
     * short.
     */
    @Test
    void numbersReadBackExactly() {
        Random r = new Random(11);
        List<Double> values = new java.util.ArrayList<>(List.of(0.00123456789, 123456789.0, 0.13714285714285715, 1.0 / 3, -2.5e-300,
                Double.MAX_VALUE, Double.MIN_VALUE, 1e22, 4.0, 0.818, -0.0));
        for (int i = 0; i < 200; i++) {
            values.add(Math.exp(r.nextGaussian() * 20) * (r.nextBoolean() ? 1 : -1));
        }
        String json = Json.write(values);
        Matcher m = Pattern.compile("(?m)^  (\\S+?),?$").matcher(json);
        for (double v : values) {
            assertTrue(m.find(), json);
            assertEquals(v, Double.parseDouble(m.group(1)), 0.0, m.group(1));
            assertTrue(m.group(1).matches("-?(0|[1-9]\\d*)(\\.\\d+)?([eE][+-]?\\d+)?"), "a JSON number: " + m.group(1));
        }
        for (float f : new float[] {0.1f, 1.0f / 3, 3.4e38f, 1.17549435e-38f, 16777217f}) {
            String s = Json.write(List.of(f)).replaceAll("\\s|\\[|]", "");
            assertEquals(f, Float.parseFloat(s), 0.0f, s);
        }
        assertEquals("[\n  4,\n  0.818,\n  0.1,\n  1e-07,\n  null,\n  null\n]\n",
                Json.write(List.of(4.0, 0.818, 0.1f, 1e-7, Double.NaN, Double.POSITIVE_INFINITY)), "round numbers stay short");
    }

    /**
     * Every string becomes valid JSON that a UTF-8 writer can encode: control characters escaped, and a lone surrogate (a
     * YAML escape "\ud800" in a recipe's description, say) as a \\u escape rather than a character the file's encoder
     * refuses, which failed the run's provenance.json after all its training.
     */
    @Test
    void anyStringIsWritten(@TempDir Path tmp) throws Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("k\"\\\u0001", "a\u2028b\ud800c\udc00\ud83d\ude00\u007f\u0000\"\\/\n\r\t");
        String json = Json.write(m);
        assertEquals("{\n  \"k\\\"\\\\\\u0001\": \"a\u2028b\\ud800c\\udc00\ud83d\ude00\u007f\\u0000\\\"\\\\/\\n\\r\\t\"\n}\n", json);
        Path f = tmp.resolve("p.json");
        AtomicFiles.writeString(f, json);
        assertEquals(json, Files.readString(f, StandardCharsets.UTF_8));
    }

    /** Nesting: two spaces a level, commas between entries only, empty maps and lists inline, null, booleans, whole numbers. */
    @Test
    void nestedValuesAreIndentedAndSeparated() {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("empty map", Map.of());
        inner.put("empty list", List.of());
        inner.put("none", null);
        Map<Object, Object> m = new LinkedHashMap<>();
        m.put("a", List.of(1, List.of(true, false), 7L));
        m.put("b", inner);
        m.put(3, 0.1f);
        m.put("c", java.nio.file.Path.of("x/y"));
        assertEquals("{\n  \"a\": [\n    1,\n    [\n      true,\n      false\n    ],\n    7\n  ],\n  \"b\": {\n    \"empty map\": {},\n"
                + "    \"empty list\": [],\n    \"none\": null\n  },\n  \"3\": 0.1,\n  \"c\": \"x/y\"\n}\n", Json.write(m));
        assertEquals("null\n", Json.write(null));
        assertEquals("[\n  null,\n  null\n]\n", Json.write(java.util.Arrays.asList(Float.NaN, Float.NEGATIVE_INFINITY)));
        // a float that six digits do not give back is written as the float's shortest form, not the double's
        assertEquals("[\n  0.1234567\n]\n", Json.write(List.of(0.1234567f)));
        assertEquals("[\n  1.2345678e20\n]\n", Json.write(List.of(1.2345678e20f)));
        // floats that six digits give back exactly are short too (not Float.toString's 1.0E-7, 4.0)
        assertEquals("[\n  1e-07,\n  4,\n  -0.25\n]\n", Json.write(List.of(1e-7f, 4.0f, -0.25f)));
        // lone surrogates at either end of a string, a pair at the start
        assertEquals("{\n  \"\\udc00x\": \"\ud83d\ude00y\\ud800\"\n}\n", Json.write(Map.of("\udc00x", "\ud83d\ude00y\ud800")));
    }
}
