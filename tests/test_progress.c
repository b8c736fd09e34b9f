/* The Keras-style progress line: exact text of a finished epoch, the ETA and
 * padding while it runs, and plain lines when the output is not a terminal. */
#include "check.h"
#include "train/progress.h"

#include <string.h>

#define BAR5 "\xe2\x94\x81\xe2\x94\x81\xe2\x94\x81\xe2\x94\x81\xe2\x94\x81"
#define BAR20 BAR5 BAR5 BAR5 BAR5

int main(void) {
    char line[1024];
    const fm__metric m[] = {{"accuracy", 0.91234}, {"loss", 0.24116}, {"val_accuracy", 0.92009},
                            {"val_loss", 0.22104}, {"learning_rate", (double)1e-3f}};
    fm__progress_format(line, sizeof line, 750, 750, 41.2, m, 5, 0);
    const char *want = "750/750 " BAR20 " 41s 55ms/step - accuracy: 0.9123 - loss: 0.2412"
                       " - val_accuracy: 0.9201 - val_loss: 0.2210 - learning_rate: 1.0000e-03";
    CHECK_MSG(!strcmp(line, want), "got '%s'", line);

    /* halfway: ETA = time per step x steps left */
    fm__progress_format(line, sizeof line, 375, 750, 20.0, m + 1, 1, 0);
    want = "375/750 " BAR20 " 20s 53ms/step - loss: 0.2412";
    CHECK_MSG(!strcmp(line, want), "got '%s'", line);
    /* the dimmed tail of the bar on a terminal */
    fm__progress_format(line, sizeof line, 375, 750, 20.0, m + 1, 1, 1);
    want = "375/750 " BAR5 BAR5 "\x1b[2m" BAR5 BAR5 "\x1b[0m 20s";
    CHECK(!strncmp(line, want, strlen(want)));

    /* minutes, padding to the width of the step count, small values in %e */
    const fm__metric tiny = {"loss", 5e-4};
    fm__progress_format(line, sizeof line, 75, 750, 10.0, &tiny, 1, 0);
    want = " 75/750 " BAR20 " 1:30 133ms/step - loss: 5.0000e-04";
    CHECK_MSG(!strcmp(line, want), "got '%s'", line);
    fm__progress_format(line, sizeof line, 1, 10, 3.0, NULL, 0, 0);
    want = " 1/10 " BAR20 " 27s 3s/step";
    CHECK_MSG(!strcmp(line, want), "got '%s'", line);

    /* a short buffer truncates, never overflows */
    char small[16];
    fm__progress_format(small, sizeof small, 750, 750, 41.2, m, 5, 0);
    CHECK(strlen(small) < sizeof small);

    /* not a terminal: the epoch header and one plain line, no \r, no escapes */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        fm__progress p;
        fm__progress_begin(&p, f, 3, 100, 750);
        CHECK(!p.tty);
        fm__progress_step(&p, 10, m, 2);
        fm__progress_end(&p, m, 5);
        rewind(f);
        char text[2048] = {0};
        size_t got = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        CHECK(got > 0);
        const char *head = "Epoch 3/100\n750/750 " BAR20 " ";
        CHECK(!strncmp(text, head, strlen(head)));
        CHECK(strchr(text, '\r') == NULL && strchr(text, '\x1b') == NULL);
        CHECK(strstr(text, " - learning_rate: 1.0000e-03\n") != NULL);
    }
    return check_finish();
}
