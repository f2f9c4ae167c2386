/* realloc (after glibc's tst-realloc): contents preserved across sizes and
 * tiers, growing and shrinking, in place and moving; a failed realloc
 * leaves the block intact; realloc(p, 0) frees and returns NULL;
 * realloc(NULL, n) allocates; blocks from another thread. */
#include "common.h"

#include <pthread.h>

static const size_t chain[] = {
    1,     8,     24,     100,     1000,   1024,    1025,  2048,   4000,
    40000, 65536, 65537,  100000,  1 << 20, 3 << 20, 8 << 20, 2 << 20,
    70000, 50000, 4096,   1000,    100,     16,      1,     200000, 30,
    5 << 20, 600, 65536, 12};
#define NCHAIN (sizeof chain / sizeof chain[0])

static void chains(void) {
    for (unsigned seed = 1; seed <= 3; seed++) {
        size_t old = chain[0];
        unsigned char *p = malloc(old);
        fill(p, old, seed);
        for (size_t i = 1; i < NCHAIN; i++) {
            size_t n = chain[i];
            unsigned char *q = realloc(p, n);
            CHECK(q != NULL, "realloc(%zu -> %zu)", old, n);
            if (!q)
                break;
            size_t keep = old < n ? old : n;
            size_t bad = verify(q, keep, seed + (unsigned)i - 1);
            CHECK(bad == keep, "realloc(%zu -> %zu): byte %zu lost", old, n,
                  bad);
            CHECK(malloc_usable_size(q) >= n, "realloc(%zu -> %zu) usable %zu",
                  old, n, malloc_usable_size(q));
            fill(q, n, seed + (unsigned)i);
            p = q;
            old = n;
        }
        free(p);
    }
}

/* Growing one byte-range at a time (the in-place paths). */
static void creeping(void) {
    size_t old = 1;
    unsigned char *p = malloc(1);
    p[0] = pat(0, 99);
    for (size_t n = 2; n < 140000; n += n < 5000 ? 37 : 4099) {
        unsigned char *q = realloc(p, n);
        CHECK(q != NULL, "realloc(%zu)", n);
        if (!q)
            break;
        CHECK(verify(q, old, 99) == old, "grow to %zu lost bytes", n);
        fill(q, n, 99);
        p = q;
        old = n;
    }
    for (size_t n = old; n > 1; n = n * 3 / 4) {
        unsigned char *q = realloc(p, n);
        CHECK(q != NULL && verify(q, n, 99) == n, "shrink to %zu", n);
        p = q;
    }
    free(p);
}

static void failure(void) {
    static const size_t tiers[] = {1, 24, 1000, 4000, 40000, 65536, 200000,
                                   2 << 20};
    static const size_t huge[] = {SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX,
                                  (size_t)1 << 48};
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++) {
        size_t n = tiers[i];
        unsigned char *p = malloc(n);
        fill(p, n, 7);
        for (size_t j = 0; j < sizeof huge / sizeof huge[0]; j++) {
            errno = 0;
            void *q = realloc_v(p, opaque(huge[j]));
            CHECK(q == NULL && errno == ENOMEM,
                  "realloc(%zu-byte, %#zx) = %p errno %d", n, huge[j], q, errno);
            errno = 0;
            q = reallocarray_v(p, opaque(huge[j]), 2);
            CHECK(q == NULL && errno == ENOMEM,
                  "reallocarray(%zu-byte, %#zx, 2) = %p", n, huge[j], q);
        }
        CHECK(verify(p, n, 7) == n, "%zu-byte block changed by failed realloc",
              n);
        /* And it is still a normal block. */
        unsigned char *q = realloc(p, n * 2);
        CHECK(q && verify(q, n, 7) == n, "realloc after failure (%zu)", n);
        free(q);
    }
}

static void zero_and_null(void) {
    /* realloc(p, 0) frees p and returns NULL (glibc); doing it many times
     * must not leak. */
    size_t before = rss_bytes();
    for (int i = 0; i < 100000; i++) {
        void *p = malloc(1000 + (size_t)(i % 7) * 1000);
        void *q = realloc(p, 0);
        CHECK(q == NULL, "realloc(p, 0) = %p", q);
        if (q)
            free(q);
    }
    for (int i = 0; i < 200; i++) {
        void *p = malloc(300000);
        memset(p, 1, 300000);
        CHECK(realloc(p, 0) == NULL, "realloc(large, 0)");
        CHECK(reallocarray(malloc(100), 0, 10) == NULL, "reallocarray(p, 0, 10)");
    }
    size_t after = rss_bytes();
    CHECK(after < before + (32 << 20),
          "realloc(p, 0) leaks: RSS %zu -> %zu bytes", before, after);

    void *p = realloc(NULL, 100);
    CHECK(p != NULL && malloc_usable_size(p) >= 100, "realloc(NULL, 100)");
    free(p);
    p = realloc(NULL, 0);
    CHECK(p != NULL, "realloc(NULL, 0) returns a unique pointer");
    free(p);
    p = libc_realloc(NULL, 5000);
    CHECK(p != NULL, "__libc_realloc(NULL, 5000)");
    p = libc_realloc(p, 50000);
    CHECK(p != NULL, "__libc_realloc(p, 50000)");
    libc_free(p);
}

/* Blocks allocated by another (finished) thread, realloc'ed here. */
#define NFOREIGN 400
static void *thread_blocks[NFOREIGN];
static void *producer(void *arg) {
    (void)arg;
    for (int i = 0; i < NFOREIGN; i++) {
        size_t n = 1 + (size_t)i * 173 % 90000;
        thread_blocks[i] = malloc(n);
        fill(thread_blocks[i], n, (unsigned)i);
    }
    return NULL;
}

static void other_thread(void) {
    pthread_t t;
    pthread_create(&t, NULL, producer, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < NFOREIGN; i++) {
        size_t n = 1 + (size_t)i * 173 % 90000;
        size_t m = i % 2 ? n * 2 + 10 : n / 2 + 1;
        unsigned char *q = realloc(thread_blocks[i], m);
        size_t keep = n < m ? n : m;
        CHECK(q && verify(q, keep, (unsigned)i) == keep,
              "realloc of another thread's %zu-byte block to %zu", n, m);
        free(q);
    }
}

int main(void) {
    require_hakmem("test_realloc");
    chains();
    creeping();
    failure();
    zero_and_null();
    other_thread();
    return test_report();
}
