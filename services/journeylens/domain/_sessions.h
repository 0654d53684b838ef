/* SessionSet's hash and K-Minimum-Values union, compiled (see _sessions.c). */
#ifndef JOURNEYLENS_SESSIONS_H
#define JOURNEYLENS_SESSIONS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

uint64_t session_hash63(const char *data, Py_ssize_t n);
PyObject *sessions_hash63(PyObject *self, PyObject *id);
PyObject *sessions_hash63_all(PyObject *self, PyObject *ids);
PyObject *sessions_kmv_union(PyObject *self, PyObject *args);

#endif
