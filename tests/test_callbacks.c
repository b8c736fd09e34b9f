/* The callbacks on scripted val_loss / val_accuracy sequences whose outcome
 * (stop epoch, learning-rate schedule, checkpoint epochs, restored epoch) was
 * worked out by hand from Keras's rules. */
#include "check.h"
#include "train/callbacks.h"

#include <math.h>

int main(void) {
    /* EarlyStopping, patience 3:
     * epoch     1    2    3    4    5     6     7     8
     * val_loss  1.0  0.8  0.8  0.9  0.79  0.85  0.85  0.85
     * improves  y    y    n(=) n    y     n     n     n -> wait 3: stop at 8 */
    {
        const double loss[] = {1.0, 0.8, 0.8, 0.9, 0.79, 0.85, 0.85, 0.85};
        const int improved[] = {1, 1, 0, 0, 1, 0, 0, 0};
        fm__early_stop es;
        fm__early_stop_init(&es, 3);
        int stop = 0, e;
        for (e = 1; e <= 8 && !stop; e++)
            CHECK(fm__early_stop_update(&es, e, loss[e - 1], &stop) == improved[e - 1]);
        CHECK(stop && e - 1 == 8);
        CHECK(es.stopped_epoch == 8);
        CHECK(es.best_epoch == 5 && es.best == 0.79);
    }
    /* min_delta 0: any decrease, however small, improves */
    {
        fm__early_stop es;
        fm__early_stop_init(&es, 1);
        int stop;
        fm__early_stop_update(&es, 1, 0.5, &stop);
        CHECK(fm__early_stop_update(&es, 2, nextafter(0.5, 0.0), &stop) == 1 && !stop);
        CHECK(fm__early_stop_update(&es, 3, 0.5, &stop) == 0 && stop); /* patience 1 */
    }
    /* a NaN first epoch still counts as the best (Keras keeps those weights)
     * and any later finite loss beats it */
    {
        fm__early_stop es;
        fm__early_stop_init(&es, 2);
        int stop;
        CHECK(fm__early_stop_update(&es, 1, NAN, &stop) == 1 && !stop);
        CHECK(es.best_epoch == 1);
        CHECK(fm__early_stop_update(&es, 2, 3.0, &stop) == 1 && es.best_epoch == 2);
        CHECK(fm__early_stop_update(&es, 3, NAN, &stop) == 0 && !stop);
    }

    /* ReduceLROnPlateau, patience 2, factor 0.5, min_lr 0.1, from lr 1:
     * epoch  1    2        3       4     5  6  7  8  9  10  11  12  13
     * loss   1.0  0.99995  0.9999  0.99  1  1  1  1  1  1   1   1   1
     * 2: not < 1.0 - 1e-4; 3: not < 0.9999 either -> wait 2 -> lr 0.5;
     * 4 improves; 6 -> 0.25; 8 -> 0.125; 10 -> max(0.0625, 0.1) = 0.1;
     * 12: lr already at min_lr, nothing changes. */
    {
        const double loss[] = {1.0, 0.99995, 0.9999, 0.99, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        const float lr_after[] = {1,      1,      0.5f, 0.5f, 0.5f, 0.25f, 0.25f,
                                  0.125f, 0.125f, 0.1f, 0.1f, 0.1f, 0.1f};
        fm__reduce_lr rl;
        fm__reduce_lr_init(&rl, 2, 0.5, 0.1);
        float lr = 1.0f;
        for (int e = 1; e <= 13; e++) {
            int lowered = fm__reduce_lr_update(&rl, loss[e - 1], &lr);
            CHECK_MSG(lr == lr_after[e - 1], "epoch %d: lr %g, want %g", e, lr, lr_after[e - 1]);
            CHECK(lowered == (e == 3 || e == 6 || e == 8 || e == 10));
        }
        CHECK(rl.reductions == 4);
    }
    /* the threshold is absolute: from best 10, 9.9995 improves (PyTorch's
     * relative 1e-4 would need < 9.999) */
    {
        fm__reduce_lr rl;
        fm__reduce_lr_init(&rl, 1, 0.5, 0.0);
        float lr = 1.0f;
        fm__reduce_lr_update(&rl, 10.0, &lr);
        CHECK(fm__reduce_lr_update(&rl, 9.9995, &lr) == 0 && lr == 1.0f && rl.best == 9.9995);
        CHECK(fm__reduce_lr_update(&rl, 9.9995, &lr) == 1 && lr == 0.5f);
    }

    /* ModelCheckpoint: strictly greater val_accuracy saves; NaN never does.
     * epoch  1    2    3    4     5     6    7
     * acc    0.5  0.6  0.6  0.55  0.61  NaN  0.7  -> saves at 1, 2, 5, 7 */
    {
        const double acc[] = {0.5, 0.6, 0.6, 0.55, 0.61, NAN, 0.7};
        const int save[] = {1, 1, 0, 0, 1, 0, 1};
        fm__best_saver saver;
        fm__save_best_init(&saver);
        for (int e = 1; e <= 7; e++)
            CHECK(fm__save_best_update(&saver, e, acc[e - 1]) == save[e - 1]);
        CHECK(saver.best_epoch == 7 && saver.best == 0.7);
    }

    /* The recipe together (patience 15 / 8, factor 0.5): val_loss falls
     * 0.95, 0.90, ... 0.50 over epochs 1-10 then sits at 0.6; val_accuracy
     * rises until epoch 12 then sits. EarlyStopping: best 10, stops at 25,
     * restores 10. ReduceLROnPlateau: 8 epochs without improvement after 10
     * -> lowered at the end of 18, so epochs 19-25 run at 5e-4. Best saves
     * at 1..12. */
    {
        fm__early_stop es;
        fm__reduce_lr rl;
        fm__best_saver saver;
        fm__early_stop_init(&es, 15);
        fm__reduce_lr_init(&rl, 8, 0.5, 0.0);
        fm__save_best_init(&saver);
        float lr = 1e-3f, lr_used[100];
        int saves = 0, last_save = 0, epoch = 0, stop = 0;
        while (!stop && epoch < 100) {
            epoch++;
            double vl = epoch <= 10 ? 1.0 - 0.05 * epoch : 0.6;
            double va = epoch <= 12 ? 0.5 + 0.01 * epoch : 0.62;
            lr_used[epoch - 1] = lr;
            fm__early_stop_update(&es, epoch, vl, &stop);
            fm__reduce_lr_update(&rl, vl, &lr);
            if (fm__save_best_update(&saver, epoch, va)) saves++, last_save = epoch;
        }
        CHECK(epoch == 25 && es.stopped_epoch == 25);
        CHECK(es.best_epoch == 10);
        CHECK(lr_used[17] == 1e-3f && lr_used[18] == 5e-4f && lr_used[24] == 5e-4f);
        CHECK(rl.reductions == 1);
        CHECK(saves == 12 && last_save == 12 && saver.best_epoch == 12);
    }
    return check_finish();
}
