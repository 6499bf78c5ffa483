package org.distill4j.loss;

/**
 * Float64 reference values of the loss family, straight from the formulas (mean over rows). The
 * gradient references are central differences of these values, so the analytic gradients of the
 * implementations are checked against something derived independently.
 */
final class FamilyReference {
    private FamilyReference() {
    }

    /** A loss value as a function of the student logits (double, row-major). */
    interface Value {
        double at(double[] s);
    }

    static double[] logSoftmax(double[] x, int off, int v, double t) {
        return org.distill4j.testing.Float64Reference.logSoftmax(x, off, v, t);
    }

    static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    static double kl(double[] logA, double[] logB) {
        double k = 0;
        for (int i = 0; i < logA.length; i++) {
            double a = Math.exp(logA[i]);
            if (a > 0) {
                k += a * (logA[i] - logB[i]);
            }
        }
        return k;
    }

    /** log of the smallest float: the floor of teacher log-probabilities (at T = 1) in reverse KL. */
    static final double LOG_FLOOR = Math.log(Float.MIN_VALUE);

    /**
     * The teacher's tempered log-probabilities of one row after flooring those at T = 1 at {@link #LOG_FLOOR}
     * (zero-mass classes, -inf logits, included), as reverse KL takes them.
     */
    static double[] flooredTeacher(double[] t, int off, int v, double temp) {
        double[] lp = logSoftmax(t, off, v, 1);
        for (int i = 0; i < v; i++) {
            lp[i] = Math.max(lp[i], LOG_FLOOR);
        }
        return logSoftmax(lp, 0, v, temp);
    }

    /** T^2 KL(q || p), the teacher floored (see {@link #flooredTeacher}). */
    static double reverseKl(double[] s, double[] t, int rows, int v, double temp) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            total += temp * temp * kl(logSoftmax(s, r * v, v, temp), flooredTeacher(t, r * v, v, temp));
        }
        return total / rows;
    }

    static double forwardKl(double[] s, double[] t, int rows, int v, double temp) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            total += temp * temp * kl(logSoftmax(t, r * v, v, temp), logSoftmax(s, r * v, v, temp));
        }
        return total / rows;
    }

    static double gjsd(double[] s, double[] t, int rows, int v, double beta, double temp) {
        if (beta == 0) {
            return forwardKl(s, t, rows, v, temp);
        }
        if (beta == 1) {
            return reverseKl(s, t, rows, v, temp);
        }
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(t, r * v, v, temp);
            double[] lq = logSoftmax(s, r * v, v, temp);
            double[] lm = new double[v];
            for (int i = 0; i < v; i++) {
                lm[i] = Math.log(beta * Math.exp(lp[i]) + (1 - beta) * Math.exp(lq[i]));
            }
            total += temp * temp * (beta * kl(lp, lm) + (1 - beta) * kl(lq, lm));
        }
        return total / rows;
    }

    /**
     * DistiLLM's skew KL, straight from the paper: T^2 KL(p || alpha p + (1 - alpha) q) (forward KL at alpha = 0), or with
     * {@code reverse} T^2 KL(q || (1 - alpha) p + alpha q) (reverse KL, the teacher floored, at alpha = 0).
     */
    static double skewKl(double[] s, double[] t, int rows, int v, double alpha, double temp, boolean reverse) {
        if (alpha == 0) {
            return reverse ? reverseKl(s, t, rows, v, temp) : forwardKl(s, t, rows, v, temp);
        }
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(t, r * v, v, temp);
            double[] lq = logSoftmax(s, r * v, v, temp);
            double[] lm = new double[v];
            for (int i = 0; i < v; i++) {
                double p = Math.exp(lp[i]);
                double q = Math.exp(lq[i]);
                lm[i] = Math.log(reverse ? (1 - alpha) * p + alpha * q : alpha * p + (1 - alpha) * q);
            }
            total += temp * temp * (reverse ? kl(lq, lm) : kl(lp, lm));
        }
        return total / rows;
    }

    /**
     * DIST straight from the paper's formulas, materialized: the softmaxes of the counted rows, Pearson correlations with
     * means of the actual vectors and 1e-8 added to the product of the norms (the authors' code), T^2 (beta inter +
     * gamma intra). {@code counted} null: every row. {@code logOfProbabilities}: {@code t} holds probabilities.
     */
    static double dist(double[] s, double[] t, boolean logOfProbabilities, boolean[] counted, int rows, int v, double beta,
                       double gamma, double temp) {
        java.util.List<double[]> qs = new java.util.ArrayList<>();
        java.util.List<double[]> ps = new java.util.ArrayList<>();
        for (int r = 0; r < rows; r++) {
            if (counted != null && !counted[r]) {
                continue;
            }
            double[] tl = new double[v];
            for (int i = 0; i < v; i++) {
                tl[i] = logOfProbabilities ? Math.log(t[r * v + i]) : t[r * v + i];
            }
            double[] lq = logSoftmax(s, r * v, v, temp);
            double[] lp = logSoftmax(tl, 0, v, temp);
            double[] q = new double[v];
            double[] p = new double[v];
            for (int i = 0; i < v; i++) {
                q[i] = Math.exp(lq[i]);
                p[i] = Math.exp(lp[i]);
            }
            qs.add(q);
            ps.add(p);
        }
        int n = qs.size();
        if (n == 0) {
            return 0;
        }
        double inter = 0;
        for (int r = 0; r < n; r++) {
            inter += 1 - pearsonOf(qs.get(r), ps.get(r));
        }
        inter /= n;
        double intra = 0;
        for (int c = 0; c < v; c++) {
            double[] a = new double[n];
            double[] b = new double[n];
            for (int r = 0; r < n; r++) {
                a[r] = qs.get(r)[c];
                b[r] = ps.get(r)[c];
            }
            intra += 1 - pearsonOf(a, b);
        }
        intra /= v;
        return temp * temp * (beta * inter + gamma * intra);
    }

    private static double pearsonOf(double[] a, double[] b) {
        double ma = 0;
        double mb = 0;
        for (int i = 0; i < a.length; i++) {
            ma += a[i];
            mb += b[i];
        }
        ma /= a.length;
        mb /= b.length;
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (a[i] - ma) * (b[i] - mb);
            aa += (a[i] - ma) * (a[i] - ma);
            bb += (b[i] - mb) * (b[i] - mb);
        }
        return ab / (Math.sqrt(aa) * Math.sqrt(bb) + 1e-8);
    }

    /**
     * AKL from the paper's definition, with its weights taken at the student logits {@code at} (the implementation's
     * weights carry no gradient, so central differences of this function, {@code at} held, are its gradient): the
     * teacher's classes sorted by probability (a stable sort: equal ones in class order), the head those whose running
     * sum stays at most mu and the first, the weights the student's absolute gaps on head and tail over their sum (1/2
     * each without a gap), then T^2 (w_head KL(p || q) + w_tail KL(q || p)); the teacher floored as in reverse KL in
     * the reverse part only.
     */
    static double akl(double[] s, double[] t, int rows, int v, double mu, double temp, double[] at) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(t, r * v, v, temp);
            double[] lpFloored = flooredTeacher(t, r * v, v, temp);
            double[] lq = logSoftmax(s, r * v, v, temp);
            double[] lqAt = logSoftmax(at, r * v, v, temp);
            Integer[] order = new Integer[v];
            for (int i = 0; i < v; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> Double.compare(lp[b], lp[a]));
            double cum = 0;
            double gHead = 0;
            double gTail = 0;
            for (int j = 0; j < v; j++) {
                int c = order[j];
                double p = Math.exp(lp[c]);
                cum += p;
                double gap = Math.abs(p - Math.exp(lqAt[c]));
                if (j == 0 || cum <= mu) {
                    gHead += gap;
                } else {
                    gTail += gap;
                }
            }
            double g = gHead + gTail;
            double wHead = g > 0 ? gHead / g : 0.5;
            double wTail = g > 0 ? gTail / g : 0.5;
            total += temp * temp * (wHead * kl(lp, lq) + wTail * kl(lq, lpFloored));
        }
        return total / rows;
    }

    /**
     * ABKD's alpha-beta divergence as the paper writes it, with Math.pow on the probabilities:
     * T^2 * -1/(alpha beta) * sum (p^alpha q^beta - alpha/(alpha+beta) p^(alpha+beta) - beta/(alpha+beta) q^(alpha+beta)).
     */
    static double alphaBeta(double[] s, double[] t, int rows, int v, double alpha, double beta, double temp) {
        double total = 0;
        double ab = alpha + beta;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(t, r * v, v, temp);
            double[] lq = logSoftmax(s, r * v, v, temp);
            double sum = 0;
            for (int i = 0; i < v; i++) {
                double p = Math.exp(lp[i]);
                double q = Math.exp(lq[i]);
                sum += Math.pow(p, alpha) * Math.pow(q, beta) - alpha / ab * Math.pow(p, ab) - beta / ab * Math.pow(q, ab);
            }
            total += temp * temp * -sum / (alpha * beta);
        }
        return total / rows;
    }

    static double tvd(double[] s, double[] t, int rows, int v, double temp) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(t, r * v, v, temp);
            double[] lq = logSoftmax(s, r * v, v, temp);
            double d = 0;
            for (int i = 0; i < v; i++) {
                d += Math.abs(Math.exp(lp[i]) - Math.exp(lq[i]));
            }
            total += temp * temp * 0.5 * d;
        }
        return total / rows;
    }

    static double mse(double[] s, double[] t, int rows, int v) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double d = 0;
            for (int i = 0; i < v; i++) {
                double e = s[r * v + i] - t[r * v + i];
                d += e * e;
            }
            total += d / v;
        }
        return total / rows;
    }

    /** DKD per the paper: binary KL on [p_y, 1-p_y] and KL between renormalized non-target distributions. */
    static double dkd(double[] s, double[] t, int[] y, int rows, int v, double alpha, double beta, double temp, double warm) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(t, r * v, v, temp);
            double[] lq = logSoftmax(s, r * v, v, temp);
            total += warm * temp * temp * (alpha * tckd(lp, lq, y[r]) + beta * nckd(lp, lq, y[r]));
        }
        return total / rows;
    }

    static double tckd(double[] lp, double[] lq, int y) {
        double py = Math.exp(lp[y]);
        double qy = Math.exp(lq[y]);
        double restP = 0;
        double restQ = 0;
        for (int i = 0; i < lp.length; i++) {
            if (i != y) {
                restP += Math.exp(lp[i]);
                restQ += Math.exp(lq[i]);
            }
        }
        double k = py > 0 ? py * Math.log(py / qy) : 0;
        if (restP > 0) {
            k += restP * Math.log(restP / restQ);
        }
        return k;
    }

    static double nckd(double[] lp, double[] lq, int y) {
        int v = lp.length;
        if (v == 1) {
            return 0;
        }
        double restP = 0;
        double restQ = 0;
        for (int i = 0; i < v; i++) {
            if (i != y) {
                restP += Math.exp(lp[i]);
                restQ += Math.exp(lq[i]);
            }
        }
        double k = 0;
        for (int i = 0; i < v; i++) {
            if (i != y) {
                double ph = Math.exp(lp[i]) / restP;
                double qh = Math.exp(lq[i]) / restQ;
                if (ph > 0) {
                    k += ph * Math.log(ph / qh);
                }
            }
        }
        return k;
    }

    /** The k most probable classes of each row of teacher logits {@code td} and their log-probabilities, best first. */
    static void topKOf(double[] td, int rows, int v, int k, int[] ids, float[] lps) {
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(td, r * v, v, 1.0);
            Integer[] order = new Integer[v];
            for (int i = 0; i < v; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> Double.compare(lp[b], lp[a]));
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = order[j];
                lps[r * k + j] = (float) lp[order[j]];
            }
        }
    }

    /**
     * Top-k KD: renormalized over the k entries, or with a rest bucket. An entry of id {@link LogitBatch#ABSENT} is no
     * entry: the row has one class fewer in its top-k.
     */
    static double topk(double[] s, int[] ids, float[] lps, int k, int rows, int v, double temp, boolean restTail) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lq = logSoftmax(s, r * v, v, temp);
            int entries = 0;
            for (int j = 0; j < k; j++) {
                entries += ids[r * k + j] >= 0 ? 1 : 0;
            }
            boolean rest = restTail && entries < v; // with every class in the top-k none is outside: no rest bucket
            int n = rest ? k + 1 : k;
            double[] a = new double[n];
            double known = 0;
            for (int j = 0; j < k; j++) {
                a[j] = ids[r * k + j] >= 0 ? lps[r * k + j] / temp : Double.NEGATIVE_INFINITY;
                known += ids[r * k + j] >= 0 ? Math.exp(lps[r * k + j]) : 0;
            }
            if (rest) {
                a[k] = Math.log(Math.max(0, 1 - known)) / temp;
            }
            double z = 0;
            for (double x : a) {
                z += Math.exp(x);
            }
            double value = 0;
            boolean[] in = new boolean[v];
            for (int j = 0; j < k; j++) {
                if (ids[r * k + j] < 0) {
                    continue;
                }
                double p = Math.exp(a[j]) / z;
                in[ids[r * k + j]] = true;
                if (p > 0) {
                    value += p * (Math.log(p) - lq[ids[r * k + j]]);
                }
            }
            if (rest) {
                double p = Math.exp(a[k]) / z;
                double qr = 0;
                for (int i = 0; i < v; i++) {
                    if (!in[i]) {
                        qr += Math.exp(lq[i]);
                    }
                }
                if (p > 0) {
                    value += p * Math.log(p / qr);
                }
            }
            total += temp * temp * value;
        }
        return total / rows;
    }

    /**
     * z-score with the unbiased std floored at 1e-3 and eps 1e-7, as logit standardization does:
     * {@code (x - mean) / (max(std, 1e-3) + 1e-7)}, mean and std over the finite entries of the row; -inf entries
     * (zero mass) stay -inf, and a row with one finite entry becomes 0 there.
     */
    static double[] standardize(double[] x, int rows, int v) {
        double[] out = new double[x.length];
        for (int r = 0; r < rows; r++) {
            final int off = r * v;
            int[] fin = java.util.stream.IntStream.range(0, v).filter(i -> Double.isFinite(x[off + i])).toArray();
            for (int i = 0; i < v; i++) {
                out[r * v + i] = Double.NEGATIVE_INFINITY; // finite entries are overwritten below
            }
            int n = fin.length;
            if (n == 1) {
                out[r * v + fin[0]] = 0;
                continue;
            }
            double mean = 0;
            for (int i : fin) {
                mean += x[r * v + i];
            }
            mean /= n;
            double ss = 0;
            for (int i : fin) {
                ss += (x[r * v + i] - mean) * (x[r * v + i] - mean);
            }
            double sd = Math.sqrt(ss / (n - 1));
            for (int i : fin) {
                out[r * v + i] = (x[r * v + i] - mean) / (Math.max(sd, 1e-3) + 1e-7);
            }
        }
        return out;
    }

    /** kd (alpha, T) on double inputs. */
    static double kd(double[] s, double[] t, int[] y, int rows, int v, double temp, double alpha) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(t, r * v, v, temp);
            double[] lq = logSoftmax(s, r * v, v, temp);
            double ce = alpha > 0 ? -logSoftmax(s, r * v, v, 1)[y[r]] : 0;
            total += alpha * ce + (1 - alpha) * temp * temp * kl(lp, lq);
        }
        return total / rows;
    }

    /**
     * Logit standardization around kd as in the paper: {@code alpha * CE} on the raw student logits plus
     * {@code (1 - alpha) * T^2 * KL} between the standardized teacher and student rows.
     */
    static double logitStdKd(double[] s, double[] t, int[] y, int rows, int v, double temp, double alpha) {
        double ce = 0;
        if (alpha > 0) {
            for (int r = 0; r < rows; r++) {
                ce -= logSoftmax(s, r * v, v, 1)[y[r]];
            }
            ce /= rows;
        }
        return alpha * ce + (1 - alpha) * kd(standardize(s, rows, v), standardize(t, rows, v), y, rows, v, temp, 0);
    }

    /** Central difference of f at coordinate k of s, in double. */
    static double centralDifference(Value f, double[] s, int k, double h) {
        double keep = s[k];
        s[k] = keep + h;
        double up = f.at(s);
        s[k] = keep - h;
        double down = f.at(s);
        s[k] = keep;
        return (up - down) / (2 * h);
    }
}
