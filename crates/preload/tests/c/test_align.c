/* Aligned allocation (after glibc's tst-memalign, tst-posix_memalign,
 * tst-aligned-alloc): every power-of-two alignment up to 4 MiB times sizes
 * in every tier, through posix_memalign, memalign, aligned_alloc and the
 * aliases; the EINVAL cases; valloc and pvalloc. Blocks of one alignment
 * are live together and pattern-checked, so overlaps show up. */
#include "common.h"

#define SENTINEL ((void *)0x5a5a5a5aUL)
#define MAX_ALIGN ((size_t)4 << 20)

static const size_t sizes[] = {0,    1,     7,     16,    24,     100,
                               255,  1000,  1024,  1025,  4000,   4096,
                               5000, 40000, 65536, 70000, 300000, (1 << 20) + 1};
#define NSIZES (sizeof sizes / sizeof sizes[0])

enum { F_POSIX, F_MEMALIGN, F_ALIGNED_ALLOC, F_POSIX_ALIAS, F_LIBC_MEMALIGN, NF };
static const char *fname[NF] = {"posix_memalign", "memalign", "aligned_alloc",
                                "__posix_memalign", "__libc_memalign"};

static void *alloc_with(int f, size_t align, size_t size) {
    void *p = SENTINEL;
    int rc;
    switch (f) {
    case F_POSIX:
        rc = posix_memalign(&p, align, size);
        CHECK(rc == 0 || p == SENTINEL, "posix_memalign wrote on failure");
        return rc == 0 ? p : NULL;
    case F_POSIX_ALIAS:
        rc = posix_memalign_alias(&p, align, size);
        return rc == 0 ? p : NULL;
    case F_MEMALIGN:
        return memalign(align, size);
    case F_ALIGNED_ALLOC:
        return aligned_alloc(align, size);
    default:
        return libc_memalign(align, size);
    }
}

static void matrix(void) {
    static void *live[NF][NSIZES];
    for (size_t align = 1; align <= MAX_ALIGN; align <<= 1) {
        for (int f = 0; f < NF; f++) {
            /* posix_memalign needs a multiple of sizeof(void *). */
            int posix = f == F_POSIX || f == F_POSIX_ALIAS;
            for (size_t i = 0; i < NSIZES; i++) {
                live[f][i] = NULL;
                if (posix && align < sizeof(void *))
                    continue;
                /* The biggest alignments only with a few sizes (time). */
                if (f >= F_POSIX_ALIAS && align > 65536 && i % 4 != 0)
                    continue;
                size_t n = sizes[i];
                void *p = alloc_with(f, align, n);
                CHECK(p != NULL, "%s(%zu, %zu) failed", fname[f], align, n);
                if (!p)
                    continue;
                CHECK((uintptr_t)p % align == 0, "%s(%zu, %zu) = %p misaligned",
                      fname[f], align, n, p);
                CHECK((uintptr_t)p % 16 == 0, "%s(%zu, %zu) = %p not 16-aligned",
                      fname[f], align, n, p);
                size_t u = malloc_usable_size(p);
                CHECK(u >= n, "%s(%zu, %zu): usable size %zu", fname[f], align,
                      n, u);
                fill(p, n, (unsigned)(f * 131 + i));
                live[f][i] = p;
            }
        }
        for (int f = 0; f < NF; f++)
            for (size_t i = 0; i < NSIZES; i++) {
                void *p = live[f][i];
                if (!p)
                    continue;
                size_t n = sizes[i];
                size_t bad = verify(p, n, (unsigned)(f * 131 + i));
                CHECK(bad == n, "%s(%zu, %zu) = %p: byte %zu overwritten",
                      fname[f], align, n, p, bad);
                /* The whole usable size is writable. */
                memset(p, 0xcd, malloc_usable_size(p));
                if (i % 3 == 0)
                    free_aligned_sized(p, align, n);
                else if (i % 3 == 1)
                    libc_free(p);
                else
                    free(p);
            }
    }
}

static void invalid(void) {
    static const size_t bad_posix[] = {0,  1,  2,  4,  12,   24,   40,
                                       48, 96, 4104, 3 << 20, SIZE_MAX,
                                       SIZE_MAX / 2 + 2};
    for (size_t i = 0; i < sizeof bad_posix / sizeof bad_posix[0]; i++) {
        size_t a = opaque(bad_posix[i]);
        void *p = SENTINEL;
        int rc = posix_memalign(&p, a, 100);
        CHECK(rc == EINVAL, "posix_memalign(%#zx) = %d, want EINVAL", a, rc);
        CHECK(p == SENTINEL, "posix_memalign(%#zx) wrote *memptr on EINVAL", a);
        p = SENTINEL;
        rc = posix_memalign_alias(&p, a, 100);
        CHECK(rc == EINVAL && p == SENTINEL, "__posix_memalign(%#zx) = %d", a,
              rc);
    }
    /* aligned_alloc: EINVAL for 0 and non-powers of two (glibc 2.38). */
    static const size_t bad_c11[] = {0, 3, 24, 48, 1000, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad_c11 / sizeof bad_c11[0]; i++) {
        size_t a = opaque(bad_c11[i]);
        errno = 0;
        void *p = aligned_alloc(a, 64);
        CHECK(p == NULL && errno == EINVAL,
              "aligned_alloc(%#zx, 64) = %p errno %d, want EINVAL", a, p, errno);
        free(p);
    }
    /* aligned_alloc: small powers of two and sizes that are not multiples
     * of the alignment are fine. */
    for (size_t a = 1; a <= 8; a <<= 1) {
        void *p = aligned_alloc(opaque(a), 3);
        CHECK(p != NULL, "aligned_alloc(%zu, 3)", a);
        free(p);
    }
    void *p = aligned_alloc(4096, opaque(100));
    CHECK(p && (uintptr_t)p % 4096 == 0, "aligned_alloc(4096, 100) = %p", p);
    free(p);

    /* memalign: non-powers of two round up; absurd ones fail. */
    static const size_t odd[][2] = {{24, 32}, {100, 128}, {3000, 4096},
                                    {65537, 131072}, {0, 16}, {3, 16}};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        void *q = memalign(opaque(odd[i][0]), 50);
        CHECK(q && (uintptr_t)q % odd[i][1] == 0,
              "memalign(%zu, 50) = %p, want %zu-aligned", odd[i][0], q,
              odd[i][1]);
        free(q);
    }
    errno = 0;
    p = memalign(opaque(SIZE_MAX), 1);
    CHECK(p == NULL && errno == EINVAL, "memalign(SIZE_MAX, 1) = %p errno %d",
          p, errno);
    errno = 0;
    p = memalign(opaque((size_t)1 << 63), 1);
    CHECK(p == NULL && errno == ENOMEM, "memalign(2^63, 1) = %p errno %d", p,
          errno);
}

static void page_aligned(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t ns[] = {0, 1, 100, 4095, 4096, 4097, 70000, 1 << 20};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = ns[i];
        void *v = valloc(opaque(n));
        CHECK(v && (uintptr_t)v % page == 0, "valloc(%zu) = %p", n, v);
        CHECK(malloc_usable_size(v) >= n, "valloc(%zu) usable %zu", n,
              malloc_usable_size(v));
        void *w = pvalloc(opaque(n));
        size_t rounded = n ? (n + page - 1) / page * page : page;
        CHECK(w && (uintptr_t)w % page == 0, "pvalloc(%zu) = %p", n, w);
        CHECK(malloc_usable_size(w) >= rounded, "pvalloc(%zu) usable %zu < %zu",
              n, malloc_usable_size(w), rounded);
        if (w)
            memset(w, 0x11, rounded);
        void *x = libc_valloc(opaque(n));
        void *y = libc_pvalloc(opaque(n));
        CHECK(x && y && (uintptr_t)x % page == 0 && (uintptr_t)y % page == 0,
              "__libc_valloc/__libc_pvalloc(%zu) = %p %p", n, x, y);
        free(v);
        free(w);
        free(x);
        free(y);
    }
}

int main(void) {
    require_hakmem("test_align");
    matrix();
    invalid();
    page_aligned();
    return test_report();
}
