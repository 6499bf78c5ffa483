package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The JSON Lines reader of StoreImport, which reads its file in blocks: whatever the block size, the same lines (CRLF,
 * blank lines, a byte-order mark, 2-, 3- and 4-byte UTF-8 characters cut by a block's end, a last line without a
 * newline), the same line and row numbers, the whole file's CRC32C (the content id of an import), the same errors
 * (not UTF-8, including an encoded surrogate; a line over the limit, exactly at it accepted).
 */
class JsonLinesReadTest {
    /** A line as the visitor saw it. */
    private record Seen(long lineNo, long row, String line) {
    }

    private static List<Seen> read(Path f, CRC32C crc, int maxLineBytes, int blockBytes) throws IOException {
        List<Seen> seen = new ArrayList<>();
        StoreImport.Lines.read(f, crc, (lineNo, row, line) -> seen.add(new Seen(lineNo, row, line)), maxLineBytes, blockBytes);
        return seen;
    }

    /** What the reader must give for {@code text}: split at '\n', the empty tail after a final '\n' no line, blanks skipped. */
    private static List<Seen> expected(String text) {
        List<Seen> out = new ArrayList<>();
        String[] parts = text.split("\n", -1);
        int lines = text.endsWith("\n") ? parts.length - 1 : parts.length;
        long row = 0;
        for (int i = 0; i < lines; i++) {
            String line = i == 0 && parts[0].startsWith("\uFEFF") ? parts[0].substring(1) : parts[i];
            if (!line.isBlank()) {
                out.add(new Seen(i + 1, row++, line));
            }
        }
        return out;
    }

    private static long crcOf(byte[] b) {
        CRC32C c = new CRC32C();
        c.update(b);
        return c.getValue();
    }

    @Test
    void everyBlockSizeGivesTheSameLinesNumbersAndChecksum(@TempDir Path tmp) throws IOException {
        String text = "\uFEFF{\"ids\": [1], \"logprobs\": [-0.5]}\r\n"
                + "\n"
                + "   \r\n"
                + "{\"t\": \"caf\u00e9 \u20ac \uD83D\uDE00 \u4e2d\"}\r\n" // 2-, 3- and 4-byte characters (the last a surrogate pair)
                + "\t\n"
                + "{\"ids\": [2], \"logprobs\": [-0.25]}\n"
                + "\uD83D\uDE00\uD83D\uDE00\n"
                + "{\"last\": \"no newline \u00fc\"}";
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        Path f = tmp.resolve("mixed.jsonl");
        Files.write(f, bytes);
        List<Seen> want = expected(text);
        assertEquals(5, want.size(), "the reference itself: " + want);
        assertEquals("{\"ids\": [1], \"logprobs\": [-0.5]}\r", want.get(0).line(), "the mark goes, the \\r stays for JSON to skip");
        for (int block = 1; block <= bytes.length + 1; block++) {
            CRC32C crc = new CRC32C();
            assertEquals(want, read(f, crc, 1 << 10, block), "blocks of " + block);
            assertEquals(crcOf(bytes), crc.getValue(), "the CRC32C of the whole file, blocks of " + block);
        }
        // and through the default limit and block size
        CRC32C crc = new CRC32C();
        List<Seen> seen = new ArrayList<>();
        StoreImport.Lines.read(f, crc, (lineNo, row, line) -> seen.add(new Seen(lineNo, row, line)));
        assertEquals(want, seen);
        assertEquals(crcOf(bytes), crc.getValue());
    }

    @Test
    void aFileEndingInANewlineOrEmptyHasNoExtraLine(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("a.jsonl");
        Files.write(f, new byte[0]);
        assertEquals(List.of(), read(f, null, 64, 4));
        Files.writeString(f, "{}\n{}\n");
        assertEquals(List.of(new Seen(1, 0, "{}"), new Seen(2, 1, "{}")), read(f, null, 64, 3));
        Files.writeString(f, "\n\n{}");
        assertEquals(List.of(new Seen(3, 0, "{}")), read(f, null, 64, 2));
    }

    @Test
    void theVisitorStopsTheRead(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("stop.jsonl");
        Files.writeString(f, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n");
        for (int block : new int[]{1, 5, 64}) {
            List<String> seen = new ArrayList<>();
            StoreImport.Lines.read(f, null, (lineNo, row, line) -> {
                seen.add(line);
                return row < 1;
            }, 64, block);
            assertEquals(List.of("{\"a\": 1}", "{\"a\": 2}"), seen, "blocks of " + block);
        }
    }

    @Test
    void bytesThatAreNotUtf8NameTheirLine(@TempDir Path tmp) throws IOException {
        byte[][] bad = {
                {(byte) 0xe9},                                  // Latin-1 é
                {(byte) 0xed, (byte) 0xa0, (byte) 0x80},        // an encoded surrogate (CESU-8), not UTF-8
                {(byte) 0xf0, (byte) 0x9f, (byte) 0x98},        // a 4-byte character cut short at the line's end
                {(byte) 0xc0, (byte) 0xaf},                     // an overlong '/'
        };
        for (byte[] b : bad) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes("{\"a\": 1}\n\n{\"t\": \"".getBytes(StandardCharsets.UTF_8));
            out.writeBytes(b);
            out.writeBytes("\"}\n{\"a\": 2}\n".getBytes(StandardCharsets.UTF_8));
            Path f = tmp.resolve("bad.jsonl");
            Files.write(f, out.toByteArray());
            for (int block : new int[]{1, 7, 1 << 16}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> read(f, null, 64, block));
                assertEquals(f + " line 3: not UTF-8 text (JSON Lines are UTF-8)", e.getMessage(), "blocks of " + block);
            }
        }
    }

    @Test
    void aLineOfTheLimitIsReadAndOneByteMoreIsRefusedNamingItsLine(@TempDir Path tmp) throws IOException {
        int limit = 40;
        String atLimit = "{\"pad\": \"" + "x".repeat(limit - 11) + "\"}";
        assertEquals(limit, atLimit.length());
        String crlfAtLimit = "{\"pad\": \"" + "x".repeat(limit - 12) + "\"}\r"; // the \r is the line's too
        assertEquals(limit, crlfAtLimit.length());
        Path f = tmp.resolve("limit.jsonl");
        for (int block : new int[]{1, 3, 39, 40, 41, 1 << 16}) {
            Files.writeString(f, "{}\n" + atLimit + "\n" + crlfAtLimit + "\n" + atLimit);
            assertEquals(4, read(f, null, limit, block).size(), "blocks of " + block);

            Files.writeString(f, "{}\n\n" + atLimit + "y\n{}\n");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> read(f, null, limit, block));
            assertEquals(f + " line 3: longer than 40 bytes; expected JSON Lines, one JSON object per row on a line of its own "
                    + "(is it one JSON array of all rows, or not a JSON file?)", e.getMessage(), "blocks of " + block);

            Files.writeString(f, "{}\n" + crlfAtLimit.replace("\r", "x\r") + "\n"); // one byte more, the \r included
            e = assertThrows(IllegalArgumentException.class, () -> read(f, null, limit, block));
            assertTrue(e.getMessage().startsWith(f + " line 2: longer than 40 bytes"), e.getMessage());

            Files.writeString(f, "{}\n" + atLimit + "y"); // the last line, without a newline
            e = assertThrows(IllegalArgumentException.class, () -> read(f, null, limit, block));
            assertTrue(e.getMessage().startsWith(f + " line 2: longer than 40 bytes"), e.getMessage());
        }
        // the limit counts bytes, not characters: 20 two-byte characters are 40 bytes
        String wide = "\u00e9".repeat(20);
        Files.writeString(f, wide + "\n" + wide + "\u00e9\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> read(f, null, limit, 7));
        assertTrue(e.getMessage().startsWith(f + " line 2: longer than 40 bytes"), e.getMessage());
    }

    /**
     * A byte-order mark is dropped only at the very start of the file: a first line of other non-ASCII text is read whole,
     * and a mark at the start of a later line stays (for JSON to refuse), so no row's first character is lost.
     */
    @Test
    void onlyTheFilesFirstByteOrderMarkIsDropped(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("marks.jsonl");
        Files.writeString(f, "\u00e9{}\n\uFEFF{\"a\": 1}\n\uFEFF\uFEFF{}\n");
        for (int block : new int[]{1, 4, 1 << 16}) {
            assertEquals(List.of(new Seen(1, 0, "\u00e9{}"), new Seen(2, 1, "\uFEFF{\"a\": 1}"), new Seen(3, 2, "\uFEFF\uFEFF{}")),
                    read(f, null, 64, block), "blocks of " + block);
        }
        Files.writeString(f, "\uFEFF\uFEFF{}\n");
        assertEquals(List.of(new Seen(1, 0, "\uFEFF{}")), read(f, null, 64, 3), "one mark is dropped, not every one");
    }
}
