package org.distill4j.store;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The JSON Lines import's fast reader of top-k records (JsonLine.TopKRecord, JsonLine.toDouble) against the general
 * parser it stands in for: every number converts to the very double Double.parseDouble gives (so the float stored is
 * the same), every record it reads gives the entries the general parser gives, and every line it does not read is
 * left to the general parser, so each error message (line, column, what was expected) is the one it was.
 */
class JsonLineFastTest {
    private static final Path FILE = Path.of("t.jsonl");

    private static void sameDouble(String number) {
        long want = Double.doubleToRawLongBits(Double.parseDouble(number));
        long got = Double.doubleToRawLongBits(JsonLine.toDouble(number, 0, number.length()));
        if (want != got) {
            fail(number + ": " + Double.longBitsToDouble(got) + " (" + Long.toHexString(got) + "), expected "
                    + Double.longBitsToDouble(want) + " (" + Long.toHexString(want) + ")");
        }
    }

    @Test
    void edgeNumbersConvertBitForBit() {
        String[] edges = {"0", "-0", "0.0", "-0.0", "0e0", "-0E-0", "0.000e+999", "-0e-99999999999999999999", "1", "-1", "1.5", "0.1",
                "0.30000000000000004", "1e23", "8e23", "1e22", "1e-22", "9007199254740992", "9007199254740993", "9007199254740994",
                "9007199254740995", "18014398509481985", "7.2057594037927933e+16", "7.3177701707893310e+15", "1.7976931348623157e308",
                "1.7976931348623158e308", "1.7976931348623159e308", "1e308", "1e309", "1e400", "-1e400", "2.2250738585072011e-308",
                "2.2250738585072014e-308", "2.2250738585072012e-308", "4.9e-324", "5e-324", "2.4703282292062327e-324",
                "2.4703282292062328e-324", "1e-323", "1e-400", "-1e-400", "1e-99999999999999999999", "1e99999999999999999999",
                "123456789012345678", "1234567890123456789", "12345678901234567890", "9999999999999999999", "18446744073709551615",
                "18446744073709551616", "0.000000000000000000000000000000000001234", "1234567890123456789e-19",
                "1.00000000000000011102230246251565404236316680908203125", "1.00000000000000011102230246251565404236316680908203124",
                "1.00000000000000011102230246251565404236316680908203126", "-103.27892990343184", "-1.4012984643248171e-45",
                "-9999", "-9999.0", "-65504", "-65520", "3.4028235677973366e38", "1E5", "1e+5", "1e-5", "1e05", "-2.5E-007",
                "0.1e1", "100e-2", "1.000000000000000000000000000000000000001", "2.9802322387695312e-8", "-12.345678901234567"};
        for (String e : edges) {
            sameDouble(e);
        }
    }

    @Test
    void randomNumbersConvertBitForBit() {
        Random rng = new Random(20240611);
        for (int t = 0; t < 50_000; t++) {
            double d = switch (t % 5) {
                case 0 -> Double.longBitsToDouble(rng.nextLong()); // any bits: subnormals, huge, tiny
                case 1 -> -Math.abs(rng.nextGaussian() * Math.pow(10, rng.nextInt(6))); // log-probability-like
                case 2 -> Math.log(rng.nextDouble()); // log-probabilities
                case 3 -> rng.nextDouble() * Double.MIN_NORMAL * 4; // near and below the normal range
                default -> (rng.nextLong() >>> rng.nextInt(64)) * Math.pow(10, rng.nextInt(40) - 20);
            };
            if (!Double.isFinite(d)) {
                continue;
            }
            String shortest = Double.toString(d); // as Java and Python's repr write: 17 digits at most
            sameDouble(shortest.replace("E", "e"));
            sameDouble(String.format(Locale.ROOT, "%.16e", d));
            sameDouble(String.format(Locale.ROOT, "%.17g", d).trim());
            sameDouble(String.format(Locale.ROOT, "%.19e", d)); // 20 digits: the String path
            sameDouble(String.format(Locale.ROOT, "%." + rng.nextInt(19) + "e", d));
            sameDouble(Float.toString((float) d).replace("E", "e").replace("Infinity", "1e39"));
        }
        // random digit strings with random exponents, 1 to 25 digits, leading and trailing zeros
        for (int t = 0; t < 50_000; t++) {
            StringBuilder b = new StringBuilder();
            if (rng.nextBoolean()) {
                b.append('-');
            }
            int digits = 1 + rng.nextInt(rng.nextBoolean() ? 19 : 25);
            StringBuilder m = new StringBuilder();
            for (int j = 0; j < digits; j++) {
                m.append((char) ('0' + rng.nextInt(10)));
            }
            String mantissa = m.toString().replaceFirst("^0+(?=.)", "");
            int point = rng.nextInt(mantissa.length() + 1);
            if (point == 0 || point == mantissa.length()) {
                b.append(mantissa);
            } else {
                b.append(mantissa, 0, point).append('.').append(mantissa.substring(point));
            }
            if (rng.nextBoolean()) {
                b.append(rng.nextBoolean() ? 'e' : 'E').append(rng.nextBoolean() ? "-" : rng.nextBoolean() ? "+" : "")
                        .append(rng.nextInt(rng.nextBoolean() ? 30 : 360));
            }
            sameDouble(b.toString());
        }
    }

    /** Decimal numbers exactly halfway between two doubles (round half to even), and one unit either side. */
    @Test
    void halfwayNumbersRoundToEven() {
        Random rng = new Random(7);
        for (int t = 0; t < 20_000; t++) {
            double d = t % 2 == 0 ? Math.scalb(1 + rng.nextDouble(), 53 + rng.nextInt(10)) // integers: midpoints of <= 20 digits
                    : Math.scalb(1 + rng.nextDouble(), rng.nextInt(200) - 100);
            BigDecimal mid = new BigDecimal(d).add(new BigDecimal(Math.nextUp(d))).divide(BigDecimal.valueOf(2));
            sameDouble(mid.toPlainString());
            sameDouble(mid.toString().replace("E", "e"));
            BigDecimal unit = BigDecimal.ONE.movePointLeft(Math.max(0, mid.scale()));
            sameDouble(mid.add(unit).toPlainString());
            sameDouble(mid.subtract(unit).toPlainString());
            if (mid.scale() <= 0) {
                BigInteger i = mid.toBigIntegerExact();
                sameDouble(i + ".0");
                sameDouble(i.add(BigInteger.ONE).toString());
            }
        }
    }

    private static StoreImport.Entries general(String line) {
        return StoreImport.Entries.parse(FILE, 1, line, 0);
    }

    private static void sameEntries(StoreImport.Entries want, JsonLine.TopKRecord fast, String line) {
        assertEquals(want.ids().length, fast.count, line);
        for (int j = 0; j < fast.count; j++) {
            assertEquals(want.ids()[j], fast.ids[j], line);
            assertEquals(Double.doubleToRawLongBits(want.logProbs()[j]), Double.doubleToRawLongBits(fast.logProbs[j]), line);
        }
    }

    /** What the import makes of {@code line} (row 0): the entries, or the error's message. */
    private static String outcome(String line, JsonLine.TopKRecord fast) {
        try {
            StoreImport.Entries e = fast == null ? general(line) : StoreImport.Entries.parse(FILE, 1, line, 0, fast);
            StringBuilder b = new StringBuilder("entries");
            for (int j = 0; j < e.ids().length; j++) {
                b.append(' ').append(e.ids()[j]).append(':').append(Long.toHexString(Double.doubleToRawLongBits(e.logProbs()[j])));
            }
            return b.toString();
        } catch (IllegalArgumentException e) {
            return "error " + e.getMessage();
        }
    }

    /** A random record the import accepts, in one of the shapes and spellings it reads. */
    private static String record(Random rng) {
        int n = rng.nextInt(6);
        String sp = rng.nextInt(4) == 0 ? " \t" : rng.nextBoolean() ? " " : "";
        StringBuilder b = new StringBuilder(rng.nextInt(5) == 0 ? " {" : "{");
        List<String> parts = new ArrayList<>();
        if (rng.nextInt(3) == 0) {
            parts.add("\"row\":" + sp + (rng.nextBoolean() ? "0" : rng.nextBoolean() ? "0.0" : "-0e3"));
        }
        if (rng.nextInt(3) == 0) {
            parts.add("\"text\":" + sp + "\"a \\\"q\\\" \\u00e9\\n \u20ac\"");
        }
        if (rng.nextInt(4) == 0) {
            parts.add("\"meta\":" + sp + "{\"a\": [1, {\"b\": null}], \"c\": true, \"d\": -Infinity}");
        }
        if (rng.nextInt(5) == 0) {
            parts.add("\"\":" + sp + "[]");
        }
        if (rng.nextBoolean()) {
            StringBuilder ids = new StringBuilder("\"ids\":" + sp + "[");
            StringBuilder lps = new StringBuilder("\"logprobs\":" + sp + "[");
            for (int j = 0; j < n; j++) {
                ids.append(j == 0 ? "" : "," + sp).append(id(rng, j));
                lps.append(j == 0 ? "" : "," + sp).append(logProb(rng));
            }
            parts.add(ids.append(sp).append(']').toString());
            parts.add(lps.append(']').toString());
        } else {
            StringBuilder top = new StringBuilder("\"top_logprobs\":" + sp + "[");
            for (int j = 0; j < n; j++) {
                List<String> entry = new ArrayList<>();
                int how = rng.nextInt(3);
                if (how != 1) {
                    entry.add("\"id\":" + sp + id(rng, j));
                }
                if (how != 0) {
                    entry.add("\"token\":" + sp + (how == 1 ? "\"token_id:" + (rng.nextBoolean() ? "+" : "") + j + "\""
                            : rng.nextBoolean() ? "\"\\u0120the\"" : "null"));
                }
                entry.add("\"logprob\":" + sp + logProb(rng));
                if (rng.nextInt(3) == 0) {
                    entry.add("\"bytes\":" + sp + "[32, 116, 104, 101]");
                }
                java.util.Collections.shuffle(entry, rng);
                top.append(j == 0 ? "" : "," + sp).append('{').append(String.join("," + sp, entry)).append('}');
            }
            parts.add(top.append(']').toString());
        }
        java.util.Collections.shuffle(parts, rng);
        return b.append(sp).append(String.join("," + sp, parts)).append(sp).append('}').append(rng.nextInt(5) == 0 ? " \r" : "")
                .toString();
    }

    private static String id(Random rng, int j) {
        return switch (rng.nextInt(8)) {
            case 0 -> j + ".0";
            case 1 -> j + "e0";
            case 2 -> j == 0 ? "-0" : Integer.toString(j);
            default -> Integer.toString(j * 1000 + rng.nextInt(1000));
        };
    }

    private static String logProb(Random rng) {
        return switch (rng.nextInt(10)) {
            case 0 -> "-Infinity";
            case 1 -> "-9999";
            case 2 -> "0";
            case 3 -> String.format(Locale.ROOT, "%.3E", -rng.nextDouble() * 50);
            case 4 -> "-" + rng.nextInt(3) + "." + (1 + rng.nextInt(999)) + "e-" + rng.nextInt(400);
            default -> Double.toString(Math.log(rng.nextDouble() / 8));
        };
    }

    /** Every record it is meant for is read fast, and gives what the general parser gives. */
    @Test
    void recordsAreReadFastAsTheGeneralParserReadsThem() {
        Random rng = new Random(99);
        JsonLine.TopKRecord fast = new JsonLine.TopKRecord();
        for (int t = 0; t < 20_000; t++) {
            String line = record(rng);
            StoreImport.Entries want = general(line);
            assertTrue(fast.read(line), line);
            sameEntries(want, fast, line);
        }
        // full-vocabulary rows: the arrays grow
        StringBuilder b = new StringBuilder("{\"top_logprobs\": [");
        StringBuilder c = new StringBuilder("{\"ids\": [");
        StringBuilder d = new StringBuilder("\"logprobs\": [");
        for (int j = 0; j < 5003; j++) {
            String lp = Double.toString(Math.log(rng.nextDouble() / 6000));
            b.append(j == 0 ? "" : ", ").append("{\"id\": ").append(j).append(", \"logprob\": ").append(lp).append('}');
            c.append(j == 0 ? "" : ", ").append(5002 - j);
            d.append(j == 0 ? "" : ", ").append(lp);
        }
        for (String line : new String[]{b.append("]}").toString(), c.append("], ").append(d).append("]}").toString()}) {
            assertTrue(fast.read(line));
            sameEntries(general(line), fast, line);
        }
    }

    /** Lines it does not read (malformed, another kind, repeated keys) are the general parser's: the same error. */
    @Test
    void everyOtherLineIsTheGeneralParsersWithItsError() {
        String[] lines = {"", "[1, 2]", "{}", "{\"ids\": [1], \"logprobs\": [-0.5]} x", "{\"ids\": [1], \"logprobs\": [-0.5 -1.5]}",
                "{\"ids\": [1, 2], \"logprobs\": [-0.5]}", "{\"ids\": [1.5], \"logprobs\": [-0.5]}", "{\"ids\": [01], \"logprobs\": [-0.5]}",
                "{\"ids\": [1], \"logprobs\": [-.5]}", "{\"ids\": [1], \"logprobs\": [-0.5], \"ids\": [2]}", "{\"ids\": [1]}",
                "{\"logprobs\": [-1]}", "{\"ids\": [2147483648], \"logprobs\": [-1]}", "{\"ids\": [-2147483648], \"logprobs\": [-1]}",
                "{\"ids\": [NaN], \"logprobs\": [-1]}", "{\"ids\": [Infinity], \"logprobs\": [-1]}", "{\"ids\": [\"3\"], \"logprobs\": [-1]}",
                "{\"ids\": [1], \"logprobs\": [-1], \"top_logprobs\": [{\"id\": 1, \"logprob\": -1}]}",
                "{\"row\": 3, \"ids\": [1], \"logprobs\": [-1]}", "{\"row\": null, \"ids\": [1], \"logprobs\": [-1]}",
                "{\"top_logprobs\": [{\"token\": \"cat\", \"logprob\": -1}]}", "{\"top_logprobs\": [{\"logprob\": -1}]}",
                "{\"top_logprobs\": [{\"id\": 1}]}", "{\"top_logprobs\": [{}]}", "{\"top_logprobs\": [1]}", "{\"top_logprobs\": null}",
                "{\"top_logprobs\": [{\"id\": 1, \"logprob\": -1, \"id\": 2}]}", "{\"top_logprobs\": [{\"token\": \"token_id:99999999999\", \"logprob\": -1}]}",
                "{\"top_logprobs\": [{\"token\": \"token_id:\", \"logprob\": -1}]}", "{\"top_logprobs\": [{\"token\": 3, \"logprob\": -1}]}",
                "{\"top_logprobs\": [{\"token\": \"token_id:007\", \"logprob\": -1}]}", "{\"top_logprobs\": [{\"token\": \"token_id:\\u0033\", \"logprob\": -1}]}",
                "{\"top_logprobs\": [{\"id\": 1, \"logprob\": -1, \"x\": 1, \"x\": 2}]}", "{\"a\": {\"b\": 1, \"b\": 2}, \"ids\": [], \"logprobs\": []}",
                "{\"i\\u0064s\": [1], \"logprobs\": [-1]}", "{\"ids\": [1], \"logprobs\": [-1], \"t\": \"a\tb\"}",
                "{\"ids\": [1], \"logprobs\": [-1], \"t\": \"\\x\"}", "{\"ids\": [1], \"logprobs\": [-1], \"t\": \"\\u00g0\"}",
                "{\"ids\": [1], \"logprobs\": [-1], \"t\": \"open}", "{\"ids\": [1], \"logprobs\": [-1,]}", "{\"ids\": [1,], \"logprobs\": [-1]}",
                "{\"ids\": [1], \"logprobs\": [-1]", "{\"ids\": [1], \"logprobs\": [-Inf]}", "{\"ids\": [1], \"logprobs\": [nan]}",
                "{\"ids\": [1], \"logprobs\": [-1e]}", "{\"ids\": [1], \"logprobs\": [-1.]}", "{\"ids\": [1], \"logprobs\": [+1]}",
                "{\"ids\": [1] \"logprobs\": [-1]}", "{\"ids\" [1], \"logprobs\": [-1]}", "{\"ids\": [1], \"logprobs\": [-1], \"z\": tru}",
                "{\"ids\": [1], \"logprobs\": [-1], \"z\": " + "[".repeat(70) + "]".repeat(70) + "}",
                "{\"ids\": [1], \"logprobs\": [-1], \"z\": " + "[".repeat(62) + "]".repeat(62) + "}",
                "{\"ids\": [1], \"logprobs\": [-1], \"z\": " + "[".repeat(63) + "]".repeat(63) + "}",
                "{\"top_logprobs\": [{\"id\": 1, \"logprob\": -1, \"z\": " + "[".repeat(61) + "]".repeat(61) + "}]}",
                "{\"top_logprobs\": [{\"id\": 1, \"logprob\": -1, \"z\": " + "[".repeat(62) + "]".repeat(62) + "}]}",
                "{\"ids\": [1], \"logprobs\": [-1]}\n", "\u00a0{\"ids\": [1], \"logprobs\": [-1]}", "{\"ids\": [1], \"logprobs\": [-1]}}",
                // Integer.parseInt reads -2147483648, but as a class id it is beyond +-Integer.MAX_VALUE: the general check's error
                "{\"top_logprobs\": [{\"token\": \"token_id:-2147483648\", \"logprob\": -1}]}",
                "{\"top_logprobs\": [{\"token\": \"token_id:-2147483647\", \"logprob\": -1}]}"};
        JsonLine.TopKRecord fast = new JsonLine.TopKRecord();
        for (String line : lines) {
            assertEquals(outcome(line, null), outcome(line, fast), line);
        }
    }

    /**
     * Random records with random damage (a character taken out, put in or changed, a piece repeated): whatever the
     * result, the fast reader gives the general parser's, the same entries or the same error; and a line it reads is
     * one the general parser accepts with the same entries.
     */
    @Test
    void damagedRecordsGiveTheGeneralParsersOutcome() {
        Random rng = new Random(4242);
        String alphabet = "{}[],:\"\\ -+.eE0123456789aINfnltru_idsxp\t\u00e9";
        JsonLine.TopKRecord fast = new JsonLine.TopKRecord();
        int readFast = 0;
        for (int t = 0; t < 20_000; t++) {
            StringBuilder b = new StringBuilder(record(rng));
            for (int damage = 1 + rng.nextInt(2); damage > 0; damage--) {
                int at = rng.nextInt(b.length() + 1);
                char c = alphabet.charAt(rng.nextInt(alphabet.length()));
                switch (rng.nextInt(4)) {
                    case 0 -> {
                        if (at < b.length()) {
                            b.deleteCharAt(at);
                        }
                    }
                    case 1 -> b.insert(at, c);
                    case 2 -> {
                        if (at < b.length()) {
                            b.setCharAt(at, c);
                        }
                    }
                    default -> {
                        int to = Math.min(b.length(), at + 1 + rng.nextInt(12));
                        b.insert(at, b.substring(at, to));
                    }
                }
            }
            String line = b.toString();
            String want = outcome(line, null);
            if (fast.read(line) && (!fast.hasRow || fast.row == 0)) { // as the import takes it, for row 0
                readFast++;
                assertTrue(want.startsWith("entries"), "read fast, but the general parser says: " + want + " for " + line);
            }
            assertEquals(want, outcome(line, fast), line);
        }
        assertTrue(readFast > 300, "some damaged lines are still records: " + readFast);
    }

    /**
     * Objects with very many keys (a vocabulary-sized map kept as an extra key, at the record, in an entry, nested): the
     * outcome is the general parser's, in time linear in the line like the general parser's (a 4 MB line of 300,000 keys
     * took minutes when every key was compared with every other to find a repeated one).
     */
    @Test
    void objectsWithManyKeysAreReadInLinearTime() {
        int keys = 300_000;
        StringBuilder map = new StringBuilder("{");
        for (int j = 0; j < keys; j++) {
            map.append(j == 0 ? "" : ",").append("\"t").append(j).append("\":-").append(j % 97);
        }
        String many = map.append('}').toString();
        String keysAtRecord = many.substring(0, many.length() - 1) + ",\"ids\":[1],\"logprobs\":[-0.5]}";
        String keysInEntry = "{\"top_logprobs\":[" + many.substring(0, many.length() - 1) + ",\"id\":1,\"logprob\":-0.5}]}";
        String nested = "{\"ids\":[1],\"logprobs\":[-0.5],\"vocab\":" + many + "}";
        String repeated = nested.replace("\"t299999\"", "\"t0\"");
        JsonLine.TopKRecord fast = new JsonLine.TopKRecord();
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            for (String line : new String[]{keysAtRecord, keysInEntry, nested}) {
                assertEquals("entries 1:bfe0000000000000", outcome(line, null));
                assertEquals(outcome(line, null), outcome(line, fast));
            }
            assertTrue(outcome(repeated, null).contains("key \"t0\" appears twice"), outcome(repeated, null));
            assertEquals(outcome(repeated, null), outcome(repeated, fast));
            assertFalse(fast.read(repeated));
        });
        // a record with a few extra keys is still read fast
        StringBuilder few = new StringBuilder("{\"ids\":[1],\"logprobs\":[-0.5]");
        for (int j = 0; j < JsonLine.TopKRecord.MAX_KEYS; j++) {
            few.append(",\"k").append(j).append("\":").append(j);
        }
        assertTrue(fast.read(few + "}"), few.toString());
        assertEquals(outcome(few + "}", null), outcome(few + "}", fast));
    }
}
