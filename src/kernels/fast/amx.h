/* The AMX tile configuration both AMX users share (bf16.c's tdpbf16ps
 * engine, qgemm.c's tdpbsud convs and dense layers): tiles 0-7, each 16
 * rows of 64 bytes. Include only where the compiler knows AMX. */
#ifndef FM_KERNELS_FAST_AMX_H
#define FM_KERNELS_FAST_AMX_H

#include <immintrin.h>
#include <stdint.h>

typedef struct fm__amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} fm__amx_config;

/* A static object: GCC 12 drops the stores into a local one that only
 * ldtilecfg reads. */
static const fm__amx_config fm__amx_tiles = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

/* This thread's tiles configured, until fm__amx_end. */
__attribute__((target("amx-tile"))) static inline void fm__amx_begin(void) {
    _tile_loadconfig(&fm__amx_tiles);
}

__attribute__((target("amx-tile"))) static inline void fm__amx_end(void) { _tile_release(); }

#endif
