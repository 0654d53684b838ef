/* RUM messages (rum.beacons.v1 JSON) as one block of ClickHouse's Native format, in the columns
 * of rum_events_input (migration 0007).
 *
 * The server reads a Native block at a fraction of the CPU its JSONEachRow reader spends on the
 * same messages (the reader was about 7 of the ~12 us a stored event cost it). The block holds
 * exactly what that reader makes of a message, for the messages this encoder can read with the
 * same result:
 *   - fields are matched by exact name; unknown fields (at any level) are skipped;
 *   - a missing field, or null where the column is not Nullable, takes the type's default
 *     (input_format_null_as_default; a null object is all defaults, a null list is empty);
 *   - strings are JSON-unescaped into their bytes; numbers are read as JSON numbers, a Float64
 *     correctly rounded (strtod), an integer only when it is an integer literal in range;
 *   - booleans are true or false.
 * A message that is not that (invalid JSON, a number where a string belongs or the reverse, a
 * quoted number, a duplicate field, an escaped key, a lone surrogate, ...) is left out and its
 * index returned: the caller stores it through the JSONEachRow path, whose reader decides.
 *
 * Parsing runs without the GIL (the messages are immutable bytes the caller keeps alive).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    K_STR,   /* String */
    K_NSTR,  /* Nullable(String) */
    K_F64,   /* Float64 */
    K_NF64,  /* Nullable(Float64) */
    K_U8,    /* UInt8 */
    K_U16,   /* UInt16 */
    K_NU16,  /* Nullable(UInt16) */
    K_U32,   /* UInt32 */
    K_U64,   /* UInt64 */
    K_NI32,  /* Nullable(Int32) */
    K_BOOL,  /* Bool */
    K_NBOOL, /* Nullable(Bool) */
    K_TUPLE, /* a named Tuple: a JSON object */
    K_ARRAY, /* Array(Tuple(...)): a JSON list of objects */
} Kind;

typedef struct Node {
    const char *name;
    Kind kind;
    struct Node *kids;
    int nkids;
    const char *type; /* the column's type, for top-level columns */
    int buf;          /* data buffer (leaves), offsets buffer (arrays) */
    int nulls;        /* null map buffer (Nullable leaves) */
    int arr;          /* array index (arrays) */
    size_t name_len;
} Node;

#define LEAF(n, k) {n, k, NULL, 0, NULL, -1, -1, -1, 0}
#define GROUP(n, k, kids) {n, k, kids, (int)(sizeof(kids) / sizeof(kids[0])), NULL, -1, -1, -1, 0}

static Node VITALS[] = {
    LEAF("lcp_ms", K_NF64), LEAF("inp_ms", K_NF64), LEAF("cls", K_NF64),
    LEAF("fcp_ms", K_NF64), LEAF("ttfb_ms", K_NF64),
};
static Node NAVIGATION[] = {
    LEAF("redirect_ms", K_NF64), LEAF("dns_ms", K_NF64), LEAF("connect_ms", K_NF64),
    LEAF("tls_ms", K_NF64), LEAF("request_ms", K_NF64), LEAF("response_ms", K_NF64),
    LEAF("dom_interactive_ms", K_NF64), LEAF("dom_content_loaded_ms", K_NF64),
    LEAF("load_event_ms", K_NF64), LEAF("duration_ms", K_NF64),
};
static Node ERRORS[] = {
    LEAF("message", K_STR), LEAF("type", K_NSTR), LEAF("source", K_NSTR), LEAF("line", K_NI32),
    LEAF("column", K_NI32), LEAF("stack", K_NSTR), LEAF("count", K_U32),
};
static Node API_ERRORS[] = {
    LEAF("url", K_STR), LEAF("method", K_STR), LEAF("status", K_U16),
    LEAF("duration_ms", K_NF64), LEAF("host", K_NSTR),
};
static Node DEPENDENCIES[] = {
    LEAF("host", K_STR), LEAF("provider", K_NSTR), LEAF("requests", K_U32),
    LEAF("failures", K_U32), LEAF("total_duration_ms", K_F64), LEAF("max_duration_ms", K_F64),
    LEAF("transfer_bytes", K_U64),
};
static Node NETWORK_ERROR[] = {
    LEAF("type", K_NSTR), LEAF("phase", K_NSTR), LEAF("status_code", K_NU16),
    LEAF("elapsed_ms", K_NF64), LEAF("server_ip_present", K_NBOOL), LEAF("protocol", K_NSTR),
    LEAF("method", K_NSTR), LEAF("sampling_fraction", K_NF64),
};
static Node CONTEXT[] = {
    LEAF("device_class", K_STR), LEAF("browser", K_STR), LEAF("browser_version", K_NSTR),
    LEAF("os", K_STR), LEAF("os_version", K_NSTR), LEAF("connection_type", K_STR),
    LEAF("rtt_ms", K_NF64), LEAF("downlink_mbps", K_NF64), LEAF("country", K_STR),
};
static Node COLUMNS[] = {
    LEAF("event_id", K_STR), LEAF("kind", K_STR), LEAF("source", K_STR),
    LEAF("timestamp", K_STR), LEAF("received_at", K_STR), LEAF("app", K_STR),
    LEAF("journey", K_STR), LEAF("step", K_STR), LEAF("session_id", K_STR),
    LEAF("page_id", K_STR), LEAF("url", K_STR), LEAF("path", K_STR),
    LEAF("navigation_type", K_STR),
    GROUP("vitals", K_TUPLE, VITALS), GROUP("navigation", K_TUPLE, NAVIGATION),
    GROUP("errors", K_ARRAY, ERRORS), GROUP("api_errors", K_ARRAY, API_ERRORS),
    GROUP("dependencies", K_ARRAY, DEPENDENCIES),
    GROUP("network_error", K_TUPLE, NETWORK_ERROR), GROUP("context", K_TUPLE, CONTEXT),
    LEAF("synthetic", K_BOOL), LEAF("probe_run_id", K_NSTR), LEAF("sample_rate", K_F64),
    LEAF("step_event", K_NSTR), LEAF("conversion_value", K_NF64), LEAF("currency", K_NSTR),
    LEAF("user_agent", K_NSTR), LEAF("schema_version", K_U8),
};
#define NCOLUMNS ((int)(sizeof(COLUMNS) / sizeof(COLUMNS[0])))
#define MAX_KIDS 64 /* fields of one object, for the seen mask */

static int n_bufs = 0;
static int n_arrays = 0;

/* Type names: a leaf's, and a group's built from its fields (at module init). */
static const char *leaf_type(Kind kind) {
    switch (kind) {
    case K_STR: return "String";
    case K_NSTR: return "Nullable(String)";
    case K_F64: return "Float64";
    case K_NF64: return "Nullable(Float64)";
    case K_U8: return "UInt8";
    case K_U16: return "UInt16";
    case K_NU16: return "Nullable(UInt16)";
    case K_U32: return "UInt32";
    case K_U64: return "UInt64";
    case K_NI32: return "Nullable(Int32)";
    case K_BOOL: return "Bool";
    case K_NBOOL: return "Nullable(Bool)";
    default: return NULL;
    }
}

static int is_nullable(Kind kind) {
    return kind == K_NSTR || kind == K_NF64 || kind == K_NU16 || kind == K_NI32 || kind == K_NBOOL;
}

/* Assigns buffers and type names; returns -1 when out of memory (or an object has more
 * fields than MAX_KIDS). */
static int setup(Node *node) {
    node->name_len = strlen(node->name);
    if (node->kind == K_TUPLE || node->kind == K_ARRAY) {
        if (node->nkids > MAX_KIDS) return -1; /* more fields than the seen mask has bits */
        if (node->kind == K_ARRAY) {
            node->buf = n_bufs++;
            node->arr = n_arrays++;
        }
        size_t size = 32;
        for (int i = 0; i < node->nkids; i++) {
            if (setup(&node->kids[i]) < 0) return -1;
            size += node->kids[i].name_len + strlen(node->kids[i].type) + 2;
        }
        char *type = malloc(size);
        if (type == NULL) return -1;
        strcpy(type, node->kind == K_ARRAY ? "Array(Tuple(" : "Tuple(");
        for (int i = 0; i < node->nkids; i++) {
            if (i) strcat(type, ", ");
            strcat(type, node->kids[i].name);
            strcat(type, " ");
            strcat(type, node->kids[i].type);
        }
        strcat(type, node->kind == K_ARRAY ? "))" : ")");
        node->type = type;
        return 0;
    }
    node->type = leaf_type(node->kind);
    node->buf = n_bufs++;
    if (is_nullable(node->kind)) node->nulls = n_bufs++;
    return 0;
}

/* ---- buffers ---- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
} Buf;

typedef struct {
    Buf *bufs;
    size_t *saved;    /* buffer lengths when the current message began */
    uint64_t *totals; /* per array: elements so far (its offsets are cumulative) */
    uint64_t *saved_totals;
    Buf scratch; /* a string being unescaped */
    int oom;
} State;

static __attribute__((noinline)) int grow_slow(State *st, Buf *b, size_t extra) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL) {
        st->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int grow(State *st, Buf *b, size_t extra) {
    return b->len + extra <= b->cap ? 0 : grow_slow(st, b, extra);
}

static inline int put(State *st, Buf *b, const void *data, size_t n) {
    if (n == 0) return 0;
    if (grow(st, b, n) < 0) return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static inline int put_zeros(State *st, Buf *b, size_t n) {
    if (grow(st, b, 8) < 0) return -1; /* n <= 8 */
    memset(b->p + b->len, 0, 8);
    b->len += n;
    return 0;
}

static inline int put_byte(State *st, Buf *b, unsigned char v) {
    if (grow(st, b, 1) < 0) return -1;
    b->p[b->len++] = v;
    return 0;
}

static size_t varint(unsigned char *out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

static int put_string(State *st, Buf *b, const unsigned char *s, size_t n) {
    unsigned char head[10];
    size_t h = varint(head, n);
    if (grow(st, b, h + n) < 0) return -1;
    memcpy(b->p + b->len, head, h);
    memcpy(b->p + b->len + h, s, n);
    b->len += h + n;
    return 0;
}

/* Little-endian fixed-width values (the Native format's; this host's, checked at init). */
static inline int put_le(State *st, Buf *b, uint64_t v, size_t width) {
    if (grow(st, b, 8) < 0) return -1;
    memcpy(b->p + b->len, &v, 8); /* the low ``width`` bytes are the value */
    b->len += width;
    return 0;
}

static size_t leaf_width(Kind kind) {
    switch (kind) {
    case K_F64: case K_NF64: case K_U64: return 8;
    case K_U32: case K_NI32: return 4;
    case K_U16: case K_NU16: return 2;
    case K_U8: case K_BOOL: case K_NBOOL: return 1;
    default: return 0;
    }
}

/* ---- parsing ---- */

typedef struct {
    const unsigned char *p, *end;
} Cur;

enum { OK = 0, REFUSE = -1 };

static inline void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int literal(Cur *c, const char *word, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return REFUSE;
    c->p += n;
    return OK;
}

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f') v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') v |= ch - 'A' + 10;
        else return REFUSE;
    }
    *out = v;
    return OK;
}

/* A JSON string at c->p (its opening quote): its bytes, unescaped, in *s / *n (pointing into
 * the message when it has no escapes, else into the scratch buffer). */
static int string_value(State *st, Cur *c, const unsigned char **s, size_t *n) {
    c->p++; /* the opening quote */
    const unsigned char *begin = c->p;
    while (c->p < c->end && *c->p != '"' && *c->p != '\\') c->p++;
    if (c->p >= c->end) return REFUSE;
    if (*c->p == '"') {
        *s = begin;
        *n = (size_t)(c->p - begin);
        c->p++;
        return OK;
    }
    Buf *out = &st->scratch;
    out->len = 0;
    if (put(st, out, begin, (size_t)(c->p - begin)) < 0) return REFUSE;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            *s = out->p;
            *n = out->len;
            return OK;
        }
        if (ch != '\\') {
            const unsigned char *run = c->p;
            while (c->p < c->end && *c->p != '"' && *c->p != '\\') c->p++;
            if (put(st, out, run, (size_t)(c->p - run)) < 0) return REFUSE;
            continue;
        }
        if (c->end - c->p < 2) return REFUSE;
        unsigned char e = c->p[1];
        unsigned char one;
        c->p += 2;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            unsigned cp;
            if (c->end - c->p < 4 || hex4(c->p, &cp) < 0) return REFUSE;
            c->p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return REFUSE; /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
                    hex4(c->p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return REFUSE; /* a lone high surrogate */
                c->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            unsigned char utf8[4];
            size_t k;
            if (cp < 0x80) {
                utf8[0] = (unsigned char)cp;
                k = 1;
            } else if (cp < 0x800) {
                utf8[0] = (unsigned char)(0xC0 | (cp >> 6));
                utf8[1] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 2;
            } else if (cp < 0x10000) {
                utf8[0] = (unsigned char)(0xE0 | (cp >> 12));
                utf8[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                utf8[2] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 3;
            } else {
                utf8[0] = (unsigned char)(0xF0 | (cp >> 18));
                utf8[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                utf8[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                utf8[3] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 4;
            }
            if (put(st, out, utf8, k) < 0) return REFUSE;
            continue;
        }
        default: return REFUSE;
        }
        if (put(st, out, &one, 1) < 0) return REFUSE;
    }
    return REFUSE;
}

/* A JSON number's token at c->p: its extent, and whether it is an integer literal. */
static int number_token(Cur *c, const unsigned char **begin, size_t *n, int *integer) {
    const unsigned char *p = c->p, *end = c->end;
    *begin = p;
    *integer = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return REFUSE;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (p < end && *p >= '0' && *p <= '9') p++;
    else return REFUSE;
    if (p < end && *p == '.') {
        *integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return REFUSE;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return REFUSE;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    *n = (size_t)(p - *begin);
    c->p = p;
    return OK;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int float_value(Cur *c, double *out) {
    const unsigned char *begin;
    size_t n;
    int integer;
    if (number_token(c, &begin, &n, &integer) < 0) return REFUSE;
    /* Clinger's fast path: up to 19 digits whose value fits 53 bits, times or divided by an
     * exact power of ten up to 1e22, is one correctly rounded operation (strtod's result) */
    const unsigned char *p = begin, *end = begin + n;
    int negative = *p == '-';
    p += negative;
    uint64_t mantissa = 0;
    int digits = 0, scale = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++, scale--)
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    }
    if (p == end && digits <= 19 && mantissa <= ((uint64_t)1 << 53) && scale >= -22) {
        double v = (double)mantissa;
        v = scale < 0 ? v / POW10[-scale] : v;
        *out = negative ? -v : v;
        return OK;
    }
    char text[64];
    if (n >= sizeof(text)) return REFUSE;
    memcpy(text, begin, n);
    text[n] = '\0';
    char *stop;
    *out = strtod(text, &stop);
    /* out of Float64's range: left to the server's reader */
    return stop == text + n && isfinite(*out) ? OK : REFUSE;
}

/* An integer literal in [-neg_limit, hi] (its two's complement bits in *out). */
static int int_value(Cur *c, uint64_t neg_limit, uint64_t hi, uint64_t *out) {
    const unsigned char *begin;
    size_t n;
    int integer;
    if (number_token(c, &begin, &n, &integer) < 0 || !integer) return REFUSE;
    int negative = *begin == '-';
    uint64_t v = 0;
    for (const unsigned char *p = begin + negative; p < begin + n; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10) return REFUSE;
        v = v * 10 + digit;
    }
    if (negative) {
        if (v > neg_limit) return REFUSE;
        *out = (uint64_t)0 - v;
        return OK;
    }
    if (v > hi) return REFUSE;
    *out = v;
    return OK;
}

/* After an item of a list or an object: 1 when a comma follows (another item), 0 when
 * ``close`` does (the end), each taken; REFUSE otherwise. */
static inline int next_item(Cur *c, unsigned char close) {
    ws(c);
    if (c->p >= c->end) return REFUSE;
    if (*c->p == ',') {
        c->p++;
        return 1;
    }
    if (*c->p == close) {
        c->p++;
        return 0;
    }
    return REFUSE;
}

/* Skips any JSON value (validating it). */
static int skip_value(State *st, Cur *c, int depth) {
    if (depth > 64) return REFUSE;
    ws(c);
    if (c->p >= c->end) return REFUSE;
    unsigned char ch = *c->p;
    if (ch == '"') {
        const unsigned char *s;
        size_t n;
        return string_value(st, c, &s, &n);
    }
    if (ch == '{' || ch == '[') {
        unsigned char close = ch == '{' ? '}' : ']';
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return OK;
        }
        for (;;) {
            if (ch == '{') {
                ws(c);
                if (c->p >= c->end || *c->p != '"') return REFUSE;
                const unsigned char *s;
                size_t n;
                if (string_value(st, c, &s, &n) < 0) return REFUSE;
                ws(c);
                if (c->p >= c->end || *c->p != ':') return REFUSE;
                c->p++;
            }
            if (skip_value(st, c, depth + 1) < 0) return REFUSE;
            int more = next_item(c, close);
            if (more <= 0) return more; /* the end (OK) or REFUSE */
        }
    }
    if (ch == 't') return literal(c, "true", 4);
    if (ch == 'f') return literal(c, "false", 5);
    if (ch == 'n') return literal(c, "null", 4);
    const unsigned char *begin;
    size_t n;
    int integer;
    return number_token(c, &begin, &n, &integer);
}

static int defaults(State *st, const Node *node);

static int leaf_default(State *st, const Node *node) {
    if (node->nulls >= 0 && put_byte(st, &st->bufs[node->nulls], 1) < 0) return REFUSE;
    Buf *b = &st->bufs[node->buf];
    if (node->kind == K_STR || node->kind == K_NSTR) return put_byte(st, b, 0);
    return put_zeros(st, b, leaf_width(node->kind));
}

static int defaults(State *st, const Node *node) {
    if (node->kind == K_TUPLE) {
        for (int i = 0; i < node->nkids; i++)
            if (defaults(st, &node->kids[i]) < 0) return REFUSE;
        return OK;
    }
    if (node->kind == K_ARRAY) /* an empty list: the offset stays */
        return put_le(st, &st->bufs[node->buf], st->totals[node->arr], 8);
    return leaf_default(st, node);
}

static int object(State *st, Cur *c, const Node *kids, int nkids, int depth);

static int value(State *st, Cur *c, const Node *node, int depth) {
    ws(c);
    if (c->p >= c->end) return REFUSE;
    if (*c->p == 'n') { /* null: NULL where Nullable, else the default */
        if (literal(c, "null", 4) < 0) return REFUSE;
        return defaults(st, node);
    }
    Buf *b = node->buf >= 0 ? &st->bufs[node->buf] : NULL;
    switch (node->kind) {
    case K_TUPLE:
        if (*c->p != '{') return REFUSE;
        return object(st, c, node->kids, node->nkids, depth + 1);
    case K_ARRAY: {
        if (*c->p != '[') return REFUSE;
        c->p++;
        ws(c);
        uint64_t count = 0;
        if (c->p < c->end && *c->p == ']') {
            c->p++;
        } else {
            for (;;) {
                ws(c);
                if (c->p >= c->end || *c->p != '{') return REFUSE;
                if (object(st, c, node->kids, node->nkids, depth + 1) < 0) return REFUSE;
                count++;
                int more = next_item(c, ']');
                if (more < 0) return REFUSE;
                if (!more) break;
            }
        }
        st->totals[node->arr] += count;
        return put_le(st, b, st->totals[node->arr], 8);
    }
    case K_STR:
    case K_NSTR: {
        if (*c->p != '"') return REFUSE;
        const unsigned char *s;
        size_t n;
        if (string_value(st, c, &s, &n) < 0) return REFUSE;
        if (node->nulls >= 0 && put_byte(st, &st->bufs[node->nulls], 0) < 0) return REFUSE;
        return put_string(st, b, s, n);
    }
    case K_F64:
    case K_NF64: {
        double v;
        if (float_value(c, &v) < 0) return REFUSE;
        if (node->nulls >= 0 && put_byte(st, &st->bufs[node->nulls], 0) < 0) return REFUSE;
        uint64_t bits;
        memcpy(&bits, &v, 8);
        return put_le(st, b, bits, 8);
    }
    case K_BOOL:
    case K_NBOOL: {
        unsigned char v;
        if (*c->p == 't') {
            if (literal(c, "true", 4) < 0) return REFUSE;
            v = 1;
        } else {
            if (literal(c, "false", 5) < 0) return REFUSE;
            v = 0;
        }
        if (node->nulls >= 0 && put_byte(st, &st->bufs[node->nulls], 0) < 0) return REFUSE;
        return put_byte(st, b, v);
    }
    default: { /* integers */
        uint64_t v;
        uint64_t neg_limit = node->kind == K_NI32 ? (uint64_t)INT32_MAX + 1 : 0;
        uint64_t hi = node->kind == K_U8 ? UINT8_MAX
                      : node->kind == K_U16 || node->kind == K_NU16 ? UINT16_MAX
                      : node->kind == K_U32 ? UINT32_MAX
                      : node->kind == K_NI32 ? INT32_MAX
                      : UINT64_MAX;
        if (int_value(c, neg_limit, hi, &v) < 0) return REFUSE;
        if (node->nulls >= 0 && put_byte(st, &st->bufs[node->nulls], 0) < 0) return REFUSE;
        return put_le(st, b, v, leaf_width(node->kind));
    }
    }
}

/* Whether the n bytes at ``key`` are ``name`` (short names: no library call). */
static inline int same_name(const unsigned char *key, const char *name, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { /* a word at a time (memcpy: unaligned loads) */
        uint64_t a, b;
        memcpy(&a, key + i, 8);
        memcpy(&b, name + i, 8);
        if (a != b) return 0;
    }
    for (; i < n; i++)
        if (key[i] != (unsigned char)name[i]) return 0;
    return 1;
}

/* A JSON object at c->p whose known fields are ``kids``. */
static int object(State *st, Cur *c, const Node *kids, int nkids, int depth) {
    if (depth > 8) return REFUSE;
    c->p++; /* the opening brace */
    uint64_t seen = 0;
    int hint = 0;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
    } else {
        for (;;) {
            ws(c);
            if (c->p >= c->end || *c->p != '"') return REFUSE;
            const unsigned char *key = ++c->p;
            /* producers write the fields in one order: the one after the last comes first */
            int found = -1;
            if (hint < nkids) {
                const Node *next = &kids[hint];
                if ((size_t)(c->end - key) > next->name_len && key[next->name_len] == '"' &&
                    same_name(key, next->name, next->name_len)) {
                    found = hint;
                    c->p = key + next->name_len + 1;
                }
            }
            if (found < 0) {
                while (c->p < c->end && *c->p != '"' && *c->p != '\\') c->p++;
                if (c->p >= c->end || *c->p == '\\') return REFUSE; /* an escaped key */
                size_t key_len = (size_t)(c->p - key);
                c->p++;
                for (int i = 0; i < nkids; i++) {
                    if (kids[i].name_len == key_len && same_name(key, kids[i].name, key_len)) {
                        found = i;
                        break;
                    }
                }
            }
            ws(c);
            if (c->p >= c->end || *c->p != ':') return REFUSE;
            c->p++;
            if (found >= 0) hint = found + 1;
            if (found < 0) {
                if (skip_value(st, c, depth) < 0) return REFUSE;
            } else {
                if (seen & ((uint64_t)1 << found)) return REFUSE; /* a duplicate field */
                seen |= (uint64_t)1 << found;
                if (value(st, c, &kids[found], depth) < 0) return REFUSE;
            }
            int more = next_item(c, '}');
            if (more < 0) return REFUSE;
            if (!more) break;
        }
    }
    for (int i = 0; i < nkids; i++)
        if (!(seen & ((uint64_t)1 << i)) && defaults(st, &kids[i]) < 0) return REFUSE;
    return OK;
}

static int message(State *st, const unsigned char *p, size_t n) {
    Cur c = {p, p + n};
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return REFUSE;
    if (object(st, &c, COLUMNS, NCOLUMNS, 0) < 0) return REFUSE;
    ws(&c);
    return c.p == c.end ? OK : REFUSE;
}

/* ---- output ---- */

static size_t streams_size(const State *st, const Node *node) {
    size_t size = 0;
    if (node->kind == K_TUPLE || node->kind == K_ARRAY) {
        if (node->kind == K_ARRAY) size += st->bufs[node->buf].len;
        for (int i = 0; i < node->nkids; i++) size += streams_size(st, &node->kids[i]);
        return size;
    }
    if (node->nulls >= 0) size += st->bufs[node->nulls].len;
    return size + st->bufs[node->buf].len;
}

static unsigned char *copy_buf(const Buf *b, unsigned char *out) {
    if (b->len) memcpy(out, b->p, b->len); /* a buffer never written has no memory */
    return out + b->len;
}

static unsigned char *write_streams(const State *st, const Node *node, unsigned char *out) {
    if (node->kind == K_TUPLE || node->kind == K_ARRAY) {
        if (node->kind == K_ARRAY) {
            out = copy_buf(&st->bufs[node->buf], out);
        }
        for (int i = 0; i < node->nkids; i++) out = write_streams(st, &node->kids[i], out);
        return out;
    }
    if (node->nulls >= 0) out = copy_buf(&st->bufs[node->nulls], out);
    return copy_buf(&st->bufs[node->buf], out);
}

static void free_state(State *st) {
    if (st == NULL) return;
    if (st->bufs)
        for (int i = 0; i < n_bufs; i++) free(st->bufs[i].p);
    free(st->bufs);
    free(st->saved);
    free(st->totals);
    free(st->saved_totals);
    free(st->scratch.p);
    free(st);
}

/* The buffers of the last call, kept with their memory for the next one (a call on fresh
 * memory spent about a tenth of its time faulting pages in). One call at a time takes them;
 * a call running beside it allocates its own. */
static State *cached_state = NULL;
#define CACHE_MAX_BYTES ((size_t)64 << 20)

static State *take_state(void) {
    State *st = __atomic_exchange_n(&cached_state, NULL, __ATOMIC_ACQ_REL);
    if (st != NULL) {
        for (int i = 0; i < n_bufs; i++) st->bufs[i].len = 0;
        memset(st->totals, 0, sizeof(uint64_t) * (size_t)(n_arrays ? n_arrays : 1));
        st->scratch.len = 0;
        st->oom = 0;
        return st;
    }
    st = calloc(1, sizeof(State));
    if (st == NULL) return NULL;
    st->bufs = calloc((size_t)n_bufs, sizeof(Buf));
    st->saved = calloc((size_t)n_bufs, sizeof(size_t));
    st->totals = calloc((size_t)(n_arrays ? n_arrays : 1), sizeof(uint64_t));
    st->saved_totals = calloc((size_t)(n_arrays ? n_arrays : 1), sizeof(uint64_t));
    if (!st->bufs || !st->saved || !st->totals || !st->saved_totals) {
        free_state(st);
        return NULL;
    }
    return st;
}

static void give_back(State *st) {
    if (st == NULL) return;
    size_t held = st->scratch.cap;
    for (int i = 0; i < n_bufs; i++) held += st->bufs[i].cap;
    if (st->oom || held > CACHE_MAX_BYTES) { /* not kept: a huge call's memory goes back */
        free_state(st);
        return;
    }
    free_state(__atomic_exchange_n(&cached_state, st, __ATOMIC_ACQ_REL));
}

PyDoc_STRVAR(encode_doc,
"encode(messages) -> (block, refused)\n\n"
"RUM messages (bytes) as one Native block of rum_events_input's columns (b'' when none), and\n"
"the indexes of the messages left out (to be stored through JSONEachRow).");

static PyObject *encode(PyObject *self, PyObject *arg) {
    (void)self;
    /* a tuple of its own: the messages stay alive while the GIL is released, whatever another
     * thread does to the caller's list meanwhile */
    PyObject *seq = PySequence_Tuple(arg);
    if (seq == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    const unsigned char **ptrs = PyMem_Malloc(sizeof(*ptrs) * (size_t)(count ? count : 1));
    size_t *lens = PyMem_Malloc(sizeof(*lens) * (size_t)(count ? count : 1));
    unsigned char *refused = PyMem_Calloc((size_t)(count ? count : 1), 1);
    State *st = take_state();
    PyObject *result = NULL;
    if (!ptrs || !lens || !refused || !st) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "message %zd is %.80s, not bytes", i,
                         Py_TYPE(items[i])->tp_name);
            goto done;
        }
        ptrs[i] = (const unsigned char *)PyBytes_AS_STRING(items[i]);
        lens[i] = (size_t)PyBytes_GET_SIZE(items[i]);
    }
    uint64_t rows = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && !st->oom; i++) {
        for (int b = 0; b < n_bufs; b++) st->saved[b] = st->bufs[b].len;
        memcpy(st->saved_totals, st->totals, sizeof(uint64_t) * (size_t)n_arrays);
        if (message(st, ptrs[i], lens[i]) == OK) {
            rows++;
            continue;
        }
        refused[i] = 1; /* its partial columns are taken back */
        for (int b = 0; b < n_bufs; b++) st->bufs[b].len = st->saved[b];
        memcpy(st->totals, st->saved_totals, sizeof(uint64_t) * (size_t)n_arrays);
    }
    Py_END_ALLOW_THREADS
    if (st->oom) {
        PyErr_NoMemory();
        goto done;
    }
    size_t size = 0;
    unsigned char head[20];
    if (rows) {
        size = varint(head, (uint64_t)NCOLUMNS);
        size += varint(head, rows);
        for (int i = 0; i < NCOLUMNS; i++) {
            const Node *col = &COLUMNS[i];
            size_t type_len = strlen(col->type);
            size += varint(head, col->name_len) + col->name_len;
            size += varint(head, type_len) + type_len;
            size += streams_size(st, col);
        }
    }
    PyObject *block = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (block == NULL) goto done;
    if (rows) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(block);
        out += varint(out, (uint64_t)NCOLUMNS);
        out += varint(out, rows);
        for (int i = 0; i < NCOLUMNS; i++) {
            const Node *col = &COLUMNS[i];
            size_t type_len = strlen(col->type);
            out += varint(out, col->name_len);
            memcpy(out, col->name, col->name_len);
            out += col->name_len;
            out += varint(out, type_len);
            memcpy(out, col->type, type_len);
            out += type_len;
            out = write_streams(st, col, out);
        }
    }
    PyObject *left_out = PyList_New(0);
    if (left_out == NULL) {
        Py_DECREF(block);
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!refused[i]) continue;
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyList_Append(left_out, index) < 0) {
            Py_XDECREF(index);
            Py_DECREF(block);
            Py_DECREF(left_out);
            goto done;
        }
        Py_DECREF(index);
    }
    result = Py_BuildValue("(NN)", block, left_out);
done:
    give_back(st);
    PyMem_Free(ptrs);
    PyMem_Free(lens);
    PyMem_Free(refused);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_O, encode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rumnative",
    "RUM messages as ClickHouse Native blocks of rum_events_input (see _rumnative.c).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__rumnative(void) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "_rumnative writes little-endian hosts' values");
        return NULL;
    }
    _Static_assert(NCOLUMNS <= MAX_KIDS, "the seen mask has a bit per field");
    if (n_bufs == 0) {
        for (int i = 0; i < NCOLUMNS; i++) {
            if (setup(&COLUMNS[i]) < 0) return PyErr_NoMemory();
        }
    }
    return PyModule_Create(&module);
}
