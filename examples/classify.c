/* classify: the class of each picture, with the ten probabilities, through
 * the installed library (see the README, "Embedding fmnist in a C program").
 *
 *   cc classify.c $(pkg-config --cflags --libs fmnist) -o classify
 *   ./classify models/model.safetensors [--invert] shirt.png boot.pgm
 *
 * prints a line per picture: the file, the class number, its name, then the
 * probabilities of classes 0-9 (%.6g, as `fmnist predict --json` writes them). */
#include <fmnist/fmnist.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL [--invert] IMAGE...\n", argv[0]);
        return 2;
    }
    fm_err err;
    fm_model *model = fm_model_load(argv[1], &err);
    if (!model) return fprintf(stderr, "%s\n", err.msg), 1;
    unsigned flags = 0;
    int failed = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--invert")) {
            flags |= FM_IMAGE_INVERT;
            continue;
        }
        uint8_t pixels[FM_IMAGE_PIXELS]; /* 28x28, row-major, 0 = black */
        float probs[FM_NUM_CLASSES];
        int c = fm_image_load(argv[i], flags, pixels, NULL, &err);
        if (c == 0) c = fm_model_classify(model, pixels, probs, &err);
        if (c < 0) {
            fprintf(stderr, "%s\n", err.msg);
            failed = 1;
            continue;
        }
        printf("%s %d %s", argv[i], c, fm_model_class_name(model, c));
        for (int k = 0; k < FM_NUM_CLASSES; k++) printf(" %.6g", probs[k]);
        printf("\n");
    }
    fm_model_free(model);
    return failed;
}
