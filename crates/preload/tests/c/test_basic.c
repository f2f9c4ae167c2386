/* The rest of the API: malloc(0) unique pointers, malloc_usable_size >=
 * requested, free_sized / free_aligned_sized / cfree / the __libc_ aliases
 * really free, free preserves errno, no overlap between live blocks, and
 * the introspection calls (mallinfo2, mallinfo, mallopt, malloc_trim,
 * malloc_stats) answer sensibly. */
#include "common.h"

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void malloc_zero(void) {
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = i % 2 ? malloc(opaque(0)) : libc_malloc(opaque(0));
        CHECK(p[i] != NULL, "malloc(0) #%d returned NULL", i);
    }
    qsort(p, N, sizeof p[0], cmp_ptr);
    int dup = 0;
    for (int i = 1; i < N; i++)
        dup += p[i] == p[i - 1];
    CHECK(dup == 0, "malloc(0) returned %d duplicate pointers", dup);
    for (int i = 0; i < N; i++)
        free(p[i]);
}

static void usable(void) {
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)");
    for (size_t n = 0; n < 300000;
         n += n < 2100 ? 1 : n < 70000 ? 97 : 10007) {
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
        if (p) {
            memset(p, 0x5c, u);
            free(p);
        }
    }
}

/* Each way of freeing really frees: looping allocate+free with it keeps
 * RSS flat (a leak of 1000-byte blocks would grow it by ~300 MB). */
static void frees(void) {
    for (int way = 0; way < 6; way++) {
        size_t before = rss_bytes();
        for (int i = 0; i < 300000; i++) {
            size_t n = 500 + (size_t)(i % 16) * 64;
            void *p;
            switch (way) {
            case 0:
                p = malloc(n);
                free_sized(p, n);
                break;
            case 1:
                p = aligned_alloc(64, n);
                free_aligned_sized(p, 64, n);
                break;
            case 2:
                p = malloc(n);
                cfree(p);
                break;
            case 3:
                p = libc_malloc(n);
                libc_free(p);
                break;
            case 4:
                p = libc_memalign(256, n);
                free(p);
                break;
            default:
                p = NULL;
                CHECK(posix_memalign_alias(&p, 128, n) == 0, "__posix_memalign");
                free_sized(p, n);
                break;
            }
        }
        size_t after = rss_bytes();
        CHECK(after < before + (16 << 20), "way %d leaks: RSS %zu -> %zu", way,
              before, after);
    }
    free_sized(NULL, 0);
    free_aligned_sized(NULL, 64, 0);
    free(NULL);
    cfree(NULL);
    libc_free(NULL);
}

static void errno_kept(void) {
    static const size_t ns[] = {16, 5000, 60000, 1 << 20, 16 << 20};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        void *p = malloc(ns[i]);
        errno = 4321;
        free(p);
        CHECK(errno == 4321, "free(%zu-byte block) changed errno to %d", ns[i],
              errno);
    }
}

static void no_overlap(void) {
    enum { N = 6000 };
    static unsigned char *p[N];
    static size_t n[N];
    uint64_t s = 42;
    for (int i = 0; i < N; i++) {
        uint64_t r = rng_next(&s);
        n[i] = r % 100 < 90 ? 1 + r % 1024 : 1 + r % 70000;
        p[i] = malloc(n[i]);
        fill(p[i], n[i], (unsigned)i);
        if (i % 3 == 2) { /* churn: free one of the earlier ones */
            int j = (int)((r >> 32) % (uint64_t)i);
            free(p[j]);
            n[j] = 1 + r % 300;
            p[j] = malloc(n[j]);
            fill(p[j], n[j], (unsigned)j);
        }
    }
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += verify(p[i], n[i], (unsigned)i) != n[i];
    CHECK(bad == 0, "%d of %d live blocks were overwritten", bad, N);
    for (int i = 0; i < N; i++)
        free(p[i]);
}

static void introspection(void) {
    void *big = malloc(8 << 20);
    memset(big, 1, 8 << 20);
    void *small[1000];
    for (int i = 0; i < 1000; i++)
        small[i] = malloc(100);

    struct mallinfo2 mi = mallinfo2();
    CHECK(mi.hblkhd >= (8u << 20), "mallinfo2().hblkhd = %zu with 8 MiB live",
          mi.hblkhd);
    CHECK(mi.hblks >= 1, "mallinfo2().hblks = %zu", mi.hblks);
    CHECK(mi.arena > 0, "mallinfo2().arena = %zu with small blocks live",
          mi.arena);
    CHECK(mi.usmblks == 0, "mallinfo2().usmblks = %zu", mi.usmblks);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
    CHECK(m.hblkhd >= (8 << 20) && m.arena > 0, "mallinfo(): hblkhd %d arena %d",
          m.hblkhd, m.arena);

    CHECK(mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1, "mallopt(M_MMAP_THRESHOLD)");
    CHECK(mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1, "mallopt(M_TRIM_THRESHOLD)");
    CHECK(mallopt(M_TOP_PAD, 0) == 1, "mallopt(M_TOP_PAD)");
    CHECK(mallopt(M_MMAP_MAX, 0) == 1, "mallopt(M_MMAP_MAX)");
    CHECK(mallopt(M_ARENA_MAX, 1) == 1, "mallopt(M_ARENA_MAX)");
    CHECK(mallopt(M_ARENA_TEST, 1) == 1, "mallopt(M_ARENA_TEST)");
    CHECK(mallopt(M_PERTURB, 0x5a) == 1, "mallopt(M_PERTURB)");
    CHECK(mallopt(M_CHECK_ACTION, 3) == 1, "mallopt(M_CHECK_ACTION)");
    CHECK(mallopt(M_MXFAST, 64) == 1, "mallopt(M_MXFAST, 64)");
    CHECK(mallopt(M_MXFAST, 100000) == 0, "mallopt(M_MXFAST, 100000)");
    CHECK(mallopt(M_MMAP_THRESHOLD, -1) == 0, "mallopt(M_MMAP_THRESHOLD, -1)");
    CHECK(mallopt(12345, 1) == 0, "mallopt(unknown)");

    CHECK(mi.uordblks >= 1000 * 100,
          "mallinfo2().uordblks = %zu with 1000 100-byte blocks live",
          mi.uordblks);
    CHECK(mi.fordblks == mi.arena - mi.uordblks,
          "mallinfo2(): fordblks %zu != arena %zu - uordblks %zu", mi.fordblks,
          mi.arena, mi.uordblks);
    free(big);
    for (int i = 0; i < 1000; i++)
        free(small[i]);
    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1, "malloc_trim(0) = %d", t);

    /* 64 MiB of small and mid blocks, freed: malloc_trim gives it back. */
    enum { M = 8192 };
    static void *many[M];
    for (int i = 0; i < M; i++) {
        size_t n = i % 2 ? 16384 : 100 + (size_t)i % 900;
        many[i] = malloc(n);
        memset(many[i], 0x42, n);
    }
    size_t rss_full = rss_bytes();
    for (int i = 0; i < M; i++)
        free(many[i]);
    struct mallinfo2 a = mallinfo2();
    t = malloc_trim(0);
    struct mallinfo2 b = mallinfo2();
    size_t rss_trimmed = rss_bytes();
    printf("malloc_trim: returned %d, arena %zu -> %zu KiB, RSS %zu -> %zu KiB\n",
           t, a.arena >> 10, b.arena >> 10, rss_full >> 10, rss_trimmed >> 10);
    CHECK(t == 1, "malloc_trim(0) = %d after freeing 70 MiB", t);
    CHECK(rss_trimmed + (32 << 20) < rss_full,
          "malloc_trim released too little: RSS %zu -> %zu", rss_full,
          rss_trimmed);
    /* Allocation works after a trim, and calloc still zeroes. */
    for (int i = 0; i < M; i++) {
        size_t n = i % 2 ? 16384 : 100 + (size_t)i % 900;
        unsigned char *c = calloc(1, n);
        CHECK(c && c[0] == 0 && c[n - 1] == 0, "calloc(%zu) after trim", n);
        many[i] = c;
    }
    for (int i = 0; i < M; i++)
        free(many[i]);
    CHECK(malloc_trim(1 << 20) >= 0, "malloc_trim(1 MiB)");

    malloc_stats(); /* to stderr; the harness checks it appeared */
}

int main(void) {
    require_hakmem("test_basic");
    malloc_zero();
    usable();
    frees();
    errno_kept();
    no_overlap();
    introspection();
    return test_report();
}
