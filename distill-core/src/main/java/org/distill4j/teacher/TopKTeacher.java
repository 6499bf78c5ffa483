package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.TeacherValues;

import java.util.Objects;

/**
 * A dense teacher seen through its top-k classes, as an API that returns top-k logprobs would give
 * them. Useful to study how much of a teacher's signal top-k keeps, and as a live stand-in for a
 * stored top-k teacher. {@link #outputs} still returns the full rows (for agreement metrics).
 *
 * <p>Of a teacher that is already top-k ({@link SparseTeacher}, e.g. a top-k store, which has no full rows), the best
 * {@code k} of its entries: {@code k} can be at most its {@code k}.
 *
 * <p>For a loss at temperature T ({@link #topK(Batch, double)}: {@code topk-kd}) the entries are the top-k of the
 * teacher's rows for that temperature ({@link Teacher#outputs(Batch, double)}), as log-probabilities at T = 1 of those
 * rows, which the loss then softens at T. For a teacher whose rows do not depend on T that is the top-k of its rows, as
 * always; for an {@link EnsembleTeacher}, whose rows at T are {@code T log m_T}, the loss's softened top-k under the
 * default {@code renormalize} tail is {@code m_T} renormalized over the k classes of largest {@code m_T}. The
 * {@code rest} tail stays the documented approximation: the tail mass it tempers as one class is that of the rows at
 * T = 1 of the loss's reading ({@code 1 - sum of exp(entries)}), not {@code m_T}'s tail.
 */
public final class TopKTeacher implements SparseTeacher {
    private final Teacher teacher;
    private final int k;

    private TopKTeacher(Teacher teacher, int k) {
        this.teacher = teacher;
        this.k = k;
    }

    /** The top {@code k} classes of {@code teacher}, {@code 1 <= k <= classes} (of a top-k teacher, {@code <=} its k). */
    public static TopKTeacher of(Teacher teacher, int k) {
        Objects.requireNonNull(teacher, "teacher");
        if (k < 1 || k > teacher.classes()) {
            throw new IllegalArgumentException("top-k k is " + k + ", expected 1 <= k <= " + teacher.classes()
                    + " (the teacher's classes)");
        }
        if (teacher instanceof SparseTeacher sparse && k > sparse.k()) {
            throw new IllegalArgumentException("top-k k is " + k + ", but " + teacher.describe() + " holds only " + sparse.k()
                    + " entries per row; expected 1 <= k <= " + sparse.k());
        }
        return new TopKTeacher(teacher, k);
    }

    @Override
    public int k() {
        return k;
    }

    @Override
    public boolean hasDenseOutputs() {
        return !(teacher instanceof SparseTeacher sparse) || sparse.hasDenseOutputs();
    }

    @Override
    public TopK topK(Batch batch) {
        return topK(batch, 1.0);
    }

    /** The top-k of the teacher's rows at {@code temperature} (see the class comment). */
    @Override
    public TopK topK(Batch batch, double temperature) {
        if (teacher instanceof SparseTeacher sparse) {
            return best(sparse, batch, temperature);
        }
        int n = batch.size();
        int v = teacher.classes();
        float[] out = teacher.outputs(batch, temperature);
        int[] ids = new int[n * k];
        float[] lps = new float[n * k];
        double[] row = new double[v];
        int[] heap = new int[k];
        for (int r = 0; r < n; r++) {
            TeacherRows.logProbabilities(out, teacher.values(), r, v, row);
            // a min-heap of the k best indices (by log-probability; at a tie the smaller id is better, so rows are the same
            // whatever the order of work, and the same as StoreImport selects), then sorted best first
            int size = 0;
            for (int i = 0; i < v; i++) {
                if (size < k) {
                    heap[size] = i;
                    siftUp(heap, size++, row);
                } else if (worse(heap[0], i, row)) {
                    heap[0] = i;
                    siftDown(heap, size, row);
                }
            }
            for (int j = k - 1; j >= 0; j--) {
                int best = heap[0];
                heap[0] = heap[--size];
                siftDown(heap, size, row);
                ids[r * k + j] = best;
                lps[r * k + j] = (float) row[best];
            }
        }
        return new TopK(ids, lps, k);
    }

    /** The best {@code k} entries of each row of a top-k teacher, best first (fresh arrays: callers may write them). */
    private TopK best(SparseTeacher sparse, Batch batch, double temperature) {
        int n = batch.size();
        int tk = sparse.k();
        TopK in = sparse.topK(batch, temperature);
        if (in.k() != tk || in.ids().length != (long) n * tk || in.logProbs().length != (long) n * tk) {
            throw new IllegalStateException(sparse.describe() + " gave top-k rows of k " + in.k() + " with " + in.ids().length
                    + " ids and " + in.logProbs().length + " log-probabilities for " + n + " rows; expected k " + tk + " and "
                    + n + " x " + tk + " of each");
        }
        int[] ids = new int[n * k];
        float[] lps = new float[n * k];
        Integer[] order = new Integer[tk];
        for (int r = 0; r < n; r++) {
            int off = r * tk;
            for (int j = 0; j < tk; j++) {
                order[j] = off + j;
            }
            // the same ranking as of full rows: a higher log-probability, or the same and a smaller id; absent slots
            // (LogitBatch.ABSENT = -1, at -inf: the largest id unsigned) after every entry, so an entry of probability 0
            // is kept before them
            java.util.Arrays.sort(order, (a, b) -> in.logProbs()[a] != in.logProbs()[b]
                    ? Float.compare(in.logProbs()[b], in.logProbs()[a]) : Integer.compareUnsigned(in.ids()[a], in.ids()[b]));
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = in.ids()[order[j]];
                lps[r * k + j] = in.logProbs()[order[j]];
            }
        }
        return new TopK(ids, lps, k);
    }

    /** Whether class {@code a} ranks below class {@code b}: a lower log-probability, or the same and a larger id. */
    private static boolean worse(int a, int b, double[] key) {
        return key[a] < key[b] || (key[a] == key[b] && a > b);
    }

    private static void siftUp(int[] h, int i, double[] key) {
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!worse(h[i], h[p], key)) {
                return;
            }
            int t = h[p];
            h[p] = h[i];
            h[i] = t;
            i = p;
        }
    }

    private static void siftDown(int[] h, int size, double[] key) {
        int i = 0;
        while (true) {
            int l = 2 * i + 1;
            int r = l + 1;
            int m = i;
            if (l < size && worse(h[l], h[m], key)) {
                m = l;
            }
            if (r < size && worse(h[r], h[m], key)) {
                m = r;
            }
            if (m == i) {
                return;
            }
            int t = h[m];
            h[m] = h[i];
            h[i] = t;
            i = m;
        }
    }

    @Override
    public int classes() {
        return teacher.classes();
    }

    @Override
    public TeacherValues values() {
        return teacher.values();
    }

    @Override
    public float[] outputs(Batch batch) {
        return teacher.outputs(batch);
    }

    @Override
    public float[] outputs(Batch batch, double temperature) {
        return teacher.outputs(batch, temperature);
    }

    /** The wrapped teacher's feature: top-k selection changes the class scores, not the model's intermediate activations. */
    @Override
    public org.distill4j.data.Feature feature(Batch batch, String name) {
        return teacher.feature(batch, name);
    }

    /** Exactly the data the wrapped teacher serves (a stored teacher: only the dataset it labeled). */
    @Override
    public boolean serves(org.distill4j.data.Dataset data) {
        return teacher.serves(data);
    }

    @Override
    public boolean readsFeatures() {
        return teacher.readsFeatures();
    }

    @Override
    public String identity() {
        return "top-" + k + " of [" + teacher.identity() + "]";
    }

    @Override
    public String describe() {
        return "top-" + k + " of " + teacher.describe();
    }
}
