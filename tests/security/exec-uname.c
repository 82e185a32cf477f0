/* exec-uname MODE: uname(2) answered across an exec, where an address space the warden wrote to
   before lives on in another process. The warden keeps a handle on each caller's memory between
   answers; after an exec that handle names the old address space, and a write through it would
   land in the process still using it (and the exec'd caller would get nothing). SandboxTests runs
   both modes at the sandbox level and expects "ok" from each.
     vfork:  a vfork child (sharing its parent's memory) calls uname, then execs: the new image's
             uname must be answered in the new image.
     thread: the main thread calls uname; a CLONE_VM child keeps that address space alive; another
             thread execs, taking the main thread's pid: the new image's uname must be answered.
   Prints one line: "ok <release>" or what went wrong. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static char self[4096];

static int answered(const char *when) {
    struct utsname name;
    memset(&name, 0xAA, sizeof name);
    if (uname(&name) != 0) { printf("%s: uname failed: %m\n", when); return 0; }
    if (strcmp(name.sysname, "Linux") != 0) { printf("%s: uname wrote nothing here\n", when); return 0; }
    printf("ok %s\n", name.release);
    return 1;
}

static int sharer(void *unused) {
    (void)unused;
    for (;;) pause();
    return 0;
}

static void *exec_from_thread(void *sharer_pid) {
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)(long)sharer_pid);
    execl(self, self, "after-thread", pid, (char *)NULL);
    printf("execl: %m\n");
    exit(1);
}

int main(int argc, char **argv) {
    if (readlink("/proc/self/exe", self, sizeof self - 1) < 0) strncpy(self, argv[0], sizeof self - 1);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: exec-uname vfork|thread\n"); return 2; }
    if (strcmp(argv[1], "after") == 0) return answered("after exec") ? 0 : 1;
    if (strcmp(argv[1], "after-thread") == 0) {
        int ok = answered("after exec from a thread");
        if (argc > 2) kill(atoi(argv[2]), SIGKILL);
        return ok ? 0 : 1;
    }
    struct utsname name;
    if (uname(&name) != 0) { printf("uname: %m\n"); return 1; }
    if (strcmp(argv[1], "vfork") == 0) {
        pid_t child = vfork();
        if (child == 0) {
            uname(&name);  /* the child's handle: its parent's address space */
            execl(self, self, "after", (char *)NULL);
            _exit(127);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child) { printf("vfork: %m\n"); return 1; }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    if (strcmp(argv[1], "thread") == 0) {
        static char stack[64 << 10];
        pid_t pid = clone(sharer, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
        if (pid < 0) { printf("clone: %m\n"); return 1; }
        pthread_t thread;
        if (pthread_create(&thread, NULL, exec_from_thread, (void *)(long)pid) != 0) { printf("pthread_create failed\n"); return 1; }
        pthread_join(thread, NULL);
        return 1;
    }
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
