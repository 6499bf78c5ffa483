package org.distill4j.loss;

/**
 * A loss that compares temperature-softened distributions; a temperature schedule can change it per
 * epoch. Such losses multiply the divergence by {@code T^2} (Hinton et al.), so gradient magnitudes
 * stay comparable across temperatures.
 */
public interface TemperatureScaled {

    /** The current temperature. */
    double temperature();

    /** The same loss at temperature {@code t > 0}. */
    LogitLoss withTemperature(double t);
}
