/**
 * Training state that survives an interruption: {@link org.distill4j.checkpoint.Checkpointable} is what
 * a student or a trainable feature loss implements so that {@code Distiller} can checkpoint it.
 */
package org.distill4j.checkpoint;
