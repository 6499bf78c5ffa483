package org.distill4j.backend;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackendsTest {

    /** A provider with a fixed probe answer. */
    private record Fake(String name, int priority, Availability availability) implements ComputeBackendProvider {
        @Override
        public Availability probe() {
            return availability;
        }

        @Override
        public ComputeBackend create() {
            return new ComputeBackend() {
                @Override
                public String name() {
                    return Fake.this.name;
                }

                @Override
                public String device() {
                    return "fake";
                }

                @Override
                public LossResult logitLoss(LogitLoss loss, LogitBatch batch, float[] gradOut, float upstream) {
                    return loss.compute(batch, gradOut, upstream);
                }

                @Override
                public void close() {
                }
            };
        }
    }

    private static final ComputeBackendProvider GPU_DOWN = new Fake("gpu", 100, Availability.unavailable("no device"));
    private static final ComputeBackendProvider GPU_UP = new Fake("gpu", 100, Availability.available("a device"));
    private static final ComputeBackendProvider CPU = new CpuBackendProvider();

    @Test
    void aProbeThatThrowsMakesItsBackendUnavailableAndTheNextIsChosen() {
        ComputeBackendProvider broken = new ComputeBackendProvider() {
            @Override
            public String name() {
                return "broken";
            }

            @Override
            public int priority() {
                return 200;
            }

            @Override
            public Availability probe() {
                return Availability.unavailable(); // no reason: refused by Availability, so the probe throws
            }

            @Override
            public ComputeBackend create() {
                throw new AssertionError("an unavailable backend is never created");
            }
        };
        try (ComputeBackend b = Backends.select(null, java.util.List.of(broken, CPU))) {
            assertEquals("cpu", b.name());
        }
        Backends.UnavailableBackendException e = org.junit.jupiter.api.Assertions.assertThrows(Backends.UnavailableBackendException.class,
                () -> Backends.select("broken", java.util.List.of(broken, CPU)));
        assertTrue(e.getMessage().contains("its probe threw java.lang.IllegalArgumentException"), e.getMessage());
    }

    @Test
    void serviceLoaderFindsTheCpuBackend() {
        assertTrue(Backends.providers().stream().anyMatch(p -> p.name().equals("cpu")));
    }

    @Test
    void automaticChoicePrefersTheHighestAvailablePriority() {
        assertEquals("gpu", Backends.select(null, List.of(GPU_UP, CPU)).name());
        assertEquals("cpu", Backends.select(null, List.of(GPU_DOWN, CPU)).name());
    }

    @Test
    void requestedBackendIsUsedEvenWhenABetterOneExists() {
        assertEquals("cpu", Backends.select("cpu", List.of(GPU_UP, CPU)).name());
    }

    @Test
    void unknownNameListsTheKnownOnes() {
        Backends.UnknownBackendException e = assertThrows(Backends.UnknownBackendException.class,
                () -> Backends.select("tpu", List.of(GPU_DOWN, CPU)));
        assertTrue(e.getMessage().contains("unknown backend 'tpu'") && e.getMessage().contains("known backends: gpu, cpu"),
                e.getMessage());
        assertEquals(List.of("gpu", "cpu"), e.known());
        e = assertThrows(Backends.UnknownBackendException.class, () -> Backends.select("tpu", "training.backend", List.of(CPU)));
        assertEquals("unknown backend 'tpu' (from training.backend); known backends: cpu (or auto)", e.getMessage());
    }

    @Test
    void requestedButUnavailableFailsWithTheProbeReason() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Backends.select("gpu", List.of(GPU_DOWN, CPU)));
        assertTrue(e.getMessage().contains("'gpu' was requested") && e.getMessage().contains("no device"), e.getMessage());
    }

    /**
     * An unavailable request says, in one line, which backend, from which setting, why it cannot run and what to use
     * instead, and is a type of its own, so a command line can report it as a setting to change.
     */
    @Test
    void requestedButUnavailableNamesTheSettingTheReasonAndTheAlternatives() {
        Backends.UnavailableBackendException e = assertThrows(Backends.UnavailableBackendException.class,
                () -> Backends.select("gpu", "-Ddistill.backend=GPU", List.of(GPU_DOWN, CPU)));
        assertEquals("backend 'gpu' was requested (-Ddistill.backend=GPU) but is unavailable: no device; available here: cpu"
                + " (request one of them, or auto for the best available)", e.getMessage());
        assertEquals("gpu", e.requested());
        assertEquals("-Ddistill.backend=GPU", e.origin());
        assertEquals(List.of("no device"), e.reasons());
        assertEquals(List.of("cpu"), e.available());
        e = assertThrows(Backends.UnavailableBackendException.class, () -> Backends.select("gpu", "training.backend", List.of(GPU_DOWN)));
        assertTrue(e.getMessage().endsWith("(training.backend) but is unavailable: no device; no backend is available here"),
                e.getMessage());
        assertEquals(List.of(), e.available());
    }

    /** The setting a request came from, as given: the property wins over the variable, as it does for the name. */
    @Test
    void theRequestsOriginIsTheSettingThatNamedIt() {
        Map<String, String> props = Map.of(Backends.PROPERTY, " cuda ");
        Map<String, String> env = Map.of(Backends.ENV, "CPU");
        assertEquals("-Ddistill.backend=cuda", Backends.requestOrigin(props::get, env::get));
        assertEquals("DISTILL_BACKEND=CPU", Backends.requestOrigin(k -> null, env::get));
        assertEquals("DISTILL_BACKEND=CPU", Backends.requestOrigin(Map.of(Backends.PROPERTY, " ")::get, env::get));
        assertNull(Backends.requestOrigin(k -> null, k -> null));
    }

    @Test
    void noneAvailableSaysWhyForEach() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.select(null, List.of(GPU_DOWN)));
        assertTrue(e.getMessage().contains("backend 'gpu' unavailable: no device"), e.getMessage());
    }

    @Test
    void propertyWinsOverEnvironmentAndAutoMeansNoPreference() {
        Map<String, String> props = Map.of(Backends.PROPERTY, "CPU");
        Map<String, String> env = Map.of(Backends.ENV, "cuda");
        assertEquals("cpu", Backends.requestedName(props::get, env::get));
        assertEquals("cuda", Backends.requestedName(k -> null, env::get));
        assertNull(Backends.requestedName(Map.of(Backends.PROPERTY, "auto")::get, env::get));
        assertNull(Backends.requestedName(k -> null, k -> null));
    }

    @Test
    void cpuBackendRunsTheLossAndDescribesTheMachine() {
        try (ComputeBackend b = new CpuBackendProvider().create()) {
            assertTrue(b.device().contains("cores"), b.device());
            float[] g = new float[4];
            LossResult r = b.logitLoss(new org.distill4j.loss.CrossEntropy(),
                    LogitBatch.ofLabels(2, 2, new float[]{1, 2, 3, 1}, new int[]{1, 0}), g, 1f);
            double expected = (Math.log1p(Math.exp(-1)) + Math.log1p(Math.exp(-2))) / 2;
            assertEquals(expected, r.value(), 1e-7);
        }
    }

    /**
     * An unavailable result carries at least one reason: one without had a reasonText() of "available", which a
     * command then printed as "backend 'x' unavailable: available".
     */
    @Test
    void anUnavailableResultWithoutAReasonIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Availability::unavailable);
        assertEquals("an unavailable backend needs at least one reason (what the user is shown), got none", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Availability(false, "found nothing", List.of()));
        assertEquals("no device", Availability.unavailable("no device").reasonText());
        assertEquals(List.of(), Availability.available("2 cores").reasons());
    }
}
