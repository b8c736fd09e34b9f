/* One strict reader of unsigned decimals, for numbers stored as text in file
 * metadata: digits only, the whole string, no sign, no spaces, no leading
 * '+' (strtoull alone accepts all three). */
#ifndef FM_CORE_PARSE_H
#define FM_CORE_PARSE_H

#include <stdint.h>

/* 0 and *out = the value when s is 1-20 decimal digits worth at most max;
 * -1 otherwise (*out unchanged). */
int fm__parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
