package org.distill4j.cuda;

/**
 * A device address inside an open {@link DeviceBuffer} (from {@link DeviceBuffer#at}), for kernel
 * arguments and library calls that take a pointer into a buffer rather than its start.
 *
 * @param address the device address
 */
public record DevicePtr(long address) {
}
