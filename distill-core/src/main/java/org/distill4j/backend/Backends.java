package org.distill4j.backend;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.function.Function;

/**
 * Finds {@link ComputeBackend}s with {@link ServiceLoader} and picks one.
 *
 * <p>Selection: a name given by the system property {@value #PROPERTY} or else the environment
 * variable {@value #ENV} wins (an unknown name fails with an {@link UnknownBackendException} listing the
 * known ones; a known but unavailable backend fails with an {@link UnavailableBackendException} giving its
 * probe's reasons and the backends available instead). Otherwise the available backend with the highest
 * priority is used, and each better backend that was skipped is logged once with its reason. The value
 * {@code auto} (or an empty value) means no preference.
 *
 * <p>Both exceptions name the setting the request came from (e.g. {@code -Ddistill.backend=cuda}), so an
 * application can report it as a setting for the user to change, not as a failure of the run.
 */
public final class Backends {
    /** System property naming the backend, e.g. {@code -Ddistill.backend=cpu}. */
    public static final String PROPERTY = "distill.backend";
    /** Environment variable naming the backend when the property is not set. */
    public static final String ENV = "DISTILL_BACKEND";

    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    private Backends() {
    }

    /** All providers on the class path, highest priority first (ties by name). */
    public static List<ComputeBackendProvider> providers() {
        return providers(Backends.class.getClassLoader());
    }

    static List<ComputeBackendProvider> providers(ClassLoader loader) {
        List<ComputeBackendProvider> found = new ArrayList<>();
        ServiceLoader<ComputeBackendProvider> sl = ServiceLoader.load(ComputeBackendProvider.class, loader);
        var it = sl.iterator();
        while (true) {
            try {
                if (!it.hasNext()) {
                    break;
                }
                found.add(it.next());
            } catch (ServiceConfigurationError | LinkageError e) {
                // a provider that cannot even be constructed is skipped, never fatal
                LOG.warn("skipping a compute backend provider that failed to load: {}", e.toString());
            }
        }
        found.sort(Comparator.comparingInt(ComputeBackendProvider::priority).reversed()
                .thenComparing(ComputeBackendProvider::name));
        return found;
    }

    /** The backend name requested by the property or the environment, or null for automatic choice. */
    public static String requestedName() {
        return requestedName(System::getProperty, System::getenv);
    }

    static String requestedName(Function<String, String> properties, Function<String, String> env) {
        String v = properties.apply(PROPERTY);
        if (v == null || v.isBlank()) {
            v = env.apply(ENV);
        }
        if (v == null || v.isBlank() || v.trim().equalsIgnoreCase("auto")) {
            return null;
        }
        return v.trim().toLowerCase(Locale.ROOT);
    }

    /**
     * The setting that names the backend, as it was given: {@code -Ddistill.backend=cuda} or {@code DISTILL_BACKEND=cuda}
     * (the property wins, as in {@link #requestedName()}); null when neither is set.
     */
    static String requestOrigin(Function<String, String> properties, Function<String, String> env) {
        String v = properties.apply(PROPERTY);
        if (v != null && !v.isBlank()) {
            return "-D" + PROPERTY + "=" + v.trim();
        }
        v = env.apply(ENV);
        return v == null || v.isBlank() ? null : ENV + "=" + v.trim();
    }

    /** Selects and creates the backend per the rules above. */
    public static ComputeBackend select() {
        String origin = requestOrigin(System::getProperty, System::getenv);
        return select(requestedName(), origin != null ? origin : PROPERTY + " / " + ENV, providers());
    }

    /**
     * Selects and creates a backend; a requested name is said to come from {@value #PROPERTY} / {@value #ENV}.
     *
     * @param requested a backend name, or null for the best available one
     * @param providers candidates, highest priority first
     * @throws UnknownBackendException     for an unknown name (listing the known ones)
     * @throws UnavailableBackendException when the requested backend is unavailable
     * @throws IllegalStateException       when no name is requested and every backend is unavailable
     */
    public static ComputeBackend select(String requested, List<ComputeBackendProvider> providers) {
        return select(requested, PROPERTY + " / " + ENV, providers);
    }

    /**
     * Selects and creates a backend as {@link #select(String, List)} does.
     *
     * @param origin where {@code requested} came from, named in the exceptions: a setting such as
     *               {@code -Ddistill.backend=cuda}, or a configuration field such as {@code training.backend}
     */
    public static ComputeBackend select(String requested, String origin, List<ComputeBackendProvider> providers) {
        if (requested != null) {
            for (ComputeBackendProvider p : providers) {
                if (p.name().equals(requested)) {
                    Availability a = probe(p);
                    if (!a.available()) {
                        throw new UnavailableBackendException(requested, origin, a, availableNames(providers));
                    }
                    LOG.info("compute backend: {} ({}), as requested", p.name(), a.detail());
                    return p.create();
                }
            }
            throw new UnknownBackendException(requested, origin, providers.stream().map(ComputeBackendProvider::name).toList());
        }
        List<String> skipped = new ArrayList<>();
        for (ComputeBackendProvider p : providers) {
            Availability a = probe(p);
            if (a.available()) {
                for (String s : skipped) {
                    LOG.info("{}; using '{}'", s, p.name());
                }
                LOG.info("compute backend: {} ({})", p.name(), a.detail());
                return p.create();
            }
            skipped.add("backend '" + p.name() + "' unavailable: " + a.reasonText());
        }
        throw new IllegalStateException("no compute backend is available: " + String.join("; ", skipped));
    }

    /**
     * {@code p}'s probe; a probe that breaks its contract and throws (a third-party backend on the class path) makes that
     * backend unavailable, its error the reason, so that one broken provider does not stop the others from being chosen.
     */
    private static Availability probe(ComputeBackendProvider p) {
        try {
            return p.probe();
        } catch (RuntimeException | LinkageError e) {
            LOG.warn("the probe of backend '{}' threw; taking it as unavailable", p.name(), e);
            return Availability.unavailable("its probe threw " + e);
        }
    }

    /** The names of the providers whose probe says available, in their order. */
    private static List<String> availableNames(List<ComputeBackendProvider> providers) {
        List<String> names = new ArrayList<>();
        for (ComputeBackendProvider p : providers) {
            if (probe(p).available()) {
                names.add(p.name());
            }
        }
        return List.copyOf(names);
    }

    /**
     * A backend requested by name is known but cannot run here. The message names the backend and where the request
     * came from, gives the probe's reasons and the backends available instead.
     */
    public static final class UnavailableBackendException extends IllegalStateException {
        private static final long serialVersionUID = 1L;
        /** The requested backend's name, in lower case. */
        private final String requested;
        /** Where the name came from, e.g. {@code -Ddistill.backend=cuda}. */
        private final String origin;
        /** The probe's reasons why the backend is unavailable; an unmodifiable list. */
        private final List<String> reasons;
        /** The backends available here, highest priority first; an unmodifiable list. */
        private final List<String> available;

        UnavailableBackendException(String requested, String origin, Availability availability, List<String> available) {
            super("backend '" + requested + "' was requested (" + origin + ") but is unavailable: " + availability.reasonText()
                    + (available.isEmpty() ? "; no backend is available here"
                    : "; available here: " + String.join(", ", available) + " (request one of them, or auto for the best available)"));
            this.requested = requested;
            this.origin = origin;
            this.reasons = List.copyOf(availability.reasons());
            this.available = List.copyOf(available);
        }

        /** The requested name, in lower case. */
        public String requested() {
            return requested;
        }

        /** Where the name came from, e.g. {@code -Ddistill.backend=cuda} or {@code training.backend}. */
        public String origin() {
            return origin;
        }

        /** The probe's reasons why the backend is unavailable. */
        public List<String> reasons() {
            return reasons;
        }

        /** The backends available here, highest priority first (empty when none is). */
        public List<String> available() {
            return available;
        }
    }

    /** A backend requested by a name that no provider on the class path has; the message lists the known names. */
    public static final class UnknownBackendException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        /** The requested backend's name, in lower case. */
        private final String requested;
        /** Where the name came from, e.g. {@code DISTILL_BACKEND=tpu}. */
        private final String origin;
        /** The backends on the class path, highest priority first; an unmodifiable list. */
        private final List<String> known;

        UnknownBackendException(String requested, String origin, List<String> known) {
            super("unknown backend '" + requested + "' (from " + origin + "); known backends: " + String.join(", ", known)
                    + " (or auto)");
            this.requested = requested;
            this.origin = origin;
            this.known = List.copyOf(known);
        }

        /** The requested name, in lower case. */
        public String requested() {
            return requested;
        }

        /** Where the name came from, e.g. {@code DISTILL_BACKEND=tpu} or {@code training.backend}. */
        public String origin() {
            return origin;
        }

        /** The backends on the class path, highest priority first. */
        public List<String> known() {
            return known;
        }
    }
}
