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
 * variable {@value #ENV} wins (an unknown name fails listing the known ones; a known but unavailable
 * backend fails with its probe's reasons). Otherwise the available backend with the highest priority
 * is used, and each better backend that was skipped is logged once with its reason. The value
 * {@code auto} (or an empty value) means no preference.
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

    /** Selects and creates the backend per the rules above. */
    public static ComputeBackend select() {
        return select(requestedName(), providers());
    }

    /**
     * Selects and creates a backend.
     *
     * @param requested a backend name, or null for the best available one
     * @param providers candidates, highest priority first
     * @throws IllegalArgumentException for an unknown name (listing the known ones)
     * @throws IllegalStateException    when the requested backend, or every backend, is unavailable
     */
    public static ComputeBackend select(String requested, List<ComputeBackendProvider> providers) {
        if (requested != null) {
            for (ComputeBackendProvider p : providers) {
                if (p.name().equals(requested)) {
                    Availability a = p.probe();
                    if (!a.available()) {
                        throw new IllegalStateException("backend '" + requested + "' was requested (" + PROPERTY + " / "
                                + ENV + ") but is unavailable: " + a.reasonText());
                    }
                    LOG.info("compute backend: {} ({}), as requested", p.name(), a.detail());
                    return p.create();
                }
            }
            throw new IllegalArgumentException("unknown backend '" + requested + "' (from " + PROPERTY + " / " + ENV
                    + "); known backends: " + String.join(", ", providers.stream().map(ComputeBackendProvider::name).toList())
                    + " (or auto)");
        }
        List<String> skipped = new ArrayList<>();
        for (ComputeBackendProvider p : providers) {
            Availability a = p.probe();
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
}
