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
 * Each line: the mapping's permissions, the page's file offset (hex) and
 * the file. The output is built in a static buffer before anything is
 * printed, so stdio's own first use does not show up in the list.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char out[1 << 17];

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "libc.so";
    char *p = malloc(64);
    if (!p)
        return 1;
    memset(p, 1, 64);
    free(p);
    FILE *maps = fopen("/proc/self/maps", "r");
    int pm = open("/proc/self/pagemap", O_RDONLY);
    if (!maps || pm < 0) {
        perror("libc_pages: /proc/self");
        return 1;
    }
    char line[512];
    size_t o = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long s, e, off;
        char perm[8], path[256] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %255s", &s, &e, perm, &off, path) < 4)
            continue;
        if (!strstr(path, name))
            continue;
        for (unsigned long a = s; a < e; a += 4096) {
            uint64_t v = 0;
            if (pread(pm, &v, 8, (off_t)(a / 4096) * 8) != 8)
                continue;
            if ((v >> 63) && o + 400 < sizeof out)
                o += (size_t)snprintf(out + o, sizeof out - o, "%s %lx %s\n", perm,
                                      off + (a - s), path);
        }
    }
    fputs(out, stdout);
    return 0;
}
