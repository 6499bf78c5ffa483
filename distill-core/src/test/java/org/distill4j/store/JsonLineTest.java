package org.distill4j.store;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The general JSON parser of the import (JsonLine.parse) on its own: every kind of value as it reads it, and every refusal
 * with its message and the 1-based column it names.
 */
class JsonLineTest {
    private static void refused(String line, String message, int column) {
        JsonLine.Malformed e = assertThrows(JsonLine.Malformed.class, () -> JsonLine.parse(line), line);
        assertEquals(message, e.getMessage(), line);
        assertEquals(column, e.column, line + ": " + message);
    }

    @Test
    void everyKindOfValue() {
        Map<String, Object> want = new LinkedHashMap<>();
        want.put("z", 1.5);
        want.put("a", List.of(true, false, Arrays.asList((Object) null), List.of()));
        want.put("", Map.of());
        want.put("n", List.of(-0.0, 1e300, -2.5e-3, 0.0, 10.0));
        Object v = JsonLine.parse(" \t{\"z\" : 1.5,\"a\":[true ,false,[null],[ ]], \"\": { }, \"n\": [-0.0, 1E300, -25e-4, 0, 10]}\r \t");
        assertEquals(want, v);
        assertEquals(List.of("z", "a", "", "n"), List.copyOf(((Map<?, ?>) v).keySet()), "keys in the order written");
        assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits((Double) ((List<?>) ((Map<?, ?>) v).get("n")).get(0)));
        assertEquals(List.of(Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, -7.0), JsonLine.parse("[NaN, Infinity, -Infinity, -7]"));
        assertEquals("q\" b\\ s/ \b\f\n\r\t \u00e9\u00C9 \uD83D\uDE00 \u20ac",
                JsonLine.parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9\\u00C9 \\uD83D\\uDE00 \u20ac\""));
        assertEquals("\u0000\uffff\uABCD", JsonLine.parse("\"\\u0000\\uffff\\uABcd\""));
        assertEquals("\u0AFA\u9a0F", JsonLine.parse("\"\\u0aFa\\u9A0f\""), "each end of each hex digit range");
        assertNull(JsonLine.parse("null"));
        assertEquals(3.0, JsonLine.parse("3"));
        assertEquals("", JsonLine.parse("\"\""));
        // 64 levels of nesting are read
        assertEquals(1, ((List<?>) JsonLine.parse("[".repeat(64) + "]".repeat(64))).size());
        assertEquals(Map.of("a", Map.of("b", List.of(Map.of()))), JsonLine.parse("{\"a\": {\"b\": [{}]}}"));
    }

    @Test
    void eachRefusalNamesWhatWasExpectedAndItsColumn() {
        refused("", "expected a value, found the end of the line", 1);
        refused("   ", "expected a value, found the end of the line", 4);
        refused("{} x", "expected the end of the line after the value, found 'x'", 4);
        refused("{\"a\" 1}", "expected ':', found '1'", 6);
        refused("{\"a\"", "expected ':', found the end of the line", 5);
        refused("{1: 2}", "expected a quoted key, found '1'", 2);
        refused("{\"a\": 1,}", "expected a quoted key, found '}'", 9);
        refused("{", "expected a quoted key, found the end of the line", 2);
        refused("{\"a\": 1 \"b\": 2}", "expected ',' or '}', found '\"'", 9);
        refused("{\"a\": 1", "expected ',' or '}', found the end of the line", 8);
        refused("{\"a\": 1, \"a\": 2}", "key \"a\" appears twice", 10); // at its opening quote
        refused("[1 2]", "expected ',' or ']', found '2'", 4);
        refused("[1,", "expected a value, found the end of the line", 4);
        refused("[1", "expected ',' or ']', found the end of the line", 3);
        refused("[", "expected a value, found the end of the line", 2);
        refused("\"abc", "expected a closing '\"', found the end of the line", 5);
        refused("\"a\\", "expected a closing '\"', found the end of the line", 4);
        refused("\"\\x\"", "expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found 'x'", 3);
        refused("\"\\u12\"", "expected four hex digits after \\u, found '\"'", 6);
        refused("\"\\u12", "expected four hex digits after \\u, found the end of the line", 6);
        refused("\"\\u00G0\"", "expected four hex digits after \\u, found 'G'", 6);
        refused("\"\\ug000\"", "expected four hex digits after \\u, found 'g'", 4);
        refused("\"\\u00@0\"", "expected four hex digits after \\u, found '@'", 6); // between the digits and 'A'
        refused("\"\\u00:0\"", "expected four hex digits after \\u, found ':'", 6);
        refused("\"\\u00`0\"", "expected four hex digits after \\u, found '`'", 6); // just before 'a'
        refused("\"\\u00/0\"", "expected four hex digits after \\u, found '/'", 6); // just before '0'
        refused("\"a\tb\"", "expected no control character inside a string (escape it, e.g. \\t), found '\t'", 3);
        refused("\"\u001f\"", "expected no control character inside a string (escape it, e.g. \\t), found '\u001f'", 2);
        refused("tru", "expected 'true', found 't'", 1);
        refused("fals", "expected 'false', found 'f'", 1);
        refused("nul", "expected 'null', found 'n'", 1);
        refused("Nan", "expected 'NaN', found 'N'", 1);
        refused("Inf", "expected 'Infinity', found 'I'", 1);
        refused("[1, -Inf]", "expected a digit, found 'I'", 6);
        refused("-", "expected a digit, found the end of the line", 2);
        refused("01", "expected no leading zero (JSON writes 1, not 01), found '1'", 2);
        refused("-00.5", "expected no leading zero (JSON writes 1, not 01), found '0'", 3);
        refused("1.", "expected a digit after '.', found the end of the line", 3);
        refused("1.e5", "expected a digit after '.', found 'e'", 3);
        refused("1e", "expected an exponent, found the end of the line", 3);
        refused("1e+", "expected an exponent, found the end of the line", 4);
        refused("2E-x", "expected an exponent, found 'x'", 4);
        refused("+1", "expected a value, found '+'", 1);
        refused(".5", "expected a value, found '.'", 1);
        refused("\u0661", "expected a value, found '\u0661'", 1); // an Arabic-Indic digit is no JSON digit
        refused("1\u0661", "expected the end of the line after the value, found '\u0661'", 2);
        refused("[1]\n", "expected the end of the line after the value, found '\n'", 4); // a line holds no newline
        refused("[".repeat(65) + "]".repeat(65), "nesting deeper than 64 levels", 65);
        refused("{\"a\": ".repeat(64) + "{}" + "}".repeat(64), "nesting deeper than 64 levels", 6 * 64 + 1);
        // depth is counted down again as containers close: 64 siblings at depth 2 are read
        assertEquals(64, ((List<?>) JsonLine.parse("[" + "[[]],".repeat(63) + "[[]]]")).size());
        assertEquals(70, ((List<?>) JsonLine.parse("[" + "{},".repeat(69) + "{}]")).size());
        assertEquals(70, ((List<?>) JsonLine.parse("[" + "{\"a\": []},".repeat(69) + "{}]")).size());
    }
}
