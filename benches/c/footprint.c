/* The footprint probe of `hakmem-bench footprint`: the smallest program
 * that uses an allocator. One malloc(64), a write to every byte, one free;
 * then it copies /proc/self/status (VmHWM, VmRSS) to stdout and, with the
 * argument `smaps`, /proc/self/smaps as well, and exits.
 *
 * The copies use open/read/write and a static buffer, so that reading the
 * figures allocates nothing (stdio would malloc a buffer first). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char buf[1 << 16];

static void copy(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        _exit(3);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, (size_t)(n - off));
            if (w <= 0)
                _exit(4);
            off += w;
        }
    }
    close(fd);
}

int main(int argc, char **argv) {
    volatile char *p = malloc(64);
    if (!p)
        return 1;
    for (int i = 0; i < 64; i++)
        p[i] = (char)i;
    free((void *)p);
    static const char mark[] = "== status\n";
    if (write(1, mark, sizeof mark - 1) < 0)
        return 2;
    copy("/proc/self/status");
    if (argc > 1 && strcmp(argv[1], "smaps") == 0) {
        static const char mark2[] = "== smaps\n";
        if (write(1, mark2, sizeof mark2 - 1) < 0)
            return 2;
        copy("/proc/self/smaps");
    }
    return 0;
}
