/* Pointers hakmem did not allocate: blocks from glibc's own malloc (reached
 * directly through libc.so.6, as another allocator in the process would
 * be) and a stack address. Run by the harness in three modes:
 *
 *   test_foreign abort    (default policy) free() of a foreign pointer
 *                         prints one line and aborts, as glibc does; the
 *                         harness expects SIGABRT.
 *   test_foreign ignore   (HAKMEM_FOREIGN_FREE=ignore) free() diagnoses
 *                         and leaks, realloc() returns NULL with the block
 *                         intact, malloc_usable_size() is 0; nothing
 *                         crashes.
 *   test_foreign forward  (HAKMEM_FOREIGN_FREE=forward) realloc() and
 *                         malloc_usable_size() go to glibc; free() goes to
 *                         glibc once the facade has the foreign-free hook
 *                         (reported on stdout either way). */
#include "common.h"

static void *(*glibc_malloc)(size_t);
static void (*glibc_free)(void *);
static size_t (*glibc_usable)(void *);
static struct mallinfo2 (*glibc_mallinfo2)(void);

static void load_glibc(void) {
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!h) {
        fprintf(stderr, "dlopen(libc.so.6): %s\n", dlerror());
        exit(2);
    }
    glibc_malloc = (void *(*)(size_t))dlsym(h, "malloc");
    glibc_free = (void (*)(void *))dlsym(h, "free");
    glibc_usable = (size_t(*)(void *))dlsym(h, "malloc_usable_size");
    glibc_mallinfo2 = (struct mallinfo2(*)(void))dlsym(h, "mallinfo2");
    if (!glibc_malloc || !glibc_free || !glibc_usable || !glibc_mallinfo2 ||
        glibc_malloc == malloc) {
        fprintf(stderr, "cannot reach glibc's own malloc\n");
        exit(2);
    }
}

int main(int argc, char **argv) {
    require_hakmem("test_foreign");
    const char *mode = argc > 1 ? argv[1] : "abort";
    load_glibc();

    unsigned char *g = glibc_malloc(100);
    CHECK(g != NULL, "glibc malloc(100)");
    fill(g, 100, 5);

    if (!strcmp(mode, "abort")) {
        free(g); /* aborts */
        printf("test_foreign: free of a foreign pointer did not abort\n");
        return 1;
    }

    if (!strcmp(mode, "ignore")) {
        CHECK(malloc_usable_size(g) == 0, "malloc_usable_size(foreign) = %zu",
              malloc_usable_size(g));
        errno = 0;
        void *q = realloc_v(g, 200);
        CHECK(q == NULL, "realloc(foreign, 200) = %p, want NULL", q);
        CHECK(verify(g, 100, 5) == 100, "foreign block changed by realloc");
        free(g); /* diagnosed, ignored */
        CHECK(verify(g, 100, 5) == 100, "foreign block written by free");
        int local = 0;
        free(&local); /* diagnosed, ignored */
        CHECK(local == 0, "stack variable written by free");
        glibc_free(g);
    } else {
        size_t u = malloc_usable_size(g);
        CHECK(u >= 100 && u == glibc_usable(g),
              "malloc_usable_size(foreign) = %zu (glibc says %zu)", u,
              glibc_usable(g));
        unsigned char *q = realloc(g, 5000);
        CHECK(q != NULL, "realloc(foreign, 5000) failed");
        CHECK(q && verify(q, 100, 5) == 100, "realloc(foreign) lost contents");
        CHECK(q && malloc_usable_size(q) >= 5000,
              "realloc(foreign) result usable %zu", malloc_usable_size(q));
        size_t in_use = glibc_mallinfo2().uordblks;
        free(q);
        size_t after = glibc_mallinfo2().uordblks;
        printf("forwarded free: %s\n", after < in_use ? "yes" : "no (leaked)");
    }

    /* hakmem itself is unaffected. */
    void *p = malloc(100);
    CHECK(p != NULL && malloc_usable_size(p) >= 100, "malloc after foreign");
    free(p);
    return test_report();
}
