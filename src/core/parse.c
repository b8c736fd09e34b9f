/* Strict unsigned decimals (see parse.h). */
#include "core/parse.h"

int fm__parse_u64(const char *s, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    int digits = 0;
    for (; *s; s++, digits++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1; /* would overflow */
        v = v * 10 + d;
    }
    if (!digits || v > max) return -1;
    *out = v;
    return 0;
}
