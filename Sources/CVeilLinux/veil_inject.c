#define _GNU_SOURCE
#include "veil_inject.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int veil_take_fd(pid_t pid, int fd) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) return -errno;
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int saved = errno;
    close(pidfd);
    return copy < 0 ? -saved : copy;
}

#if defined(__x86_64__)

/* Waits for the tracee's next stop; -errno, or -ESRCH if it exited. */
static int wait_stop(pid_t pid, int *status) {
    for (;;) {
        if (waitpid(pid, status, __WALL) < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (WIFEXITED(*status) || WIFSIGNALED(*status)) return -ESRCH;
        if (WIFSTOPPED(*status)) return 0;
    }
}

#define VEIL_INJECT_MAX_THREADS 256

struct traced_thread {
    pid_t tid;
    int signal; /* a signal it stopped to receive, given back as it is let go */
};

/* Seizes every thread of `pid` and waits until each is in a ptrace-stop, where none runs code.
   Returns the number seized (0 if the process is gone) or -errno; sets *group_stopped when the
   process was stopped (SIGSTOP and kin). */
static int seize_all(pid_t pid, struct traced_thread *threads, int *group_stopped) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *dir = opendir(path);
    if (!dir) return -errno;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) && count < VEIL_INJECT_MAX_THREADS) {
        pid_t tid = atoi(entry->d_name);
        if (tid <= 0) continue;
        if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) continue; /* gone meanwhile */
        threads[count].tid = tid;
        threads[count].signal = 0;
        count++;
        if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) continue;
    }
    closedir(dir);
    for (int i = 0; i < count; i++) {
        int status = 0;
        if (wait_stop(threads[i].tid, &status) < 0) { threads[i].tid = 0; continue; }
        int event = status >> 16, sig = WSTOPSIG(status);
        if (event == PTRACE_EVENT_STOP && (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)) *group_stopped = 1;
        else if (event == 0 && sig != SIGTRAP) threads[i].signal = sig; /* a signal-delivery-stop: keep its signal */
    }
    return count;
}

int veil_inject_close(pid_t pid, int fd) {
    struct traced_thread threads[VEIL_INJECT_MAX_THREADS];
    int group_stopped = 0, status = 0, result = 0, withheld[8], withheld_count = 0;
    int count = seize_all(pid, threads, &group_stopped);
    if (count < 0) return count;
    /* The leader if it lives, else any thread: they share the descriptor table. */
    int chosen = -1;
    for (int i = 0; i < count; i++) {
        if (threads[i].tid == pid) { chosen = i; break; }
        if (chosen < 0 && threads[i].tid > 0) chosen = i;
    }
    if (chosen < 0) { result = -ESRCH; goto detach; }
    pid_t tid = threads[chosen].tid;
    /* Out of group-stop, or the step would only report it again; every thread stays in its
       ptrace-stop, so none runs. SIGCONT's own delivery is taken below, never seen. */
    if (group_stopped && kill(pid, SIGCONT) < 0) { result = -errno; goto detach; }

    struct user_regs_struct saved, regs, after;
    if (ptrace(PTRACE_GETREGS, tid, 0, &saved) < 0) { result = -errno; goto detach; }
    errno = 0;
    long original = ptrace(PTRACE_PEEKTEXT, tid, (void *)saved.rip, 0);
    if (errno) { result = -errno; goto detach; }
    long patched = (original & ~0xffffL) | 0x050f; /* the two bytes of `syscall` (0f 05) */
    if (ptrace(PTRACE_POKETEXT, tid, (void *)saved.rip, (void *)patched) < 0) { result = -errno; goto detach; }
    regs = saved;
    regs.rax = SYS_close;
    regs.rdi = (unsigned long long)fd;
    /* Not a syscall being restarted: the kernel must not rewind or redo anything around ours. */
    regs.orig_rax = (unsigned long long)-1;
    if (ptrace(PTRACE_SETREGS, tid, 0, &regs) < 0) { result = -errno; goto restore_code; }
    result = -EAGAIN;
    for (int attempt = 0; attempt < 16; attempt++) {
        if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) < 0) { result = -errno; break; }
        if (wait_stop(tid, &status) < 0) { threads[chosen].tid = 0; return -ESRCH; } /* gone: nothing to put back */
        int event = status >> 16, sig = WSTOPSIG(status);
        if (event == 0 && sig != SIGTRAP) {
            /* A signal arrived first: withheld (SIGCONT dropped), and the step tried again. */
            if (sig != SIGCONT && withheld_count < 8) withheld[withheld_count++] = sig;
            continue;
        }
        if (ptrace(PTRACE_GETREGS, tid, 0, &after) < 0) { result = -errno; break; }
        if (after.rip == saved.rip + 2) { result = (int)(long long)after.rax; break; }
    }
    if (ptrace(PTRACE_SETREGS, tid, 0, &saved) < 0 && result >= 0) result = -errno;
restore_code:
    if (ptrace(PTRACE_POKETEXT, tid, (void *)saved.rip, (void *)original) < 0 && result >= 0) result = -errno;
detach:
    for (int i = 0; i < count; i++) {
        if (threads[i].tid > 0) ptrace(PTRACE_DETACH, threads[i].tid, 0, (void *)(uintptr_t)threads[i].signal);
    }
    /* Left as found: a stopped process stopped again, the signals that came meanwhile sent again. */
    if (group_stopped) kill(pid, SIGSTOP);
    for (int i = 0; i < withheld_count; i++) kill(pid, withheld[i]);
    return result;
}

#else

int veil_inject_close(pid_t pid, int fd) {
    (void)pid;
    (void)fd;
    return -ENOSYS;
}

#endif
