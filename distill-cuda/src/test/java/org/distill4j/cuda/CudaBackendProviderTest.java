package org.distill4j.cuda;

import org.distill4j.backend.Availability;
import org.distill4j.backend.Backends;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.backend.ComputeBackendProvider;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CudaBackendProviderTest {

    @Test
    void isDiscoveredAheadOfTheCpu() {
        List<String> names = Backends.providers().stream().map(ComputeBackendProvider::name).toList();
        assertEquals(List.of("cuda", "cpu"), names);
    }

    @Test
    void probeNeverThrowsGivesReasonsAndIsRemembered() {
        CudaBackendProvider p = new CudaBackendProvider();
        Availability a = p.probe();
        Availability again = p.probe();
        assertSame(a, again, "the probe runs once");
        assertFalse(a.available(), "no CUDA kernels in this version, so never available");
        assertFalse(a.reasons().isEmpty());
        assertTrue(a.reasonText().length() > 20, a.reasonText());
    }

    @Test
    void automaticSelectionFallsBackToTheCpu() {
        try (ComputeBackend b = Backends.select(null, Backends.providers())) {
            assertEquals("cpu", b.name());
        }
    }

    @Test
    void requestingCudaFailsWithTheProbeReason() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Backends.select("cuda", Backends.providers()));
        assertTrue(e.getMessage().startsWith("backend 'cuda' was requested"), e.getMessage());
        assertTrue(e.getMessage().contains(new CudaBackendProvider().probe().reasonText()), e.getMessage());
    }

    @Test
    void aFoundDeviceIsStillReportedUnavailableUntilKernelsExist() {
        Availability a = CudaBackendProvider.withKernelStatus(Availability.available("NVIDIA H100 (sm_90)"));
        assertFalse(a.available());
        assertTrue(a.reasonText().contains("found NVIDIA H100 (sm_90)") && a.reasonText().contains("no CUDA loss kernels"),
                a.reasonText());
        Availability none = Availability.unavailable("no CUDA device is visible");
        assertSame(none, CudaBackendProvider.withKernelStatus(none));
    }

    @Test
    void versionFormatting() {
        assertEquals("13.0", CudaProbe.version(13000));
        assertEquals("12.8", CudaProbe.version(12080));
    }
}
