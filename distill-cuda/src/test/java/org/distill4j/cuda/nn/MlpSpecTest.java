package org.distill4j.cuda.nn;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** What an {@link MlpSpec} refuses where it is made. */
class MlpSpecTest {

    /**
     * A layer without an activation was accepted and failed later, in the first forward, with a bare
     * NullPointerException from the activation switch; it is refused where it is made, naming the field.
     */
    @Test
    void aLayerWithoutAnActivationIsRefusedWhereItIsMade() {
        NullPointerException e = assertThrows(NullPointerException.class, () -> new MlpSpec.Layer(3, 4, null, 0));
        assertEquals("activation", e.getMessage());
        MlpSpec.Layer ok = new MlpSpec.Layer(3, 4, MlpSpec.Activation.TANH, 0.25);
        assertEquals(16, new MlpSpec(3, List.of(ok), MlpSpec.Optimizer.adam(1e-3)).parameters());
    }

    /**
     * A spec without an optimizer was accepted and failed later, where the optimizer was first used (the engine's
     * constructor, the reference step, the write-back), with a bare NullPointerException: it is refused where it is
     * made, naming the field.
     */
    @Test
    void aSpecWithoutAnOptimizerIsRefusedWhereItIsMade() {
        MlpSpec.Layer ok = new MlpSpec.Layer(3, 4, MlpSpec.Activation.TANH, 0);
        NullPointerException e = assertThrows(NullPointerException.class, () -> new MlpSpec(3, List.of(ok), null));
        assertEquals("optimizer", e.getMessage());
    }
}
