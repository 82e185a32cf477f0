#ifndef VEIL_NOTIFY_H
#define VEIL_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

/* One seccomp user notification, copied out of the kernel's struct seccomp_notif. */
struct veil_notification {
    uint64_t id;
    uint32_t pid;
    int32_t nr;
    uint32_t arch;
    uint64_t instruction_pointer;
    uint64_t args[6];
};

/* SECCOMP_IOCTL_NOTIF_RECV: blocks until a notification arrives. 0 or -errno. */
int veil_notify_receive(int listener, struct veil_notification *out);

/* SECCOMP_IOCTL_NOTIF_SEND: the emulated call returns `value`, or fails with `error` (> 0). 0 or -errno. */
int veil_notify_respond(int listener, uint64_t id, int64_t value, int32_t error);

/* SECCOMP_IOCTL_NOTIF_SEND with SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5): the kernel runs the
   call as if no filter had notified (record mode). 0 or -errno. */
int veil_notify_continue(int listener, uint64_t id);

/* SECCOMP_IOCTL_NOTIF_ID_VALID: 0 while the notifying task still waits in that call, else -errno. */
int veil_notify_id_valid(int listener, uint64_t id);

/* SECCOMP_IOCTL_NOTIF_SET_FLAGS(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) (Linux 6.6): the kernel wakes
   the listener on the notifying task's CPU, halving the round trip. 0 or -errno. */
int veil_notify_sync_wakeup(int listener);

/* Opens /proc/<tid>/mem for writing (close-on-exec): a handle bound to that task's address space
   as it is now, so a write through it can never reach another process once the tid is reused.
   The fd or -errno. */
int veil_open_task_memory(pid_t tid);

/* pwrite of one buffer at address `remote` through a handle from veil_open_task_memory.
   Bytes written or -errno. */
ssize_t veil_write_task_memory(int memory, uint64_t remote, const void *local, size_t length);

/* Fills a struct sysinfo (the kernel's layout) for the sandbox. Returns its size. */
size_t veil_fill_sysinfo(void *buffer, size_t capacity, int64_t uptime, uint64_t totalram, uint64_t freeram,
                         uint64_t sharedram, uint64_t bufferram, uint16_t procs);

/* struct utsname as the sandbox sees it: our own uname(2) (run in the sandbox's UTS namespace,
   so nodename and domainname are the sandbox's) with sysname, release, version and machine
   replaced. Returns sizeof(struct utsname) or 0 when `capacity` is too small. */
size_t veil_sandbox_utsname(void *buffer, size_t capacity, const char *sysname, const char *release,
                            const char *version, const char *machine);

/* The host's memory in bytes (sysinfo(2)). */
void veil_host_memory(uint64_t *total, uint64_t *free_bytes);

/* System call numbers the warden emulates, and those it observes before the kernel runs them. */
enum { VEIL_NR_UNAME = 63, VEIL_NR_SYSLOG = 103, VEIL_NR_SYSINFO = 99, VEIL_NR_EXECVE = 59, VEIL_NR_EXECVEAT = 322 };

/* Restricts the calling thread to the first `count` CPUs of its current affinity, so that
   nproc and sched_getaffinity show the sandbox's cpu quota. Returns the CPUs kept, or -errno. */
int veil_confine_to_cpus(int count);
/* The first `limit` CPUs (all when limit <= 0) of this process's affinity as a kernel cpu list
   ("0-1", "2,5"), NUL-terminated in `buffer`; returns its length or -errno. */
int veil_affinity_list(char *buffer, size_t capacity, int limit);

#endif
