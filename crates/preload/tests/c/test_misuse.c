/* Misuse of the free boundary under LD_PRELOAD: one case per run, named by
 * argv[1]. Every case commits one misuse and must be stopped by hakmem with
 * one line on stderr and SIGABRT (the harness, ../c_suite.rs, checks both);
 * a case that returns prints "survived" and exits 0, which fails there.
 *
 * With MISUSE_ANY_ALLOCATOR set, the program runs under any allocator
 * (benches/misuse-matrix.sh compares them); the free_sized case needs
 * libhakmem.so's free_sized.
 *
 * The first-call cases do the misuse before any other allocator call of
 * the program (the dynamic loader and libc may have called malloc before
 * main; nothing of the program's has). */
#include "common.h"

#include <pthread.h>

static void *volatile sink;

static void *other_free(void *p) {
    free(p);
    return NULL;
}

/* free(p) from a new thread, joined. */
static void free_in_thread(void *p) {
    pthread_t t;
    if (pthread_create(&t, NULL, other_free, p) != 0) {
        perror("pthread_create");
        exit(2);
    }
    pthread_join(t, NULL);
}

static unsigned char *fresh(size_t n) {
    unsigned char *p = malloc(n);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    memset(p, 0x5a, n);
    return p;
}

/* Writes `len` bytes from the start of a fresh block of `n` bytes, far
 * past its end. Without a guard page the write would run on through the
 * next slabs of the same mapping: _exit, not free, so that the corruption
 * it leaves is not what stops the program. */
static void overflow_far(size_t n, size_t len) {
    unsigned char *p = fresh(n);
    memset(p, 7, len);
    printf("overflow not stopped\n");
    fflush(stdout);
    _exit(0);
}

static char static_buf[256];

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    /* Cases before anything else touches the allocator. */
    if (!strcmp(c, "first_call_small_int")) {
        free((void *)0x10);
    } else if (!strcmp(c, "first_call_stack")) {
        int x = 0;
        free(&x);
        sink = &x;
    } else if (!getenv("MISUSE_ANY_ALLOCATOR")) {
        /* benches/misuse-matrix.sh runs the cases under other allocators. */
        require_hakmem("test_misuse");
    }
    if (!strcmp(c, "double_tiny")) {
        void *p = fresh(48);
        free(p);
        free(p);
    } else if (!strcmp(c, "double_mid")) {
        void *p = fresh(8192);
        free(p);
        free(p);
    } else if (!strcmp(c, "double_span")) {
        void *p = fresh(300 * 1024);
        free(p);
        free(p);
    } else if (!strcmp(c, "double_after_allocations")) {
        void *p = fresh(48);
        free(p);
        for (int i = 0; i < 100; i++)
            sink = fresh(16 + 37 * i);
        free(p);
    } else if (!strcmp(c, "double_a_b_a")) {
        void *a = fresh(48), *b = fresh(48);
        free(a);
        free(b);
        free(a);
    } else if (!strcmp(c, "double_after_cache_flush")) {
        static void *many[5000];
        for (int i = 0; i < 5000; i++)
            many[i] = fresh(48);
        for (int i = 0; i < 5000; i++)
            free(many[i]);
        free(many[7]);
    } else if (!strcmp(c, "double_other_thread_first")) {
        void *p = fresh(8192);
        free_in_thread(p);
        free(p);
    } else if (!strcmp(c, "double_other_thread_second")) {
        void *p = fresh(48);
        free(p);
        free_in_thread(p);
    } else if (!strcmp(c, "double_two_other_threads")) {
        void *p = fresh(300 * 1024);
        free_in_thread(p);
        free_in_thread(p);
    } else if (!strcmp(c, "double_free_sized")) {
        load_aliases();
        void *p = fresh(100);
        free_sized(p, 100);
        free_sized(p, 100);
    } else if (!strcmp(c, "invalid_stack")) {
        int x[4] = {0};
        free(x);
        sink = x;
    } else if (!strcmp(c, "invalid_static")) {
        free(static_buf);
    } else if (!strcmp(c, "invalid_small_int")) {
        sink = fresh(16);
        free((void *)0x10);
    } else if (!strcmp(c, "invalid_far")) {
        unsigned char *p = fresh(48);
        free(p + (64u << 20));
    } else if (!strcmp(c, "invalid_interior_other_thread")) {
        unsigned char *p = fresh(48);
        free_in_thread(p + 16);
    } else if (!strcmp(c, "invalid_misaligned_other_thread")) {
        unsigned char *p = fresh(48);
        free_in_thread(p + 1);
    } else if (!strcmp(c, "invalid_span_interior")) {
        unsigned char *p = fresh(300 * 1024);
        free(p + 16);
    } else if (!strcmp(c, "invalid_interior_owner_at_flush")) {
        static void *many[5000];
        for (int i = 0; i < 5000; i++)
            many[i] = fresh(48);
        free((unsigned char *)many[0] + 16);
        for (int i = 1; i < 5000; i++)
            free(many[i]);
    } else if (!strcmp(c, "realloc_freed")) {
        void *p = fresh(48);
        free(p);
        sink = realloc_v(p, 4000);
    } else if (!strcmp(c, "realloc_stack")) {
        int x[4] = {0};
        sink = realloc_v(x, 4000);
    } else if (!strcmp(c, "usable_size_freed")) {
        void *p = fresh(8192);
        free(p);
        printf("%zu\n", malloc_usable_size(p));
    } else if (!strcmp(c, "usable_size_interior")) {
        unsigned char *p = fresh(8192);
        printf("%zu\n", malloc_usable_size(p + 16));
    } else if (!strcmp(c, "secure_overflow_one_byte")) {
        unsigned char *p = fresh(40);
        p[40] = 1;
        free(p);
    } else if (!strcmp(c, "secure_overflow_large")) {
        unsigned char *p = fresh(100);
        sink = fresh(100);
        memset(p, 7, 300);
        free(p);
    } else if (!strcmp(c, "secure_span_overflow_one_byte")) {
        /* A span whose size is not a multiple of 16: the byte after it is
         * a canary byte before the guard page, checked at the free. */
        unsigned char *p = fresh(300001);
        p[300001] = 1;
        free(p);
    } else if (!strcmp(c, "secure_span_overflow_faults")) {
        /* A span whose size is a multiple of 16 ends at its guard page:
         * the first byte past it faults at once. */
        unsigned char *p = fresh(100000);
        p[100000] = 1;
        printf("overflow not stopped\n");
        free(p);
    } else if (!strcmp(c, "secure_span_overflow_far")) {
        /* A large overflow runs into the guard page whatever the size. */
        unsigned char *p = fresh(300001);
        memset(p, 7, 300001 + 5000);
        printf("overflow not stopped\n");
        free(p);
    } else if (!strcmp(c, "secure_slab_overflow_far")) {
        /* A large overflow out of a small block runs off its 64 KiB slab
         * into the slab's guard page. */
        overflow_far(48, 1 << 17);
    } else if (!strcmp(c, "secure_medium_slab_overflow_far")) {
        /* The same from a 20 KiB block: its 512 KiB slab ends at a guard. */
        overflow_far(20000, 1 << 20);
    } else if (!strcmp(c, "secure_free_at_slab_start")) {
        /* free() of the address of a block that starts a slab (16 bytes
         * before the pointer malloc returned): the 16 bytes before it are
         * the previous slab's guard page, which the check must not read. */
        for (int i = 0; i < 200000; i++) {
            unsigned char *p = malloc(48);
            uintptr_t b = (uintptr_t)p - 16;
            if ((b & 0xffff) == 0 && (b & 0x1fffff) >= 0x20000) {
                free((void *)b);
                printf("bad free not stopped\n");
                return 0;
            }
        }
        printf("no block at a slab start\n");
        return 3;
    } else if (!strcmp(c, "secure_underflow_one_byte")) {
        unsigned char *p = fresh(40);
        p[-1] ^= 1; /* changed whatever it held (a random live-word byte) */
        free(p);
    } else if (!strcmp(c, "secure_write_after_free")) {
        unsigned char *p = fresh(200);
        free(p);
        p[100] = 1;
        for (int i = 0; i < 1000; i++)
            free(fresh(200));
    } else if (!strcmp(c, "secure_corrupted_free_list_link")) {
        static void *many[200];
        unsigned char *p = fresh(200);
        for (int i = 0; i < 200; i++)
            many[i] = fresh(200);
        free(p);
        for (int i = 0; i < 200; i++)
            free(many[i]); /* p leaves the quarantine for the secure cache */
        ((uintptr_t *)p)[-2] = 0x10; /* its (encoded) link word, before the user bytes */
        for (int i = 0; i < 400; i++)
            sink = fresh(200);
    } else if (!strcmp(c, "secure_corrupted_slab_list_link")) {
        /* As above, with enough blocks freed after p that the secure cache
         * overflows and p goes back to its slab's free list (link in clear). */
        static void *many[2000];
        unsigned char *p = fresh(200);
        for (int i = 0; i < 2000; i++)
            many[i] = fresh(200);
        for (int i = 0; i < 1000; i++)
            free(many[i]); /* fills the quarantine and the secure cache */
        free(p);
        for (int i = 1000; i < 2000; i++)
            free(many[i]); /* p leaves the quarantine: the cache is full */
        ((uintptr_t *)p)[-2] = 0x10;
        for (int i = 0; i < 4000; i++)
            sink = fresh(200);
    } else if (!strcmp(c, "secure_interior_by_owner")) {
        unsigned char *p = fresh(48);
        free(p + 16);
    } else if (!strcmp(c, "secure_misaligned_by_owner")) {
        unsigned char *p = fresh(48);
        free(p + 1);
    } else if (!strcmp(c, "secure_malloc0_use")) {
        /* The secure mode's malloc(0) is correct to use as a pointer... */
        unsigned char *a = malloc(0), *b = malloc(0);
        if (!a || !b || a == b || malloc_usable_size(a) != 0) {
            printf("malloc(0): %p %p usable %zu\n", (void *)a, (void *)b,
                   a ? malloc_usable_size(a) : 0);
            exit(3);
        }
        free(b);
        unsigned char *r = realloc(a, 10);
        if (!r) exit(3);
        memset(r, 1, 10);
        free(r);
        printf("malloc0 ok\n");
        exit(0);
    } else if (!strcmp(c, "secure_malloc0_read")) {
        /* ...and faults when it is read through. */
        volatile unsigned char *p = malloc(0);
        printf("%d\n", p[0]);
    } else if (strncmp(c, "first_call_", 11) != 0) {
        fprintf(stderr, "test_misuse: unknown case %s\n", c);
        return 2;
    }
    printf("survived\n");
    return 0;
}
