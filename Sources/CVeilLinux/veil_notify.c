#define _GNU_SOURCE
#include "veil_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/utsname.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

int veil_notify_receive(int listener, struct veil_notification *out) {
    /* The kernel insists on a zeroed buffer; its struct has not grown since 5.0, and a larger
       kernel struct would only append fields we do not read. */
    struct seccomp_notif notif;
    memset(&notif, 0, sizeof notif);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &notif) < 0) return -errno;
    out->id = notif.id;
    out->pid = notif.pid;
    out->nr = notif.data.nr;
    out->arch = notif.data.arch;
    out->instruction_pointer = notif.data.instruction_pointer;
    for (int i = 0; i < 6; i++) out->args[i] = notif.data.args[i];
    return 0;
}

int veil_notify_respond(int listener, uint64_t id, int64_t value, int32_t error) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.val = value;
    resp.error = error > 0 ? -error : 0;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0) return -errno;
    return 0;
}

#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

int veil_notify_continue(int listener, uint64_t id) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0) return -errno;
    return 0;
}

int veil_notify_id_valid(int listener, uint64_t id) {
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0) return -errno;
    return 0;
}

int veil_notify_sync_wakeup(int listener) {
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0) return -errno;
    return 0;
}

int veil_open_task_memory(pid_t tid) {
    char path[32];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)tid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

ssize_t veil_write_task_memory(int memory, uint64_t remote, const void *local, size_t length) {
    ssize_t n = pwrite(memory, local, length, (off_t)remote);
    return n < 0 ? -errno : n;
}

size_t veil_fill_sysinfo(void *buffer, size_t capacity, int64_t uptime, uint64_t totalram, uint64_t freeram,
                         uint64_t sharedram, uint64_t bufferram, uint16_t procs) {
    if (capacity < sizeof(struct sysinfo)) return 0;
    struct sysinfo info;
    memset(&info, 0, sizeof info);
    info.uptime = uptime;
    info.totalram = totalram;
    info.freeram = freeram;
    info.sharedram = sharedram;
    info.bufferram = bufferram;
    info.procs = procs;
    info.mem_unit = 1;
    memcpy(buffer, &info, sizeof info);
    return sizeof info;
}

static void set_field(char *field, size_t size, const char *value) {
    memset(field, 0, size);
    if (value) strncpy(field, value, size - 1);
}

size_t veil_sandbox_utsname(void *buffer, size_t capacity, const char *sysname, const char *release,
                            const char *version, const char *machine) {
    struct utsname name;
    if (capacity < sizeof name || uname(&name) != 0) return 0;
    set_field(name.sysname, sizeof name.sysname, sysname);
    set_field(name.release, sizeof name.release, release);
    set_field(name.version, sizeof name.version, version);
    set_field(name.machine, sizeof name.machine, machine);
    memcpy(buffer, &name, sizeof name);
    return sizeof name;
}

void veil_host_memory(uint64_t *total, uint64_t *free_bytes) {
    struct sysinfo info;
    if (sysinfo(&info) != 0) { *total = 0; *free_bytes = 0; return; }
    *total = (uint64_t)info.totalram * info.mem_unit;
    *free_bytes = (uint64_t)info.freeram * info.mem_unit;
}

int veil_confine_to_cpus(int count) {
    cpu_set_t current, chosen;
    if (sched_getaffinity(0, sizeof current, &current) != 0) return -errno;
    CPU_ZERO(&chosen);
    int kept = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && kept < count; cpu++) {
        if (CPU_ISSET(cpu, &current)) { CPU_SET(cpu, &chosen); kept++; }
    }
    if (kept > 0 && sched_setaffinity(0, sizeof chosen, &chosen) != 0) return -errno;
    return kept;
}


int veil_affinity_list(char *buffer, size_t capacity, int limit) {
    cpu_set_t current;
    if (sched_getaffinity(0, sizeof current, &current) != 0) return -errno;
    size_t used = 0;
    int kept = 0;
    buffer[0] = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && (limit <= 0 || kept < limit); cpu++) {
        if (!CPU_ISSET(cpu, &current)) continue;
        int last = cpu;
        kept++;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &current) && (limit <= 0 || kept < limit)) { last++; kept++; }
        int n = last == cpu ? snprintf(buffer + used, capacity - used, "%s%d", used ? "," : "", cpu)
                            : snprintf(buffer + used, capacity - used, "%s%d-%d", used ? "," : "", cpu, last);
        if (n < 0 || (size_t)n >= capacity - used) return -ENOSPC;
        used += (size_t)n;
        cpu = last;
    }
    return (int)used;
}
