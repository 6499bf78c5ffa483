package org.distill4j.store;

import java.util.ArrayList;
import java.util.Arrays;
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
        private static final long serialVersionUID = 1L;
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
                        int digit = i < s.length() ? hexDigit(s.charAt(i)) : -1;
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

    /** The value of an ASCII hex digit, else -1 (Character.digit would also take fullwidth and other Unicode digits). */
    private static int hexDigit(char c) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    }

    /** ASCII digits only: JSON numbers have no other digits. */
    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    /**
     * The value of the JSON number {@code s[from, to)} (which {@link #number()}'s grammar accepts): exactly
     * {@code Double.parseDouble(s.substring(from, to))}, bit for bit, without the String for the common numbers. Up to
     * 19 significant digits are converted directly (Clinger's exact fast path, else the Eisel-Lemire algorithm with
     * 128-bit powers of five); more digits, subnormal and out-of-range results, and the rare products the algorithm
     * cannot round for sure are given to {@code Double.parseDouble}.
     */
    static double toDouble(String s, int from, int to) {
        int i = from;
        boolean negative = s.charAt(i) == '-';
        if (negative) {
            i++;
        }
        long w = 0; // the significant digits, unsigned (19 digits < 2^64)
        int digits = 0;
        long exponent = 0;
        boolean many = false;
        for (; i < to; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                break;
            }
            if (digits < 19) {
                if (w != 0 || c != '0') {
                    w = w * 10 + (c - '0');
                    digits++;
                }
            } else {
                many = true;
            }
        }
        if (i < to && s.charAt(i) == '.') {
            for (i++; i < to; i++) {
                char c = s.charAt(i);
                if (c < '0' || c > '9') {
                    break;
                }
                if (digits < 19) {
                    if (w != 0 || c != '0') {
                        w = w * 10 + (c - '0');
                        digits++;
                    }
                    exponent--; // a leading zero of the fraction moves the point too
                } else {
                    many = true;
                }
            }
        }
        if (i < to) { // e or E
            i++;
            boolean down = s.charAt(i) == '-';
            if (down || s.charAt(i) == '+') {
                i++;
            }
            long e = 0;
            for (; i < to; i++) {
                e = Math.min(e * 10 + (s.charAt(i) - '0'), 1L << 40); // far beyond any double: saturated
            }
            exponent += down ? -e : e;
        }
        if (!many) {
            if (w == 0) {
                return negative ? -0.0 : 0.0;
            }
            double d = Powers.eiselLemire(w, exponent);
            if (!Double.isNaN(d)) {
                return negative ? -d : d;
            }
        }
        return Double.parseDouble(s.substring(from, to));
    }

    /** Decimal to binary: {@link #eiselLemire} and its tables. */
    static final class Powers {
        /** The smallest and largest decimal exponents of the tables. */
        static final int MIN_Q = -342;
        static final int MAX_Q = 308;
        /** 5^q as a 128-bit number with its top bit set, truncated: high and low 64 bits, from {@link #MIN_Q}. */
        private static final long[] HIGH = new long[MAX_Q - MIN_Q + 1];
        private static final long[] LOW = new long[HIGH.length];
        /** floor(q log2(10)) + 1087: the biased binary exponent of a product with the top bit of 128 set, less the shifts. */
        private static final int[] EXPONENT = new int[HIGH.length];
        /** 10^0 to 10^22: exact doubles. */
        private static final double[] EXACT = new double[23];

        static {
            java.math.BigInteger five = java.math.BigInteger.valueOf(5);
            for (int q = MIN_Q; q <= MAX_Q; q++) {
                java.math.BigInteger p = five.pow(Math.abs(q));
                int bits = p.bitLength();
                java.math.BigInteger t;
                int log2; // floor(log2(5^q)); 5^q is never a power of two (q != 0)
                if (q >= 0) {
                    t = bits <= 128 ? p.shiftLeft(128 - bits) : p.shiftRight(bits - 128);
                    log2 = bits - 1;
                } else {
                    t = java.math.BigInteger.ONE.shiftLeft(127 + bits).divide(p); // in [2^127, 2^128), truncated
                    log2 = -bits;
                }
                HIGH[q - MIN_Q] = t.shiftRight(64).longValue();
                LOW[q - MIN_Q] = t.longValue();
                EXPONENT[q - MIN_Q] = q + log2 + 1087;
            }
            double p = 1;
            for (int q = 0; q < EXACT.length; q++) {
                EXACT[q] = p;
                p *= 10;
            }
        }

        private Powers() {
        }

        /**
         * {@code w * 10^q} rounded to the nearest double (ties to even), for {@code w} an unsigned nonzero 64-bit integer;
         * NaN when it cannot say for sure here (the caller then parses the text): a product the 128-bit power leaves
         * ambiguous, an exact tie it would have to look at more closely, a subnormal or infinite result, q out of range.
         * D. Lemire, "Number parsing at a gigabyte per second", Software: Practice and Experience 51(8), 2021, section 5
         * (the version that falls back when in doubt).
         */
        static double eiselLemire(long w, long q) {
            if (w >= 0 && w <= 1L << 53 && q >= -22 && q <= 22) { // both exact: one rounding, IEEE's (Clinger)
                return q < 0 ? w / EXACT[(int) -q] : w * EXACT[(int) q];
            }
            if (q < MIN_Q || q > MAX_Q) {
                return Double.NaN;
            }
            int at = (int) q - MIN_Q;
            int lz = Long.numberOfLeadingZeros(w);
            w <<= lz;
            long high = HIGH[at];
            long lower = w * high;
            long upper = unsignedMultiplyHigh(w, high);
            if ((upper & 0x1FF) == 0x1FF && Long.compareUnsigned(lower + w, lower) < 0) {
                // the truncated power could carry into the bits kept: take its next 64 bits into the product
                long low = LOW[at];
                long productLow = w * low;
                long middle = lower + unsignedMultiplyHigh(w, low);
                if (Long.compareUnsigned(middle, lower) < 0) {
                    upper++;
                }
                if (middle + 1 == 0 && (upper & 0x1FF) == 0x1FF && Long.compareUnsigned(productLow + w, productLow) < 0) {
                    return Double.NaN;
                }
                lower = middle;
            }
            long upperBit = upper >>> 63;
            long mantissa = upper >>> (upperBit + 9); // 54 bits: the 53 kept and one to round with
            lz += (int) (1 ^ upperBit);
            if (lower == 0 && (upper & 0x1FF) == 0 && (mantissa & 3) == 1) {
                return Double.NaN; // perhaps exactly halfway: round to even would need the exact value
            }
            mantissa += mantissa & 1;
            mantissa >>>= 1;
            if (mantissa >= 1L << 53) { // rounded up to the next power of two
                mantissa = 1L << 52;
                lz--;
            }
            mantissa &= ~(1L << 52);
            long exponent = EXPONENT[at] - lz;
            if (exponent < 1 || exponent > 2046) {
                return Double.NaN; // subnormal, or beyond the largest double
            }
            return Double.longBitsToDouble(mantissa | exponent << 52);
        }

        /** The high 64 bits of the unsigned 128-bit product (Math.unsignedMultiplyHigh, which Java 17 lacks). */
        private static long unsignedMultiplyHigh(long x, long y) {
            return Math.multiplyHigh(x, y) + ((x >> 63) & y) + ((y >> 63) & x);
        }
    }

    /**
     * Reads a JSON Lines top-k record ({@code {"ids": [...], "logprobs": [...]}} or {@code {"top_logprobs": [{"id": 3,
     * "logprob": -0.1}, ...]}}, an optional {@code "row"}, other keys ignored) straight into arrays: no objects per
     * entry, no boxed numbers, numbers converted without a String ({@link #toDouble}). It reads the records that
     * {@link JsonLine#parse} and the import's checks of the parsed record accept, with the same values; for any other line
     * (malformed, a value of another kind, a repeated key, an escaped key, a record with both shapes) {@link #read}
     * returns false and the caller reads the line with {@link JsonLine#parse}, which says what is wrong: every error is
     * the general parser's. One instance reads the lines of one file, one after another (not thread-safe).
     */
    static final class TopKRecord {
        /** Not a record read here: no stack trace, one instance (control flow only, never thrown out of {@link #read}). */
        private static final class Other extends RuntimeException {
            private static final long serialVersionUID = 1L;

            Other() {
                super(null, null, false, false);
            }
        }

        private static final Other OTHER = new Other();
        private static final int ROW = 1;
        private static final int IDS = 2;
        private static final int LOGPROBS = 4;
        private static final int TOP = 8;
        /** The most keys of one object read here, other than those of a record or entry it reads (a record has a few). */
        static final int MAX_KEYS = 32;

        private String s;
        private int i;
        private int n;
        /** The entries' class ids and log-probabilities as read: {@link #count} of them. */
        int[] ids = new int[64];
        double[] logProbs = new double[64];
        int count;
        private int logProbCount;
        /** The value of {@code "row"}, when the record has one. */
        boolean hasRow;
        double row;
        /** Start and end of each key of the record and of the entry being read that is not one read here. */
        private int[] recordKeys = new int[8];
        private int recordKeyCount;
        private int[] entryKeys = new int[8];
        private int entryKeyCount;

        /** Reads {@code line}; false when it is not a record read here (then {@link JsonLine#parse} it). */
        boolean read(String line) {
            s = line;
            i = 0;
            n = line.length();
            count = 0;
            logProbCount = 0;
            hasRow = false;
            recordKeyCount = 0;
            try {
                space();
                expect('{');
                int seen = 0;
                space();
                while (true) {
                    space();
                    expect('"');
                    int keyStart = i;
                    int keyEnd = key();
                    space();
                    expect(':');
                    int k = keyStart == keyEnd ? 0 : recordKey(keyStart, keyEnd);
                    if ((seen & k) != 0) {
                        throw OTHER;
                    }
                    seen |= k;
                    switch (k) {
                        case ROW -> {
                            space();
                            row = numberValue();
                            hasRow = true;
                        }
                        case IDS -> readIds();
                        case LOGPROBS -> readLogProbs();
                        case TOP -> readTop();
                        default -> {
                            recordKeys = other(recordKeys, recordKeyCount++, keyStart, keyEnd);
                            skipValue(1);
                        }
                    }
                    space();
                    if (i < n && s.charAt(i) == ',') {
                        i++;
                        continue;
                    }
                    expect('}');
                    break;
                }
                space();
                if (i != n) {
                    throw OTHER;
                }
                if ((seen & (IDS | LOGPROBS)) != 0) {
                    return (seen & TOP) == 0 && (seen & (IDS | LOGPROBS)) == (IDS | LOGPROBS) && count == logProbCount;
                }
                return (seen & TOP) != 0;
            } catch (Other | IndexOutOfBoundsException e) {
                return false;
            }
        }

        private void space() {
            while (i < n) {
                char c = s.charAt(i);
                if (c != ' ' && c != '\t' && c != '\r') {
                    return;
                }
                i++;
            }
        }

        private void expect(char c) {
            if (i >= n || s.charAt(i) != c) {
                throw OTHER;
            }
            i++;
        }

        /** A key after its opening quote, without escapes: its end; {@code i} after the closing quote. */
        private int key() {
            while (true) {
                char c = s.charAt(i); // past the end: not a record read here
                if (c == '"') {
                    i++;
                    return i - 1;
                }
                if (c == '\\' || c < 0x20) {
                    throw OTHER;
                }
                i++;
            }
        }

        private int recordKey(int from, int to) {
            int len = to - from;
            if (len == 3 && s.startsWith("row", from)) {
                return ROW;
            }
            if (len == 3 && s.startsWith("ids", from)) {
                return IDS;
            }
            if (len == 8 && s.startsWith("logprobs", from)) {
                return LOGPROBS;
            }
            if (len == 12 && s.startsWith("top_logprobs", from)) {
                return TOP;
            }
            return 0;
        }

        /**
         * Records the key {@code s[from, to)} at {@code at} of {@code keys}, refusing one seen before in the object. Each key
         * is compared with those before it, so an object of more than {@link #MAX_KEYS} keys is left to the general parser
         * (a map finds its repeated key in linear time; a vocabulary-sized object here took minutes).
         */
        private int[] other(int[] keys, int at, int from, int to) {
            if (at >= MAX_KEYS) {
                throw OTHER;
            }
            for (int j = 0; j < at; j++) {
                int a = keys[2 * j];
                int b = keys[2 * j + 1];
                if (b - a == to - from && s.regionMatches(a, s, from, to - from)) {
                    throw OTHER; // a repeated key: JsonLine names it
                }
            }
            if (2 * at + 2 > keys.length) {
                keys = Arrays.copyOf(keys, 2 * keys.length);
            }
            keys[2 * at] = from;
            keys[2 * at + 1] = to;
            return keys;
        }

        private void readIds() {
            space();
            expect('[');
            space();
            if (i < n && s.charAt(i) == ']') {
                i++;
                return;
            }
            while (true) {
                space();
                int id = idValue();
                if (count == ids.length) {
                    ids = Arrays.copyOf(ids, 2 * count);
                }
                ids[count++] = id;
                if (endOfArrayElement()) {
                    return;
                }
            }
        }

        private void readLogProbs() {
            space();
            expect('[');
            space();
            if (i < n && s.charAt(i) == ']') {
                i++;
                return;
            }
            while (true) {
                space();
                double lp = numberValue();
                if (logProbCount == logProbs.length) {
                    logProbs = Arrays.copyOf(logProbs, 2 * logProbCount);
                }
                logProbs[logProbCount++] = lp;
                if (endOfArrayElement()) {
                    return;
                }
            }
        }

        /** After an array's element: true at its closing bracket (taken), false at a comma (taken). */
        private boolean endOfArrayElement() {
            space();
            if (i < n) {
                char c = s.charAt(i++);
                if (c == ',') {
                    return false;
                }
                if (c == ']') {
                    return true;
                }
            }
            throw OTHER;
        }

        private void readTop() {
            space();
            expect('[');
            space();
            if (i < n && s.charAt(i) == ']') {
                i++;
                return;
            }
            while (true) {
                space();
                if (count == ids.length) {
                    ids = Arrays.copyOf(ids, 2 * count);
                }
                if (count == logProbs.length) {
                    logProbs = Arrays.copyOf(logProbs, 2 * count);
                }
                entry();
                if (endOfArrayElement()) {
                    return;
                }
            }
        }

        /** One entry {"id": 3, "logprob": -0.1} (or "token": "token_id:3"), into ids[count], logProbs[count]. */
        private void entry() {
            expect('{');
            entryKeyCount = 0;
            boolean hasId = false;
            boolean hasToken = false;
            boolean hasLogProb = false;
            int id = 0;
            int tokenFrom = -1; // the token's text, when it is a string without escapes
            int tokenTo = -1;
            double lp = 0;
            space();
            if (i < n && s.charAt(i) == '}') {
                throw OTHER; // no logprob
            }
            while (true) {
                space();
                expect('"');
                int keyStart = i;
                int keyEnd = key();
                space();
                expect(':');
                space();
                int len = keyEnd - keyStart;
                if (len == 2 && s.startsWith("id", keyStart)) {
                    if (hasId) {
                        throw OTHER;
                    }
                    hasId = true;
                    id = idValue();
                } else if (len == 7 && s.startsWith("logprob", keyStart)) {
                    if (hasLogProb) {
                        throw OTHER;
                    }
                    hasLogProb = true;
                    lp = numberValue();
                } else if (len == 5 && s.startsWith("token", keyStart)) {
                    if (hasToken) {
                        throw OTHER;
                    }
                    hasToken = true;
                    if (i < n && s.charAt(i) == '"') {
                        i++;
                        tokenFrom = i;
                        tokenTo = skipString() ? -1 : i - 1; // escaped: not read here unless "id" is given
                    } else {
                        skipValue(3);
                    }
                } else {
                    entryKeys = other(entryKeys, entryKeyCount++, keyStart, keyEnd);
                    skipValue(3);
                }
                space();
                if (i < n && s.charAt(i) == ',') {
                    i++;
                    continue;
                }
                expect('}');
                break;
            }
            if (!hasLogProb) {
                throw OTHER;
            }
            if (!hasId) {
                if (tokenTo < 0) {
                    throw OTHER;
                }
                id = tokenId(tokenFrom, tokenTo);
            }
            ids[count] = id;
            logProbs[count] = lp;
            count++;
        }

        /**
         * "token_id:N" as Integer.parseInt reads N, for ASCII digits, when the import's check of a class id (within
         * +-Integer.MAX_VALUE) accepts it (anything else: not read here).
         */
        private int tokenId(int from, int to) {
            String prefix = "token_id:";
            if (!s.startsWith(prefix, from) || to > n) {
                throw OTHER;
            }
            int j = from + prefix.length();
            boolean negative = false;
            if (j < to && (s.charAt(j) == '-' || s.charAt(j) == '+')) {
                negative = s.charAt(j) == '-';
                j++;
            }
            if (j == to || to - j > 10) {
                throw OTHER;
            }
            long v = 0;
            for (; j < to; j++) {
                char c = s.charAt(j);
                if (c < '0' || c > '9') {
                    throw OTHER;
                }
                v = v * 10 + (c - '0');
            }
            if (v > Integer.MAX_VALUE) { // the import takes ids within +-Integer.MAX_VALUE: not Integer.MIN_VALUE either
                throw OTHER;
            }
            return (int) (negative ? -v : v);
        }

        /** A class id: a number of integral value within +-Integer.MAX_VALUE, as the import's check accepts it. */
        private int idValue() {
            int from = i;
            int j = i;
            boolean negative = j < n && s.charAt(j) == '-';
            if (negative) {
                j++;
            }
            int digitsFrom = j;
            long v = 0;
            while (j < n && j - digitsFrom < 11) {
                char c = s.charAt(j);
                if (c < '0' || c > '9') {
                    break;
                }
                v = v * 10 + (c - '0');
                j++;
            }
            boolean plain = j > digitsFrom && j - digitsFrom < 11 && (j - digitsFrom == 1 || s.charAt(digitsFrom) != '0')
                    && (j == n || (s.charAt(j) != '.' && s.charAt(j) != 'e' && s.charAt(j) != 'E' && !isDigit(s.charAt(j))));
            if (plain) {
                if (v > Integer.MAX_VALUE) {
                    throw OTHER;
                }
                i = j;
                return (int) (negative ? -v : v);
            }
            i = from;
            double d = numberValue(); // 3.0, 3e0: integral values in other spellings
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
                throw OTHER;
            }
            return (int) d;
        }

        /** A number, or NaN, Infinity or -Infinity, at {@code i}: its value, as {@link JsonLine#parse} gives it. */
        private double numberValue() {
            if (i >= n) {
                throw OTHER;
            }
            char c = s.charAt(i);
            if (c == 'N' && s.startsWith("NaN", i)) {
                i += 3;
                return Double.NaN;
            }
            if (c == 'I' && s.startsWith("Infinity", i)) {
                i += 8;
                return Double.POSITIVE_INFINITY;
            }
            if (c == '-' && s.startsWith("-Infinity", i)) {
                i += 9;
                return Double.NEGATIVE_INFINITY;
            }
            int from = i;
            number();
            return toDouble(s, from, i);
        }

        /** Past a JSON number at {@code i}, as {@link JsonLine#number()}'s grammar reads it (anything else: not read here). */
        private void number() {
            if (i < n && s.charAt(i) == '-') {
                i++;
            }
            int digits = i;
            while (i < n && isDigit(s.charAt(i))) {
                i++;
            }
            if (i == digits || (i - digits > 1 && s.charAt(digits) == '0')) {
                throw OTHER;
            }
            if (i < n && s.charAt(i) == '.') {
                i++;
                int frac = i;
                while (i < n && isDigit(s.charAt(i))) {
                    i++;
                }
                if (i == frac) {
                    throw OTHER;
                }
            }
            if (i < n && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
                i++;
                if (i < n && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
                    i++;
                }
                int exp = i;
                while (i < n && isDigit(s.charAt(i))) {
                    i++;
                }
                if (i == exp) {
                    throw OTHER;
                }
            }
        }

        /**
         * Past a string's text after its opening quote, checked as {@link JsonLine#string()} checks it; {@code i} after
         * the closing quote. True when it had escapes.
         */
        private boolean skipString() {
            boolean escaped = false;
            while (true) {
                char c = s.charAt(i++); // past the end: not a record read here
                if (c == '"') {
                    return escaped;
                }
                if (c < 0x20) {
                    throw OTHER;
                }
                if (c != '\\') {
                    continue;
                }
                escaped = true;
                char e = s.charAt(i++);
                switch (e) {
                    case '"', '\\', '/', 'b', 'f', 'n', 'r', 't' -> {
                    }
                    case 'u' -> {
                        for (int h = 0; h < 4; h++) {
                            if (hexDigit(s.charAt(i++)) < 0) {
                                throw OTHER;
                            }
                        }
                    }
                    default -> throw OTHER;
                }
            }
        }

        /** Past any value at {@code i} inside containers {@code depth} deep, checked as {@link JsonLine#parse} checks it. */
        private void skipValue(int depth) {
            space();
            if (i >= n) {
                throw OTHER;
            }
            char c = s.charAt(i);
            switch (c) {
                case '"' -> {
                    i++;
                    skipString();
                }
                case '[' -> {
                    if (depth + 1 > MAX_DEPTH) {
                        throw OTHER;
                    }
                    i++;
                    space();
                    if (i < n && s.charAt(i) == ']') {
                        i++;
                        return;
                    }
                    do {
                        skipValue(depth + 1);
                    } while (!endOfArrayElement());
                }
                case '{' -> {
                    if (depth + 1 > MAX_DEPTH) {
                        throw OTHER;
                    }
                    i++;
                    space();
                    if (i < n && s.charAt(i) == '}') {
                        i++;
                        return;
                    }
                    int[] keys = new int[8]; // rare: an object in a value not read
                    int count = 0;
                    while (true) {
                        space();
                        expect('"');
                        int keyStart = i;
                        int keyEnd = key();
                        keys = other(keys, count++, keyStart, keyEnd);
                        space();
                        expect(':');
                        skipValue(depth + 1);
                        space();
                        if (i < n && s.charAt(i) == ',') {
                            i++;
                            continue;
                        }
                        expect('}');
                        return;
                    }
                }
                case 't' -> word("true");
                case 'f' -> word("false");
                case 'n' -> word("null");
                case 'N' -> word("NaN");
                case 'I' -> word("Infinity");
                default -> {
                    if (c == '-' && s.startsWith("-Infinity", i)) {
                        i += 9;
                    } else if (c == '-' || isDigit(c)) {
                        number();
                    } else {
                        throw OTHER;
                    }
                }
            }
        }

        private void word(String w) {
            if (!s.startsWith(w, i)) {
                throw OTHER;
            }
            i += w.length();
        }
    }
}
