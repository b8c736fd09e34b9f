/* The fmnist command is built on the public API alone: every file of
 * src/cli includes no project header but "fmnist/fmnist.h" and its own
 * "cli.h", and names nothing internal (fm__, FM__), so an embedding program
 * can do all it does. (The build enforces the includes too: src/ is not on
 * the CLI's include path.) The scanner is first shown to catch both on
 * files written here. */
#include <dirent.h>
#include <string.h>

#include "check.h"
#include "clitest.h"

/* Problems in the files of dir, one line each into why; their count. */
static int scan(const char *dir, char *why, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, cap, "cannot open %s\n", dir);
        return 1;
    }
    int bad = 0;
    size_t at = 0;
    why[0] = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4352];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = tu_text(path);
        int line = 1;
        for (char *p = text; *p; p++) {
            const char *problem = NULL;
            if (*p == '\n') line++;
            else if (!strncmp(p, "fm__", 4) || !strncmp(p, "FM__", 4)) problem = "internal name";
            else if (!strncmp(p, "#include \"", 10)) {
                const char *name = p + 10;
                if (strncmp(name, "fmnist/fmnist.h\"", 16) && strncmp(name, "cli.h\"", 6))
                    problem = "internal header";
            }
            if (problem && at < cap) {
                const char *eol = strchr(p, '\n');
                int len = eol ? (int)(eol - p) : (int)strlen(p);
                at += (size_t)snprintf(why + at, cap - at, "%s:%d: %s: %.*s\n", e->d_name, line,
                                       problem, len > 60 ? 60 : len, p);
            }
            bad += problem != NULL;
        }
        free(text);
    }
    closedir(d);
    return bad;
}

int main(void) {
    char why[8192];
    /* the scanner catches both */
    tu_init("test_cli_public");
    const char *good = "#include <stdio.h>\n#include \"cli.h\"\n#include \"fmnist/fmnist.h\"\n",
               *bad = "#include \"core/json.h\"\nint x = fm__y;\n";
    tu_write(tu_path("good.c"), good, strlen(good));
    CHECK_MSG(scan(tu_path(""), why, sizeof why) == 0, "%s", why);
    tu_write(tu_path("bad.c"), bad, strlen(bad));
    CHECK(scan(tu_path(""), why, sizeof why) == 2);
    CHECK_MSG(strstr(why, "bad.c:1: internal header: #include \"core/json.h\"") &&
                  strstr(why, "bad.c:2: internal name: fm__y;"),
              "%s", why);

    const char *src = getenv("FMNIST_SOURCE_DIR");
    char cli[4096];
    snprintf(cli, sizeof cli, "%s/src/cli", src ? src : "..");
    CHECK_MSG(scan(cli, why, sizeof why) == 0, "src/cli uses the library's insides:\n%s", why);
    return check_finish();
}
