package org.distill4j.train;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Where and how often a {@link Distiller} run saves its training state, so an interrupted run (a crash,
 * {@code kill -9}, a pre-empted machine) continues where it stopped instead of from the start.
 *
 * <p>A checkpoint is one file, {@value #FILE_NAME} in the directory, replaced atomically (written to a
 * temporary sibling, flushed to disk, renamed), so an interruption during a save leaves the previous
 * checkpoint intact. It holds the student's parameters and optimizer state, the state of trainable
 * feature losses, where the run stands (epoch and batch), the random generators' states, the epoch
 * metrics so far and the times spent, under a CRC32C checksum.
 *
 * <p>When the run starts and the file exists, the run resumes from it: the student (and feature losses)
 * take the saved state, and training continues with the next batch. On the CPU path the resumed run
 * gives the same numbers, bit for bit, as one that was never interrupted. A checkpoint written by a run
 * with other settings (loss, epochs, batch size, seed, data, models) is refused, naming the setting
 * that differs; {@link #startOver()} deletes it instead when the run starts, so a later resume cannot pick it up. A
 * checkpoint of a finished run makes {@code run()} restore the final student and return the saved
 * metrics without training.
 *
 * <pre>{@code
 * Distiller.builder()...checkpoints(Checkpoints.in(Path.of("runs/kd")).everySteps(500)).build().run();
 * }</pre>
 */
public final class Checkpoints {
    /** The checkpoint's file name in the directory. */
    public static final String FILE_NAME = "distill.ckpt";

    private final Path dir;
    private final int everyEpochs;
    private final int everySteps;
    private final boolean startOver;
    private final java.time.Duration minInterval;

    private Checkpoints(Path dir, int everyEpochs, int everySteps, boolean startOver, java.time.Duration minInterval) {
        this.dir = dir;
        this.everyEpochs = everyEpochs;
        this.everySteps = everySteps;
        this.startOver = startOver;
        this.minInterval = minInterval;
    }

    /** Checkpoints in {@code dir} (created when needed) at the end of every epoch; resumes from one found there. */
    public static Checkpoints in(Path dir) {
        return new Checkpoints(Objects.requireNonNull(dir, "checkpoint directory"), 1, 0, false, java.time.Duration.ZERO);
    }

    /** Saves at the end of every {@code n}-th epoch, and always after the last one. Default 1. */
    public Checkpoints everyEpochs(int n) {
        if (n <= 0) {
            throw new IllegalArgumentException("checkpoint everyEpochs must be > 0, got " + n);
        }
        return new Checkpoints(dir, n, everySteps, startOver, minInterval);
    }

    /**
     * Also saves within epochs, after every {@code n}-th training step counted over the whole run (for long
     * epochs); 0, the default, saves at epoch ends only.
     */
    public Checkpoints everySteps(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("checkpoint everySteps must be >= 0 (0: at epoch ends only), got " + n);
        }
        return new Checkpoints(dir, everyEpochs, n, startOver, minInterval);
    }

    /**
     * Trains from the start even where a checkpoint exists: the run deletes it when it starts (not at its first save), so
     * a run interrupted before then does not leave the previous run's state for a later resume.
     */
    public Checkpoints startOver() {
        return new Checkpoints(dir, everyEpochs, everySteps, true, minInterval);
    }

    /**
     * Skips a due save when less than {@code d} has passed since the run started or last saved, so short epochs do not
     * spend their time writing checkpoints (an interruption then loses at most about {@code d} of training); the
     * save after the last epoch always happens. Default zero: every due save happens.
     */
    public Checkpoints minInterval(java.time.Duration d) {
        if (d == null || d.isNegative()) {
            throw new IllegalArgumentException("checkpoint minInterval must be >= 0, got " + d);
        }
        return new Checkpoints(dir, everyEpochs, everySteps, startOver, d);
    }

    /**
     * The least time between two due saves (the one after the last epoch always happens); zero, the default, when every
     * due save happens. Never null or negative.
     */
    public java.time.Duration minInterval() {
        return minInterval;
    }

    /** The directory the checkpoint file is in, as given to {@link #in}; a run creates it when it starts, if missing. */
    public Path dir() {
        return dir;
    }

    /** The checkpoint file: {@code dir/}{@value #FILE_NAME}. */
    public Path file() {
        return dir.resolve(FILE_NAME);
    }

    /** Saves are due at the end of every this many epochs, {@code >= 1} (default 1); the last epoch always saves. */
    public int everyEpochs() {
        return everyEpochs;
    }

    /**
     * Saves are also due after every this many training steps counted over the run, {@code >= 0}; 0 (the default) for none
     * within epochs.
     */
    public int everySteps() {
        return everySteps;
    }

    /** Whether the run deletes an existing checkpoint when it starts and trains from the start ({@link #startOver()}). */
    public boolean isStartOver() {
        return startOver;
    }

    @Override
    public String toString() {
        return "checkpoints in " + dir + " every " + (everyEpochs == 1 ? "epoch" : everyEpochs + " epochs")
                + (everySteps > 0 ? " and every " + everySteps + " steps" : "")
                + (minInterval.isZero() ? "" : ", at most every " + minInterval) + (startOver ? ", starting over" : "");
    }
}
