/* Valid UTF-8 in everything fmnist writes: the UTF-8 checks themselves, the
 * JSON reader refusing strings that are not UTF-8 (with the byte offset),
 * the JSON writer putting U+FFFD in place of each bad byte of a text it
 * cannot refuse (a file name), the description parser refusing a Latin-1
 * comment with FILE:LINE. Then a run in folders whose names are Latin-1:
 * model files, the checkpoint, run.json, the report and `fmnist eval --json`
 * are read with Python's json (strict UTF-8) when /usr/bin/python3 is there. */
#include <signal.h>

#include "check.h"
#include "clitest.h"
#include "core/json.h"
#include "core/utf8.h"

static void test_checks(void) {
    static const char *const good[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x91\x97",
                                       "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(fm__utf8_len(good[i], strlen(good[i])) == (int)strlen(good[i]), "good %zu", i);
    /* Latin-1, a lone continuation, overlong forms, a surrogate, past
     * U+10FFFF, bytes never used, a cut sequence */
    static const char *const bad[] = {"\xe9", "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80", "\xff", "\xf8\x88\x80\x80\x80", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(fm__utf8_len(bad[i], strlen(bad[i])) == 0, "bad %zu", i);
    CHECK(fm__utf8_len("\xe2\x82\xac", 2) == 0); /* the length bounds the sequence */
    CHECK(fm__utf8_check("caf\xc3\xa9 ok", 8) == 8);
    CHECK(fm__utf8_check("caf\xe9 no", 7) == 3);
}

static void test_json(void) {
    fm_err err;
    const char *ok = "{\"caf\xc3\xa9\": \"\xe2\x82\xac\"}";
    fm__json *j = fm__json_parse(ok, strlen(ok), 0, &err);
    CHECK_MSG(j && fm__json_get(j, "caf\xc3\xa9") &&
                  !strcmp(fm__json_get(j, "caf\xc3\xa9")->string, "\xe2\x82\xac"),
              "%s", j ? "wrong value" : err.msg);
    fm__json_free(j);
    /* a bad byte in a value, in a key; the offset is the bad byte's, plus base */
    const char *bad_value = "{\"a\": \"caf\xe9\"}", *bad_key = "{\"\xed\xa0\x80\": 1}";
    j = fm__json_parse(bad_value, strlen(bad_value), 100, &err);
    CHECK_MSG(!j && !strcmp(err.msg, "byte 110: invalid UTF-8 in string"), "%s", err.msg);
    fm__json_free(j);
    j = fm__json_parse(bad_key, strlen(bad_key), 0, &err);
    CHECK_MSG(!j && !strcmp(err.msg, "byte 2: invalid UTF-8 in string"), "%s", err.msg);
    fm__json_free(j);

    /* the writer: valid text as it is, each bad byte as \ufffd */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fm_json_write_string(f, "caf\xc3\xa9 caf\xe9 \xe2\x82\"\n");
    fclose(f);
    CHECK_MSG(!strcmp(text, "\"caf\xc3\xa9 caf\\ufffd \\ufffd\\ufffd\\\"\\n\""), "%s", text);
    j = fm__json_parse(text, len, 0, &err);
    CHECK_MSG(j && !strcmp(j->string, "caf\xc3\xa9 caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\"\n"),
              "%s", j ? j->string : err.msg);
    fm__json_free(j);
    free(text);
}

static void test_description(void) {
    fm_err err;
    fm_model *m = fm_model_parse("input 28 28 1\n# caf\xc3\xa9\nflatten\n"
                                 "dense units=10 activation=softmax\n",
                                 "utf8.cfg", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    fm_model_free(m);
    m = fm_model_parse("input 28 28 1\nflatten # caf\xe9\ndense units=10 activation=softmax\n",
                       "latin1.cfg", &err);
    CHECK_MSG(!m && !strcmp(err.msg, "latin1.cfg:2: column 14: byte 0xe9 is not UTF-8 (a "
                                     "description is UTF-8 text)"),
              "%s", err.msg);
    fm_model_free(m);
}

static const char *net = "input 28 28 1\n"
                         "# caf\xc3\xa9: UTF-8 is fine in a comment\n"
                         "conv filters=2 kernel=3 padding=same activation=relu\n"
                         "maxpool 4\n"
                         "flatten\n"
                         "dense units=10 activation=softmax\n";

static const char *script =
    "import json, struct, sys\n"
    "args = sys.argv[1:]\n"
    "for kind, path in zip(args[::2], args[1::2]):\n"
    "    raw = open(path, 'rb').read()\n"
    "    if kind == 'safetensors':\n"
    "        n = struct.unpack('<Q', raw[:8])[0]\n"
    "        header = json.loads(raw[8:8 + n].decode('utf-8'))\n"
    "        meta = header['__metadata__']\n"
    "        assert 'caf\\u00e9' in meta['fmnist.description'], path\n"
    "        if 'fmnist.train.model_source' in meta:\n"
    "            assert meta['fmnist.train.model_source'] == 'caf\\ufffd.cfg', meta\n"
    "            assert meta['fmnist.train.data_dir'].endswith('data-\\ufffd'), meta\n"
    "    elif kind == 'json':\n"
    "        v = json.loads(raw.decode('utf-8'))\n"
    "        if 'config' in v:\n"
    "            assert v['config']['model'] == 'caf\\ufffd.cfg', v['config']\n"
    "        else:\n"
    "            assert v['weights'].endswith('run-\\ufffd/model.safetensors'), v['weights']\n"
    "    else:\n"
    "        assert '\\ufffd' in raw.decode('utf-8'), path\n"
    "    print('read', kind, 'file as UTF-8:', path.encode('utf-8', 'replace'))\n";

static void test_files(void) {
    const char *python = "/usr/bin/python3";
    fm_err err;
    fm_images tr, va, te;
    tu_make_set(&tr, 48, 1);
    tu_make_set(&va, 16, 2);
    tu_make_set(&te, 10, 3);
    char data[4200], run[4200], unf[4200];
    snprintf(data, sizeof data, "%s", tu_path("data-\xe9"));
    snprintf(run, sizeof run, "%s", tu_path("run-\xe9"));
    snprintf(unf, sizeof unf, "%s", tu_path("unfinished-\xe9"));
    mkdir(data, 0777);
    CHECK_MSG(fm_data_write(data, FM_FORMAT_IDX, &tr, &te, &err) == 0, "%s", err.msg);

    fm_train_params p = fm_train_default_params();
    p.epochs = 1;
    p.batch = 16;
    p.threads = 1;
    p.model_source = "caf\xe9.cfg"; /* a Latin-1 file name */
    p.data_dir = data;
    p.out_dir = run;
    fm_train_result r;
    fm_model *m = fm_model_parse(net, "test", &err);
    CHECK_MSG(m && fm_train(m, &tr, &va, &p, &r, &err) == 0, "%s", err.msg);
    fm_model_free(m);
    CHECK_MSG(fm_report_write(run, data, NULL, &err) == 0, "%s", err.msg);
    volatile sig_atomic_t stop_now = 1; /* stopped after a step: the checkpoint stays */
    p.out_dir = unf;
    p.interrupt = &stop_now;
    m = fm_model_parse(net, "test", &err);
    CHECK_MSG(m && fm_train(m, &tr, &va, &p, &r, &err) < 0 && r.interrupted, "%s", err.msg);
    fm_model_free(m);
    fm_images_free(&tr);
    fm_images_free(&va);
    fm_images_free(&te);

    /* the library reads them all back */
    char path[4400], args[9000], cmd[40000];
    const char *models[] = {"model.safetensors", "best.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", run, models[i]);
        m = fm_model_load(path, &err);
        CHECK_MSG(m != NULL, "%s", err.msg);
        fm_model_free(m);
    }
    snprintf(args, sizeof args, "eval --weights '%s/model.safetensors' --data '%s' --json", run,
             data);
    int rc = tu_run(args);
    CHECK_MSG(rc == 0, "eval: exit %d: %s", rc, tu_output("err.txt"));
    const char *out = tu_output("out.txt");
    fm__json *j = fm__json_parse(out, strlen(out), 0, &err);
    CHECK_MSG(j != NULL, "eval --json: %s", err.msg);
    fm__json_free(j);

    if (access(python, X_OK) != 0) {
        fprintf(stderr, "note: no %s: the files were not read with Python's json\n", python);
        return;
    }
    snprintf(path, sizeof path, "%s", tu_path("read_utf8.py"));
    tu_write(path, script, strlen(script));
    snprintf(cmd, sizeof cmd,
             "%s '%s' safetensors '%s/model.safetensors' safetensors '%s/best.safetensors' "
             "safetensors '%s/checkpoint.safetensors' json '%s/run.json' json '%s' "
             "html '%s/report.html' >'%s' 2>&1",
             python, path, run, run, unf, run, tu_path("out.txt"), run, tu_path("python.txt"));
    rc = system(cmd);
    CHECK_MSG(rc == 0, "python: %s", tu_output("python.txt"));
    if (getenv("FMNIST_TEST_VERBOSE")) fputs(tu_output("python.txt"), stderr);
}

int main(void) {
    tu_init("test_utf8");
    test_checks();
    test_json();
    test_description();
    test_files();
    return check_finish();
}
