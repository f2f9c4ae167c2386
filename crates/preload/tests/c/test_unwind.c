/* Unwinding through libhakmem.so: a double free aborts inside hakmem; the
 * SIGABRT handler walks the stack with glibc's backtrace() and must get
 * past hakmem's frames back to main. The library's layout
 * (crates/preload/layout.ld) moves its unwind tables; a layout whose
 * .eh_frame_hdr search table the unwinder cannot use stops the walk in
 * the first hakmem frame (seen while moving them before .text). */
#include "common.h"

#include <execinfo.h>
#include <signal.h>

static void *volatile block;
static void *volatile return_to_main; /* where trigger() returns in main */

static void on_abort(int sig) {
    (void)sig;
    void *frames[64];
    int n = backtrace(frames, 64);
    int in_main = 0;
    for (int i = 0; i < n; i++)
        in_main |= frames[i] == return_to_main;
    CHECK(n > 4, "backtrace() found %d frames", n);
    CHECK(in_main, "backtrace() did not get back to main (%d frames)", n);
    if (!in_main)
        backtrace_symbols_fd(frames, n, 2);
    _exit(test_report());
}

__attribute__((noinline)) static void trigger(void) {
    return_to_main = __builtin_return_address(0);
    block = malloc(40);
    free(block);
    free(block); /* aborts: the handler reports and exits */
}

int main(void) {
    require_hakmem("test_unwind");
    signal(SIGABRT, on_abort);
    trigger();
    CHECK(0, "the double free did not abort");
    return test_report();
}
