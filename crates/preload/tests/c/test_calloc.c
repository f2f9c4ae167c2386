/* calloc returns zeroed memory also when it reuses blocks that were dirty
 * when freed (after glibc's tst-calloc): tiny, mid and large sizes, blocks
 * filled with 0xAB, freed, and asked for again with calloc in both
 * argument orders, through calloc and __libc_calloc. */
#include "common.h"

static const size_t sizes[] = {1,     8,     16,    24,     48,     100,
                               256,   500,   1000,  1024,   2000,   4000,
                               8000,  16000, 40000, 52000,  65536,  100000,
                               1 << 20, (1 << 20) + 123, 3 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAXK 64

static size_t first_nonzero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return i;
    return n;
}

static void one_size(size_t n, int round) {
    void *blocks[MAXK];
    size_t k = n <= 1024 ? 64 : n <= 65536 ? 16 : 4;
    for (size_t i = 0; i < k; i++) {
        blocks[i] = malloc(n);
        CHECK(blocks[i] != NULL, "malloc(%zu)", n);
        if (blocks[i])
            memset(blocks[i], 0xab, malloc_usable_size(blocks[i]));
    }
    for (size_t i = 0; i < k; i++)
        free(blocks[i]);
    for (size_t i = 0; i < k; i++) {
        void *p;
        switch ((i + (size_t)round) % 3) {
        case 0:
            p = calloc(1, n);
            break;
        case 1:
            /* n = a * b with a > 1 where possible. */
            p = n % 8 == 0 ? calloc(n / 8, 8) : calloc(n, 1);
            break;
        default:
            p = libc_calloc(n, 1);
            break;
        }
        CHECK(p != NULL, "calloc(%zu)", n);
        if (!p) {
            blocks[i] = NULL;
            continue;
        }
        size_t z = first_nonzero(p, n);
        CHECK(z == n, "round %d: calloc(%zu) = %p: byte %zu is %#x", round, n,
              p, z, ((unsigned char *)p)[z]);
        memset(p, 0xab, n);
        blocks[i] = p;
    }
    for (size_t i = 0; i < k; i++)
        free(blocks[i]);
}

int main(void) {
    require_hakmem("test_calloc");
    for (int round = 0; round < 4; round++)
        for (size_t i = 0; i < NSIZES; i++)
            one_size(sizes[i], round);
    /* Mixed: dirty blocks of many sizes freed in one go, then calloc of
     * random sizes that land in the same classes. */
    uint64_t seed = 0x1234567;
    for (int round = 0; round < 4; round++) {
        void *dirty[500];
        for (int i = 0; i < 500; i++) {
            size_t n = 1 + rng_next(&seed) % 70000;
            dirty[i] = malloc(n);
            memset(dirty[i], 0xab, n);
        }
        for (int i = 0; i < 500; i++)
            free(dirty[i]);
        for (int i = 0; i < 500; i++) {
            size_t n = 1 + rng_next(&seed) % 70000;
            unsigned char *p = calloc(n, 1);
            CHECK(p != NULL, "calloc(%zu, 1)", n);
            size_t z = p ? first_nonzero(p, n) : n;
            CHECK(z == n, "mixed calloc(%zu) byte %zu not zero", n, z);
            dirty[i] = p;
        }
        for (int i = 0; i < 500; i++)
            free(dirty[i]);
    }
    /* calloc(0, x) and calloc(x, 0) are unique, freeable pointers. */
    void *a = calloc(0, 10), *b = calloc(10, 0), *c = calloc(0, 0);
    CHECK(a && b && c && a != b && b != c && a != c, "calloc zero: %p %p %p",
          a, b, c);
    free(a);
    free(b);
    free(c);
    return test_report();
}
