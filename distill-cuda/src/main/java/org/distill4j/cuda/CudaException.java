package org.distill4j.cuda;

/**
 * A CUDA driver call that failed: the call, the driver's error name (e.g. {@code CUDA_ERROR_OUT_OF_MEMORY})
 * and its message. Raised by {@link Cu#check}, the one place every call's status is checked.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int code;
    private final String call;
    private final String errorName;

    CudaException(int code, String call, String errorName, String message) {
        super(call + " failed: " + errorName + " (" + code + ")" + (message == null || message.isEmpty() ? "" : ": " + message));
        this.code = code;
        this.call = call;
        this.errorName = errorName;
    }

    /** The driver's CUresult code. */
    public int code() {
        return code;
    }

    /** The call, with the arguments that matter (e.g. sizes). */
    public String call() {
        return call;
    }

    /** The driver's name of the error, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public String errorName() {
        return errorName;
    }
}
