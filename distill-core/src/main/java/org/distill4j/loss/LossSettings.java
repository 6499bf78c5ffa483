package org.distill4j.loss;

import java.util.List;
import java.util.Map;

/**
 * Parsing of loss settings given as plain values by name (as recipes give them), shared by the
 * logit and feature loss registries. {@code what} names the loss in errors, e.g. {@code loss 'kd'}.
 */
final class LossSettings {
    private LossSettings() {
    }

    /** Fails when a setting is not among {@code allowed}, listing them. */
    static void checkKnown(String what, Map<String, Object> settings, List<String> allowed) {
        for (String key : settings.keySet()) {
            if (!allowed.contains(key)) {
                throw new IllegalArgumentException(what + " has no setting '" + key + "'; its settings: " + String.join(", ", allowed));
            }
        }
    }

    /** A number (a Number or its text), or {@code dflt} when absent. */
    static double number(Map<String, Object> s, String what, String key, double dflt) {
        Object v = s.get(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        String text = v.toString().trim();
        if (!DECIMAL.matcher(text).matches()) { // Double.parseDouble would also take Java's 4f, 1d and 0x1p3
            throw new IllegalArgumentException(what + " setting '" + key + "' must be a number, got '" + v + "'");
        }
        return Double.parseDouble(text);
    }

    /** A number's text: decimal with an optional exponent, or NaN / Infinity (which each setting's range refuses). */
    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("[+-]?(NaN|Infinity|([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?)");

    /** A whole number, or {@code dflt} when absent. */
    static int wholeNumber(Map<String, Object> s, String what, String key, int dflt) {
        double d = number(s, what, key, dflt);
        if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " setting '" + key + "' must be a whole number, got '" + s.get(key) + "'");
        }
        return (int) d;
    }

    /**
     * A whole number of 64 bits (e.g. a seed), or {@code dflt} when absent: an integral Number or text, exact. A
     * floating-point value is accepted only while it is integral and exact in a double (|x| &lt;= 2^53): 1.9 or
     * 1e19 are refused rather than rounded.
     */
    static long wholeLong(Map<String, Object> s, String what, String key, long dflt) {
        Object v = s.get(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof java.math.BigInteger b) {
            try {
                return b.longValueExact();
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(what + " setting '" + key + "' must be a whole number of at most 64 bits, got '"
                        + v + "'");
            }
        }
        if (!(v instanceof Number)) {
            String text = v.toString().trim();
            try {
                return Long.parseLong(text);
            } catch (NumberFormatException e) {
                // a decimal form such as 42.0 or 1e3: below
            }
        }
        double d = number(s, what, key, dflt);
        if (d != Math.rint(d) || Math.abs(d) > 0x1p53) {
            throw new IllegalArgumentException(what + " setting '" + key + "' must be a whole number (as an integer, exact up to "
                    + "64 bits), got '" + v + "'");
        }
        return (long) d;
    }

    /** A required whole number > 0. */
    static int requiredPositive(Map<String, Object> s, String what, String key) {
        if (!s.containsKey(key)) {
            throw new IllegalArgumentException(what + " needs the setting '" + key + "'");
        }
        int n = wholeNumber(s, what, key, 0);
        if (n <= 0) {
            throw new IllegalArgumentException(what + " setting '" + key + "' must be > 0, got '" + s.get(key) + "'");
        }
        return n;
    }
}
