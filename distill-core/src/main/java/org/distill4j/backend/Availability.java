package org.distill4j.backend;

import java.util.List;

/**
 * The outcome of a backend's probe: whether it can run here, what it found (e.g. the device) and,
 * when it cannot, why. Probes never throw; every failure becomes a reason.
 *
 * @param available whether the backend can be used
 * @param detail    what was found, e.g. "2 cores, AVX2" or "NVIDIA H100, driver 580"
 * @param reasons   why it is unavailable (empty when available)
 */
public record Availability(boolean available, String detail, List<String> reasons) {
    public Availability {
        reasons = List.copyOf(reasons);
        detail = detail == null ? "" : detail;
    }

    public static Availability available(String detail) {
        return new Availability(true, detail, List.of());
    }

    public static Availability unavailable(String... reasons) {
        return new Availability(false, "", List.of(reasons));
    }

    /** The reasons joined for one log line or error message. */
    public String reasonText() {
        return reasons.isEmpty() ? "available" : String.join("; ", reasons);
    }
}
