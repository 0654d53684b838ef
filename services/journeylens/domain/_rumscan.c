/* The compiled scan of the worker's RUM hot path (journeylens.domain.aggregation).
 *
 * scan: one journey's raw `rum.beacons.v1` messages (JSON bytes) straight into the cells
 * `pre_aggregate_rum` builds, without making a Python object per field; the Python side
 * (`pre_aggregate_rum_raw`) turns its output into row states. It takes only what it reads
 * exactly as the Python path would: plain ASCII strings without escapes, numbers of the JSON
 * grammar, and every field of the types the contract gives. Any other message (and every
 * message with a rare part: errors, API errors, conversions, network errors, probe traffic,
 * more than MAX_DEPS dependencies, a timestamp not in the UTC ISO form) is marked "not taken",
 * and the caller decodes and aggregates it in Python, so the result is the Python path's
 * result in every case. Nothing here keeps state between calls. The reading itself runs
 * without the GIL (on its own references to the messages), so the worker's fetch loop and
 * its stores go on beside a scan; only building the result holds it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_bins.h"
#include "_sessions.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_DEPS 32
#define MAX_NUMBER_LEN 64
#define MAX_INT_DIGITS 15 /* integers beyond 2^53 would compare differently as doubles */
#define N_METRICS 6       /* lcp, inp, cls, fcp, ttfb, navigation duration */
#define N_VITALS 5
#define N_DIMS 4 /* device_class, country, browser, connection_type: the Python group order */

/* ------------------------------------------------------------------------------------------ */
/* JSON reading */

enum { J_MISSING = 0, J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_OBJ, J_ARR };

typedef struct {
    const char *p;
    Py_ssize_t n;
} Str;

typedef struct {
    const char *p;
    const char *end;
    int bad; /* not taken: unreadable here (Python decides what it is) */
} Cur;

static inline void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* Bytes that end the fast read of a string: the quote, and what this scan does not take
 * (escapes, control characters, non-ASCII bytes). */
static unsigned char STOP[256];

static void init_stop(void) {
    for (int ch = 0; ch < 256; ch++) STOP[ch] = ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x80;
}

/* A string without escapes, control characters or non-ASCII bytes. */
static int read_string(Cur *c, Str *out) {
    if (c->p >= c->end || *c->p != '"') {
        c->bad = 1;
        return -1;
    }
    const char *start = ++c->p;
    const char *q = start;
    const char *end = c->end;
    while (q < end && !STOP[(unsigned char)*q]) q++;
    if (q < end && *q == '"') {
        out->p = start;
        out->n = q - start;
        c->p = q + 1;
        return 0;
    }
    c->bad = 1;
    return -1;
}

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number of the JSON grammar; *is_int when it has neither fraction nor exponent. With
 * out == NULL the number is only checked (a field this scan skips). The value is the double
 * nearest the decimal, as orjson's: exact mantissa and power of ten combined in one correctly
 * rounded operation when both are exact doubles (Clinger's fast path), strtod otherwise. */
static int read_number(Cur *c, double *out, int *is_int) {
    const char *s = c->p;
    const char *q = s;
    const char *end = c->end;
    int negative = 0, digits = 0, exp_negative = 0;
    uint64_t mantissa = 0;
    int64_t exponent = 0, explicit_exp = 0;
    *is_int = 1;
    if (q < end && *q == '-') {
        negative = 1;
        q++;
    }
    if (q < end && *q == '0') {
        q++;
        digits = 1;
    } else if (q < end && *q >= '1' && *q <= '9') {
        while (q < end && *q >= '0' && *q <= '9') {
            if (digits < 19) mantissa = mantissa * 10 + (uint64_t)(*q - '0');
            q++;
            digits++;
        }
    } else {
        c->bad = 1;
        return -1;
    }
    int int_digits = digits;
    if (q < end && *q == '.') {
        *is_int = 0;
        q++;
        if (q >= end || *q < '0' || *q > '9') {
            c->bad = 1;
            return -1;
        }
        while (q < end && *q >= '0' && *q <= '9') {
            if (digits < 19) {
                mantissa = mantissa * 10 + (uint64_t)(*q - '0');
                exponent--;
            }
            q++;
            digits++;
        }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        *is_int = 0;
        q++;
        if (q < end && (*q == '+' || *q == '-')) exp_negative = *q++ == '-';
        if (q >= end || *q < '0' || *q > '9') {
            c->bad = 1;
            return -1;
        }
        while (q < end && *q >= '0' && *q <= '9') {
            if (explicit_exp < 100000) explicit_exp = explicit_exp * 10 + (*q - '0');
            q++;
        }
    }
    c->p = q;
    if (out == NULL) return 0;
    if (*is_int && int_digits > MAX_INT_DIGITS) { /* beyond 2^53 ints compare differently */
        c->bad = 1;
        return -1;
    }
    exponent += exp_negative ? -explicit_exp : explicit_exp;
    double value;
    if (digits <= 15 && exponent >= -22 && exponent <= 22) {
        value = (double)mantissa; /* exact: below 10^15 < 2^53 */
        value = exponent < 0 ? value / POW10[-exponent] : value * POW10[exponent];
        if (negative) value = -value;
    } else {
        Py_ssize_t len = q - s;
        if (len >= MAX_NUMBER_LEN) {
            c->bad = 1;
            return -1;
        }
        char buf[MAX_NUMBER_LEN];
        memcpy(buf, s, (size_t)len);
        buf[len] = '\0';
        value = strtod(buf, NULL); /* correctly rounded, as orjson's */
    }
    if (!isfinite(value)) {
        c->bad = 1;
        return -1;
    }
    *out = value;
    return 0;
}

static int match_literal(Cur *c, const char *word, Py_ssize_t n) {
    if (c->end - c->p >= n && memcmp(c->p, word, (size_t)n) == 0) {
        c->p += n;
        return 0;
    }
    c->bad = 1;
    return -1;
}

static int skip_value(Cur *c, int depth);

static int skip_container(Cur *c, int depth, char close, int object) {
    if (depth > MAX_DEPTH) {
        c->bad = 1;
        return -1;
    }
    c->p++; /* the opening bracket */
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        if (object) {
            Str key;
            ws(c);
            if (read_string(c, &key) < 0) return -1;
            ws(c);
            if (c->p >= c->end || *c->p != ':') {
                c->bad = 1;
                return -1;
            }
            c->p++;
        }
        ws(c);
        if (skip_value(c, depth + 1) < 0) return -1;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        c->bad = 1;
        return -1;
    }
}

static int skip_value(Cur *c, int depth) {
    if (c->p >= c->end) {
        c->bad = 1;
        return -1;
    }
    Str s;
    int is_int;
    switch (*c->p) {
    case '"':
        return read_string(c, &s);
    case '{':
        return skip_container(c, depth, '}', 1);
    case '[':
        return skip_container(c, depth, ']', 0);
    case 't':
        return match_literal(c, "true", 4);
    case 'f':
        return match_literal(c, "false", 5);
    case 'n':
        return match_literal(c, "null", 4);
    default:
        return read_number(c, NULL, &is_int);
    }
}

/* The kind of the value at the cursor, reading scalars; containers are left for the caller. */
static int peek_kind(Cur *c) {
    if (c->p >= c->end) return J_MISSING;
    switch (*c->p) {
    case '"':
        return J_STR;
    case '{':
        return J_OBJ;
    case '[':
        return J_ARR;
    case 't':
        return J_TRUE;
    case 'f':
        return J_FALSE;
    case 'n':
        return J_NULL;
    default:
        return J_NUM;
    }
}

/* A string or null (or the literal false/true/number: not taken). */
static int read_str_or_null(Cur *c, int *kind, Str *out) {
    int k = peek_kind(c);
    if (k == J_STR) {
        *kind = J_STR;
        return read_string(c, out);
    }
    if (k == J_NULL) {
        *kind = J_NULL;
        return match_literal(c, "null", 4);
    }
    c->bad = 1;
    return -1;
}

/* A number or null. */
static int read_num_or_null(Cur *c, int *has, double *out, int *is_int) {
    int k = peek_kind(c);
    if (k == J_NULL) {
        *has = 0;
        return match_literal(c, "null", 4);
    }
    if (k == J_NUM) {
        *has = 1;
        return read_number(c, out, is_int);
    }
    c->bad = 1;
    return -1;
}

/* Iterates the members of an object: call with the cursor on '{'. Returns 1 with the key when
 * there is a member (cursor on its value), 0 at the end, -1 when unreadable. */
static int next_member(Cur *c, int *first, Str *key) {
    if (*first) {
        c->p++; /* '{' */
        ws(c);
        *first = 0;
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return 0;
        }
    } else {
        ws(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return 0;
        }
        if (c->p >= c->end || *c->p != ',') {
            c->bad = 1;
            return -1;
        }
        c->p++;
        ws(c);
    }
    if (read_string(c, key) < 0) return -1;
    ws(c);
    if (c->p >= c->end || *c->p != ':') {
        c->bad = 1;
        return -1;
    }
    c->p++;
    ws(c);
    return 1;
}

static inline int key_is(const Str *key, const char *name) {
    /* the first byte before the length: most keys differ there */
    return key->n > 0 && key->p[0] == name[0] && (size_t)key->n == strlen(name) &&
           memcmp(key->p, name, (size_t)key->n) == 0;
}

/* Each wanted key once per object: a repeated one is not taken (Python keeps the last). */
static inline int seen_once(Cur *c, unsigned *seen, int bit) {
    if (*seen & (1u << bit)) {
        c->bad = 1;
        return 0;
    }
    *seen |= 1u << bit;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* One event */

typedef struct {
    Str host;
    int host_kind;
    Str provider;
    int provider_kind;
    int64_t requests;
    int64_t failures;
    double total;
} Dep;

typedef struct {
    int has_event_id, ts_kind, journey_kind, step_kind, synthetic_kind, sid_kind, kind_kind;
    Str ts, journey, step, sid, kind;
    int vit_has[N_VITALS];
    double vit[N_VITALS];
    int nav_has;
    double nav_duration;
    Str ctx[N_DIMS];
    int ctx_kind[N_DIMS];
    int rate_has;
    double rate;
    int ndeps;
    Dep deps[MAX_DEPS];
} Event;

static const char *const VITAL_NAMES[N_VITALS] = {"lcp_ms", "inp_ms", "cls", "fcp_ms", "ttfb_ms"};
static const char *const DIM_NAMES[N_DIMS] = {"device_class", "country", "browser", "connection_type"};

/* Which of ``names`` the key is, or -1. */
static int key_index(const Str *key, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (key_is(key, names[i])) return i;
    return -1;
}

/* One wanted field of an object, read into ``into``: ``field`` indexes the names given to
 * read_members. 0 when read, -1 when not taken. */
typedef int (*FieldReader)(Cur *c, void *into, int field);

/* The members of the object at the cursor: each of ``names`` (at most once) is handed to
 * ``read_field``, any other member is checked and skipped. */
static int read_members(Cur *c, const char *const *names, int n, FieldReader read_field,
                        void *into, int depth) {
    int first = 1, r;
    unsigned seen = 0;
    Str key;
    while ((r = next_member(c, &first, &key)) == 1) {
        int found = key_index(&key, names, n);
        if (found < 0) {
            if (skip_value(c, depth) < 0) return -1;
            continue;
        }
        if (!seen_once(c, &seen, found) || read_field(c, into, found) < 0 || c->bad) return -1;
    }
    return r < 0 ? -1 : 0;
}

static int vital_field(Cur *c, void *into, int field) {
    Event *ev = into;
    int is_int;
    return read_num_or_null(c, &ev->vit_has[field], &ev->vit[field], &is_int);
}

static int read_vitals(Cur *c, Event *ev) {
    return read_members(c, VITAL_NAMES, N_VITALS, vital_field, ev, 2);
}

static const char *const NAVIGATION_NAMES[1] = {"duration_ms"};

static int navigation_field(Cur *c, void *into, int field) {
    Event *ev = into;
    int is_int;
    (void)field;
    return read_num_or_null(c, &ev->nav_has, &ev->nav_duration, &is_int);
}

static int read_navigation(Cur *c, Event *ev) {
    return read_members(c, NAVIGATION_NAMES, 1, navigation_field, ev, 2);
}

static int context_field(Cur *c, void *into, int field) {
    Event *ev = into;
    return read_str_or_null(c, &ev->ctx_kind[field], &ev->ctx[field]);
}

static int read_context(Cur *c, Event *ev) {
    return read_members(c, DIM_NAMES, N_DIMS, context_field, ev, 2);
}

static int read_int_or_null(Cur *c, int64_t *out) {
    int has = 0, is_int = 1;
    double d = 0;
    if (read_num_or_null(c, &has, &d, &is_int) < 0) return -1;
    if (has && !is_int) { /* Python would count a float: not taken */
        c->bad = 1;
        return -1;
    }
    *out = has ? (int64_t)d : 0;
    return 0;
}

enum { D_HOST, D_PROVIDER, D_REQUESTS, D_FAILURES, D_TOTAL, N_DEP_KEYS };
static const char *const DEP_NAMES[N_DEP_KEYS] = {
    "host", "provider", "requests", "failures", "total_duration_ms",
};

static int dependency_field(Cur *c, void *into, int field) {
    Dep *dep = into;
    int has, is_int;
    switch (field) {
    case D_HOST:
        return read_str_or_null(c, &dep->host_kind, &dep->host);
    case D_PROVIDER:
        return read_str_or_null(c, &dep->provider_kind, &dep->provider);
    case D_REQUESTS:
        return read_int_or_null(c, &dep->requests);
    case D_FAILURES:
        return read_int_or_null(c, &dep->failures);
    default: /* D_TOTAL */
        if (read_num_or_null(c, &has, &dep->total, &is_int) < 0) return -1;
        if (!has) dep->total = 0.0;
        return 0;
    }
}

static int read_dependency(Cur *c, Dep *dep) {
    memset(dep, 0, sizeof(*dep));
    return read_members(c, DEP_NAMES, N_DEP_KEYS, dependency_field, dep, 3);
}

static int read_dependencies(Cur *c, Event *ev) {
    c->p++; /* '[' */
    ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        ws(c);
        if (ev->ndeps >= MAX_DEPS || peek_kind(c) != J_OBJ) {
            c->bad = 1;
            return -1;
        }
        if (read_dependency(c, &ev->deps[ev->ndeps]) < 0) return -1;
        ev->ndeps++;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return 0;
        }
        c->bad = 1;
        return -1;
    }
}

/* null, or an empty array (a falsy value: no error). */
static int read_no_errors(Cur *c) {
    int k = peek_kind(c);
    if (k == J_NULL) return match_literal(c, "null", 4);
    if (k == J_ARR) {
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return 0;
        }
    }
    c->bad = 1;
    return -1;
}

/* null, or a container of the kind ``wanted`` read by ``reader``. */
static int read_or_null(Cur *c, int kind, int wanted, int (*reader)(Cur *, Event *), Event *ev) {
    if (kind == J_NULL) return match_literal(c, "null", 4);
    if (kind != wanted || reader(c, ev) < 0) {
        c->bad = 1;
        return -1;
    }
    return 0;
}

enum {
    K_EVENT_ID, K_TIMESTAMP, K_JOURNEY, K_STEP, K_SYNTHETIC, K_SESSION, K_KIND, K_VITALS,
    K_NAVIGATION, K_CONTEXT, K_ERRORS, K_API_ERRORS, K_DEPENDENCIES, K_SAMPLE_RATE,
    K_CONVERSION_VALUE, N_KEYS
};
static const char *const KEY_NAMES[N_KEYS] = {
    "event_id", "timestamp", "journey", "step", "synthetic", "session_id", "kind", "vitals",
    "navigation", "context", "errors", "api_errors", "dependencies", "sample_rate",
    "conversion_value",
};

static int event_field(Cur *c, void *into, int field) {
    Event *ev = into;
    int k = peek_kind(c), is_int;
    Str id;
    switch (field) {
    case K_EVENT_ID: /* only checked: a string, as rum_problem wants it (or null) */
        ev->has_event_id = 1;
        return read_str_or_null(c, &k, &id);
    case K_TIMESTAMP:
        return read_str_or_null(c, &ev->ts_kind, &ev->ts);
    case K_JOURNEY:
        return read_str_or_null(c, &ev->journey_kind, &ev->journey);
    case K_STEP:
        return read_str_or_null(c, &ev->step_kind, &ev->step);
    case K_SYNTHETIC: /* probe traffic (true) is counted by the Python path */
        if (k == J_FALSE) return match_literal(c, "false", 5);
        if (k == J_NULL) return match_literal(c, "null", 4);
        c->bad = 1;
        return -1;
    case K_SESSION:
        return read_str_or_null(c, &ev->sid_kind, &ev->sid);
    case K_KIND:
        return read_str_or_null(c, &ev->kind_kind, &ev->kind);
    case K_VITALS:
        return read_or_null(c, k, J_OBJ, read_vitals, ev);
    case K_NAVIGATION:
        return read_or_null(c, k, J_OBJ, read_navigation, ev);
    case K_CONTEXT:
        return read_or_null(c, k, J_OBJ, read_context, ev);
    case K_ERRORS:
    case K_API_ERRORS:
        return read_no_errors(c);
    case K_DEPENDENCIES:
        return read_or_null(c, k, J_ARR, read_dependencies, ev);
    case K_SAMPLE_RATE:
        return read_num_or_null(c, &ev->rate_has, &ev->rate, &is_int);
    default: /* K_CONVERSION_VALUE: read by conversions only, which are not taken */
        return skip_value(c, 1);
    }
}

/* Reads one message into *ev; 0 when taken, -1 when not. */
static int read_event(const char *data, Py_ssize_t size, Event *ev) {
    Cur cur = {data, data + size, 0};
    Cur *c = &cur;
    memset(ev, 0, offsetof(Event, deps));
    ws(c);
    if (peek_kind(c) != J_OBJ || read_members(c, KEY_NAMES, N_KEYS, event_field, ev, 1) < 0)
        return -1;
    ws(c);
    if (c->bad || c->p != c->end) return -1; /* unreadable, or something after the object */
    if (!ev->has_event_id || ev->ts_kind == J_MISSING) return -1; /* Python rejects it */
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Timestamps: the UTC ISO fast path of domain.windows.epoch_seconds */

static int digits(const char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS…" ending in "Z" or "+00:00"; anything else is not taken. */
static int epoch_seconds(const Str *s, int64_t *out) {
    const char *p = s->p;
    Py_ssize_t n = s->n;
    int year, month, day, hour, minute, second;
    if (n < 20 || p[16] != ':') return -1;
    if (!(p[n - 1] == 'Z' || (n >= 26 && memcmp(p + n - 6, "+00:00", 6) == 0))) return -1;
    if (digits(p, 4, &year) || p[4] != '-' || digits(p + 5, 2, &month) || p[7] != '-' ||
        digits(p + 8, 2, &day) || p[10] != 'T' || digits(p + 11, 2, &hour) || p[13] != ':' ||
        digits(p + 14, 2, &minute) || digits(p + 17, 2, &second))
        return -1;
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > month_days[month - 1] ||
        hour > 23 || minute > 59)
        return -1;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap) return -1;
    *out = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Accumulation */

/* The accumulation runs without the GIL: it calls no Python API, and a function that fails
 * returns -1 only when memory ran out (the caller raises MemoryError once it holds the GIL). */

/* Room for one more item in a growable array (doubling from ``first``); -1 when there is none. */
static int reserve(void **items, Py_ssize_t *cap, Py_ssize_t n, size_t size, Py_ssize_t first) {
    if (n < *cap) return 0;
    Py_ssize_t grown_cap = *cap ? *cap * 2 : first;
    void *grown = realloc(*items, (size_t)grown_cap * size);
    if (grown == NULL) return -1;
    *items = grown;
    *cap = grown_cap;
    return 0;
}

#define RESERVE(items, n, cap, first) \
    reserve((void **)&(items), &(cap), (n), sizeof(*(items)), (first))

typedef struct {
    int64_t *v;
    Py_ssize_t n, cap;
} IVec;

static int ivec_push(IVec *a, int64_t x) {
    if (RESERVE(a->v, a->n, a->cap, 16) < 0) return -1;
    a->v[a->n++] = x;
    return 0;
}

typedef struct {
    int group, dim;
    Str value;
    IVec metric[N_METRICS]; /* sketch bucket indexes, `zero` for the zero bucket */
    IVec rate_order;        /* batch rate indexes in first-seen order */
    IVec rate_views;        /* views at each of them */
    int64_t satisfied, tolerating, frustrated;
    IVec sessions; /* indexes into Acc.sids, repeats included */
} Cell;

typedef struct {
    Str host;
    int provider_kind;
    Str provider;
    int64_t requests, failures;
    IVec buckets;
} DepAcc;

typedef struct {
    Str step;
    int64_t start;
    IVec cells[N_DIMS]; /* cell indexes per dimension, first-seen order */
    DepAcc *deps;
    Py_ssize_t ndeps, capdeps;
} Group;

typedef struct {
    Str step;
    int64_t count;
} Late;

/* Open addressing over (hash, index + 1). */
typedef struct {
    uint64_t *hash;
    int64_t *slot;
    size_t cap, n;
} Table;

static uint64_t hash_bytes(const char *p, Py_ssize_t n, uint64_t seed) {
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static int table_grow(Table *t) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint64_t *hash = calloc(cap, sizeof(uint64_t));
    int64_t *slot = calloc(cap, sizeof(int64_t));
    if (hash == NULL || slot == NULL) {
        free(hash);
        free(slot);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slot[i]) continue;
        size_t j = t->hash[i] & (cap - 1);
        while (slot[j]) j = (j + 1) & (cap - 1);
        hash[j] = t->hash[i];
        slot[j] = t->slot[i];
    }
    free(t->hash);
    free(t->slot);
    t->hash = hash;
    t->slot = slot;
    t->cap = cap;
    return 0;
}

/* The slot of the entry with hash ``h`` for which ``same(ctx, index, key)`` holds, or the empty
 * slot where it goes (then *found is 0). Grows the table first when half full. */
static int64_t table_slot(Table *t, uint64_t h, int (*same)(const void *, int64_t, const void *),
                          const void *ctx, const void *key, int *found) {
    if (t->n * 2 >= t->cap && table_grow(t) < 0) return -1;
    size_t j = h & (t->cap - 1);
    while (t->slot[j]) {
        if (t->hash[j] == h && same(ctx, t->slot[j] - 1, key)) {
            *found = 1;
            return (int64_t)j;
        }
        j = (j + 1) & (t->cap - 1);
    }
    *found = 0;
    return (int64_t)j;
}

static void table_put(Table *t, int64_t j, uint64_t h, int64_t index) {
    t->hash[j] = h;
    t->slot[j] = index + 1;
    t->n++;
}

typedef struct {
    Group *groups;
    Py_ssize_t ngroups, capgroups;
    Cell *cells;
    Py_ssize_t ncells, capcells;
    Table group_table, cell_table;
    double *rates;
    Py_ssize_t nrates, caprates;
    Late *late;
    Py_ssize_t nlate, caplate;
    Str *sids; /* the distinct session ids, first-seen order */
    Py_ssize_t nsids, capsids;
    Table sid_table;
} Acc;

static int same_sid(const void *ctx, int64_t index, const void *key) {
    const Str *a = &((const Acc *)ctx)->sids[index], *b = key;
    return a->n == b->n && memcmp(a->p, b->p, (size_t)a->n) == 0;
}

/* The index of a session id among the scan's distinct ones. */
static int64_t find_sid(Acc *a, const Str *sid) {
    uint64_t h = hash_bytes(sid->p, sid->n, 0x165667B19E3779F9ULL);
    int found;
    int64_t j = table_slot(&a->sid_table, h, same_sid, a, sid, &found);
    if (j < 0) return -1;
    if (found) return a->sid_table.slot[j] - 1;
    if (RESERVE(a->sids, a->nsids, a->capsids, 256) < 0) return -1;
    a->sids[a->nsids] = *sid;
    table_put(&a->sid_table, j, h, a->nsids);
    return a->nsids++;
}

typedef struct {
    const Str *step;
    int64_t start;
} GroupKey;

static int same_group(const void *ctx, int64_t index, const void *key) {
    const Group *g = &((const Acc *)ctx)->groups[index];
    const GroupKey *k = key;
    return g->start == k->start && g->step.n == k->step->n &&
           memcmp(g->step.p, k->step->p, (size_t)g->step.n) == 0;
}

static int64_t find_group(Acc *a, const Str *step, int64_t start) {
    GroupKey key = {step, start};
    uint64_t h = hash_bytes(step->p, step->n, (uint64_t)start * 0x9E3779B97F4A7C15ULL);
    int found;
    int64_t j = table_slot(&a->group_table, h, same_group, a, &key, &found);
    if (j < 0) return -1;
    if (found) return a->group_table.slot[j] - 1;
    if (RESERVE(a->groups, a->ngroups, a->capgroups, 16) < 0) return -1;
    Group *g = &a->groups[a->ngroups];
    memset(g, 0, sizeof(*g));
    g->step = *step;
    g->start = start;
    table_put(&a->group_table, j, h, a->ngroups);
    return a->ngroups++;
}

typedef struct {
    int64_t group;
    int dim;
    const Str *value;
} CellKey;

static int same_cell(const void *ctx, int64_t index, const void *key) {
    const Cell *cell = &((const Acc *)ctx)->cells[index];
    const CellKey *k = key;
    return cell->group == k->group && cell->dim == k->dim && cell->value.n == k->value->n &&
           memcmp(cell->value.p, k->value->p, (size_t)cell->value.n) == 0;
}

static int64_t find_cell(Acc *a, int64_t group, int dim, const Str *value) {
    CellKey key = {group, dim, value};
    uint64_t seed = (uint64_t)(group * N_DIMS + dim + 1) * 0xC2B2AE3D27D4EB4FULL;
    uint64_t h = hash_bytes(value->p, value->n, seed);
    int found;
    int64_t j = table_slot(&a->cell_table, h, same_cell, a, &key, &found);
    if (j < 0) return -1;
    if (found) return a->cell_table.slot[j] - 1;
    if (RESERVE(a->cells, a->ncells, a->capcells, 64) < 0) return -1;
    Cell *cell = &a->cells[a->ncells];
    memset(cell, 0, sizeof(*cell));
    cell->group = (int)group;
    cell->dim = dim;
    cell->value = *value;
    if (ivec_push(&a->groups[group].cells[dim], a->ncells) < 0) return -1;
    table_put(&a->cell_table, j, h, a->ncells);
    return a->ncells++;
}

static int64_t rate_index(Acc *a, double rate) {
    for (Py_ssize_t i = 0; i < a->nrates; i++)
        if (a->rates[i] == rate) return i;
    if (RESERVE(a->rates, a->nrates, a->caprates, 8) < 0) return -1;
    a->rates[a->nrates] = rate;
    return a->nrates++;
}

static int count_view(Cell *cell, int64_t rate) {
    for (Py_ssize_t i = 0; i < cell->rate_order.n; i++) {
        if (cell->rate_order.v[i] == rate) {
            cell->rate_views.v[i]++;
            return 0;
        }
    }
    if (ivec_push(&cell->rate_order, rate) < 0) return -1;
    return ivec_push(&cell->rate_views, 1);
}

static int add_late(Acc *a, const Str *step) {
    for (Py_ssize_t i = 0; i < a->nlate; i++) {
        if (a->late[i].step.n == step->n && memcmp(a->late[i].step.p, step->p, (size_t)step->n) == 0) {
            a->late[i].count++;
            return 0;
        }
    }
    if (RESERVE(a->late, a->nlate, a->caplate, 8) < 0) return -1;
    a->late[a->nlate].step = *step;
    a->late[a->nlate].count = 1;
    a->nlate++;
    return 0;
}

static int add_dep(Group *g, const Dep *d, double inv, double lowest, int64_t zero) {
    static const char UNKNOWN[] = "unknown";
    Str host = d->host;
    if (d->host_kind != J_STR || host.n == 0) {
        host.p = UNKNOWN;
        host.n = 7;
    }
    DepAcc *acc = NULL;
    for (Py_ssize_t i = 0; i < g->ndeps; i++) {
        if (g->deps[i].host.n == host.n && memcmp(g->deps[i].host.p, host.p, (size_t)host.n) == 0) {
            acc = &g->deps[i];
            break;
        }
    }
    if (acc == NULL) {
        if (RESERVE(g->deps, g->ndeps, g->capdeps, 4) < 0) return -1;
        acc = &g->deps[g->ndeps++];
        memset(acc, 0, sizeof(*acc));
        acc->host = host;
        acc->provider_kind = d->provider_kind == J_STR ? J_STR : J_NULL;
        acc->provider = d->provider;
    } else if (acc->provider_kind != J_STR && d->provider_kind == J_STR) {
        acc->provider_kind = J_STR;
        acc->provider = d->provider;
    }
    acc->requests += d->requests;
    acc->failures += d->failures;
    if (d->requests) {
        double value = d->total / (double)d->requests;
        return ivec_push(&acc->buckets, value > lowest ? (int64_t)ceil(log(value) * inv) : zero);
    }
    return 0;
}

static inline int str_eq(const Str *s, const char *text) {
    return s->n > 0 && s->p[0] == text[0] && (size_t)s->n == strlen(text) &&
           memcmp(s->p, text, (size_t)s->n) == 0;
}

typedef struct {
    Str name;
    int journey_level;
    double apdex_t;
} StepInfo;

typedef struct {
    Str journey;
    StepInfo *steps;
    Py_ssize_t nsteps;
    int64_t window_s;
    double closed_to, inv, lowest;
    int64_t zero;
} Params;

/* 1: aggregated; 0: not taken (the caller decodes it); -1: out of memory. */
static int take_event(Acc *a, const Params *P, const Event *ev, int64_t *max_ts,
                      int64_t *n_unmapped) {
    static const char UNKNOWN[] = "unknown";
    if (ev->journey_kind != J_STR || ev->journey.n != P->journey.n ||
        memcmp(ev->journey.p, P->journey.p, (size_t)P->journey.n) != 0)
        return 0; /* not the journey it was keyed by: the Python path says why */
    if (ev->kind_kind == J_STR && (str_eq(&ev->kind, "conversion") || str_eq(&ev->kind, "network_error")))
        return 0;
    if (ev->ts_kind != J_STR) return 0;
    int64_t ts;
    if (epoch_seconds(&ev->ts, &ts) < 0) return 0;
    const StepInfo *step = NULL;
    if (ev->step_kind == J_STR) {
        for (Py_ssize_t i = 0; i < P->nsteps; i++) {
            if (P->steps[i].name.n == ev->step.n &&
                memcmp(P->steps[i].name.p, ev->step.p, (size_t)ev->step.n) == 0) {
                step = &P->steps[i];
                break;
            }
        }
    }
    if (step == NULL || step->journey_level) {
        (*n_unmapped)++;
        return 1;
    }
    if (ts > *max_ts) *max_ts = ts;
    int64_t rem = ts % P->window_s;
    if (rem < 0) rem += P->window_s;
    int64_t start = ts - rem;
    if ((double)start <= P->closed_to) return add_late(a, &ev->step) < 0 ? -1 : 1;
    int64_t group = find_group(a, &ev->step, start);
    if (group < 0) return -1;
    Cell *row[N_DIMS];
    int64_t idx[N_DIMS];
    for (int d = 0; d < N_DIMS; d++) {
        Str value = ev->ctx[d];
        if (ev->ctx_kind[d] != J_STR || value.n == 0) {
            value.p = UNKNOWN;
            value.n = 7;
        }
        idx[d] = find_cell(a, group, d, &value);
        if (idx[d] < 0) return -1;
    }
    for (int d = 0; d < N_DIMS; d++) row[d] = &a->cells[idx[d]]; /* after every realloc */
    if (ev->sid_kind == J_STR && ev->sid.n > 0) {
        int64_t sid = find_sid(a, &ev->sid);
        if (sid < 0) return -1;
        for (int d = 0; d < N_DIMS; d++)
            if (ivec_push(&row[d]->sessions, sid) < 0) return -1;
    }
    for (int m = 0; m < N_VITALS; m++) {
        if (!ev->vit_has[m]) continue;
        double v = ev->vit[m];
        int64_t x = v > P->lowest ? (int64_t)ceil(log(v) * P->inv) : P->zero;
        for (int d = 0; d < N_DIMS; d++)
            if (ivec_push(&row[d]->metric[m], x) < 0) return -1;
    }
    if (ev->ndeps) {
        Group *g = &a->groups[group];
        for (int i = 0; i < ev->ndeps; i++)
            if (add_dep(g, &ev->deps[i], P->inv, P->lowest, P->zero) < 0) return -1;
    }
    if (ev->kind_kind == J_STR && (str_eq(&ev->kind, "page_view") || str_eq(&ev->kind, "soft_navigation"))) {
        double rate = ev->rate_has && ev->rate != 0.0 ? ev->rate : 1.0;
        int64_t k = rate_index(a, rate);
        if (k < 0) return -1;
        int has_measure = 0;
        double measure = 0;
        if (ev->nav_has) {
            has_measure = 1;
            measure = ev->nav_duration;
            int64_t x = measure > P->lowest ? (int64_t)ceil(log(measure) * P->inv) : P->zero;
            for (int d = 0; d < N_DIMS; d++)
                if (ivec_push(&row[d]->metric[5], x) < 0) return -1;
        } else if (ev->vit_has[0]) {
            has_measure = 1;
            measure = ev->vit[0];
        }
        for (int d = 0; d < N_DIMS; d++) {
            if (count_view(row[d], k) < 0) return -1;
            if (!has_measure) continue;
            if (measure <= step->apdex_t)
                row[d]->satisfied++;
            else if (measure <= 4.0 * step->apdex_t)
                row[d]->tolerating++;
            else
                row[d]->frustrated++;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Output */

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

#define COUNT_RANGE 4096

/* (zero count, Bins) of a bucket list. */
static PyObject *sketch_of(IVec *v, int64_t zero) {
    int64_t zeros = 0, lo = INT64_MAX, hi = INT64_MIN;
    for (Py_ssize_t i = 0; i < v->n; i++) {
        int64_t x = v->v[i];
        if (x == zero) continue;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    BinsObject *bins;
    if (lo <= hi && hi - lo < COUNT_RANGE) { /* sketch buckets of one metric: a narrow range */
        Py_ssize_t counts[COUNT_RANGE];
        Py_ssize_t distinct = 0;
        memset(counts, 0, (size_t)(hi - lo + 1) * sizeof(Py_ssize_t));
        for (Py_ssize_t i = 0; i < v->n; i++) {
            if (v->v[i] == zero)
                zeros++;
            else if (counts[v->v[i] - lo]++ == 0)
                distinct++;
        }
        bins = bins_with_size(distinct);
        if (bins == NULL) return NULL;
        Py_ssize_t k = 0;
        for (int64_t x = lo; x <= hi; x++) {
            if (counts[x - lo]) {
                bins->v[k].index = x;
                bins->v[k++].count = counts[x - lo];
            }
        }
    } else { /* none, only zeros, or a range too wide to count */
        if (v->n > 0) qsort(v->v, (size_t)v->n, sizeof(int64_t), cmp_i64);
        Py_ssize_t distinct = 0;
        for (Py_ssize_t i = 0; i < v->n; i++)
            if (v->v[i] != zero && (i == 0 || v->v[i] != v->v[i - 1])) distinct++;
        bins = bins_with_size(distinct);
        if (bins == NULL) return NULL;
        Py_ssize_t i = 0, k = 0;
        while (i < v->n) {
            Py_ssize_t j = i;
            while (j < v->n && v->v[j] == v->v[i]) j++;
            if (v->v[i] == zero) {
                zeros = j - i;
            } else {
                bins->v[k].index = v->v[i];
                bins->v[k++].count = j - i;
            }
            i = j;
        }
    }
    return Py_BuildValue("(LN)", (long long)zeros, (PyObject *)bins);
}

/* The set of a cell's session ids; one str per distinct id of the scan (made on first use). */
static PyObject *session_set(Acc *a, Cell *cell, PyObject **sid_objs) {
    PyObject *set = PySet_New(NULL);
    if (set == NULL) return NULL;
    for (Py_ssize_t i = 0; i < cell->sessions.n; i++) {
        int64_t k = cell->sessions.v[i];
        if (sid_objs[k] == NULL) {
            sid_objs[k] = PyUnicode_FromStringAndSize(a->sids[k].p, a->sids[k].n);
            if (sid_objs[k] == NULL) {
                Py_DECREF(set);
                return NULL;
            }
        }
        if (PySet_Add(set, sid_objs[k]) < 0) {
            Py_DECREF(set);
            return NULL;
        }
    }
    return set;
}

static PyObject *cell_tuple(Acc *a, Cell *cell, int64_t zero, PyObject **sid_objs) {
    Group *g = &a->groups[cell->group];
    PyObject *sketches = PyTuple_New(N_METRICS);
    if (sketches == NULL) return NULL;
    for (int m = 0; m < N_METRICS; m++) {
        PyObject *s = sketch_of(&cell->metric[m], zero);
        if (s == NULL) {
            Py_DECREF(sketches);
            return NULL;
        }
        PyTuple_SET_ITEM(sketches, m, s);
    }
    PyObject *views = PyList_New(cell->rate_order.n);
    if (views == NULL) {
        Py_DECREF(sketches);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < cell->rate_order.n; i++) {
        PyObject *item = Py_BuildValue("(dL)", a->rates[cell->rate_order.v[i]],
                                       (long long)cell->rate_views.v[i]);
        if (item == NULL) {
            Py_DECREF(sketches);
            Py_DECREF(views);
            return NULL;
        }
        PyList_SET_ITEM(views, i, item);
    }
    PyObject *sessions = session_set(a, cell, sid_objs);
    if (sessions == NULL) {
        Py_DECREF(sketches);
        Py_DECREF(views);
        return NULL;
    }
    return Py_BuildValue("(s#Lis#NNLLLN)", g->step.p, g->step.n, (long long)g->start, cell->dim,
                         cell->value.p, cell->value.n, sketches, views, (long long)cell->satisfied,
                         (long long)cell->tolerating, (long long)cell->frustrated, sessions);
}

static PyObject *deps_tuple(Group *g, int64_t zero) {
    PyObject *hosts = PyList_New(g->ndeps);
    if (hosts == NULL) return NULL;
    for (Py_ssize_t i = 0; i < g->ndeps; i++) {
        DepAcc *d = &g->deps[i];
        PyObject *sketch = sketch_of(&d->buckets, zero);
        PyObject *provider;
        if (sketch == NULL) {
            Py_DECREF(hosts);
            return NULL;
        }
        if (d->provider_kind == J_STR) {
            provider = PyUnicode_FromStringAndSize(d->provider.p, d->provider.n);
        } else {
            provider = Py_None;
            Py_INCREF(provider);
        }
        PyObject *item = provider == NULL ? NULL
                                          : Py_BuildValue("(s#NLLN)", d->host.p, d->host.n, provider,
                                                          (long long)d->requests,
                                                          (long long)d->failures, sketch);
        if (item == NULL) {
            if (provider == NULL) Py_DECREF(sketch);
            Py_DECREF(hosts);
            return NULL;
        }
        PyList_SET_ITEM(hosts, i, item);
    }
    return Py_BuildValue("(s#LN)", g->step.p, g->step.n, (long long)g->start, hosts);
}

static void acc_free(Acc *a) {
    for (Py_ssize_t i = 0; i < a->ncells; i++) {
        Cell *cell = &a->cells[i];
        for (int m = 0; m < N_METRICS; m++) free(cell->metric[m].v);
        free(cell->rate_order.v);
        free(cell->rate_views.v);
        free(cell->sessions.v);
    }
    for (Py_ssize_t i = 0; i < a->ngroups; i++) {
        for (int d = 0; d < N_DIMS; d++) free(a->groups[i].cells[d].v);
        for (Py_ssize_t j = 0; j < a->groups[i].ndeps; j++) free(a->groups[i].deps[j].buckets.v);
        free(a->groups[i].deps);
    }
    free(a->cells);
    free(a->groups);
    free(a->group_table.hash);
    free(a->group_table.slot);
    free(a->cell_table.hash);
    free(a->cell_table.slot);
    free(a->rates);
    free(a->late);
    free(a->sids);
    free(a->sid_table.hash);
    free(a->sid_table.slot);
}

static int utf8_view(PyObject *text, Str *out) {
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(text, &n);
    if (p == NULL) return -1;
    out->p = p;
    out->n = n;
    return 0;
}

PyDoc_STRVAR(scan_doc,
"scan(values, journey, steps, window_s, closed_to, inv, lowest, zero, journey_level)\n"
"--\n\n"
"Aggregate the messages of one journey that this scan can read exactly.\n\n"
"values: the messages (bytes); steps: step id -> Apdex T (ms); closed_to: an event of a\n"
"window starting at or before it is late. Returns (taken, cells, deps, late, max_ts,\n"
"unmapped): taken[i] is 1 when values[i] was aggregated here, 0 when the caller must decode\n"
"it; cells in the order the Python path builds them: (step, start, dimension index, value,\n"
"six (zero, Bins) sketches, [(sample rate, views)], satisfied, tolerating, frustrated,\n"
"session ids); deps: (step, start, [(host, provider, requests, failures, (zero, Bins))]);\n"
"late: {step: events}; max_ts: the largest event second taken (-1 if none).");

static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *values, *journey, *steps, *journey_level;
    long long window_s, zero;
    double closed_to, inv, lowest;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!UO!LdddLU", &PyList_Type, &values, &journey, &PyDict_Type,
                          &steps, &window_s, &closed_to, &inv, &lowest, &zero, &journey_level))
        return NULL;
    if (window_s <= 0) {
        PyErr_SetString(PyExc_ValueError, "window_s must be positive");
        return NULL;
    }
    Params P;
    memset(&P, 0, sizeof(P));
    P.window_s = window_s;
    P.closed_to = closed_to;
    P.inv = inv;
    P.lowest = lowest;
    P.zero = zero;
    Str level;
    if (utf8_view(journey, &P.journey) < 0 || utf8_view(journey_level, &level) < 0) return NULL;
    /* The scan runs without the GIL: it keeps its own references to what it reads (a copy of
     * the step dict, holding its keys, and a tuple of the messages). */
    PyObject *step_names = PyDict_Copy(steps);
    if (step_names == NULL) return NULL;
    PyObject *items = NULL, *taken = NULL, *result = NULL;
    PyObject *cells = NULL, *deps = NULL, *late = NULL;
    PyObject **sid_objs = NULL;
    Str *msgs = NULL;
    Event *ev = NULL;
    Acc a;
    memset(&a, 0, sizeof(a));
    P.nsteps = PyDict_Size(step_names);
    P.steps = calloc((size_t)(P.nsteps ? P.nsteps : 1), sizeof(StepInfo));
    if (P.steps == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(step_names, &pos, &key, &value)) {
        if (!PyUnicode_Check(key) || utf8_view(key, &P.steps[i].name) < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "step ids must be str");
            goto done;
        }
        P.steps[i].apdex_t = PyFloat_AsDouble(value);
        if (P.steps[i].apdex_t == -1.0 && PyErr_Occurred()) goto done;
        P.steps[i].journey_level = P.steps[i].name.n == level.n &&
                                   memcmp(P.steps[i].name.p, level.p, (size_t)level.n) == 0;
        i++;
    }

    items = PySequence_Tuple(values);
    if (items == NULL) goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    taken = PyBytes_FromStringAndSize(NULL, n);
    msgs = malloc((size_t)(n ? n : 1) * sizeof(Str));
    ev = malloc(sizeof(Event));
    if (taken == NULL || msgs == NULL || ev == NULL) {
        if (taken != NULL) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = PyTuple_GET_ITEM(items, k);
        msgs[k].p = PyBytes_Check(item) ? PyBytes_AS_STRING(item) : NULL;
        msgs[k].n = msgs[k].p != NULL ? PyBytes_GET_SIZE(item) : 0;
    }
    char *flags = PyBytes_AS_STRING(taken); /* ours alone until returned */
    int64_t max_ts = -1, n_unmapped = 0;
    int out_of_memory = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) {
        flags[k] = 0;
        if (msgs[k].p == NULL || read_event(msgs[k].p, msgs[k].n, ev) < 0) continue;
        int r = take_event(&a, &P, ev, &max_ts, &n_unmapped);
        if (r < 0) {
            out_of_memory = 1;
            break;
        }
        flags[k] = (char)r;
    }
    Py_END_ALLOW_THREADS
    if (out_of_memory) {
        PyErr_NoMemory();
        goto done;
    }

    sid_objs = calloc((size_t)(a.nsids ? a.nsids : 1), sizeof(PyObject *));
    cells = PyList_New(0);
    deps = PyList_New(0);
    late = PyDict_New();
    if (sid_objs == NULL || cells == NULL || deps == NULL || late == NULL) {
        if (sid_objs == NULL) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t g = 0; g < a.ngroups; g++) {
        for (int d = 0; d < N_DIMS; d++) {
            IVec *members = &a.groups[g].cells[d];
            for (Py_ssize_t m = 0; m < members->n; m++) {
                PyObject *t = cell_tuple(&a, &a.cells[members->v[m]], zero, sid_objs);
                if (t == NULL || PyList_Append(cells, t) < 0) {
                    Py_XDECREF(t);
                    goto done;
                }
                Py_DECREF(t);
            }
        }
        if (a.groups[g].ndeps) {
            PyObject *t = deps_tuple(&a.groups[g], zero);
            if (t == NULL || PyList_Append(deps, t) < 0) {
                Py_XDECREF(t);
                goto done;
            }
            Py_DECREF(t);
        }
    }
    for (Py_ssize_t l = 0; l < a.nlate; l++) {
        PyObject *step = PyUnicode_FromStringAndSize(a.late[l].step.p, a.late[l].step.n);
        PyObject *count = PyLong_FromLongLong(a.late[l].count);
        int failed = step == NULL || count == NULL || PyDict_SetItem(late, step, count) < 0;
        Py_XDECREF(step);
        Py_XDECREF(count);
        if (failed) goto done;
    }
    result = Py_BuildValue("(OOOOLL)", taken, cells, deps, late, (long long)max_ts,
                           (long long)n_unmapped);
done:
    if (sid_objs != NULL)
        for (Py_ssize_t k = 0; k < a.nsids; k++) Py_XDECREF(sid_objs[k]);
    free(sid_objs);
    Py_XDECREF(cells);
    Py_XDECREF(deps);
    Py_XDECREF(late);
    Py_XDECREF(taken);
    Py_XDECREF(items);
    Py_DECREF(step_names);
    free(msgs);
    free(ev);
    free(P.steps);
    acc_free(&a);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"hash63", sessions_hash63, METH_O,
     "hash63(session_id): the stable 63-bit hash of a session id (sketch.stable_hash63)."},
    {"hash63_all", sessions_hash63_all, METH_O,
     "hash63_all(session_ids): [hash63(id) for id in session_ids]."},
    {"kmv_union", sessions_kmv_union, METH_VARARGS,
     "kmv_union(hashes, new, k): the k smallest distinct values of the ascending ``hashes``\n"
     "and of ``new`` (any order), ascending."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_rumscan",
    .m_doc = "The compiled parts of journeylens.domain: the raw RUM scan, sketch Bins, session hashes.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__rumscan(void) {
    init_stop();
    if (PyType_Ready(&BinsType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&BinsType);
    if (PyModule_AddObject(m, "Bins", (PyObject *)&BinsType) < 0) {
        Py_DECREF(&BinsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
