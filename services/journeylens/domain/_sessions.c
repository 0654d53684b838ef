/* The hot parts of SessionSet (journeylens.domain.sketch), compiled.
 *
 * hash63 / hash63_all: the stable 63-bit hash of a session id, ``blake2b(id.encode(),
 * digest_size=8)`` read big-endian and shifted right by one: exactly sketch.stable_hash63, so
 * compiled and pure-Python workers build the same K-Minimum-Values sketches. BLAKE2b is
 * written out here (RFC 7693) because calling hashlib per id costs several times the hash.
 * kmv_union: the k smallest distinct hashes of a sorted sketch and some new hashes.
 */
#include "_sessions.h"

#include <string.h>

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64(const unsigned char *p) {
    uint64_t x;
    memcpy(&x, p, sizeof(x));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x; /* BLAKE2b words are little-endian */
}

#define G(a, b, c, d, x, y)      \
    do {                         \
        a = a + b + (x);         \
        d = rotr(d ^ a, 32);     \
        c = c + d;               \
        b = rotr(b ^ c, 24);     \
        a = a + b + (y);         \
        d = rotr(d ^ a, 16);     \
        c = c + d;               \
        b = rotr(b ^ c, 63);     \
    } while (0)

static void compress(uint64_t h[8], const unsigned char block[128], uint64_t t, int last) {
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= t; /* the high word of the byte counter stays 0: ids are far shorter than 2^64 */
    if (last) v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = SIGMA[r];
        G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

uint64_t session_hash63(const char *data, Py_ssize_t n) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h[8];
    memcpy(h, IV, sizeof(h));
    h[0] ^= 0x01010000ULL ^ 8; /* no key, an 8-byte digest */
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        compress(h, p, t, 0);
        p += 128;
        n -= 128;
    }
    unsigned char last[128] = {0};
    memcpy(last, p, (size_t)n);
    t += (uint64_t)n;
    compress(h, last, t, 1);
    /* the digest is h[0]'s bytes, little-endian; Python reads them big-endian */
    return __builtin_bswap64(h[0]) >> 1;
}

static int hash_of(PyObject *id, uint64_t *out) {
    if (!PyUnicode_Check(id)) {
        PyErr_Format(PyExc_TypeError, "a session id must be a str, not %.100s",
                     Py_TYPE(id)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(id, &n);
    if (p == NULL) return -1;
    *out = session_hash63(p, n);
    return 0;
}

PyObject *sessions_hash63(PyObject *self, PyObject *id) {
    (void)self;
    uint64_t h;
    if (hash_of(id, &h) < 0) return NULL;
    return PyLong_FromUnsignedLongLong(h);
}

PyObject *sessions_hash63_all(PyObject *self, PyObject *ids) {
    (void)self;
    PyObject *it = PyObject_GetIter(ids);
    if (it == NULL) return NULL;
    Py_ssize_t hint = PyObject_LengthHint(ids, 0);
    PyObject *out = PyList_New(0);
    if (out == NULL || hint < 0) {
        Py_XDECREF(out);
        Py_DECREF(it);
        return NULL;
    }
    PyObject *id;
    while ((id = PyIter_Next(it)) != NULL) {
        uint64_t h;
        int failed = hash_of(id, &h) < 0;
        Py_DECREF(id);
        PyObject *x = failed ? NULL : PyLong_FromUnsignedLongLong(h);
        if (x == NULL || PyList_Append(out, x) < 0) {
            Py_XDECREF(x);
            break;
        }
        Py_DECREF(x);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static int as_hash(PyObject *x, uint64_t *out) {
    if (!PyLong_Check(x)) {
        PyErr_SetString(PyExc_TypeError, "a session hash must be an int");
        return -1;
    }
    *out = PyLong_AsUnsignedLongLong(x);
    return *out == (uint64_t)-1 && PyErr_Occurred() ? -1 : 0;
}

/* The k smallest distinct hashes of ``current`` (ascending, distinct: a sketch's) and ``new``.
 * Values of ``current`` are kept as the same int objects, so a union that takes nothing new
 * (the usual case once a sketch is full) costs a list copy. */
PyObject *sessions_kmv_union(PyObject *self, PyObject *args) {
    PyObject *current_obj, *new_obj;
    Py_ssize_t k;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOn:kmv_union", &current_obj, &new_obj, &k)) return NULL;
    if (k < 0) {
        PyErr_SetString(PyExc_ValueError, "k must not be negative");
        return NULL;
    }
    PyObject *cur = PySequence_Fast(current_obj, "hashes must be a sequence of ints");
    if (cur == NULL) return NULL;
    PyObject *fresh_seq = PySequence_Fast(new_obj, "new hashes must be a sequence of ints");
    if (fresh_seq == NULL) {
        Py_DECREF(cur);
        return NULL;
    }
    Py_ssize_t nc = PySequence_Fast_GET_SIZE(cur), nf = PySequence_Fast_GET_SIZE(fresh_seq);
    PyObject **items = PySequence_Fast_ITEMS(cur);
    uint64_t *current = PyMem_Malloc((size_t)(nc + nf + 1) * sizeof(uint64_t));
    uint64_t *fresh = current == NULL ? NULL : current + nc;
    PyObject *out = NULL;
    if (current == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nc; i++) {
        if (as_hash(items[i], &current[i]) < 0) goto done;
        if (i > 0 && current[i - 1] >= current[i]) {
            PyErr_SetString(PyExc_ValueError, "the sketch's hashes must ascend, each once");
            goto done;
        }
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t j = 0; j < nf; j++) {
        uint64_t h;
        if (as_hash(PySequence_Fast_GET_ITEM(fresh_seq, j), &h) < 0) goto done;
        if (nc >= k && (k == 0 || h >= current[k - 1])) continue; /* cannot be among the k */
        fresh[kept++] = h;
    }
    if (kept > 1) qsort(fresh, (size_t)kept, sizeof(uint64_t), cmp_u64);
    out = PyList_New(0);
    if (out == NULL) goto done;
    Py_ssize_t i = 0, j = 0;
    while (PyList_GET_SIZE(out) < k && (i < nc || j < kept)) {
        PyObject *item;
        uint64_t x;
        if (j == kept || (i < nc && current[i] <= fresh[j])) {
            x = current[i];
            item = items[i++];
            Py_INCREF(item);
        } else {
            x = fresh[j++];
            item = PyLong_FromUnsignedLongLong(x);
            if (item == NULL) {
                Py_CLEAR(out);
                goto done;
            }
        }
        while (j < kept && fresh[j] == x) j++;
        int failed = PyList_Append(out, item) < 0;
        Py_DECREF(item);
        if (failed) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    PyMem_Free(current);
    Py_DECREF(cur);
    Py_DECREF(fresh_seq);
    return out;
}
