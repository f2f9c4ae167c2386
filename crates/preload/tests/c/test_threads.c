/* 2000 thread create/join cycles with bounded RSS (after glibc's
 * tst-malloc-thread-exit): each thread allocates in every tier, keeps some
 * blocks in its cache at exit, and hands some to the main thread, which
 * frees them after the owner has exited. Thread caches and slabs must come
 * back (pthread key destructor), and frees after the owner's exit must not
 * be lost, or RSS grows by hundreds of MiB. */
#include "common.h"

#include <pthread.h>

#define CYCLES 2000
#define WARMUP 100
#define HANDED 64

struct work {
    unsigned seed;
    void *handed[HANDED];
    size_t handed_n[HANDED];
};

static void *thread_main(void *arg) {
    struct work *w = arg;
    uint64_t s = w->seed * 2654435761u + 1;
    void *keep[256];
    /* ~1 MiB touched per thread: a leak of it all would be 2 GiB. */
    for (int i = 0; i < 256; i++) {
        uint64_t r = rng_next(&s);
        size_t n = i % 64 == 0 ? 65536 + r % 100000
                   : i % 8 == 0 ? 1 + r % 16000
                                : 1 + r % 1024;
        keep[i] = malloc(n);
        memset(keep[i], 0x77, n);
    }
    /* Freed here: these stay in the thread's cache until it exits. */
    for (int i = 0; i < 256; i += 2)
        free(keep[i]);
    /* Handed to the main thread: freed after this thread is gone. */
    for (int i = 0; i < HANDED; i++) {
        w->handed[i] = keep[2 * i + 1];
        w->handed_n[i] = 0;
    }
    for (int i = 2 * HANDED + 1; i < 256; i += 2)
        free(keep[i]);
    for (int i = 0; i < HANDED; i++) {
        size_t n = 1 + (size_t)i * 37;
        void *p = malloc(n);
        fill(p, n, w->seed + (unsigned)i);
        free(w->handed[i]);
        w->handed[i] = p;
        w->handed_n[i] = n;
    }
    return NULL;
}

static void cycle(unsigned i) {
    struct work w = {.seed = i};
    pthread_t t;
    int rc = pthread_create(&t, NULL, thread_main, &w);
    CHECK(rc == 0, "pthread_create #%u: %d", i, rc);
    if (rc)
        return;
    pthread_join(t, NULL);
    for (int k = 0; k < HANDED; k++) {
        size_t n = w.handed_n[k];
        CHECK(verify(w.handed[k], n, i + (unsigned)k) == n,
              "block from exited thread #%u changed", i);
        free(w.handed[k]);
    }
}

int main(void) {
    require_hakmem("test_threads");
    for (unsigned i = 0; i < WARMUP; i++)
        cycle(i);
    size_t before = rss_bytes();
    for (unsigned i = WARMUP; i < WARMUP + CYCLES; i++)
        cycle(i);
    size_t after = rss_bytes();
    struct mallinfo2 mi = mallinfo2();
    printf("RSS %zu -> %zu KiB over %d cycles; mapped %zu KiB\n", before >> 10,
           after >> 10, CYCLES, (mi.arena + mi.hblkhd) >> 10);
    CHECK(before > 0 && after < before + (64 << 20),
          "RSS grew from %zu to %zu bytes over %d thread cycles", before,
          after, CYCLES);
    /* Two threads at a time, exiting while the other still runs. */
    for (unsigned i = 0; i < 200; i++) {
        struct work a = {.seed = 100000 + i}, b = {.seed = 200000 + i};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, thread_main, &a);
        pthread_create(&tb, NULL, thread_main, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        for (int k = 0; k < HANDED; k++) {
            free(a.handed[k]);
            free(b.handed[k]);
        }
    }
    return test_report();
}
