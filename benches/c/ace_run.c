/* ace_run.c: the process wrapper of `hakmem-bench ace-real`.
 *
 *   ace_run RESULT_FILE PRELOAD|- REPEAT PROG [ARGS...]
 *
 * Runs PROG ARGS REPEAT times, one after the other, each in a child
 * forked from this wrapper, with LD_PRELOAD=PRELOAD set in the child only
 * (`-`: LD_PRELOAD removed). The rest of the environment (HAKMEM_ACE, ...)
 * is inherited. Appends one line per run of the batch to RESULT_FILE:
 *
 *   status=S wall_ns=W maxrss_kib=K cpu_us=C ace_threads=T ace_cpu_ns=A
 *
 * Why a wrapper: Linux keeps the peak RSS of a process's address space
 * from before execve in its ru_maxrss, so a child forked or spawned by the
 * (larger) Rust runner would report at least the runner's RSS. Forked from
 * this small program, the floor is this program's RSS (about 1 MiB).
 * ru_maxrss from wait4 is the largest of the child and every descendant it
 * waited for (gcc's cc1 and as, git's helpers): the peak of the biggest
 * single process of the tree, not a sum.
 *
 * wall_ns: CLOCK_MONOTONIC from just before fork to the reap (SIGCHLD is
 * waited for with sigtimedwait, so the reap is not delayed by polling).
 * cpu_us: user + system time of the child and its waited-for descendants.
 * ace_threads / ace_cpu_ns: every 5 ms while the child runs, its threads
 * (/proc/PID/task/TID/comm) are listed; for each thread named
 * `hakmem-ace`, the first field of /proc/PID/task/TID/schedstat (ns on a
 * CPU) is kept. A lower bound: the CPU a worker used after the last poll
 * (at most 5 ms of wall time) is missed, and only the direct child's
 * threads are seen (not those of gcc's cc1, for instance).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 16

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Reads a small file into buf (NUL-terminated); returns its length or -1. */
static int slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return (int)n;
}

struct worker {
    long tid;
    uint64_t cpu_ns;
};

/* One poll of the child's threads. */
static void poll_workers(pid_t pid, struct worker *w, int *nw) {
    char path[320], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/comm", (int)pid, e->d_name);
        if (slurp(path, buf, sizeof buf) < 0 || strcmp(buf, "hakmem-ace\n") != 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        if (slurp(path, buf, sizeof buf) < 0)
            continue;
        uint64_t ns = strtoull(buf, NULL, 10);
        long tid = strtol(e->d_name, NULL, 10);
        int i = 0;
        while (i < *nw && w[i].tid != tid)
            i++;
        if (i == *nw) {
            if (*nw == MAX_WORKERS)
                continue;
            w[i].tid = tid;
            w[i].cpu_ns = 0;
            (*nw)++;
        }
        if (ns > w[i].cpu_ns)
            w[i].cpu_ns = ns;
    }
    closedir(d);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: ace_run RESULT_FILE PRELOAD|- REPEAT PROG [ARGS...]\n");
        return 2;
    }
    const char *result = argv[1];
    const char *preload = argv[2];
    long repeat = strtol(argv[3], NULL, 10);
    if (repeat < 1)
        repeat = 1;
    FILE *out = fopen(result, "a");
    if (out == NULL) {
        perror(result);
        return 2;
    }
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    int worst = 0;
    for (long r = 0; r < repeat; r++) {
        struct worker w[MAX_WORKERS];
        int nw = 0;
        int64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (strcmp(preload, "-") == 0)
                unsetenv("LD_PRELOAD");
            else
                setenv("LD_PRELOAD", preload, 1);
            execvp(argv[4], argv + 4);
            fprintf(stderr, "ace_run: cannot run %s: %s\n", argv[4], strerror(errno));
            _exit(127);
        }
        int status = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        for (;;) {
            pid_t p = wait4(pid, &status, WNOHANG, &ru);
            if (p == pid)
                break;
            if (p < 0 && errno != EINTR) {
                perror("wait4");
                return 2;
            }
            poll_workers(pid, w, &nw);
            struct timespec tick = {0, 5000000};
            sigtimedwait(&chld, NULL, &tick);
        }
        int64_t t1 = now_ns();
        uint64_t ace_ns = 0;
        for (int i = 0; i < nw; i++)
            ace_ns += w[i].cpu_ns;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code != 0)
            worst = code;
        long cpu_us = (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                      ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
        fprintf(out, "status=%d wall_ns=%lld maxrss_kib=%ld cpu_us=%ld ace_threads=%d ace_cpu_ns=%llu\n",
                code, (long long)(t1 - t0), ru.ru_maxrss, cpu_us, nw, (unsigned long long)ace_ns);
        fflush(out);
    }
    fclose(out);
    return worst;
}
