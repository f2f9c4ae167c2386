/* libc_pages.c: which pages of a shared object are resident in this process
 * after one malloc(64) and free, read from /proc/self/pagemap (bit 63:
 * present). Run it with and without an allocator preloaded and diff the two
 * lists to see which file pages an allocator's start-up brings in (the
 * kernel's fault-around maps up to 16 neighbouring pages per fault, so one
 * call into a cold part of libc can cost 64 KiB of resident memory).
 * docs/benchmarks.md, "Issue 13: where the remaining gaps come from".
 *
 *   cc -O1 -o /tmp/libc_pages benches/c/libc_pages.c
 *   /tmp/libc_pages libc.so > glibc.txt
 *   LD_PRELOAD=$PWD/target/release/libhakmem.so /tmp/libc_pages libc.so > hakmem.txt
 *   diff glibc.txt hakmem.txt
 *
 * Further arguments make the program itself call what an allocator's
 * start-up may call, before its malloc: `atfork` (pthread_atfork with
 * empty handlers), `key` (pthread_key_create and pthread_setspecific).
 * Run under glibc, counting lines, they show what those calls cost:
 *
 *   cc -O1 -pthread -o /tmp/libc_pages benches/c/libc_pages.c
 *   for v in "" atfork "atfork key"; do /tmp/libc_pages libc.so $v | wc -l; done
 *
 * Each line: the mapping's permissions, the page's file offset (hex) and
 * the file. Nothing from stdio runs until the pages are collected (the
 * maps file is read with read() and parsed by hand), so stdio's own first
 * use does not show up in the list.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char maps[1 << 17];            /* /proc/self/maps, read whole */
static unsigned long pages[1 << 16];  /* present pages: file offsets */
static const char *page_map[1 << 16]; /* ... and their mapping's line */
static char out[1 << 20];

/* A hex number at *s, advancing *s past it. */
static unsigned long hex(const char **s) {
    unsigned long v = 0;
    for (;; (*s)++) {
        char c = **s;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v * 16 + (unsigned long)d;
    }
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "libc.so";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "atfork")) {
            pthread_atfork(NULL, NULL, NULL);
        } else if (!strcmp(argv[i], "key")) {
            pthread_key_t k;
            if (pthread_key_create(&k, NULL) == 0)
                pthread_setspecific(k, &k);
        }
    }
    char *p = malloc(64);
    if (!p)
        return 1;
    memset(p, 1, 64);
    free(p);
    /* Nothing from stdio until the pages are collected: open, read, pread
     * and hand-written parsing only. */
    int fd = open("/proc/self/maps", O_RDONLY);
    int pm = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0 || pm < 0) {
        perror("libc_pages: /proc/self");
        return 1;
    }
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, maps + n, sizeof maps - 1 - n)) > 0)
        n += (size_t)r;
    maps[n] = 0;
    size_t np = 0;
    for (char *line = maps; *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (strstr(line, name)) {
            const char *c = line;
            unsigned long s = hex(&c);
            c++;
            unsigned long e = hex(&c);
            c += 6; /* " rwxp " */
            unsigned long off = hex(&c);
            for (unsigned long a = s; a < e && np < sizeof pages / sizeof pages[0]; a += 4096) {
                uint64_t v = 0;
                if (pread(pm, &v, 8, (off_t)(a / 4096) * 8) == 8 && (v >> 63)) {
                    pages[np] = off + (a - s);
                    page_map[np++] = line;
                }
            }
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < np && o + 600 < sizeof out; i++) {
        char perm[5] = {0};
        memcpy(perm, strchr(page_map[i], ' ') + 1, 4);
        const char *path = strrchr(page_map[i], ' ');
        o += (size_t)snprintf(out + o, sizeof out - o, "%s %lx %s\n", perm, pages[i],
                              path ? path + 1 : "");
    }
    fputs(out, stdout);
    return 0;
}
