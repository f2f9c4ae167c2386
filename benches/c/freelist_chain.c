/* A linked-list free list against an array stack, in the tiny-hot loop's
 * shape: pop 100 blocks of 64 bytes (writing the first word of each), then
 * check and push them back; repeat. Not built by the bench; for the
 * tiny-hot note in docs/benchmarks.md (sixth session):
 *   gcc -O2 -o /tmp/chain benches/c/freelist_chain.c && /tmp/chain 1000000
 *   gcc -O2 -DINLINE -o /tmp/chain_inl benches/c/freelist_chain.c && /tmp/chain_inl 1000000
 * With -DB=1 (eighth session) one block cycles, as tiny-hot at batch=1.
 * Prints ns per operation (a pop or a push) for each, three times. The
 * list's pop writes a second word (a free mark's clear), as hakmem's does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef INLINE
#define FN static inline
#else
#define FN __attribute__((noinline)) static
#endif
#ifndef B
#define B 100 /* blocks per batch: -DB=1 cycles one block (the batch-1 note) */
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

struct front { void *head; int room; unsigned long pushes; } __attribute__((aligned(64)));
struct arr { int n; void *slot[256]; };

FN void *pop_list(struct front *f) {
    void *h = f->head;
    if (h) {
        f->head = *(void **)h;
        f->room++;
        ((uintptr_t *)h)[1] = 0;
    }
    return h;
}
FN void push_list(struct front *f, void *p) {
    *(void **)p = f->head;
    f->head = p;
    f->pushes++;
    f->room--;
}
FN void *pop_arr(struct arr *a) { return a->n ? a->slot[--a->n] : 0; }
FN void push_arr(struct arr *a, void *p) { a->slot[a->n++] = p; }

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000000;
    char *m1 = aligned_alloc(64, B * 64), *m2 = aligned_alloc(64, B * 64);
    void *slots[B];
    struct front f = {0};
    struct arr a = {0};
    for (int i = B - 1; i >= 0; i--) push_list(&f, m1 + i * 64);
    for (int i = B - 1; i >= 0; i--) push_arr(&a, m2 + i * 64);
    unsigned long chk = 0;
    for (int k = 0; k < 3; k++) {
        double t0 = now();
        for (long r = 0; r < rounds; r++) {
            for (int i = 0; i < B; i++) { uint64_t *p = pop_list(&f); *p = r ^ i; slots[i] = p; }
            for (int i = 0; i < B; i++) { uint64_t *p = slots[i]; chk += *p; push_list(&f, p); }
        }
        double t1 = now();
        for (long r = 0; r < rounds; r++) {
            for (int i = 0; i < B; i++) { uint64_t *p = pop_arr(&a); *p = r ^ i; slots[i] = p; }
            for (int i = 0; i < B; i++) { uint64_t *p = slots[i]; chk += *p; push_arr(&a, p); }
        }
        double t2 = now();
        printf("list %.2f ns/op  array %.2f ns/op\n", (t1 - t0) * 1e9 / (rounds * 2.0 * B),
               (t2 - t1) * 1e9 / (rounds * 2.0 * B));
    }
    return chk == 42;
}
