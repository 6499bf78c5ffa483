package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.Dkd;
import org.distill4j.loss.GeneralizedJsd;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LogitStandardization;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.ReverseKl;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.TotalVariation;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.VocabularyAlignment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Teachers that give classes no mass ({@code -Infinity} logits of a PAD-aligned or masked vocabulary, zero probabilities):
 * a dense store keeps them as {@code -Infinity} in every dtype, and training from the store gives what training from the
 * live teacher gives.
 */
class ZeroMassStoreTest {
    static final int V = 9; // LabelerTest's 7-class teacher, PAD-aligned to 9 classes: 7 and 8 have no mass

    /** The PAD-aligned teacher, with one more class masked (-inf) on each row: class (sample index % 7). */
    static Teacher masked(Teacher padded) {
        return new Teacher() {
            @Override
            public int classes() {
                return V;
            }

            @Override
            public TeacherValues values() {
                return padded.values();
            }

            @Override
            public float[] outputs(Batch b) {
                float[] out = padded.outputs(b);
                for (int r = 0; r < b.size(); r++) {
                    out[r * V + b.indices()[r] % 7] = padded.values() == TeacherValues.LOGITS ? Float.NEGATIVE_INFINITY : 0f;
                }
                return out;
            }

            @Override
            public String describe() {
                return "masked " + padded.describe();
            }
        };
    }

    /** LabelerTest's teacher as probabilities (softmax in double, rounded to float). */
    static Teacher probabilities() {
        Teacher logits = new LabelerTest.SlowTeacher(0);
        return new Teacher() {
            @Override
            public int classes() {
                return 7;
            }

            @Override
            public TeacherValues values() {
                return TeacherValues.PROBABILITIES;
            }

            @Override
            public float[] outputs(Batch b) {
                float[] z = logits.outputs(b);
                float[] p = new float[z.length];
                for (int r = 0; r < b.size(); r++) {
                    double max = Double.NEGATIVE_INFINITY;
                    double sum = 0;
                    for (int c = 0; c < 7; c++) {
                        max = Math.max(max, z[r * 7 + c]);
                    }
                    for (int c = 0; c < 7; c++) {
                        sum += Math.exp(z[r * 7 + c] - max);
                    }
                    for (int c = 0; c < 7; c++) {
                        p[r * 7 + c] = (float) (Math.exp(z[r * 7 + c] - max) / sum);
                    }
                }
                return p;
            }

            @Override
            public String describe() {
                return "probabilities";
            }
        };
    }

    static List<LogitLoss> losses() {
        return List.of(new SoftTargetKd(4, 0.3), new SoftTargetKd(8, 0), new ReverseKl(1), new ReverseKl(4), new GeneralizedJsd(0.4, 2),
                new TotalVariation(2), new Dkd(1, 8, 4, 0), LogitStandardization.of(new SoftTargetKd(4, 0.2)));
    }

    static float roundTrip(ValueCodec codec, float v) {
        return SoftTargetStoreTest.codec(codec, v);
    }

    @Test
    void aPadAlignedTeachersMinusInfinityIsStoredExactlyAndTrainsAsTheLiveTeacher(@TempDir Path tmp) throws Exception {
        Dataset data = LabelerTest.data();
        Teacher live = masked(VocabularyAlignment.align(new LabelerTest.SlowTeacher(0), V, VocabularyAlignment.Mode.PAD));
        int[] all = IntStream.range(0, data.size()).toArray();
        Batch batch = Batch.of(data, all);
        float[] want = live.outputs(batch);
        int n = data.size();
        float[] student = student(n);
        for (ValueCodec codec : ValueCodec.values()) {
            Path p = tmp.resolve("pad-" + codec + ".d4j");
            Labeler.label(live, data, p, new Labeler.Options(0, codec, 16, 24, "pad"), null);
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                assertEquals(List.of(), s.verify(), codec + ": -Infinity is a valid value");
                float[] got = StoredTeacher.of(s, "pad").outputs(batch);
                int zeroMass = 0;
                for (int i = 0; i < want.length; i++) {
                    if (want[i] == Float.NEGATIVE_INFINITY) {
                        zeroMass++;
                        assertEquals(Float.NEGATIVE_INFINITY, got[i], 0f, codec + ": row " + i / V + ", class " + i % V);
                    } else {
                        assertEquals(roundTrip(codec, want[i]), got[i], 0f, codec + ": row " + i / V + ", class " + i % V);
                        assertTrue(Float.isFinite(got[i]), codec + ": row " + i / V + ", class " + i % V + " is " + got[i]);
                    }
                }
                assertEquals(3 * n, zeroMass, "two padded classes and one masked class a row");
                // f32 holds the teacher exactly: the same loss and gradient, bit for bit; f16 and bf16 hold its values rounded
                // and -Infinity as it is: the loss of those rounded values, bit for bit
                float[] rounded = want.clone();
                for (int i = 0; i < rounded.length; i++) {
                    rounded[i] = roundTrip(codec, rounded[i]);
                }
                for (LogitLoss loss : losses()) {
                    String what = codec + " " + loss.getClass().getSimpleName() + " " + loss.settings();
                    float[] gLive = new float[n * V];
                    float[] gStore = new float[n * V];
                    LossResult fromLive = loss.compute(LogitBatch.of(n, V, student, rounded, TeacherValues.LOGITS, data.labels()), gLive, 0.73f);
                    LossResult fromStore = loss.compute(LogitBatch.of(n, V, student, got, TeacherValues.LOGITS, data.labels()), gStore, 0.73f);
                    assertTrue(Double.isFinite(fromStore.value()), what + ": " + fromStore.value());
                    assertEquals(fromLive.value(), fromStore.value(), 0, what);
                    assertArrayEquals(gLive, gStore, 0f, what);
                }
            }
        }
    }

    /**
     * A probability teacher's zero probabilities are stored as -Infinity, not as a finite floor: a floor of
     * log(Float.MIN_VALUE) has mass at T > 1 (1.4e-45^(1/8) = 2.5e-6 a class at T = 8) and enters logit-std's mean and
     * deviation, so training from the store would differ from training from the live teacher.
     */
    @Test
    void aPadAlignedProbabilityTeachersZerosTrainAsTheLiveTeacher(@TempDir Path tmp) throws Exception {
        Dataset data = LabelerTest.data();
        Teacher live = masked(VocabularyAlignment.align(probabilities(), V, VocabularyAlignment.Mode.PAD));
        int n = data.size();
        Batch batch = Batch.of(data, IntStream.range(0, n).toArray());
        float[] p = live.outputs(batch);
        float[] student = student(n);
        Path path = tmp.resolve("pad-probs.d4j");
        Labeler.label(live, data, path, new Labeler.Options(0, ValueCodec.F32, 16, 24, "pad-probs"), null);
        try (SoftTargetStore s = SoftTargetStore.open(path)) {
            assertEquals(StoreHeader.ValueKind.LOG_PROBS, s.header().values());
            float[] got = StoredTeacher.of(s, "pad-probs").outputs(batch);
            for (int i = 0; i < p.length; i++) {
                if (p[i] == 0) {
                    assertEquals(Float.NEGATIVE_INFINITY, got[i], 0f, "row " + i / V + ", class " + i % V + ": zero mass");
                }
            }
            for (LogitLoss loss : losses()) {
                String what = loss.getClass().getSimpleName() + " " + loss.settings();
                float[] gLive = new float[n * V];
                float[] gStore = new float[n * V];
                LossResult fromLive = loss.compute(LogitBatch.of(n, V, student, p, TeacherValues.PROBABILITIES, data.labels()), gLive, 1f);
                LossResult fromStore = loss.compute(LogitBatch.of(n, V, student, got, TeacherValues.LOGITS, data.labels()), gStore, 1f);
                // the same targets, up to the rounding of log p to float
                assertEquals(fromLive.value(), fromStore.value(), 1e-6 * Math.max(1, Math.abs(fromLive.value())), what);
                for (int i = 0; i < gLive.length; i++) {
                    assertEquals(gLive[i], gStore[i], 1e-7, what + ": gradient at row " + i / V + ", class " + i % V);
                }
            }
        }
    }

    private static float[] student(int n) {
        Random rng = new Random(5);
        float[] s = new float[n * V];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (2 * rng.nextGaussian());
        }
        return s;
    }
}
