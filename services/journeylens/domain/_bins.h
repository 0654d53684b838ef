/* Bins: the bucket counts of a QuantileSketch, compiled (see _bins.c). */
#ifndef JOURNEYLENS_BINS_H
#define JOURNEYLENS_BINS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    int64_t index, count;
} Bin;

typedef struct {
    PyObject_HEAD
    Bin *v; /* ascending by index, each index once */
    Py_ssize_t n, cap;
} BinsObject;

extern PyTypeObject BinsType;

/* A new Bins of ``n`` bins, uninitialised: the caller fills v[0..n) in ascending order. */
BinsObject *bins_with_size(Py_ssize_t n);

#endif
