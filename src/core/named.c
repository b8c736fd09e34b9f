/* Built-in texts by name (see named.h). */
#include "core/named.h"

#include <stdio.h>
#include <string.h>

const char *fm__named_find(const fm__named_text *t, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return t[i].text;
    return NULL;
}

void fm__named_list(const fm__named_text *t, size_t n, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", t[i].name);
}

int fm__named_is_file(const char *s) { return strchr(s, '/') || strchr(s, '.'); }
