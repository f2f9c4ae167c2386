/* The HAKMEM_STATS exit report reaches its reader even when the program
 * closes stderr before it exits (as `ls` does through gnulib's
 * close_stdout). Run by the harness with HAKMEM_STATS set, in these modes:
 *
 *   test_stats close   closes fd 2 (fclose(stderr)) before exit; the report
 *                      still arrives on the harness's stderr pipe, through
 *                      the duplicate taken at initialisation.
 *   test_stats reuse   closes fd 2 and opens /dev/null, which takes number
 *                      2; the report still arrives on the pipe.
 *   test_stats dup     checks the duplicate of stderr: one descriptor at
 *                      100 or above names the same pipe as fd 2 and is
 *                      close-on-exec.
 *   test_stats file    (HAKMEM_STATS_FILE set) checks the report file's
 *                      descriptor: at 100 or above, close-on-exec, append
 *                      mode, write-only.
 *   test_stats plain   allocates and exits normally.
 *
 * Every mode allocates small, mid and span blocks first so that the report
 * has something to count. */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>

static void churn(void) {
    void *keep[64];
    for (int i = 0; i < 64; i++) {
        keep[i] = malloc(opaque(16 + (size_t)i * 1000));
        CHECK(keep[i] != NULL, "malloc %d", i);
        memset(keep[i], i, 16);
    }
    void *span = malloc(opaque(1 << 20));
    CHECK(span != NULL, "span");
    free(span);
    for (int i = 0; i < 64; i += 2)
        free(keep[i]);
}

/* Descriptors in [3, 1024) other than `skip` that name what `st` names. */
static int find_same(const struct stat *st, int skip, int *found, int max) {
    int n = 0;
    for (int fd = 3; fd < 1024 && n < max; fd++) {
        struct stat o;
        if (fd != skip && fstat(fd, &o) == 0 && o.st_dev == st->st_dev &&
            o.st_ino == st->st_ino)
            found[n++] = fd;
    }
    return n;
}

int main(int argc, char **argv) {
    require_hakmem("test_stats");
    const char *mode = argc > 1 ? argv[1] : "plain";
    churn();

    if (!strcmp(mode, "dup")) {
        struct stat st;
        int found[8];
        CHECK(fstat(2, &st) == 0, "fstat(2)");
        int n = find_same(&st, 2, found, 8);
        int high = -1;
        for (int i = 0; i < n; i++)
            if (found[i] >= 100)
                high = found[i];
        CHECK(high >= 100, "no duplicate of stderr at 100 or above (%d)", n);
        if (high >= 0)
            CHECK(fcntl(high, F_GETFD) & FD_CLOEXEC, "fd %d not cloexec",
                  high);
    } else if (!strcmp(mode, "file")) {
        const char *path = getenv("HAKMEM_STATS_FILE");
        struct stat st;
        int found[8];
        CHECK(path && stat(path, &st) == 0, "the report file exists");
        if (path && stat(path, &st) == 0) {
            mode_t mask = umask(0);
            umask(mask);
            CHECK((st.st_mode & 0777) == (0644 & ~mask), "mode %o",
                  (unsigned)(st.st_mode & 0777));
            int n = find_same(&st, -1, found, 8);
            CHECK(n == 1, "%d descriptors name the report file", n);
            if (n == 1) {
                int fl = fcntl(found[0], F_GETFL);
                CHECK(found[0] >= 100, "fd %d", found[0]);
                CHECK(fcntl(found[0], F_GETFD) & FD_CLOEXEC, "not cloexec");
                CHECK(fl & O_APPEND, "not append");
                CHECK((fl & O_ACCMODE) == O_WRONLY, "not write-only");
            }
        }
    }

    int rc = test_report();
    if (!strcmp(mode, "close") || !strcmp(mode, "reuse")) {
        /* What gnulib's close_stdout does at exit. */
        fclose(stderr);
        close(2);
        if (!strcmp(mode, "reuse")) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd != 2) {
                printf("test_stats: /dev/null got fd %d, not 2\n", fd);
                return 1;
            }
        }
    }
    return rc;
}
