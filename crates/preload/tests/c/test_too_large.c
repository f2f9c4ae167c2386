/* Too-large requests for every allocation function (after glibc's
 * malloc/tst-malloc-too-large.c): NULL (or an error code) with
 * errno = ENOMEM, out-parameters untouched, existing blocks intact. */
#include "common.h"

#include <stdint.h>

#define SENTINEL ((void *)0x5a5a5a5aUL)

static void expect_null(void *p, const char *what, size_t size) {
    CHECK(p == NULL, "%s(%#zx) returned %p", what, size, p);
    CHECK(errno == ENOMEM, "%s(%#zx): errno %d, want ENOMEM", what, size,
          errno);
    if (p)
        free(p);
}

static void too_large(size_t size) {
    void *p;

    errno = 0;
    expect_null(malloc(opaque(size)), "malloc", size);
    errno = 0;
    expect_null(calloc(1, opaque(size)), "calloc(1, n)", size);
    errno = 0;
    expect_null(calloc(opaque(size), 1), "calloc(n, 1)", size);
    errno = 0;
    expect_null(realloc(NULL, opaque(size)), "realloc(NULL, n)", size);
    errno = 0;
    expect_null(reallocarray(NULL, 1, opaque(size)), "reallocarray(NULL, 1, n)",
                size);
    errno = 0;
    expect_null(valloc(opaque(size)), "valloc", size);
    errno = 0;
    expect_null(pvalloc(opaque(size)), "pvalloc", size);
    errno = 0;
    expect_null(libc_malloc(opaque(size)), "__libc_malloc", size);
    errno = 0;
    expect_null(libc_calloc(1, opaque(size)), "__libc_calloc", size);
    errno = 0;
    expect_null(libc_valloc(opaque(size)), "__libc_valloc", size);
    errno = 0;
    expect_null(libc_pvalloc(opaque(size)), "__libc_pvalloc", size);
    errno = 0;
    expect_null(libc_realloc(NULL, opaque(size)), "__libc_realloc", size);

    static const size_t aligns[] = {8, 16, 32, 64, 4096, 65536, 1 << 21,
                                    1 << 22, (size_t)1 << 30};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        size_t a = aligns[i];
        errno = 0;
        expect_null(memalign(a, opaque(size)), "memalign", size);
        errno = 0;
        expect_null(libc_memalign(a, opaque(size)), "__libc_memalign", size);
        errno = 0;
        expect_null(aligned_alloc(a, opaque(size)), "aligned_alloc", size);
        p = SENTINEL;
        int rc = posix_memalign(&p, a, opaque(size));
        CHECK(rc == ENOMEM, "posix_memalign(%zu, %#zx) = %d, want ENOMEM", a,
              size, rc);
        CHECK(p == SENTINEL, "posix_memalign(%zu, %#zx) wrote *memptr", a,
              size);
        p = SENTINEL;
        rc = posix_memalign_alias(&p, a, opaque(size));
        CHECK(rc == ENOMEM && p == SENTINEL,
              "__posix_memalign(%zu, %#zx) = %d, *memptr %p", a, size, rc, p);
    }

    /* An existing block of each tier survives a failed realloc. */
    static const size_t tiers[] = {1, 24, 1000, 4000, 40000, 200000, 3 << 20};
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++) {
        size_t n = tiers[i];
        void *b = malloc(n);
        CHECK(b != NULL, "malloc(%zu)", n);
        if (!b)
            continue;
        fill(b, n, (unsigned)i);
        errno = 0;
        p = realloc_v(b, opaque(size));
        CHECK(p == NULL && errno == ENOMEM,
              "realloc(%zu-byte block, %#zx) = %p errno %d", n, size, p, errno);
        errno = 0;
        p = reallocarray_v(b, 1, opaque(size));
        CHECK(p == NULL && errno == ENOMEM,
              "reallocarray(%zu-byte block, 1, %#zx) = %p errno %d", n, size,
              p, errno);
        CHECK(verify(b, n, (unsigned)i) == n,
              "%zu-byte block changed by a failed realloc", n);
        CHECK(malloc_usable_size(b) >= n, "usable size of %zu-byte block", n);
        free(b);
    }
}

int main(void) {
    require_hakmem("test_too_large");

    /* Above PTRDIFF_MAX (glibc refuses these outright), and sizes below it
     * that no address space can hold (2^47 bytes and more). */
    static const size_t sizes[] = {
        SIZE_MAX,
        SIZE_MAX - 1,
        SIZE_MAX - 15,
        SIZE_MAX - 4095,
        SIZE_MAX - (1 << 21),
        (size_t)PTRDIFF_MAX + 1,
        (size_t)PTRDIFF_MAX + 4096,
        (size_t)PTRDIFF_MAX,
        (size_t)PTRDIFF_MAX - 4095,
        (size_t)1 << 62,
        (size_t)1 << 56,
        (size_t)1 << 48,
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        too_large(sizes[i]);

    /* n * size overflows size_t. */
    static const size_t pairs[][2] = {
        {SIZE_MAX, 2},
        {2, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX / 2 + 1, 2},
        {(SIZE_MAX / 3) + 1, 3},
        {65536, ((size_t)1 << 48) + 1},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t n = opaque(pairs[i][0]), m = opaque(pairs[i][1]);
        errno = 0;
        void *p = calloc(n, m);
        CHECK(p == NULL && errno == ENOMEM, "calloc(%#zx, %#zx) = %p errno %d",
              n, m, p, errno);
        errno = 0;
        p = reallocarray(NULL, n, m);
        CHECK(p == NULL && errno == ENOMEM,
              "reallocarray(NULL, %#zx, %#zx) = %p errno %d", n, m, p, errno);
        void *b = malloc(100);
        fill(b, 100, 9);
        errno = 0;
        p = reallocarray_v(b, n, m);
        CHECK(p == NULL && errno == ENOMEM && verify(b, 100, 9) == 100,
              "reallocarray(block, %#zx, %#zx) = %p errno %d", n, m, p, errno);
        free(b);
    }
    /* calloc of a product just above PTRDIFF_MAX without overflow. */
    errno = 0;
    void *p = calloc(opaque((size_t)1 << 32), opaque(((size_t)1 << 31) + 1));
    CHECK(p == NULL && errno == ENOMEM, "calloc(2^32, 2^31+1) = %p", p);

    /* The allocator still works afterwards. */
    p = malloc(100);
    CHECK(p != NULL, "malloc(100) after failures");
    free(p);
    return test_report();
}
