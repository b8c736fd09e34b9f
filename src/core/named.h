/* Tables of texts built into the library by name (the recipes, the
 * networks), and the one rule that tells such a name from a file's. */
#ifndef FM_CORE_NAMED_H
#define FM_CORE_NAMED_H

#include <stddef.h>

typedef struct fm__named_text {
    const char *name;
    const char *text;
} fm__named_text;

/* The text named name among the n of t, or NULL. */
const char *fm__named_find(const fm__named_text *t, size_t n, const char *name);
/* "a, b, c": the names of t, into buf (cut to size). */
void fm__named_list(const fm__named_text *t, size_t n, char *buf, size_t size);
/* 1 when s names a file rather than a built-in: it has a '.' or a '/'. */
int fm__named_is_file(const char *s);

#endif
