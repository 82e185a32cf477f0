#define _GNU_SOURCE
#include "veil_inject.h"

#include <errno.h>
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

/* Brings the seized tracee to a stop from which a single step runs its code, without any of its
   code running first. A group-stopped process (CRIU's --leave-stopped) is woken with SIGCONT,
   which is then taken at its delivery stop: its handler never runs. Any other signal that turns
   up is withheld and recorded in `withheld`, to be sent again once we are gone. */
static int reach_step_stop(pid_t pid, int *group_stopped, int *withheld, int *withheld_count) {
    int status = 0, result;
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0) return -errno;
    for (;;) {
        if ((result = wait_stop(pid, &status)) < 0) return result;
        int event = status >> 16, sig = WSTOPSIG(status);
        if (event == PTRACE_EVENT_STOP && (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)) {
            /* In group-stop: a restart would only report the group-stop again. */
            if (*group_stopped) return -EPROTO;
            *group_stopped = 1;
            if (kill(pid, SIGCONT) < 0) return -errno;
            if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) return -errno;
            continue;
        }
        if (event == PTRACE_EVENT_STOP) {
            /* The interrupt's own stop: a running process, stopped where it was. */
            if (!*group_stopped) return 0;
            if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) return -errno;
            continue;
        }
        if (event == 0 && sig == SIGCONT && *group_stopped) return 0;
        if (event == 0) {
            if (*withheld_count < 8) withheld[(*withheld_count)++] = sig;
            if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) return -errno;
            continue;
        }
        if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) return -errno;
    }
}

int veil_inject_close(pid_t pid, int fd) {
    int status = 0, result, group_stopped = 0, withheld[8], withheld_count = 0;
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) return -errno;
    if ((result = reach_step_stop(pid, &group_stopped, withheld, &withheld_count)) < 0) goto detach;

    struct user_regs_struct saved, regs;
    if (ptrace(PTRACE_GETREGS, pid, 0, &saved) < 0) { result = -errno; goto detach; }
    errno = 0;
    long original = ptrace(PTRACE_PEEKTEXT, pid, (void *)saved.rip, 0);
    if (errno) { result = -errno; goto detach; }
    long patched = (original & ~0xffffL) | 0x050f; /* the two bytes of `syscall` (0f 05) */
    if (ptrace(PTRACE_POKETEXT, pid, (void *)saved.rip, (void *)patched) < 0) { result = -errno; goto detach; }
    regs = saved;
    regs.rax = SYS_close;
    regs.rdi = (unsigned long long)fd;
    /* Not a syscall being restarted: the kernel must not rewind or redo anything around ours. */
    regs.orig_rax = (unsigned long long)-1;
    if (ptrace(PTRACE_SETREGS, pid, 0, &regs) < 0) { result = -errno; goto restore_code; }
    if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) < 0) { result = -errno; goto restore_regs; }
    if ((result = wait_stop(pid, &status)) < 0) return result; /* gone: nothing to put back */
    struct user_regs_struct after;
    if (ptrace(PTRACE_GETREGS, pid, 0, &after) < 0) { result = -errno; goto restore_regs; }
    result = after.rip == saved.rip + 2 ? (int)(long long)after.rax : -EAGAIN;

restore_regs:
    if (ptrace(PTRACE_SETREGS, pid, 0, &saved) < 0 && result >= 0) result = -errno;
restore_code:
    if (ptrace(PTRACE_POKETEXT, pid, (void *)saved.rip, (void *)original) < 0 && result >= 0) result = -errno;
detach:
    /* Leave it as found: detaching with SIGSTOP puts a stopped process back in group-stop. */
    ptrace(PTRACE_DETACH, pid, 0, (void *)(uintptr_t)(group_stopped ? SIGSTOP : 0));
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
