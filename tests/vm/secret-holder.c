// secret-holder: the process the checkpoint checks save and read back (tests/vm/guest-checkpoint-tests.sh).
// It builds a secret string in its heap at run time (so it is in no file, only in memory), starts a
// second thread, counts in a file given as argv[1] (so a restore can be seen to continue), and waits.
// argv[2], if given, is a number of MiB it allocates and touches first (the checkpoint benchmark's
// memory, filled with a non-zero pattern so that every page is saved).
// Built static on the host (scripts/build-static-c.sh) and carried into the guest in the payload.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Kept in a global so the compiler cannot drop the touched memory as unused.
unsigned char *volatile ballast;

static void *idle_thread(void *unused) {
    (void)unused;
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    char *secret = malloc(64);
    if (!secret) return 1;
    snprintf(secret, 64, "veil-secret-%08x%08x", 0x5eedc0ffu, 0xee123456u);
    if (argc > 2) {
        size_t bytes = (size_t)strtoul(argv[2], NULL, 10) << 20;
        unsigned char *memory = malloc(bytes);
        if (!memory) return 1;
        for (size_t i = 0; i < bytes; i++) memory[i] = (unsigned char)(i * 31 + 7);
        ballast = memory;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, idle_thread, NULL) != 0) return 1;
    const char *counter = argc > 1 ? argv[1] : NULL;
    /* The count goes to COUNTER.0 and COUNTER.1 in turn, and COUNTER is a symlink renamed into place
       to the one just written: a reader never finds it truncated, and the only file ever open is
       one that stays (a checkpoint that leaves the process running, taken while a file is open,
       is restored later: a file renamed away meanwhile would fail the restore). */
    char staged[2][4096], link[4096];
    const char *base = counter ? strrchr(counter, '/') : NULL;
    base = base ? base + 1 : counter;
    if (counter) {
        snprintf(staged[0], sizeof staged[0], "%s.0", counter);
        snprintf(staged[1], sizeof staged[1], "%s.1", counter);
        snprintf(link, sizeof link, "%s.link", counter);
    }
    for (unsigned long count = 1;; count++) {
        if (counter) {
            FILE *file = fopen(staged[count % 2], "w");
            if (file) {
                fprintf(file, "%lu\n", count);
                char target[4096];
                snprintf(target, sizeof target, "%s.%lu", base, count % 2);
                unlink(link);
                if (fclose(file) == 0 && symlink(target, link) == 0) rename(link, counter);
            }
        }
        usleep(200000);
    }
    // The secret stays referenced for the compiler's sake.
    puts(secret);
    return 0;
}
