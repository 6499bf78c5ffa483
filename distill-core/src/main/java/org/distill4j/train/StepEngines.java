package org.distill4j.train;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;

/**
 * Chooses how a run's steps are computed: a {@link StepEngine} from the first provider that offers one,
 * else the DL4J path. {@code -Ddistill.engine} (or {@code DISTILL_ENGINE}) set to {@code dl4j} keeps the
 * DL4J path; set to a provider's name, it requires that engine and fails with its reason when it declines;
 * {@code auto} (the default) takes the first offer.
 */
public final class StepEngines {
    /** System property choosing the engine. */
    public static final String PROPERTY = "distill.engine";
    /** Environment variable choosing the engine when the property is not set. */
    public static final String ENV = "DISTILL_ENGINE";
    /** The name of the DL4J path. */
    public static final String DL4J = "dl4j";

    private static final Logger LOG = LoggerFactory.getLogger(StepEngines.class);

    private StepEngines() {
    }

    /** The providers on the class path (a provider that fails to load is skipped with a warning). */
    public static List<StepEngineProvider> providers() {
        List<StepEngineProvider> found = new ArrayList<>();
        var it = ServiceLoader.load(StepEngineProvider.class, StepEngines.class.getClassLoader()).iterator();
        while (true) {
            try {
                if (!it.hasNext()) {
                    break;
                }
                found.add(it.next());
            } catch (ServiceConfigurationError | LinkageError e) {
                LOG.warn("skipping a step engine provider that failed to load: {}", e.toString());
            }
        }
        return found;
    }

    /** The requested engine name, or "auto". */
    static String requested() {
        String v = System.getProperty(PROPERTY);
        if (v == null || v.isBlank()) {
            v = System.getenv(ENV);
        }
        return v == null || v.isBlank() ? "auto" : v.trim();
    }

    /**
     * The choice for a run.
     *
     * @param engine      the engine, or null for the DL4J path
     * @param description what runs the steps and, for the DL4J path, why no engine was taken
     */
    record Choice(StepEngine engine, String description) {
    }

    static Choice choose(List<StepEngineProvider> providers, StepEngineProvider.Setup setup, String requested) {
        if (requested.equalsIgnoreCase(DL4J)) {
            return new Choice(null, DL4J + " (asked for by " + PROPERTY + ")");
        }
        boolean auto = requested.equalsIgnoreCase("auto");
        if (!auto && providers.stream().noneMatch(p -> p.name().equalsIgnoreCase(requested))) {
            List<String> names = new ArrayList<>(List.of(DL4J, "auto"));
            providers.forEach(p -> names.add(p.name()));
            throw new IllegalArgumentException(PROPERTY + "=" + requested + " names no step engine; known: " + String.join(", ", names));
        }
        if (!setup.featureTerms().isEmpty()) {
            String why = "feature losses run on the DL4J path";
            if (!auto) {
                throw new IllegalStateException("the step engine '" + requested + "' was asked for, but " + why
                        + " (an engine computes only the logit loss)");
            }
            return new Choice(null, DL4J + " (" + why + ")");
        }
        List<String> reasons = new ArrayList<>();
        for (StepEngineProvider p : providers) {
            if (!auto && !p.name().equalsIgnoreCase(requested)) {
                continue;
            }
            StepEngineProvider.Offer o;
            try {
                o = p.offer(setup);
            } catch (RuntimeException e) {
                o = StepEngineProvider.Offer.decline("failed: " + e);
            }
            if (o.engine() != null) {
                return new Choice(o.engine(), o.engine().describe());
            }
            reasons.add(p.name() + ": " + o.reason());
        }
        if (!auto) {
            throw new IllegalStateException("the step engine '" + requested + "' was asked for but declined: " + String.join("; ", reasons));
        }
        return new Choice(null, reasons.isEmpty() ? DL4J : DL4J + " (" + String.join("; ", reasons) + ")");
    }
}
