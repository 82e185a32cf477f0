// secret-holder: the process the checkpoint checks save and read back (tests/vm/guest-checkpoint-tests.sh).
// It builds a secret string in its heap at run time (so it is in no file, only in memory), starts a
// second thread, counts in a file given as argv[1] (so a restore can be seen to continue), and waits.
// Built static on the host (scripts/build-static-c.sh) and carried into the guest in the payload.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *idle_thread(void *unused) {
    (void)unused;
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    char *secret = malloc(64);
    if (!secret) return 1;
    snprintf(secret, 64, "veil-secret-%08x%08x", 0x5eedc0ffu, 0xee123456u);
    pthread_t thread;
    if (pthread_create(&thread, NULL, idle_thread, NULL) != 0) return 1;
    const char *counter = argc > 1 ? argv[1] : NULL;
    for (unsigned long count = 1;; count++) {
        if (counter) {
            FILE *file = fopen(counter, "w");
            if (file) {
                fprintf(file, "%lu\n", count);
                fclose(file);
            }
        }
        usleep(200000);
    }
    // The secret stays referenced for the compiler's sake.
    puts(secret);
    return 0;
}
