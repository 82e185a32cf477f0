/* listener-holder: stands for a restored sandbox process that holds its own seccomp listener.
   It installs a filter that notifies uname(2) and takes the filter's listener (fd N), prints N,
   and stops itself (SIGSTOP). Once continued it prints whether fd N is still open, then calls
   uname: the answer comes from whoever holds a copy of the listener ("uname=0" or
   "uname=ERRNO_NAME"). A second thread waits in pause(): a restored process has several, and a
   signal to the process may be taken by any of them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <sys/utsname.h>
#include <unistd.h>

static void *idle(void *unused) {
    (void)unused;
    for (;;) pause();
    return NULL;
}

int main(void) {
    struct sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_uname, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = { .len = sizeof program / sizeof program[0], .filter = program };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("no_new_privs"); return 2; }
    int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
    if (listener < 0) { perror("seccomp"); return 2; }
    pthread_t thread;
    if (pthread_create(&thread, NULL, idle, NULL) != 0) { perror("pthread_create"); return 2; }
    printf("%d\n", listener);
    fflush(stdout);
    raise(SIGSTOP);
    printf("%s\n", fcntl(listener, F_GETFD) < 0 && errno == EBADF ? "closed" : "open");
    fflush(stdout);
    struct utsname name;
    int result = uname(&name);
    printf("uname=%s\n", result == 0 ? "0" : strerrorname_np(errno));
    return 0;
}
