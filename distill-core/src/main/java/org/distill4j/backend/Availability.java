package org.distill4j.backend;

import java.util.List;

/**
 * The outcome of a backend's probe: whether it can run here, what it found (e.g. the device) and,
 * when it cannot, why. Probes never throw; every failure becomes a reason.
 *
 * @param available whether the backend can be used
 * @param detail    what was found, e.g. "2 cores, AVX2" or "NVIDIA H100, driver 580"
 * @param reasons   why it is unavailable: at least one when unavailable, empty when available
 */
public record Availability(boolean available, String detail, List<String> reasons) {
    /**
     * Keeps an unmodifiable copy of {@code reasons}; a null {@code detail} becomes the empty string.
     *
     * @throws NullPointerException     if {@code reasons} or one of its elements is null
     * @throws IllegalArgumentException if the backend is unavailable and no reason is given (its
     *                                  {@link #reasonText()} would say nothing of why)
     */
    public Availability {
        reasons = List.copyOf(reasons);
        detail = detail == null ? "" : detail;
        if (!available && reasons.isEmpty()) {
            throw new IllegalArgumentException("an unavailable backend needs at least one reason (what the user is shown), got none");
        }
    }

    /** The backend can run here; {@code detail} says what was found (null for nothing), and there are no reasons. */
    public static Availability available(String detail) {
        return new Availability(true, detail, List.of());
    }

    /**
     * The backend cannot run here, for the given reasons (at least one: they are what the user is shown), with an
     * empty detail.
     *
     * @throws NullPointerException     if a reason is null
     * @throws IllegalArgumentException if no reason is given
     */
    public static Availability unavailable(String... reasons) {
        return new Availability(false, "", List.of(reasons));
    }

    /** The reasons joined for one log line or error message; {@code "available"} when there are none (an available backend). */
    public String reasonText() {
        return reasons.isEmpty() ? "available" : String.join("; ", reasons);
    }
}
