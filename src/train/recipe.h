/* The recipe inside the library: the run record's JSON view of it. */
#ifndef FM_TRAIN_RECIPE_H
#define FM_TRAIN_RECIPE_H

#include <stdio.h>

#include "fmnist/fmnist.h"

/* {"name": p->recipe, "<key>": value, ...}: every key of p's recipe, typed
 * (yes/no keys as booleans). */
void fm__recipe_write_json(FILE *f, const fm_train_params *p);

#endif
