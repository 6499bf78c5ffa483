# Writes the .npy fixtures NpyArrayTest reads: real numpy.save output, so the reader is checked against
# NumPy's own writer (versions 1 and 2, both byte orders, C and Fortran order). Run: python3 make-fixtures.py
import numpy as np

i = np.arange(35, dtype=np.float64).reshape(7, 5)
a = i * 0.37 - 5.1  # NpyArrayTest computes the same values in Java
a[0, 0] = 1e4
a[1, 1] = -1e4
np.save('logits-f8.npy', a)
np.save('logits-f4.npy', a.astype(np.float32))
np.save('logits-f2.npy', a.astype(np.float32).astype(np.float16))
np.save('logits-be-f4.npy', a.astype('>f4'))
np.save('logits-be-f2.npy', a.astype(np.float32).astype('>f2'))
np.save('logits-3d-f4.npy', a.astype(np.float32).reshape(1, 7, 5))
np.save('logits-fortran-f4.npy', np.asfortranarray(a.astype(np.float32)))
with open('logits-v2-f4.npy', 'wb') as f:
    np.lib.format.write_array(f, a.astype(np.float32), version=(2, 0))
with open('logits-v3-f4.npy', 'wb') as f:
    np.lib.format.write_array(f, a.astype(np.float32), version=(3, 0))
ids = (np.arange(21).reshape(7, 3) * 3) % 5
np.save('ids-i8.npy', ids.astype(np.int64))
np.save('ids-u2.npy', ids.astype(np.uint16))
np.save('vector-f4.npy', np.arange(5, dtype=np.float32))
