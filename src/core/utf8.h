/* UTF-8 checks: every text fmnist writes into JSON, HTML or ONNX must be
 * well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF), or Python's json.loads and protobuf readers refuse it. */
#ifndef FM_CORE_UTF8_H
#define FM_CORE_UTF8_H

#include <stddef.h>

/* Length (1-4) of the well-formed sequence starting s[0..n), n > 0, or 0
 * when none starts there. */
int fm__utf8_len(const char *s, size_t n);

/* Offset of the first byte of s[0..n) that starts no well-formed sequence;
 * n when all of it is UTF-8. */
size_t fm__utf8_check(const char *s, size_t n);

/* The UTF-8 of U+FFFD, which writers put in place of each such byte of a
 * text they cannot refuse (a file name). */
#define FM__UTF8_REPLACEMENT "\xef\xbf\xbd"

#endif
