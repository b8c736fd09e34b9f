/* A main for the fuzz targets without libFuzzer: runs each file named on the
 * command line (folders: every file in them) through LLVMFuzzerTestOneInput
 * once. Linked with any compiler and no sanitizer, it replays a corpus under
 * valgrind, which sees what ASan does not (reads of uninitialised memory):
 *
 *   gcc -O1 -g -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc -o /tmp/replay_csv \
 *       fuzz/replay.c fuzz/fuzz_csv.c build/libfmnist.a -lpng -lz -lm -fopenmp
 *   valgrind -q --error-exitcode=1 /tmp/replay_csv fuzz/corpus/csv
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    fclose(f);
    if (!buf) return -1;
    /* an exact-size copy, so a read past the end is past the allocation */
    uint8_t *data = malloc(n ? n : 1);
    memcpy(data, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int runs = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.') continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                bad |= run_file(p) != 0;
                runs++;
            }
            if (d) closedir(d);
        } else {
            bad |= run_file(argv[i]) != 0;
            runs++;
        }
    }
    fprintf(stderr, "replay: %d inputs run\n", runs);
    return bad;
}
