/* Bins: the bucket counts of a QuantileSketch (journeylens.domain.sketch), compiled.
 *
 * A mapping of bucket index (int) -> count (int) kept as one array of (index, count) pairs in
 * ascending index order, 16 bytes a bucket where a dict of Python ints takes about 100. What
 * makes it worth compiling is the worker's hot path: the scan (_rumscan.c) writes a batch's
 * buckets straight into new Bins, merging them into the window state is one linear pass over
 * both arrays, and the state is written from the two sorted lists `sorted_lists` returns.
 * It behaves as the dict it replaces (``PyBins`` in sketch.py is that dict, for where this
 * module is not built): setting an index replaces its count, `add` and `merge` add to it.
 */
#include "_bins.h"

#include <string.h>

static int reserve(BinsObject *b, Py_ssize_t need) {
    if (need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 8;
    while (cap < need) cap *= 2;
    Bin *grown = PyMem_Realloc(b->v, (size_t)cap * sizeof(Bin));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->v = grown;
    b->cap = cap;
    return 0;
}

BinsObject *bins_with_size(Py_ssize_t n) {
    BinsObject *b = PyObject_New(BinsObject, &BinsType);
    if (b == NULL) return NULL;
    b->v = NULL;
    b->n = b->cap = 0;
    if (reserve(b, n) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    b->n = n;
    return b;
}

/* Where ``index`` is, or where it goes (*found 0). */
static Py_ssize_t find(const BinsObject *b, int64_t index, int *found) {
    Py_ssize_t lo = 0, hi = b->n;
    if (hi > 0 && b->v[hi - 1].index < index) { /* the common case when filling in order */
        *found = 0;
        return hi;
    }
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (b->v[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < b->n && b->v[lo].index == index;
    return lo;
}

/* Set (``add`` 0) or add to (``add`` 1) the count of ``index``. */
static int put(BinsObject *b, int64_t index, int64_t count, int add) {
    int found;
    Py_ssize_t at = find(b, index, &found);
    if (found) {
        b->v[at].count = add ? b->v[at].count + count : count;
        return 0;
    }
    if (reserve(b, b->n + 1) < 0) return -1;
    memmove(&b->v[at + 1], &b->v[at], (size_t)(b->n - at) * sizeof(Bin));
    b->v[at].index = index;
    b->v[at].count = count;
    b->n++;
    return 0;
}

static int as_int64(PyObject *o, const char *what, int64_t *out) {
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "a bucket %s must be an int, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    long long x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = (int64_t)x;
    return 0;
}

static int put_objects(BinsObject *b, PyObject *key, PyObject *value, int add) {
    int64_t index, count;
    if (as_int64(key, "index", &index) < 0 || as_int64(value, "count", &count) < 0) return -1;
    return put(b, index, count, add);
}

/* Add ``other``'s counts into ``b``: one pass over both arrays. */
static int merge_bins(BinsObject *b, const BinsObject *other) {
    if (other->n == 0) return 0;
    if (b->n == 0) {
        if (reserve(b, other->n) < 0) return -1;
        memcpy(b->v, other->v, (size_t)other->n * sizeof(Bin));
        b->n = other->n;
        return 0;
    }
    Py_ssize_t room = b->n + other->n;
    Bin *out = PyMem_Malloc((size_t)room * sizeof(Bin));
    if (out == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t i = 0, j = 0, k = 0;
    while (i < b->n && j < other->n) {
        if (b->v[i].index < other->v[j].index) {
            out[k++] = b->v[i++];
        } else if (b->v[i].index > other->v[j].index) {
            out[k++] = other->v[j++];
        } else {
            out[k].index = b->v[i].index;
            out[k++].count = b->v[i++].count + other->v[j++].count;
        }
    }
    while (i < b->n) out[k++] = b->v[i++];
    while (j < other->n) out[k++] = other->v[j++];
    PyMem_Free(b->v);
    b->v = out;
    b->n = k;
    b->cap = room;
    return 0;
}

/* Counts from a Bins, a dict, anything with items(), or an iterable of (index, count) pairs:
 * set (the dict constructor's meaning) or added (``add``). */
static int take_counts(BinsObject *b, PyObject *src, int add) {
    if (PyObject_TypeCheck(src, &BinsType)) {
        BinsObject *other = (BinsObject *)src;
        if (add || b->n == 0) return merge_bins(b, other);
        for (Py_ssize_t i = 0; i < other->n; i++)
            if (put(b, other->v[i].index, other->v[i].count, 0) < 0) return -1;
        return 0;
    }
    if (PyDict_Check(src)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(src, &pos, &key, &value))
            if (put_objects(b, key, value, add) < 0) return -1;
        return 0;
    }
    PyObject *pairs;
    if (PyObject_HasAttrString(src, "items")) {
        PyObject *items = PyObject_CallMethod(src, "items", NULL);
        if (items == NULL) return -1;
        pairs = PyObject_GetIter(items);
        Py_DECREF(items);
    } else {
        pairs = PyObject_GetIter(src);
    }
    if (pairs == NULL) return -1;
    PyObject *pair;
    while ((pair = PyIter_Next(pairs)) != NULL) {
        PyObject *seq = PySequence_Fast(pair, "a bucket must be an (index, count) pair");
        Py_DECREF(pair);
        if (seq == NULL) break;
        if (PySequence_Fast_GET_SIZE(seq) != 2) {
            PyErr_SetString(PyExc_ValueError, "a bucket must be an (index, count) pair");
            Py_DECREF(seq);
            break;
        }
        int failed = put_objects(b, PySequence_Fast_GET_ITEM(seq, 0),
                                 PySequence_Fast_GET_ITEM(seq, 1), add) < 0;
        Py_DECREF(seq);
        if (failed) break;
    }
    Py_DECREF(pairs);
    return PyErr_Occurred() ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The type */

static PyObject *bins_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"counts", NULL};
    PyObject *counts = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Bins", kwlist, &counts)) return NULL;
    BinsObject *b = (BinsObject *)type->tp_alloc(type, 0);
    if (b == NULL) return NULL;
    if (counts != NULL && counts != Py_None && take_counts(b, counts, 0) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    return (PyObject *)b;
}

static void bins_dealloc(BinsObject *b) {
    PyMem_Free(b->v);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static Py_ssize_t bins_len(BinsObject *b) { return b->n; }

static PyObject *bins_getitem(BinsObject *b, PyObject *key) {
    int64_t index;
    int found;
    if (!PyLong_Check(key) || as_int64(key, "index", &index) < 0) {
        PyErr_Clear();
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    Py_ssize_t at = find(b, index, &found);
    if (!found) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return PyLong_FromLongLong(b->v[at].count);
}

static int bins_setitem(BinsObject *b, PyObject *key, PyObject *value) {
    if (value != NULL) return put_objects(b, key, value, 0);
    int64_t index;
    int found;
    if (as_int64(key, "index", &index) < 0) return -1;
    Py_ssize_t at = find(b, index, &found);
    if (!found) {
        PyErr_SetObject(PyExc_KeyError, key);
        return -1;
    }
    memmove(&b->v[at], &b->v[at + 1], (size_t)(b->n - at - 1) * sizeof(Bin));
    b->n--;
    return 0;
}

static int bins_contains(BinsObject *b, PyObject *key) {
    int64_t index;
    int found;
    if (!PyLong_Check(key)) return 0;
    if (as_int64(key, "index", &index) < 0) {
        PyErr_Clear(); /* too large to be an index here */
        return 0;
    }
    find(b, index, &found);
    return found;
}

/* 0: indexes, 1: counts */
static PyObject *column(BinsObject *b, int which) {
    PyObject *out = PyList_New(b->n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        PyObject *x = PyLong_FromLongLong(which ? b->v[i].count : b->v[i].index);
        if (x == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

static PyObject *bins_iter(BinsObject *b) {
    PyObject *keys = column(b, 0);
    if (keys == NULL) return NULL;
    PyObject *it = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return it;
}

static PyObject *bins_keys(BinsObject *b, PyObject *Py_UNUSED(ignored)) { return column(b, 0); }

static PyObject *bins_values(BinsObject *b, PyObject *Py_UNUSED(ignored)) { return column(b, 1); }

static PyObject *bins_items(BinsObject *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(b->n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        PyObject *pair = Py_BuildValue("(LL)", (long long)b->v[i].index, (long long)b->v[i].count);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, pair);
    }
    return out;
}

static PyObject *bins_sorted_lists(BinsObject *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *keys = column(b, 0);
    PyObject *counts = keys == NULL ? NULL : column(b, 1);
    if (counts == NULL) {
        Py_XDECREF(keys);
        return NULL;
    }
    return Py_BuildValue("(NN)", keys, counts);
}

static PyObject *bins_total(BinsObject *b, PyObject *Py_UNUSED(ignored)) {
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < b->n; i++) total += b->v[i].count;
    return PyLong_FromLongLong(total);
}

/* For each q, the bucket holding the value at rank q * (count - 1), as PyBins.buckets_at: the
 * same float rank, compared with exact cumulative counts (below 2^53 a double holds them). */
static PyObject *bins_buckets_at(BinsObject *b, PyObject *const *args, Py_ssize_t nargs) {
    int64_t zero = 0;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "buckets_at(qs, zero=0)");
        return NULL;
    }
    if (nargs == 2 && as_int64(args[1], "count", &zero) < 0) return NULL;
    PyObject *qs = PySequence_Fast(args[0], "qs must be a sequence of floats");
    if (qs == NULL) return NULL;
    int64_t total = zero;
    for (Py_ssize_t i = 0; i < b->n; i++) total += b->v[i].count;
    Py_ssize_t nq = PySequence_Fast_GET_SIZE(qs);
    PyObject *out = PyList_New(nq);
    if (out == NULL) {
        Py_DECREF(qs);
        return NULL;
    }
    for (Py_ssize_t k = 0; k < nq; k++) {
        double q = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(qs, k));
        if (q == -1.0 && PyErr_Occurred()) {
            Py_DECREF(out);
            Py_DECREF(qs);
            return NULL;
        }
        double rank = q * (double)(total - 1);
        PyObject *item = NULL;
        if (!((double)zero > rank)) {
            int64_t cumulative = zero;
            for (Py_ssize_t i = 0; i < b->n; i++) { /* the first bucket whose values pass it */
                cumulative += b->v[i].count;
                if ((double)cumulative > rank) {
                    item = PyLong_FromLongLong(b->v[i].index);
                    if (item == NULL) {
                        Py_DECREF(out);
                        Py_DECREF(qs);
                        return NULL;
                    }
                    break;
                }
            }
        }
        if (item == NULL) item = Py_NewRef(Py_None);
        PyList_SET_ITEM(out, k, item);
    }
    Py_DECREF(qs);
    return out;
}

static PyObject *bins_get(BinsObject *b, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(index, default=None)");
        return NULL;
    }
    PyObject *fallback = nargs == 2 ? args[1] : Py_None;
    if (!bins_contains(b, args[0])) {
        if (PyErr_Occurred()) return NULL;
        Py_INCREF(fallback);
        return fallback;
    }
    return bins_getitem(b, args[0]);
}

static PyObject *bins_add(BinsObject *b, PyObject *const *args, Py_ssize_t nargs) {
    int64_t index, count = 1;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "add(index, count=1)");
        return NULL;
    }
    if (as_int64(args[0], "index", &index) < 0) return NULL;
    if (nargs == 2 && as_int64(args[1], "count", &count) < 0) return NULL;
    if (put(b, index, count, 1) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *bins_merge(BinsObject *b, PyObject *other) {
    if (take_counts(b, other, 1) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *bins_copy(BinsObject *b, PyObject *Py_UNUSED(ignored)) {
    BinsObject *out = bins_with_size(b->n);
    if (out == NULL) return NULL;
    if (b->n) memcpy(out->v, b->v, (size_t)b->n * sizeof(Bin));
    return (PyObject *)out;
}

static PyObject *bins_from_lists(PyTypeObject *type, PyObject *args) {
    PyObject *indexes, *counts;
    if (!PyArg_ParseTuple(args, "OO:from_lists", &indexes, &counts)) return NULL;
    PyObject *ix = PySequence_Fast(indexes, "indexes must be a sequence");
    if (ix == NULL) return NULL;
    PyObject *cs = PySequence_Fast(counts, "counts must be a sequence");
    if (cs == NULL) {
        Py_DECREF(ix);
        return NULL;
    }
    BinsObject *b = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(ix);
    if (PySequence_Fast_GET_SIZE(cs) != n) {
        PyErr_SetString(PyExc_ValueError, "indexes and counts differ in length");
        goto done;
    }
    b = (BinsObject *)type->tp_alloc(type, 0);
    if (b == NULL || reserve(b, n) < 0) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t index, count;
        if (as_int64(PySequence_Fast_GET_ITEM(ix, i), "index", &index) < 0 ||
            as_int64(PySequence_Fast_GET_ITEM(cs, i), "count", &count) < 0)
            goto fail;
        if (b->n == 0 || b->v[b->n - 1].index < index) { /* ascending: as states are written */
            b->v[b->n].index = index;
            b->v[b->n++].count = count;
        } else if (put(b, index, count, 0) < 0) {
            goto fail;
        }
    }
    goto done;
fail:
    Py_CLEAR(b);
done:
    Py_DECREF(ix);
    Py_DECREF(cs);
    return (PyObject *)b;
}

static PyObject *bins_reduce(BinsObject *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *lists = bins_sorted_lists(b, NULL);
    if (lists == NULL) return NULL;
    PyObject *from_lists = PyObject_GetAttrString((PyObject *)Py_TYPE(b), "from_lists");
    if (from_lists == NULL) {
        Py_DECREF(lists);
        return NULL;
    }
    return Py_BuildValue("(NN)", from_lists, lists);
}

/* Equal when the same indexes have the same non-zero counts (a zero count is no bucket). */
static PyObject *bins_richcompare(PyObject *self, PyObject *other, int op) {
    if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(other, &BinsType))
        Py_RETURN_NOTIMPLEMENTED;
    const BinsObject *a = (const BinsObject *)self, *b = (const BinsObject *)other;
    Py_ssize_t i = 0, j = 0;
    int equal = 1;
    for (;;) {
        while (i < a->n && a->v[i].count == 0) i++;
        while (j < b->n && b->v[j].count == 0) j++;
        if (i == a->n || j == b->n) {
            equal = i == a->n && j == b->n;
            break;
        }
        if (a->v[i].index != b->v[j].index || a->v[i].count != b->v[j].count) {
            equal = 0;
            break;
        }
        i++;
        j++;
    }
    if (op == Py_NE) equal = !equal;
    return PyBool_FromLong(equal);
}

static PyObject *bins_repr(BinsObject *b) {
    PyObject *items = bins_items(b, NULL);
    if (items == NULL) return NULL;
    PyObject *out = PyUnicode_FromFormat("Bins(%R)", items);
    Py_DECREF(items);
    return out;
}

static PyMappingMethods bins_mapping = {
    .mp_length = (lenfunc)bins_len,
    .mp_subscript = (binaryfunc)bins_getitem,
    .mp_ass_subscript = (objobjargproc)bins_setitem,
};

static PySequenceMethods bins_sequence = {
    .sq_contains = (objobjproc)bins_contains,
};

static PyMethodDef bins_methods[] = {
    {"add", (PyCFunction)(void (*)(void))bins_add, METH_FASTCALL,
     "add(index, count=1): add ``count`` to the bucket ``index``."},
    {"merge", (PyCFunction)bins_merge, METH_O,
     "merge(other): add every count of ``other`` (Bins, a dict, or (index, count) pairs)."},
    {"get", (PyCFunction)(void (*)(void))bins_get, METH_FASTCALL,
     "get(index, default=None): the count of ``index``, or ``default``."},
    {"keys", (PyCFunction)bins_keys, METH_NOARGS, "The bucket indexes, ascending (a list)."},
    {"values", (PyCFunction)bins_values, METH_NOARGS, "The counts, by ascending index (a list)."},
    {"items", (PyCFunction)bins_items, METH_NOARGS, "(index, count) pairs, ascending (a list)."},
    {"sorted_lists", (PyCFunction)bins_sorted_lists, METH_NOARGS,
     "([index...], [count...]), by ascending index."},
    {"total", (PyCFunction)bins_total, METH_NOARGS, "The sum of the counts."},
    {"buckets_at", (PyCFunction)(void (*)(void))bins_buckets_at, METH_FASTCALL,
     "buckets_at(qs, zero=0): for each q, the index of the bucket holding the value at rank "
     "q * (count - 1), ``zero`` values counted below every bucket; None for a zero value."},
    {"copy", (PyCFunction)bins_copy, METH_NOARGS, "A copy."},
    {"from_lists", (PyCFunction)bins_from_lists, METH_VARARGS | METH_CLASS,
     "from_lists(indexes, counts): the bins of two parallel lists (a later index replaces an "
     "earlier one, as in a dict)."},
    {"__reduce__", (PyCFunction)bins_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

PyTypeObject BinsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "journeylens.domain._rumscan.Bins",
    .tp_doc = PyDoc_STR("Bins(counts=None): bucket index -> count of a QuantileSketch, in "
                        "ascending index order."),
    .tp_basicsize = sizeof(BinsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = bins_new,
    .tp_dealloc = (destructor)bins_dealloc,
    .tp_as_mapping = &bins_mapping,
    .tp_as_sequence = &bins_sequence,
    .tp_iter = (getiterfunc)bins_iter,
    .tp_methods = bins_methods,
    .tp_richcompare = bins_richcompare,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_repr = (reprfunc)bins_repr,
};
