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
        org.junit.jupiter.api.Assumptions.assumeFalse(a.available(), "a usable GPU is here: " + a.detail());
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
    void aFoundDeviceIsReportedUnavailableUntilTheKernelsAreValidatedUnlessOptedIn() {
        Availability a = CudaBackendProvider.withKernelStatus(Availability.available("NVIDIA H100 (sm_90)"), false);
        assertFalse(a.available());
        assertTrue(a.reasonText().contains("found NVIDIA H100 (sm_90)") && a.reasonText().contains("not been validated on a GPU")
                && a.reasonText().contains("-Ddistill.cuda.unvalidated=true"), a.reasonText());
        Availability opted = CudaBackendProvider.withKernelStatus(Availability.available("NVIDIA H100 (sm_90)"), true);
        assertTrue(opted.available());
        String nvcc = KernelImage.info().getProperty("nvcc", "none");
        assertTrue(opted.detail().contains(nvcc.equals("none") ? "kernels from NVRTC" : "kernels built by nvcc " + nvcc)
                && opted.detail().contains("(unvalidated)"), opted.detail());
        Availability none = Availability.unavailable("no CUDA device is visible");
        assertSame(none, CudaBackendProvider.withKernelStatus(none, true));
    }

    @Test
    void versionFormatting() {
        assertEquals("13.0", CudaProbe.version(13000));
        assertEquals("12.8", CudaProbe.version(12080));
    }
}
