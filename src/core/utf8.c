#include "core/utf8.h"

int fm__utf8_len(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    if (s[0] < 0x80) return 1;
    int len = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
            : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    /* the second byte's range rules out overlong forms, surrogates and
     * code points past U+10FFFF */
    if (len && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
                (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;
    return len;
}

size_t fm__utf8_check(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int len = fm__utf8_len(s + i, n - i);
        if (!len) break;
        i += (size_t)len;
    }
    return i;
}
