/* Wrappers for calls Swift cannot make directly; see veil_syscalls.h. Not used between clone and execve. */
#define _GNU_SOURCE
#include "veil_syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <linux/capability.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static void exit_on_signal(int sig) { _exit(128 + sig); }

int veil_exit_on_termination_signals(void) {
    static const int signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = exit_on_signal;
    sigfillset(&sa.sa_mask);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (sigaction(signals[i], &sa, NULL) < 0) return -errno;
    return 0;
}

int veil_sigmask_block_all(void) {
    sigset_t all;
    sigfillset(&all);
    return sigprocmask(SIG_BLOCK, &all, NULL) == 0 ? 0 : -errno;
}

int veil_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct { uint64_t flags, mode, resolve; } how = { flags, mode, resolve };
    long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return r < 0 ? -errno : (int)r;
}

int veil_pivot_root(const char *new_root, const char *put_old) {
    return syscall(SYS_pivot_root, new_root, put_old) < 0 ? -errno : 0;
}

int veil_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return syscall(SYS_close_range, first, last, flags) < 0 ? -errno : 0;
}

int veil_pidfd_open(pid_t pid, unsigned int flags) {
    long r = syscall(SYS_pidfd_open, pid, flags);
    return r < 0 ? -errno : (int)r;
}

int veil_pidfd_send_signal(int pidfd, int sig) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int veil_execve_marked(const char *path, char *const argv[], char *const envp[]) {
    syscall(SYS_execve, path, argv, envp, VEIL_EXEC_MARK_0, VEIL_EXEC_MARK_1, VEIL_EXEC_MARK_2);
    return -errno;
}

int veil_memfd_create(const char *name, unsigned int flags) {
    long r = syscall(SYS_memfd_create, name, flags);
    return r < 0 ? -errno : (int)r;
}

int veil_capset(uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        data[i].effective = effective[i];
        data[i].permitted = permitted[i];
        data[i].inheritable = inheritable[i];
    }
    return syscall(SYS_capset, &header, data) < 0 ? -errno : 0;
}

int veil_capget(uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) < 0) return -errno;
    for (int i = 0; i < 2; i++) {
        effective[i] = data[i].effective;
        permitted[i] = data[i].permitted;
        inheritable[i] = data[i].inheritable;
    }
    return 0;
}

int veil_execveat_fd(int fd, char *const argv[], char *const envp[]) {
    syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
    return -errno;
}

int veil_send_fd(int sock, int fd, const char *data, size_t len) {
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec iov = { (void *)data, len };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int veil_recv_fd(int sock, char *buf, size_t buflen) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { buf, buflen };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0) return -errno;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS) return -EBADMSG;
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
}

int veil_ioctl_int(int fd, unsigned long request, int *value) {
    return ioctl(fd, request, value) < 0 ? -errno : 0;
}

int veil_namespace_owner(int fd) {
    int owner = ioctl(fd, 0xb701 /* NS_GET_USERNS */);
    return owner < 0 ? -errno : owner;
}

int veil_ioctl_ptr(int fd, unsigned long request, void *value) {
    return ioctl(fd, request, value) < 0 ? -errno : 0;
}

int veil_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(option, a2, a3, a4, a5) < 0 ? -errno : 0;
}

int veil_setresuid(uid_t uid) { return setresuid(uid, uid, uid) < 0 ? -errno : 0; }
int veil_setresgid(gid_t gid) { return setresgid(gid, gid, gid) < 0 ? -errno : 0; }

int veil_pty_unlock(int master) {
    int unlock = 0, number = -1;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) return -errno;
    if (ioctl(master, TIOCGPTN, &number) < 0) return -errno;
    return number;
}

int veil_set_ctty(int fd) { return ioctl(fd, TIOCSCTTY, 0) < 0 ? -errno : 0; }

int veil_dup_cloexec_above(int fd, int minimum) {
    int r = fcntl(fd, F_DUPFD_CLOEXEC, minimum);
    return r < 0 ? -errno : r;
}

int veil_set_cloexec(int fd, int on) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -errno;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int veil_signalfd_all(void) {
    sigset_t all;
    sigfillset(&all);
    int fd = signalfd(-1, &all, SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int veil_termios_size(void) { return (int)sizeof(struct termios); }

int veil_make_raw(int fd, void *saved) {
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return -errno;
    memcpy(saved, &t, sizeof t);
    cfmakeraw(&t);
    /* Keep output post-processing so the container's "\n" still reaches column 0 of our terminal. */
    t.c_oflag |= OPOST;
    return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

int veil_restore_termios(int fd, const void *saved) {
    return tcsetattr(fd, TCSANOW, (const struct termios *)saved) < 0 ? -errno : 0;
}

int veil_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}

int veil_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n < 0) return -errno;
    if (n != sizeof info) return -EIO;
    return (int)info.ssi_signo;
}

int veil_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0; }

int veil_readonly_exe_fd(const char *path) {
    int fd = (int)syscall(428 /* open_tree */, AT_FDCWD, path, 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct { uint64_t attr_set, attr_clr, propagation, userns_fd; } attr = { 0x1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0 };
    if (syscall(442 /* mount_setattr */, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int veil_setns(int fd, int type) { return setns(fd, type) < 0 ? -errno : 0; }
