package org.distill4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The run folder of distill demo / distill run: one run at a time, and results.json only for a run that completed. */
class RunFolderTest {
    private static String[] run(Path recipe, Path out, String... more) {
        List<String> a = new java.util.ArrayList<>(List.of("run", recipe.toString(), "--quiet", "--out", out.toString()));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    /** Every file below {@code dir} (relative name -> content). */
    private static Map<String, String> files(Path dir) throws Exception {
        Map<String, String> m = new TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                m.put(dir.relativize(f).toString(), java.util.HexFormat.of().formatHex(
                        java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f))));
            }
        }
        return m;
    }

    /**
     * A run on a folder another run holds (its lock on OUT/.distill.lock, here taken by the test as a run in another process
     * would) is refused at once with one line naming the folder and exit code 2, and leaves the other run's files as they
     * were: no checkpoint deleted, no model or results.json overwritten.
     */
    @Test
    void aSecondRunOnAFolderInUseIsRefusedAndTouchesNothing(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        Path recipe = recipe(tmp, "");
        assertEquals(0, Main.run(run(recipe, out), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        Map<String, String> before = files(out);
        assertTrue(before.containsKey("results.json") && before.containsKey("teacher.zip"), before.toString());
        try (FileChannel ch = FileChannel.open(out.resolve(".distill.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock held = ch.tryLock()) {
            assertNotNull(held);
            o.reset();
            e.reset();
            int code = Main.run(run(recipe, out, "--set", "training.seed=7"), new PrintStream(o, true, StandardCharsets.UTF_8),
                    new PrintStream(e, true, StandardCharsets.UTF_8));
            String err = e.toString(StandardCharsets.UTF_8);
            assertEquals(2, code, "refused as a usage/environment error: " + err);
            assertEquals(1, err.lines().count(), "one line, no stack trace: " + err);
            assertTrue(err.contains(out.toString()) && err.contains("another run"), err);
            assertEquals("", o.toString(StandardCharsets.UTF_8), "nothing printed: nothing ran");
            assertEquals(before, files(out), "the running run's files are untouched");
        }
        // the lock is the run's only while it runs: once released, the folder takes a run again
        e.reset();
        assertEquals(0, Main.run(run(recipe, out, "--set", "training.seed=7"), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
    }

    /** A recipe with the smallest settings on the embedded subset. */
    private static Path recipe(Path dir, String teacher) throws Exception {
        return Files.writeString(dir.resolve("r.yaml"), "name: t\n"
                + "data:\n  path: embedded\n  teacherSamples: 60\n  transferSamples: 30\n  testSamples: 30\n"
                + "teacher:\n  hidden: [8]\n  epochs: 1\n" + teacher
                + "student:\n  hidden: [4]\n"
                + "training:\n  epochs: 1\n"
                + "loss:\n  - name: kd\n");
    }

    /**
     * A rerun without --resume that fails mid-way (the teacher trained and saved, then labeling its store fails)
     * leaves no results.json, provenance.json or report of the previous run beside its own new models: the folder does not
     * look complete. Only this run's files are left.
     */
    @Test
    void aFailedRerunLeavesNoOutputsOfThePreviousRun(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        Files.createDirectories(out);
        List<String> old = List.of("results.json", "provenance.json", "report.html", "metrics.csv", "curves.png", "accuracy.png",
                "teacher.zip", "student-alone.zip", "student-distilled.zip", "distilled-dkd.zip", "distilled-kd-stored-f16.zip");
        for (String f : old) {
            Files.writeString(out.resolve(f), "the previous run's " + f);
        }
        // a file that is not a store where the store goes: found when the trained teacher is to label it (a store path under
        // a file would be refused before the run starts)
        Files.writeString(tmp.resolve("not-a-store.d4j"), "not a store");
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        int code = Main.run(run(recipe(tmp, "  store:\n    path: " + tmp.resolve("not-a-store.d4j") + "\n"), out,
                        "--set", "training.seed=7"),
                new PrintStream(o, true, StandardCharsets.UTF_8), new PrintStream(e, true, StandardCharsets.UTF_8));
        assertEquals(1, code, "the store cannot be read or written: the run fails after its teacher trained: " + e);
        assertTrue(Files.isRegularFile(out.resolve("teacher.zip")) && !Files.readString(out.resolve("teacher.zip"), StandardCharsets.ISO_8859_1)
                .startsWith("the previous run's"), "the new run saved its teacher");
        for (String f : old) {
            if (Files.exists(out.resolve(f))) {
                assertFalse(Files.readString(out.resolve(f), StandardCharsets.ISO_8859_1).startsWith("the previous run's"),
                        f + " of the previous run is still there: " + files(out).keySet());
            }
        }
        assertFalse(Files.exists(out.resolve("results.json")), "no results.json: the run did not complete");
    }

    /** A recipe run writes results.json after every other output (its report, metrics, plots, models, provenance). */
    @Test
    void resultsJsonIsWrittenLast(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        assertEquals(0, Main.run(run(recipe(tmp, ""), out),
                new PrintStream(o, true, StandardCharsets.UTF_8), new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        java.nio.file.attribute.FileTime results = Files.getLastModifiedTime(out.resolve("results.json"));
        List<String> outputs = List.of("provenance.json", "report.html", "metrics.csv", "curves.png", "accuracy.png", "teacher.zip",
                "student-alone.zip", "student-distilled.zip");
        for (String f : outputs) {
            java.nio.file.attribute.FileTime t = Files.getLastModifiedTime(out.resolve(f));
            assertTrue(t.compareTo(results) <= 0, f + " (" + t + ") was written after results.json (" + results + ")");
        }
    }

    /** Starting over keeps the run's own inputs: a teacher loaded from the previous run's teacher.zip in the same folder. */
    @Test
    void startingOverKeepsATeacherModelTheRunLoadsFromTheFolder(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        assertEquals(0, Main.run(run(recipe(tmp, ""), out), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        String teacher = files(out).get("teacher.zip");
        Path loads = Files.writeString(tmp.resolve("loads.yaml"), "name: t\n"
                + "data:\n  path: embedded\n  teacherSamples: 60\n  transferSamples: 30\n  testSamples: 30\n"
                + "teacher:\n  model: " + out.resolve("teacher.zip") + "\n"
                + "student:\n  hidden: [4]\n"
                + "training:\n  epochs: 1\n"
                + "loss:\n  - name: kd\n");
        assertEquals(0, Main.run(run(loads, out), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        assertEquals(teacher, files(out).get("teacher.zip"), "the loaded teacher is the run's input, not a previous output");
    }

    /**
     * The temporary files of saves an interruption cut short (a model's, as large as the model; a report file's) are deleted
     * when the next run on the folder starts, resumed or not; files of other names stay.
     */
    @Test
    void leftoversOfInterruptedSavesAreDeletedAtTheStart(@TempDir Path tmp) throws Exception {
        Path out = Files.createDirectories(tmp.resolve("run"));
        List<String> leftovers = List.of(".teacher.zip4411830967.tmp", ".student-distilled.zip12.tmp", ".results.json77.tmp",
                ".report.html5.tmp", ".curves.png90.tmp.png", ".distilled-dkd-seed-minus-3.zip8.tmp");
        List<String> others = List.of(".notes.tmp", "data.tmp", ".teacher.zip.bak", "mine.zip");
        for (String f : leftovers) {
            Files.writeString(out.resolve(f), "half a file");
        }
        for (String f : others) {
            Files.writeString(out.resolve(f), "not the run's");
        }
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        assertEquals(0, Main.run(run(recipe(tmp, ""), out, "--resume"), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        for (String f : leftovers) {
            assertFalse(Files.exists(out.resolve(f)), f + " is left");
        }
        for (String f : others) {
            assertTrue(Files.exists(out.resolve(f)), f + " is not the run's to delete");
        }
    }

    /** The CLI says, a line per row, when a row is restored or resumed from its checkpoint, or starts over deleting one. */
    @Test
    void eachRowSaysWhetherItResumedOrStartedOver(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        Path recipe = recipe(tmp, "");
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        assertEquals(0, Main.run(run(recipe, out), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        assertFalse(o.toString(StandardCharsets.UTF_8).contains("checkpoint"), "a fresh folder: nothing to say\n" + o);
        o.reset();
        assertEquals(0, Main.run(run(recipe, out, "--resume"), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        String resumed = o.toString(StandardCharsets.UTF_8);
        for (String row : List.of("teacher", "student alone", "student distilled")) {
            assertEquals(1, resumed.lines().filter(l -> l.startsWith(row + ": restored from its checkpoint")).count(), resumed);
        }
        o.reset();
        assertEquals(0, Main.run(run(recipe, out), new PrintStream(o, true, StandardCharsets.UTF_8),
                new PrintStream(e, true, StandardCharsets.UTF_8)), e.toString());
        String over = o.toString(StandardCharsets.UTF_8);
        for (String row : List.of("teacher", "student alone", "student distilled")) {
            assertEquals(1, over.lines().filter(l -> l.startsWith(row + ": starting over, deleting its checkpoint")).count(), over);
        }
    }

    /**
     * The lock itself: the folder is made if absent; a second lock on it in this process is refused naming the folder, and
     * once the first is closed the folder locks again; the lock file stays.
     */
    @Test
    void aFolderIsLockedByOneHolderAtATime(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("a/b");
        try (RunFolder first = RunFolder.lock(dir)) {
            assertTrue(Files.isRegularFile(dir.resolve(RunFolder.LOCK_FILE)));
            RunFolder.InUseException e = org.junit.jupiter.api.Assertions.assertThrows(RunFolder.InUseException.class,
                    () -> RunFolder.lock(dir));
            assertTrue(e.getMessage().startsWith(dir + " is in use by another run") && e.getMessage().contains(RunFolder.LOCK_FILE),
                    e.getMessage());
        }
        assertTrue(Files.notExists(dir) && Files.isDirectory(dir.getParent()),
                "a folder the hold made and nothing was written into goes at close (its parents made with it stay)");
        try (RunFolder again = RunFolder.lock(dir)) {
            assertTrue(Files.isRegularFile(dir.resolve(RunFolder.LOCK_FILE)));
            Files.writeString(dir.resolve("results.json"), "{}");
        }
        assertTrue(Files.isRegularFile(dir.resolve(RunFolder.LOCK_FILE)), "the lock file stays beside a run's files");
        try (RunFolder onExisting = RunFolder.lock(dir.getParent())) {
            assertTrue(Files.isRegularFile(dir.getParent().resolve(RunFolder.LOCK_FILE)));
        }
        assertTrue(Files.isRegularFile(dir.getParent().resolve(RunFolder.LOCK_FILE)), "a folder that was there stays, with its lock");
    }

    /** An --out that cannot be a folder (a file in the way) is refused naming --out, leaving nothing. */
    @Test
    void aFolderUnderAFileIsRefusedNamingOut(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("afile"), "x");
        RunFolder.NotAFolderException e = org.junit.jupiter.api.Assertions.assertThrows(RunFolder.NotAFolderException.class,
                () -> RunFolder.lock(file.resolve("out")));
        assertEquals("--out " + file.resolve("out") + ": cannot create the folder: " + file + " is a file, not a folder; give --out"
                + " a path in a folder", e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(RunFolder.NotAFolderException.class, () -> RunFolder.lock(file));
        assertTrue(e.getMessage().startsWith("--out " + file + ": cannot create the folder: " + file + " is a file"), e.getMessage());
        assertEquals("x", Files.readString(file));
    }

    /**
     * Leftovers: only the temporary names of the run's own saves, as plain files (not a folder or a link of such a name,
     * whose target is not the run's), in name order; a folder that is not there has none.
     */
    @Test
    void onlyTheRunsOwnTemporaryFilesAreLeftovers(@TempDir Path tmp) throws Exception {
        assertEquals(List.of(), RunFolder.deleteLeftovers(tmp.resolve("absent")));
        Path out = Files.createDirectories(tmp.resolve("run"));
        List<String> leftovers = List.of(".accuracy.png3.tmp.png", ".distilled-kd-t4.zip0.tmp", ".metrics.csv42.tmp",
                ".provenance.json9.tmp", ".student-alone-seed-7.zip1.tmp", ".teacher-2.zip5.tmp");
        List<String> others = List.of(".results.json.tmp", ".metrics.csv12.tmp.bak", "x.teacher.zip5.tmp", ".teacher.zipab.tmp",
                ".student.zip1.tmp", ".results.json7.tmp.png.x");
        for (String f : leftovers) {
            Files.writeString(out.resolve(f), "half");
        }
        for (String f : others) {
            Files.writeString(out.resolve(f), "other");
        }
        Files.createDirectories(out.resolve(".report.html8.tmp"));
        Path target = Files.writeString(tmp.resolve("elsewhere"), "not the run's");
        Files.createSymbolicLink(out.resolve(".curves.png4.tmp.png"), target);
        assertEquals(leftovers.stream().map(out::resolve).toList(), RunFolder.deleteLeftovers(out));
        for (String f : leftovers) {
            assertFalse(Files.exists(out.resolve(f)), f);
        }
        for (String f : others) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        assertTrue(Files.isDirectory(out.resolve(".report.html8.tmp")), "a folder is not a leftover");
        assertTrue(Files.isSymbolicLink(out.resolve(".curves.png4.tmp.png")) && Files.exists(target), "a link stays, and its target");
    }

    /**
     * Starting over deletes results.json first, then provenance and the report files, then the row models in name order;
     * the files the run keeps (its inputs, however their paths are written) and files of other names stay.
     */
    @Test
    void startingOverDeletesThePreviousOutputsButTheKeptOnes(@TempDir Path tmp) throws Exception {
        assertEquals(List.of(), RunFolder.deletePreviousOutputs(tmp.resolve("absent"), List.of()));
        Path out = Files.createDirectories(tmp.resolve("run"));
        List<String> outputs = List.of("results.json", "provenance.json", "report.html", "metrics.csv", "curves.png", "accuracy.png",
                "distilled-kd.zip", "student-alone-seed-minus-3.zip", "student-alone.zip", "teacher-1.zip");
        List<String> others = List.of("teacher.zip", "student-distilled.zip", "teacher-x.zip", "student.zip", "results.json.bak", "notes.txt", "distilled-.zip.zip");
        for (String f : outputs) {
            Files.writeString(out.resolve(f), "previous");
        }
        for (String f : others) {
            Files.writeString(out.resolve(f), "kept");
        }
        Files.createDirectories(out.resolve("distilled-dkd.zip")); // a folder of that name is not a model
        Path link = Files.createSymbolicLink(tmp.resolve("input.zip"), out.resolve("teacher.zip"));
        List<Path> keep = new java.util.ArrayList<>(List.of(link, out.resolve("x/../student-distilled.zip")));
        keep.add(null);
        assertEquals(outputs.stream().map(out::resolve).toList(), RunFolder.deletePreviousOutputs(out, keep));
        for (String f : outputs) {
            assertFalse(Files.exists(out.resolve(f)), f);
        }
        for (String f : others) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        assertTrue(Files.isDirectory(out.resolve("distilled-dkd.zip")));
    }

    /** Whether another process can lock {@code file} now ("free") or not ("held"), by a JVM of this JDK. */
    private static String probeFromAnotherProcess(Path tmp, Path file) throws Exception {
        Path probe = tmp.resolve("Probe.java");
        Files.writeString(probe, "import java.nio.channels.*; import java.nio.file.*;\n"
                + "public class Probe { public static void main(String[] a) throws Exception {\n"
                + "  try (FileChannel ch = FileChannel.open(Path.of(a[0]), StandardOpenOption.WRITE)) {\n"
                + "    System.out.print(ch.tryLock() == null ? \"held\" : \"free\"); } } }\n");
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), probe.toString(),
                file.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, p.waitFor(), out);
        return out;
    }

    /**
     * A second lock on a folder this process holds is refused without dropping the first one: on Linux closing any channel
     * of a file releases the process's locks on it, so the refused attempt's channel, once closed, let another process take
     * the folder while the first run still held it, and two runs wrote into it.
     */
    @Test
    void aRefusedSecondLockInThisProcessKeepsTheFirstHold(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("run")); // there before: the lock file stays between holds
        try (RunFolder first = RunFolder.lock(dir)) {
            assertEquals("held", probeFromAnotherProcess(tmp, dir.resolve(RunFolder.LOCK_FILE)));
            org.junit.jupiter.api.Assertions.assertThrows(RunFolder.InUseException.class, () -> RunFolder.lock(dir));
            assertEquals("held", probeFromAnotherProcess(tmp, dir.resolve(RunFolder.LOCK_FILE)),
                    "after refusing a second run in this process, the folder is still held for other processes");
            Path link = Files.createSymbolicLink(tmp.resolve("link"), dir);
            org.junit.jupiter.api.Assertions.assertThrows(RunFolder.InUseException.class, () -> RunFolder.lock(link),
                    "the same folder by another path");
            assertEquals("held", probeFromAnotherProcess(tmp, dir.resolve(RunFolder.LOCK_FILE)));
        }
        assertEquals("free", probeFromAnotherProcess(tmp, dir.resolve(RunFolder.LOCK_FILE)), "released on close");
        RunFolder again = RunFolder.lock(dir);
        again.close();
        again.close(); // a second close is harmless, and does not release another hold
        try (RunFolder third = RunFolder.lock(dir)) {
            again.close();
            assertEquals("held", probeFromAnotherProcess(tmp, dir.resolve(RunFolder.LOCK_FILE)));
            org.junit.jupiter.api.Assertions.assertThrows(RunFolder.InUseException.class, () -> RunFolder.lock(dir));
            assertEquals("held", probeFromAnotherProcess(tmp, dir.resolve(RunFolder.LOCK_FILE)),
                    "an old hold closed twice does not release the third");
        }
        // a lock this process holds through a channel of its own (not a RunFolder) is refused too
        Path other = Files.createDirectories(tmp.resolve("other"));
        try (FileChannel ch = FileChannel.open(other.resolve(RunFolder.LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock l = ch.tryLock()) {
            assertNotNull(l);
            org.junit.jupiter.api.Assertions.assertThrows(RunFolder.InUseException.class, () -> RunFolder.lock(other));
        }
        try (RunFolder free = RunFolder.lock(other)) {
            assertNotNull(free, "and taken once that lock is released");
        }
    }
}
