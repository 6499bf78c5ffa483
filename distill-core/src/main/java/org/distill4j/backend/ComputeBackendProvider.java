package org.distill4j.backend;

/**
 * A service (in {@code META-INF/services/org.distill4j.backend.ComputeBackendProvider}) that can
 * make a {@link ComputeBackend}. Providers are cheap to construct: nothing native happens until
 * {@link #probe()} or {@link #create()}.
 */
public interface ComputeBackendProvider {

    /** The backend's stable name, e.g. {@code cpu}. */
    String name();

    /** Higher wins when several backends are available and none is requested by name. */
    int priority();

    /**
     * Whether the backend can run on this machine, and why not. Never throws; safe to call many
     * times (implementations remember the answer).
     */
    Availability probe();

    /** Creates the backend; only called after a successful probe. */
    ComputeBackend create();
}
