/* Counter-based randomness for training. Every random draw of a run comes
 * from a stream named by (seed, epoch, sample, purpose): the data order of an
 * epoch, one sample's augmentation, one sample's dropout mask in one layer.
 * What a sample gets therefore does not depend on the batch or the process
 * it lands in, nor on what was drawn before it, so a run gives the same
 * training for any process count and resumes from its position alone. A
 * stream is an fm_rng seeded with a hash of the four. */
#ifndef FM_CORE_DRAWS_H
#define FM_CORE_DRAWS_H

#include <stdint.h>

#include "fmnist/fmnist.h"

typedef enum fm__purpose {
    FM__DRAW_INIT = 1, /* the weights' initialisation (epoch 0, no sample) */
    FM__DRAW_ORDER,    /* an epoch's data order (no sample) */
    FM__DRAW_AUGMENT,  /* a sample's augmentation */
    FM__DRAW_DROPOUT,  /* a sample's dropout mask; the layer's name is hashed in */
} fm__purpose;

#define FM__NO_SAMPLE UINT64_MAX
/* The epoch number of precise BatchNorm's pass, after every training epoch. */
#define FM__EPOCH_PRECISE_BN ((uint64_t)1 << 32)

/* rng = the stream (seed, epoch, sample, purpose). */
void fm__rng_stream(fm_rng *rng, uint64_t seed, uint64_t epoch, uint64_t sample,
                    uint64_t purpose);

/* The purpose `base` for a named part (a layer): base with the name's hash. */
uint64_t fm__purpose_named(fm__purpose base, const char *name);

/* The streams of one training batch: sample[i] is the index, in the training
 * set, of the batch's i-th image; NULL: image i is sample i. */
typedef struct fm__draws {
    uint64_t seed, epoch;
    const uint32_t *sample;
} fm__draws;

static inline uint64_t fm__draws_sample(const fm__draws *d, int i) {
    return d->sample ? d->sample[i] : (uint64_t)i;
}

#endif
