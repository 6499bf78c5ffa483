package org.distill4j.train;

import org.distill4j.backend.ComputeBackend;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.function.Function;

/**
 * Chooses how a run's steps are computed: a {@link StepEngine} from the first provider that offers one,
 * else the DL4J path. {@code -Ddistill.engine} (or {@code DISTILL_ENGINE}) set to {@code dl4j} keeps the
 * DL4J path; set to a provider's name, it requires that engine and fails with an
 * {@link UnavailableEngineException} giving its reason when it declines; a name no provider has fails with an
 * {@link UnknownEngineException} listing the known ones; {@code auto} (the default) takes the first offer. A provider's
 * {@link StepEngineProvider.InvalidSettingException} (a malformed setting of its own) fails the run in every mode.
 *
 * <p>Both exceptions name the setting the request came from (e.g. {@code -Ddistill.engine=cuda-mlp}), so an
 * application can report it as a setting for the user to change, not as a failure of the run.
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
     * The setting that names the engine, as it was given: {@code -Ddistill.engine=cuda-mlp} or {@code DISTILL_ENGINE=cuda-mlp}
     * (the property wins, as in {@link #requested()}); null when neither is set.
     */
    static String requestOrigin(Function<String, String> properties, Function<String, String> env) {
        String v = properties.apply(PROPERTY);
        if (v != null && !v.isBlank()) {
            return "-D" + PROPERTY + "=" + v.trim();
        }
        v = env.apply(ENV);
        return v == null || v.isBlank() ? null : ENV + "=" + v.trim();
    }

    /**
     * Where {@code requested} came from: the property or variable when it holds that name, else
     * {@link Distiller.Builder#engine} (a program's own choice).
     */
    private static String originOf(String requested) {
        String origin = requestOrigin(System::getProperty, System::getenv);
        if (origin != null && origin.substring(origin.indexOf('=') + 1).equalsIgnoreCase(requested.trim())) {
            return origin;
        }
        return "Distiller.Builder.engine(\"" + requested + "\")";
    }

    /**
     * Checks the engine named by {@value #PROPERTY} / {@value #ENV} against the providers on the class path, so an
     * application can refuse a name that no run could use before it starts; whether a named engine accepts a run is
     * known only when the run asks it ({@link Distiller#run}).
     *
     * @throws UnknownEngineException when the setting names no engine
     */
    public static void checkRequested() {
        String requested = requested();
        known(providers(), requested, originOf(requested));
    }

    /**
     * As {@link #checkRequested()}, and also asks the engine named by the setting whether it can run anything on
     * {@code backend} ({@link StepEngineProvider#unavailableOn}): an application that knows its backend before its runs
     * fails at once on an engine that would decline them all, before it reads data or trains a teacher.
     *
     * @throws UnknownEngineException     when the setting names no engine
     * @throws UnavailableEngineException when the engine it names can take no run on {@code backend}
     */
    public static void checkRequested(ComputeBackend backend) {
        checkRequested(providers(), backend, requested());
    }

    /** As {@link #checkRequested(ComputeBackend)}, for {@code requested} among {@code providers}. */
    static void checkRequested(List<StepEngineProvider> providers, ComputeBackend backend, String requested) {
        String origin = originOf(requested);
        known(providers, requested, origin);
        for (StepEngineProvider p : providers) {
            if (!p.name().equalsIgnoreCase(requested)) {
                continue;
            }
            String why;
            try {
                why = p.unavailableOn(backend);
            } catch (RuntimeException e) {
                why = null; // offer() gives the run its reason
                LOG.debug("step engine {}: unavailableOn failed: {}", p.name(), e.toString());
            }
            if (why != null) {
                throw new UnavailableEngineException(requested, origin, List.of(why));
            }
        }
    }

    /** The known names, {@value #DL4J}, auto and the providers'; throws when {@code requested} is none of them. */
    private static void known(List<StepEngineProvider> providers, String requested, String origin) {
        if (requested.equalsIgnoreCase(DL4J) || requested.equalsIgnoreCase("auto")
                || providers.stream().anyMatch(p -> p.name().equalsIgnoreCase(requested))) {
            return;
        }
        List<String> names = new ArrayList<>(List.of(DL4J, "auto"));
        providers.forEach(p -> names.add(p.name()));
        throw new UnknownEngineException(requested, origin, names);
    }

    /**
     * What a run's numbers depend on, from its engine's description: {@value #DL4J} for every DL4J path, whose description
     * only adds why no engine was taken (how it was asked for, the providers' reasons, or none when no provider is on the
     * class path), none of which changes a number; else the engine's whole description, its name, options and device (a
     * GPU engine's numbers may differ between devices). A resume whose value differs from its checkpoint's warns that its
     * numbers will not match an uninterrupted run's bit for bit.
     */
    static String numbersOf(String description) {
        return description.equals(DL4J) || description.startsWith(DL4J + " (") ? DL4J : description;
    }

    /**
     * The choice for a run.
     *
     * @param engine      the engine, or null for the DL4J path
     * @param description what runs the steps and, for the DL4J path, why no engine was taken
     */
    record Choice(StepEngine engine, String description) {
    }

    /**
     * The choice for {@code requested}, which comes from {@value #PROPERTY} / {@value #ENV} when one of them holds it, else
     * from {@link Distiller.Builder#engine}.
     *
     * @throws UnknownEngineException     when {@code requested} names no engine
     * @throws UnavailableEngineException when the engine named declines this run
     */
    static Choice choose(List<StepEngineProvider> providers, StepEngineProvider.Setup setup, String requested) {
        return choose(providers, setup, requested, originOf(requested));
    }

    /** As {@link #choose(List, StepEngineProvider.Setup, String)}, the exceptions naming {@code origin} as the setting. */
    static Choice choose(List<StepEngineProvider> providers, StepEngineProvider.Setup setup, String requested, String origin) {
        if (requested.equalsIgnoreCase(DL4J)) {
            return new Choice(null, DL4J + " (asked for by " + origin + ")");
        }
        boolean auto = requested.equalsIgnoreCase("auto");
        known(providers, requested, origin);
        if (!setup.featureTerms().isEmpty()) {
            String why = "feature losses run on the DL4J path";
            if (!auto) {
                throw new UnavailableEngineException(requested, origin, List.of(why + " (an engine computes only the logit loss)"));
            }
            return new Choice(null, DL4J + " (" + why + ")");
        }
        List<String> reasons = new ArrayList<>();   // "name: why", for the record of an auto choice
        List<String> declined = new ArrayList<>();  // "why", for the one engine asked for by name
        for (StepEngineProvider p : providers) {
            if (!auto && !p.name().equalsIgnoreCase(requested)) {
                continue;
            }
            StepEngineProvider.Offer o;
            try {
                o = p.offer(setup);
            } catch (StepEngineProvider.InvalidSettingException e) {
                throw e; // a malformed setting is the user's to fix, not a reason to take another engine
            } catch (RuntimeException e) {
                o = StepEngineProvider.Offer.decline("failed: " + e);
            }
            if (o.engine() != null) {
                return new Choice(o.engine(), o.engine().describe());
            }
            reasons.add(p.name() + ": " + o.reason());
            declined.add(o.reason());
        }
        if (!auto) {
            throw new UnavailableEngineException(requested, origin, declined);
        }
        return new Choice(null, reasons.isEmpty() ? DL4J : DL4J + " (" + String.join("; ", reasons) + ")");
    }

    /**
     * A step engine requested by name declined the run (it cannot run here, or not this run: another backend, a loss or
     * model it has no step for, feature losses). The message names the engine and where the request came from, gives its
     * reasons and the engines that can be asked for instead, which always run: {@value #DL4J} and auto.
     */
    public static final class UnavailableEngineException extends IllegalStateException {
        private static final long serialVersionUID = 1L;
        /** The requested engine's name, as given. */
        private final String requested;
        /** Where the name came from, e.g. {@code -Ddistill.engine=cuda-mlp}. */
        private final String origin;
        /** Why the engine declined; an unmodifiable list. */
        private final List<String> reasons;

        UnavailableEngineException(String requested, String origin, List<String> reasons) {
            super("step engine '" + requested + "' was requested (" + origin + ") but declined: " + String.join("; ", reasons)
                    + "; available: " + DL4J + ", auto (request one of them; auto takes the first engine that offers, else " + DL4J + ")");
            this.requested = requested;
            this.origin = origin;
            this.reasons = List.copyOf(reasons);
        }

        /** The requested name, as given. */
        public String requested() {
            return requested;
        }

        /** Where the name came from, e.g. {@code -Ddistill.engine=cuda-mlp}. */
        public String origin() {
            return origin;
        }

        /** Why the engine declined. */
        public List<String> reasons() {
            return reasons;
        }

        /** The engines that can be requested instead: {@value #DL4J} and auto, which run on any setup. */
        public List<String> available() {
            return List.of(DL4J, "auto");
        }
    }

    /** A step engine requested by a name that is not {@value #DL4J}, auto or a provider's; the message lists the known names. */
    public static final class UnknownEngineException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        /** The requested engine's name, as given. */
        private final String requested;
        /** Where the name came from, e.g. {@code DISTILL_ENGINE=tpu}. */
        private final String origin;
        /** The names that can be requested; an unmodifiable list. */
        private final List<String> known;

        UnknownEngineException(String requested, String origin, List<String> known) {
            super("unknown step engine '" + requested + "' (from " + origin + "); known engines: " + String.join(", ", known));
            this.requested = requested;
            this.origin = origin;
            this.known = List.copyOf(known);
        }

        /** The requested name, as given. */
        public String requested() {
            return requested;
        }

        /** Where the name came from, e.g. {@code DISTILL_ENGINE=tpu}. */
        public String origin() {
            return origin;
        }

        /** {@value #DL4J}, auto and the providers' names, as they can be requested. */
        public List<String> known() {
            return known;
        }
    }
}
