/* Shared helpers for the C tests of libhakmem.so (run by ../c_suite.rs).
 *
 * Each test program counts its checks, prints `test_xxx: N passed, M failed`
 * as its last line and exits 1 if any check failed. Programs are compiled
 * with -fno-builtin so that the compiler neither folds nor removes the
 * allocation calls under test, and must run under
 * LD_PRELOAD=target/<profile>/libhakmem.so (require_hakmem() checks). */
#ifndef HAKMEM_TEST_COMMON_H
#define HAKMEM_TEST_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

/* The C23 frees and the glibc-internal names, looked up at run time: the
 * glibc this is built against may not export them, so they cannot be
 * linked against (see load_aliases). */
UNUSED static void (*free_sized_fn)(void *, size_t);
UNUSED static void (*free_aligned_sized_fn)(void *, size_t, size_t);
UNUSED static void (*cfree_fn)(void *); /* a compat-only symbol in glibc */
#define free_sized(p, n) free_sized_fn(p, n)
#define cfree(p) cfree_fn(p)
#define free_aligned_sized(p, a, n) free_aligned_sized_fn(p, a, n)
UNUSED static void *(*libc_malloc)(size_t);
UNUSED static void (*libc_free)(void *);
UNUSED static void *(*libc_calloc)(size_t, size_t);
UNUSED static void *(*libc_realloc)(void *, size_t);
UNUSED static void *(*libc_memalign)(size_t, size_t);
UNUSED static void *(*libc_valloc)(size_t);
UNUSED static void *(*libc_pvalloc)(size_t);
UNUSED static int (*posix_memalign_alias)(void **, size_t, size_t);

/* realloc and reallocarray called through pointers the compiler cannot see
 * through, so that using a block after a *failed* call does not warn. */
UNUSED static void *(*volatile realloc_v)(void *, size_t) = realloc;
UNUSED static void *(*volatile reallocarray_v)(void *, size_t,
                                               size_t) = reallocarray;

static const char *test_name = "test";
static unsigned long test_passed, test_failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            __atomic_fetch_add(&test_passed, 1, __ATOMIC_RELAXED);             \
        } else {                                                               \
            unsigned long n_ =                                                 \
                __atomic_fetch_add(&test_failed, 1, __ATOMIC_RELAXED);         \
            if (n_ < 40) {                                                     \
                fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,         \
                        __LINE__, #cond);                                      \
                fprintf(stderr, __VA_ARGS__);                                  \
                fputc('\n', stderr);                                           \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Hides a value from the optimiser (no constant folding of sizes). */
UNUSED static inline size_t opaque(size_t x) {
    __asm__ volatile("" : "+r"(x));
    return x;
}

/* Exits with status 2 unless `fn` (an allocator entry point as this
 * program sees it) is defined in libhakmem.so. */
UNUSED static void require_from_hakmem(void *fn, const char *name) {
    Dl_info info;
    if (!dladdr(fn, &info) || !info.dli_fname ||
        !strstr(info.dli_fname, "libhakmem")) {
        fprintf(stderr,
                "%s: %s comes from %s, not libhakmem.so: run under "
                "LD_PRELOAD=.../libhakmem.so\n",
                test_name, name, info.dli_fname ? info.dli_fname : "?");
        exit(2);
    }
}


/* Looks up one exported name and requires it to be libhakmem.so's. */
UNUSED static void *lookup(const char *name) {
    void *f = dlsym(RTLD_DEFAULT, name);
    if (!f) {
        fprintf(stderr, "%s: %s is not exported\n", test_name, name);
        exit(2);
    }
    require_from_hakmem(f, name);
    return f;
}

UNUSED static void load_aliases(void) {
    free_sized_fn = (void (*)(void *, size_t))lookup("free_sized");
    free_aligned_sized_fn =
        (void (*)(void *, size_t, size_t))lookup("free_aligned_sized");
    cfree_fn = (void (*)(void *))lookup("cfree");
    libc_malloc = (void *(*)(size_t))lookup("__libc_malloc");
    libc_free = (void (*)(void *))lookup("__libc_free");
    libc_calloc = (void *(*)(size_t, size_t))lookup("__libc_calloc");
    libc_realloc = (void *(*)(void *, size_t))lookup("__libc_realloc");
    libc_memalign = (void *(*)(size_t, size_t))lookup("__libc_memalign");
    libc_valloc = (void *(*)(size_t))lookup("__libc_valloc");
    libc_pvalloc = (void *(*)(size_t))lookup("__libc_pvalloc");
    posix_memalign_alias =
        (int (*)(void **, size_t, size_t))lookup("__posix_memalign");
}

UNUSED static void require_hakmem(const char *name) {
    test_name = name;
    require_from_hakmem((void *)malloc, "malloc");
    require_from_hakmem((void *)free, "free");
    require_from_hakmem((void *)realloc, "realloc");
    require_from_hakmem((void *)calloc, "calloc");
    load_aliases();
}

UNUSED static int test_report(void) {
    printf("%s: %lu passed, %lu failed\n", test_name, test_passed,
           test_failed);
    fflush(stdout);
    return test_failed ? 1 : 0;
}

/* Resident set size in bytes (/proc/self/statm, second field). */
UNUSED static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Pattern byte `i` of a block tagged `seed`. */
UNUSED static inline unsigned char pat(size_t i, unsigned seed) {
    return (unsigned char)((i * 131u + seed * 7u + (i >> 8)) & 0xff);
}

UNUSED static void fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pat(i, seed);
}

/* Index of the first byte that differs from the pattern, or n. */
UNUSED static size_t verify(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pat(i, seed))
            return i;
    return n;
}

/* xorshift64*: deterministic sizes. */
UNUSED static inline uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
