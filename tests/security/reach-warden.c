/* reach-warden PID: run inside a sandbox, tries to reach the process with host pid PID (its
   warden) the ways an escape would start: signal it, attach to it, read its memory, open its
   /proc entries, take a pidfd. Prints one "what<TAB>result" line each: "reached" or the errno's
   name. SandboxTests expects none reached: the warden is outside the sandbox's pid namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void report(const char *what, long rc) {
    if (rc >= 0) printf("%s\treached\n", what);
    else printf("%s\t%s\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: reach-warden PID\n"); return 2; }
    pid_t pid = (pid_t)atoi(argv[1]);
    char path[64], buffer[64];
    report("kill", kill(pid, 0));
    report("ptrace_attach", ptrace(PTRACE_ATTACH, pid, 0, 0));
    report("ptrace_seize", ptrace(PTRACE_SEIZE, pid, 0, 0));
    struct iovec local = { buffer, sizeof buffer }, remote = { (void *)0x400000, sizeof buffer };
    report("process_vm_readv", process_vm_readv(pid, &local, 1, &remote, 1, 0));
    report("pidfd_open", syscall(SYS_pidfd_open, pid, 0));
    snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
    report("proc_mem", open(path, O_RDONLY));
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    report("proc_status", open(path, O_RDONLY));
    return 0;
}
