/* Encodings the self-contained report needs: base64 for data URIs and HTML
 * escaping (its PNG images come from core/png.h). */
#include "report/report.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/utf8.h"

void fm__base64_write(FILE *out, const uint8_t *data, size_t n) {
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        char q[4] = {digits[v >> 18], digits[(v >> 12) & 63], digits[(v >> 6) & 63], digits[v & 63]};
        fwrite(q, 1, 4, out);
    }
    if (i < n) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < n ? (uint32_t)data[i + 1] << 8 : 0);
        char q[4] = {digits[v >> 18], digits[(v >> 12) & 63],
                     i + 1 < n ? digits[(v >> 6) & 63] : '=', '='};
        fwrite(q, 1, 4, out);
    }
}

void fm__html_escape(FILE *out, const char *s) {
    for (size_t left = strlen(s); left;) {
        int n = 1;
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            /* the page is UTF-8: a byte that is not (a file name's) shows as U+FFFD */
            if (!(n = fm__utf8_len(s, left))) {
                fputs(FM__UTF8_REPLACEMENT, out);
                n = 1;
            } else {
                fwrite(s, 1, (size_t)n, out);
            }
        }
        s += n;
        left -= (size_t)n;
    }
}
