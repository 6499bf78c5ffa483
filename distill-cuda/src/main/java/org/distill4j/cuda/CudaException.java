package org.distill4j.cuda;

/**
 * A CUDA library call that failed: the call, the library's error name (e.g. {@code CUDA_ERROR_OUT_OF_MEMORY} from the
 * driver, {@code CUBLAS_STATUS_NOT_SUPPORTED} from cuBLASLt) and its message. Raised by {@link Cu#check} for driver
 * calls and by {@link CublasLt}'s check for cuBLASLt calls; {@link #library} says which, and so how to read
 * {@link #code}.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The library whose status a {@link CudaException} carries. */
    public enum Library {
        /** The CUDA driver API: {@link #code} is a {@code CUresult}. */
        DRIVER,
        /** cuBLASLt: {@link #code} is a {@code cublasStatus_t}. */
        CUBLAS_LT
    }

    /** The library's status code: a {@code CUresult} or a {@code cublasStatus_t}, as {@link #library} says. */
    private final int code;
    /** The call that failed, with the arguments that matter (e.g. sizes). */
    private final String call;
    /** The library's name for the status, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    private final String errorName;
    /** The library whose status {@link #code} is. */
    private final Library library;

    /** A failed CUDA driver call: {@code code} is its {@code CUresult}. */
    CudaException(int code, String call, String errorName, String message) {
        this(Library.DRIVER, code, call, errorName, message);
    }

    /** A failed call of {@code library}: {@code code} is that library's status. */
    CudaException(Library library, int code, String call, String errorName, String message) {
        super(call + " failed: " + errorName + " (" + code + ")" + (message == null || message.isEmpty() ? "" : ": " + message));
        this.code = code;
        this.call = call;
        this.errorName = errorName;
        this.library = library;
    }

    /**
     * The failed call's status in its {@link #library}'s numbering: the driver's {@code CUresult}, or cuBLASLt's
     * {@code cublasStatus_t} (the same number means different errors in the two).
     */
    public int code() {
        return code;
    }

    /** The library whose status {@link #code} and {@link #errorName} are. */
    public Library library() {
        return library;
    }

    /** The call, with the arguments that matter (e.g. sizes). */
    public String call() {
        return call;
    }

    /** The library's name of the error, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY} or {@code CUBLAS_STATUS_INVALID_VALUE}. */
    public String errorName() {
        return errorName;
    }
}
