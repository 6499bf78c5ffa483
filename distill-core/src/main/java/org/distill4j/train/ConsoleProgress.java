package org.distill4j.train;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Objects;

/**
 * A console progress bar for training. On a terminal it redraws one line per batch
 * ({@code epoch 3/60 [#######.......] 50% 5,210 samples/s}); elsewhere (logs, CI) it prints one line
 * per epoch only. It writes to the stream it is given, never to a logger.
 */
public final class ConsoleProgress implements TrainingListener {
    private static final int WIDTH = 30;
    private final PrintStream out;
    private final boolean interactive;
    private final String label;
    private long lastDraw;

    /**
     * @param out         where to draw (usually System.err)
     * @param interactive redraw per batch (true on a terminal); false prints one line per epoch
     * @param label       a prefix naming the run, e.g. "student (distilled)"
     */
    public ConsoleProgress(PrintStream out, boolean interactive, String label) {
        this.out = Objects.requireNonNull(out, "out");
        this.interactive = interactive;
        this.label = label == null ? "" : label + ": ";
    }

    /** To standard error, redrawing per batch only when it is a terminal. */
    public static ConsoleProgress toStderr(String label) {
        return new ConsoleProgress(System.err, isTerminal(), label);
    }

    /**
     * Whether the JVM talks to a terminal. JDK 22+ returns a Console even when output is redirected
     * and answers with {@code Console.isTerminal()}; older JDKs return a Console only for terminals.
     */
    static boolean isTerminal() {
        java.io.Console c = System.console();
        if (c == null) {
            return false;
        }
        try {
            return (Boolean) java.io.Console.class.getMethod("isTerminal").invoke(c);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return true; // JDK < 22: a non-null console is a terminal
        }
    }

    @Override
    public void batchFinished(int epoch, int batch, int batches, long samples, long elapsedNanos, double loss) {
        if (!interactive) {
            return;
        }
        long now = System.nanoTime();
        if (batch + 1 < batches && now - lastDraw < 100_000_000L) {
            return; // at most 10 redraws a second
        }
        lastDraw = now;
        int filled = (int) Math.round(WIDTH * (batch + 1) / (double) batches);
        double rate = samples / Math.max(1e-9, elapsedNanos / 1e9);
        out.printf(Locale.ROOT, "\r%sepoch %d [%s%s] %3d%% %,.0f samples/s loss %.4f", label, epoch + 1,
                "#".repeat(filled), ".".repeat(WIDTH - filled), (int) (100L * (batch + 1) / batches), rate, loss);
        out.flush();
    }

    @Override
    public void epochFinished(EpochMetrics m) {
        if (interactive) {
            out.print("\r" + " ".repeat(WIDTH + 60 + label.length()) + "\r");
        }
        out.printf(Locale.ROOT, "%sepoch %d/%d loss %.4f test acc %.2f%%%s %,.0f samples/s%n", label, m.epoch() + 1,
                m.epochs(), m.loss(), 100 * m.testAccuracy(),
                Double.isNaN(m.teacherAgreement()) ? "" : String.format(Locale.ROOT, " agreement %.2f%%", 100 * m.teacherAgreement()),
                m.samplesPerSecond());
        out.flush();
    }
}
