package org.distill4j.examples.recipe;

/** A recipe that cannot be used: the message starts with {@code file:line:column: path:}. */
public final class RecipeException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public RecipeException(String message) {
        super(message);
    }
}
