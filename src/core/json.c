/* Recursive-descent JSON parser into a tree. Every read is bounds-checked
 * against len, nesting is limited so hostile input cannot exhaust the stack,
 * and the first problem is reported with its byte offset. */
#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/utf8.h"

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos, base;
    fm_err *err;
    int failed;
} parser;

static int fail(parser *p, const char *what) {
    if (!p->failed) fm__err(p->err, "byte %zu: %s", p->base + p->pos, what);
    p->failed = 1;
    return -1;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n)) return fail(p, "invalid literal");
    p->pos += n;
    return 0;
}

static int hex4(parser *p, unsigned *out) {
    if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad hex digit in \\u escape");
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *dst, unsigned cp) {
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string at p->pos (which is '"') into a new NUL-terminated buffer.
 * The decoded form is never longer than the source, so one allocation of the
 * remaining length bound suffices once the closing quote is found. */
static char *parse_string(parser *p) {
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->len) {
        fail(p, "unterminated string");
        return NULL;
    }
    char *out = malloc(end - start + 1);
    if (!out) {
        fail(p, "out of memory");
        return NULL;
    }
    size_t o = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            fail(p, "control character in string");
            goto bad;
        }
        if (c != '\\') {
            int n = fm__utf8_len(p->s + p->pos, end - p->pos);
            if (!n) {
                fail(p, "invalid UTF-8 in string");
                goto bad;
            }
            memcpy(out + o, p->s + p->pos, (size_t)n);
            o += (size_t)n;
            p->pos += (size_t)n;
            continue;
        }
        p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp)) goto bad;
            if (cp >= 0xD800 && cp < 0xDC00) { /* high surrogate: needs its low half */
                unsigned lo;
                if (p->pos + 2 > end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    fail(p, "unpaired surrogate in \\u escape");
                    goto bad;
                }
                p->pos += 2;
                if (hex4(p, &lo)) goto bad;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, "unpaired surrogate in \\u escape");
                    goto bad;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(p, "unpaired surrogate in \\u escape");
                goto bad;
            } else if (cp == 0) {
                fail(p, "\\u0000 is not allowed in strings");
                goto bad;
            }
            /* \uXXXX is 6 source bytes and at most 3 UTF-8 bytes; a pair is 12 and 4. */
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            p->pos--;
            fail(p, "invalid escape in string");
            goto bad;
        }
    }
    out[o] = 0;
    p->pos = end + 1;
    return out;
bad:
    free(out);
    return NULL;
}

static int parse_number(parser *p, fm__json *v) {
    size_t start = p->pos, i = p->pos;
    int plain = 1; /* no sign, fraction or exponent */
    if (i < p->len && p->s[i] == '-') {
        plain = 0;
        i++;
    }
    if (i >= p->len || p->s[i] < '0' || p->s[i] > '9') return fail(p, "invalid number");
    if (p->s[i] == '0') i++;
    else
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    if (i < p->len && p->s[i] == '.') {
        plain = 0;
        i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9') return fail(p, "invalid number");
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        plain = 0;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9') return fail(p, "invalid number");
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    /* strtod needs a terminated copy: the text is not NUL-terminated. */
    char buf[64];
    size_t n = i - start;
    if (n >= sizeof buf) return fail(p, "number too long");
    memcpy(buf, p->s + start, n);
    buf[n] = 0;
    v->type = FM__JSON_NUMBER;
    v->number = strtod(buf, NULL);
    if (plain) {
        uint64_t u = 0;
        v->is_uint = 1;
        for (size_t k = 0; k < n; k++) {
            unsigned d = (unsigned)(buf[k] - '0');
            if (u > (UINT64_MAX - d) / 10) {
                v->is_uint = 0;
                break;
            }
            u = u * 10 + d;
        }
        v->uint = v->is_uint ? u : 0;
    }
    p->pos = i;
    return 0;
}

static int parse_value(parser *p, fm__json *v, int depth);

/* Appends one zeroed item to v->items (and a key slot for objects). */
static fm__json *push_item(parser *p, fm__json *v, size_t *cap) {
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        fm__json *items = realloc(v->items, nc * sizeof *items);
        if (!items) {
            fail(p, "out of memory");
            return NULL;
        }
        v->items = items;
        if (v->type == FM__JSON_OBJECT) {
            char **keys = realloc(v->keys, nc * sizeof *keys);
            if (!keys) {
                fail(p, "out of memory");
                return NULL;
            }
            v->keys = keys;
        }
        *cap = nc;
    }
    fm__json *it = &v->items[v->n];
    memset(it, 0, sizeof *it);
    if (v->type == FM__JSON_OBJECT) v->keys[v->n] = NULL;
    v->n++;
    return it;
}

/* The member names of one object seen so far, for the duplicate check: open
 * addressing over their indices (+1; 0 is empty), at most half full, so a
 * header of many thousand names is checked in linear time, not quadratic. */
typedef struct {
    size_t *slot, cap;
} key_set;

static size_t key_hash(const char *s) {
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)(h ^ h >> 32);
}

/* Whether key is among keys[0..n) (the set holds exactly those). */
static int key_set_has(const key_set *ks, char *const *keys, const char *key) {
    if (!ks->cap) return 0;
    for (size_t i = key_hash(key) & (ks->cap - 1); ks->slot[i]; i = (i + 1) & (ks->cap - 1))
        if (!strcmp(keys[ks->slot[i] - 1], key)) return 1;
    return 0;
}

/* Adds keys[n - 1], growing the table first when it would pass half full. */
static int key_set_add(key_set *ks, char *const *keys, size_t n) {
    if (2 * n > ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 16;
        size_t *slot = calloc(cap, sizeof *slot);
        if (!slot) return -1;
        free(ks->slot);
        ks->slot = slot;
        ks->cap = cap;
        n--; /* re-add keys[0..n-1) then fall through for the new one */
        for (size_t k = 0; k < n; k++) {
            size_t i = key_hash(keys[k]) & (cap - 1);
            while (slot[i]) i = (i + 1) & (cap - 1);
            slot[i] = k + 1;
        }
        n++;
    }
    size_t i = key_hash(keys[n - 1]) & (ks->cap - 1);
    while (ks->slot[i]) i = (i + 1) & (ks->cap - 1);
    ks->slot[i] = n;
    return 0;
}

static int parse_members(parser *p, fm__json *v, int depth, key_set *ks) {
    int object = v->type == FM__JSON_OBJECT;
    char close = object ? '}' : ']';
    size_t cap = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a string key");
            size_t key_pos = p->pos;
            if (!(key = parse_string(p))) return -1;
            if (key_set_has(ks, v->keys, key)) {
                free(key);
                p->pos = key_pos;
                return fail(p, "duplicate key");
            }
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        fm__json *it = push_item(p, v, &cap);
        if (!it) {
            free(key);
            return -1;
        }
        if (object) {
            v->keys[v->n - 1] = key;
            if (key_set_add(ks, v->keys, v->n)) return fail(p, "out of memory");
        }
        if (parse_value(p, it, depth + 1)) return -1;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, object ? "unterminated object" : "unterminated array");
        char c = p->s[p->pos++];
        if (c == close) return 0;
        if (c != ',') {
            p->pos--;
            return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

static int parse_container(parser *p, fm__json *v, int depth) {
    v->type = p->s[p->pos] == '{' ? FM__JSON_OBJECT : FM__JSON_ARRAY;
    key_set ks = {NULL, 0};
    int rc = parse_members(p, v, depth, &ks);
    free(ks.slot);
    return rc;
}

static int parse_value(parser *p, fm__json *v, int depth) {
    if (depth > JSON_MAX_DEPTH) return fail(p, "nesting too deep");
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input");
    v->offset = p->base + p->pos;
    switch (p->s[p->pos]) {
    case '{':
    case '[': return parse_container(p, v, depth);
    case '"':
        v->type = FM__JSON_STRING;
        return (v->string = parse_string(p)) ? 0 : -1;
    case 't':
        v->type = FM__JSON_BOOL;
        v->boolean = 1;
        return literal(p, "true");
    case 'f':
        v->type = FM__JSON_BOOL;
        return literal(p, "false");
    case 'n':
        v->type = FM__JSON_NULL;
        return literal(p, "null");
    default: return parse_number(p, v);
    }
}

static void free_children(fm__json *v) {
    for (size_t i = 0; i < v->n; i++) {
        free_children(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
}

fm__json *fm__json_parse(const char *text, size_t len, size_t base, fm_err *err) {
    parser p = {text, len, 0, base, err, 0};
    fm__json *v = calloc(1, sizeof *v);
    if (!v) {
        fm__err(err, "out of memory");
        return NULL;
    }
    if (parse_value(&p, v, 0) == 0) {
        skip_ws(&p);
        if (p.pos == p.len) return v;
        fail(&p, "unexpected data after the value");
    }
    fm__json_free(v);
    return NULL;
}

void fm__json_free(fm__json *v) {
    if (!v) return;
    free_children(v);
    free(v);
}

const fm__json *fm__json_get(const fm__json *obj, const char *key) {
    if (!obj || obj->type != FM__JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

void fm_json_write_string(FILE *out, const char *s) {
    fputc('"', out);
    for (size_t left = strlen(s); left;) {
        unsigned char c = (unsigned char)*s;
        int n = 1;
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20) {
                fprintf(out, "\\u%04x", c);
            } else if (!(n = fm__utf8_len(s, left))) {
                fputs("\\ufffd", out);
                n = 1;
            } else {
                fwrite(s, 1, (size_t)n, out);
            }
        }
        s += n;
        left -= (size_t)n;
    }
    fputc('"', out);
}
