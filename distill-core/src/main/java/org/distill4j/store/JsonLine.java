package org.distill4j.store;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict parser for one JSON value on one line (a JSON Lines record): objects become maps, arrays
 * lists, numbers doubles. Python's {@code json.dumps} spellings {@code NaN}, {@code Infinity} and
 * {@code -Infinity} are read as the doubles they name, so the caller can say what is wrong with them.
 * Errors carry the column; the caller adds the file and line.
 */
final class JsonLine {
    /** A malformed line: {@link #column} is 1-based. */
    static final class Malformed extends RuntimeException {
        final int column;

        Malformed(String message, int column) {
            super(message);
            this.column = column;
        }
    }

    /** Nesting deeper than this is refused (a record needs 3 levels), before the parser's recursion could overflow. */
    static final int MAX_DEPTH = 64;

    private final String s;
    private int i;
    private int depth;

    private JsonLine(String s) {
        this.s = s;
    }

    /** The value on {@code line}; nothing but white space may follow it. */
    static Object parse(String line) {
        JsonLine p = new JsonLine(line);
        Object v = p.value();
        p.space();
        if (p.i < line.length()) {
            throw p.fail("the end of the line after the value");
        }
        return v;
    }

    private void space() {
        while (i < s.length() && (s.charAt(i) == ' ' || s.charAt(i) == '\t' || s.charAt(i) == '\r')) {
            i++;
        }
    }

    private Malformed fail(String expected) {
        String found = i < s.length() ? "'" + s.charAt(i) + "'" : "the end of the line";
        return new Malformed("expected " + expected + ", found " + found, i + 1);
    }

    private Object value() {
        space();
        if (i >= s.length()) {
            throw fail("a value");
        }
        char c = s.charAt(i);
        if ((c == '{' || c == '[') && ++depth > MAX_DEPTH) {
            throw new Malformed("nesting deeper than " + MAX_DEPTH + " levels", i + 1);
        }
        return switch (c) {
            case '{' -> object();
            case '[' -> array();
            case '"' -> string();
            case 't' -> word("true", Boolean.TRUE);
            case 'f' -> word("false", Boolean.FALSE);
            case 'n' -> word("null", null);
            case 'N' -> word("NaN", Double.NaN);
            case 'I' -> word("Infinity", Double.POSITIVE_INFINITY);
            default -> {
                if (c == '-' && s.startsWith("-Infinity", i)) {
                    yield word("-Infinity", Double.NEGATIVE_INFINITY);
                }
                if (c == '-' || (c >= '0' && c <= '9')) {
                    yield number();
                }
                throw fail("a value");
            }
        };
    }

    private Object word(String w, Object v) {
        if (!s.startsWith(w, i)) {
            throw fail("'" + w + "'");
        }
        i += w.length();
        return v;
    }

    private Map<String, Object> object() {
        i++;
        Map<String, Object> m = new LinkedHashMap<>();
        space();
        if (i < s.length() && s.charAt(i) == '}') {
            i++;
            depth--;
            return m;
        }
        while (true) {
            space();
            if (i >= s.length() || s.charAt(i) != '"') {
                throw fail("a quoted key");
            }
            int keyAt = i + 1;
            String key = string();
            space();
            if (i >= s.length() || s.charAt(i) != ':') {
                throw fail("':'");
            }
            i++;
            if (m.containsKey(key)) {
                throw new Malformed("key \"" + key + "\" appears twice", keyAt);
            }
            m.put(key, value());
            space();
            if (i < s.length() && s.charAt(i) == ',') {
                i++;
                continue;
            }
            if (i < s.length() && s.charAt(i) == '}') {
                i++;
                depth--;
                return m;
            }
            throw fail("',' or '}'");
        }
    }

    private List<Object> array() {
        i++;
        List<Object> a = new ArrayList<>();
        space();
        if (i < s.length() && s.charAt(i) == ']') {
            i++;
            depth--;
            return a;
        }
        while (true) {
            a.add(value());
            space();
            if (i < s.length() && s.charAt(i) == ',') {
                i++;
                continue;
            }
            if (i < s.length() && s.charAt(i) == ']') {
                i++;
                depth--;
                return a;
            }
            throw fail("',' or ']'");
        }
    }

    private String string() {
        i++;
        StringBuilder b = new StringBuilder();
        while (i < s.length()) {
            char c = s.charAt(i++);
            if (c == '"') {
                return b.toString();
            }
            if (c < 0x20) {
                i--;
                throw fail("no control character inside a string (escape it, e.g. \\t)");
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (i >= s.length()) {
                break;
            }
            char e = s.charAt(i++);
            switch (e) {
                case '"', '\\', '/' -> b.append(e);
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 't' -> b.append('\t');
                case 'u' -> {
                    int code = 0;
                    for (int h = 0; h < 4; h++, i++) {
                        int digit = i < s.length() ? Character.digit(s.charAt(i), 16) : -1;
                        if (digit < 0) {
                            throw fail("four hex digits after \\u");
                        }
                        code = code * 16 + digit;
                    }
                    b.append((char) code);
                }
                default -> {
                    i--;
                    throw fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
                }
            }
        }
        throw fail("a closing '\"'");
    }

    private Double number() {
        int from = i;
        if (s.charAt(i) == '-') {
            i++;
        }
        int digits = i;
        while (i < s.length() && isDigit(s.charAt(i))) {
            i++;
        }
        if (i == digits) {
            throw fail("a digit");
        }
        if (i - digits > 1 && s.charAt(digits) == '0') {
            i = digits + 1;
            throw fail("no leading zero (JSON writes 1, not 01)");
        }
        if (i < s.length() && s.charAt(i) == '.') {
            i++;
            int frac = i;
            while (i < s.length() && isDigit(s.charAt(i))) {
                i++;
            }
            if (i == frac) {
                throw fail("a digit after '.'");
            }
        }
        if (i < s.length() && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
            i++;
            if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
                i++;
            }
            int exp = i;
            while (i < s.length() && isDigit(s.charAt(i))) {
                i++;
            }
            if (i == exp) {
                throw fail("an exponent");
            }
        }
        return Double.parseDouble(s.substring(from, i));
    }

    /** ASCII digits only: JSON numbers have no other digits. */
    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
