package org.distill4j.cuda;

import java.util.Map;

/**
 * Status checks for CUDA driver calls, in one place. The error's name and message come from the driver
 * ({@code cuGetErrorName}, {@code cuGetErrorString}); where the driver cannot answer (it is the thing
 * that failed to load), a table of the common codes names them.
 */
final class Cu {
    /** The common CUresult codes (cuda.h), for when the driver cannot name them itself. */
    static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(0, "CUDA_SUCCESS"),
            Map.entry(1, "CUDA_ERROR_INVALID_VALUE"),
            Map.entry(2, "CUDA_ERROR_OUT_OF_MEMORY"),
            Map.entry(3, "CUDA_ERROR_NOT_INITIALIZED"),
            Map.entry(4, "CUDA_ERROR_DEINITIALIZED"),
            Map.entry(34, "CUDA_ERROR_STUB_LIBRARY"),
            Map.entry(35, "CUDA_ERROR_INSUFFICIENT_DRIVER"),
            Map.entry(100, "CUDA_ERROR_NO_DEVICE"),
            Map.entry(101, "CUDA_ERROR_INVALID_DEVICE"),
            Map.entry(200, "CUDA_ERROR_INVALID_IMAGE"),
            Map.entry(201, "CUDA_ERROR_INVALID_CONTEXT"),
            Map.entry(209, "CUDA_ERROR_NO_BINARY_FOR_GPU"),
            Map.entry(218, "CUDA_ERROR_INVALID_PTX"),
            Map.entry(222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"),
            Map.entry(400, "CUDA_ERROR_INVALID_HANDLE"),
            Map.entry(500, "CUDA_ERROR_NOT_FOUND"),
            Map.entry(700, "CUDA_ERROR_ILLEGAL_ADDRESS"),
            Map.entry(701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"),
            Map.entry(702, "CUDA_ERROR_LAUNCH_TIMEOUT"),
            Map.entry(719, "CUDA_ERROR_LAUNCH_FAILED"),
            Map.entry(803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"),
            Map.entry(999, "CUDA_ERROR_UNKNOWN"));

    static final int OUT_OF_MEMORY = 2;
    static final int NO_BINARY_FOR_GPU = 209;

    private Cu() {
    }

    /** Throws a {@link CudaException} naming {@code call} unless {@code rc} is CUDA_SUCCESS. */
    static void check(int rc, String call) {
        if (rc != 0) {
            throw failure(rc, call);
        }
    }

    static CudaException failure(int rc, String call) {
        return new CudaException(rc, call, errorName(rc), errorMessage(rc));
    }

    /** The driver's name for {@code rc}, or the table's, or {@code CUresult <rc>}. */
    static String errorName(int rc) {
        try {
            try (org.bytedeco.javacpp.PointerPointer<?> p = new org.bytedeco.javacpp.PointerPointer<>(1)) {
                if (org.bytedeco.cuda.global.cudart.cuGetErrorName(rc, p) == 0 && p.get(0) != null) {
                    return p.getString(0);
                }
            }
        } catch (LinkageError | RuntimeException e) {
            // the driver is what failed: fall back to the table
        }
        return tableName(rc);
    }

    static String tableName(int rc) {
        String n = NAMES.get(rc);
        return n != null ? n : "CUresult " + rc;
    }

    static String errorMessage(int rc) {
        try {
            try (org.bytedeco.javacpp.PointerPointer<?> p = new org.bytedeco.javacpp.PointerPointer<>(1)) {
                if (org.bytedeco.cuda.global.cudart.cuGetErrorString(rc, p) == 0 && p.get(0) != null) {
                    return p.getString(0);
                }
            }
        } catch (LinkageError | RuntimeException e) {
            // no driver message
        }
        return "";
    }
}
