/* sd-bus through dlopen: see veil_sdbus.h for why. The prototypes come from <systemd/sd-bus.h>
   (libsystemd-dev at build time); the code comes from libsystemd.so.0 at run time. */
#define _GNU_SOURCE
#include "veil_sdbus.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <systemd/sd-bus.h>

#define SD_FUNCTIONS(X) \
    X(sd_bus_new) X(sd_bus_set_address) X(sd_bus_start) X(sd_bus_open_system) X(sd_bus_get_fd) \
    X(sd_bus_flush_close_unref) X(sd_bus_match_signal) X(sd_bus_slot_unref) \
    X(sd_bus_message_new_method_call) X(sd_bus_message_unref) X(sd_bus_message_append_basic) \
    X(sd_bus_message_append_array) X(sd_bus_message_open_container) X(sd_bus_message_close_container) \
    X(sd_bus_message_read_basic) X(sd_bus_message_peek_type) X(sd_bus_call) X(sd_bus_process) X(sd_bus_wait) \
    X(sd_bus_error_free)

static struct {
#define FIELD(name) __typeof__(name) *name;
    SD_FUNCTIONS(FIELD)
#undef FIELD
} sd;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void) {
    void *library = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error, sizeof load_error, "loading libsystemd.so.0 (the systemd cgroup driver's D-Bus client): %s", dlerror());
        return;
    }
#define LOOKUP(name) \
    if (!(sd.name = (__typeof__(name) *)dlsym(library, #name))) { \
        snprintf(load_error, sizeof load_error, "libsystemd.so.0 has no %s", #name); \
        return; \
    }
    SD_FUNCTIONS(LOOKUP)
#undef LOOKUP
}

/* Jobs that ended, by path, until someone asks for them: a JobRemoved can be processed (while
   waiting for another reply) before its caller knows the job's path. */
#define JOB_SLOTS 32
struct veil_sdbus {
    sd_bus *bus;
    sd_bus_slot *match;
    sd_bus_error error;
    char error_name[256];
    char error_message[512];
    struct { char path[128]; char result[32]; } ended[JOB_SLOTS];
    int next_slot;
};

static void copy(char *to, size_t size, const char *from) {
    if (size == 0) return;
    snprintf(to, size, "%s", from ? from : "");
}

static int job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
    (void)ret_error;
    struct veil_sdbus *bus = userdata;
    uint32_t id;
    const char *path = NULL, *unit = NULL, *result = NULL;
    if (sd.sd_bus_message_read_basic(m, 'u', &id) < 0 || sd.sd_bus_message_read_basic(m, 'o', &path) < 0 ||
        sd.sd_bus_message_read_basic(m, 's', &unit) < 0 || sd.sd_bus_message_read_basic(m, 's', &result) < 0)
        return 0;
    int slot = bus->next_slot;
    bus->next_slot = (slot + 1) % JOB_SLOTS;
    copy(bus->ended[slot].path, sizeof bus->ended[slot].path, path);
    copy(bus->ended[slot].result, sizeof bus->ended[slot].result, result);
    return 0;
}

static int remember(struct veil_sdbus *bus, int r) {
    copy(bus->error_name, sizeof bus->error_name, bus->error.name);
    copy(bus->error_message, sizeof bus->error_message, bus->error.message ? bus->error.message : (r < 0 ? strerror(-r) : ""));
    sd.sd_bus_error_free(&bus->error);
    return r;
}

/* systemd's private socket answers only root; make sure it is systemd (uid 0) on the other end. */
static int connect_private(sd_bus **out) {
    sd_bus *bus = NULL;
    int r = sd.sd_bus_new(&bus);
    if (r < 0) return r;
    if ((r = sd.sd_bus_set_address(bus, "unix:path=/run/systemd/private")) < 0 || (r = sd.sd_bus_start(bus)) < 0) {
        sd.sd_bus_flush_close_unref(bus);
        return r;
    }
    struct ucred peer;
    socklen_t length = sizeof peer;
    if (getsockopt(sd.sd_bus_get_fd(bus), SOL_SOCKET, SO_PEERCRED, &peer, &length) < 0 || peer.uid != 0) {
        sd.sd_bus_flush_close_unref(bus);
        return -EPERM;
    }
    *out = bus;
    return 0;
}

int veil_sdbus_open(veil_sdbus **out, char *error, size_t error_size) {
    *out = NULL;
    pthread_once(&load_once, load);
    if (load_error[0]) { copy(error, error_size, load_error); return -ENOENT; }
    struct veil_sdbus *bus = calloc(1, sizeof *bus);
    if (!bus) return -ENOMEM;
    int r = connect_private(&bus->bus);
    if (r < 0) {
        int private_error = r;
        r = sd.sd_bus_open_system(&bus->bus);
        if (r < 0) {
            snprintf(error, error_size, "connecting to systemd: /run/systemd/private: %s; the system bus: %s",
                     strerror(-private_error), strerror(-r));
            free(bus);
            return r;
        }
    }
    r = sd.sd_bus_match_signal(bus->bus, &bus->match, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "JobRemoved", job_removed, bus);
    if (r < 0) {
        snprintf(error, error_size, "subscribing to systemd's JobRemoved: %s", strerror(-r));
        veil_sdbus_close(bus);
        return r;
    }
    *out = bus;
    return 0;
}

void veil_sdbus_close(veil_sdbus *bus) {
    if (!bus) return;
    if (bus->match) sd.sd_bus_slot_unref(bus->match);
    if (bus->bus) sd.sd_bus_flush_close_unref(bus->bus);
    free(bus);
}

const char *veil_sdbus_error_name(veil_sdbus *bus) { return bus->error_name; }
const char *veil_sdbus_error_message(veil_sdbus *bus) { return bus->error_message; }

int veil_sdbus_new_call(veil_sdbus *bus, const char *interface, const char *member, veil_sdbus_message **out) {
    sd_bus_message *m = NULL;
    int r = sd.sd_bus_message_new_method_call(bus->bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                               interface, member);
    *out = (veil_sdbus_message *)m;
    return r;
}

void veil_sdbus_message_free(veil_sdbus_message *m) {
    if (m) sd.sd_bus_message_unref((sd_bus_message *)m);
}

int veil_sdbus_append_basic(veil_sdbus_message *m, char type, const void *value) {
    if (type == 's' || type == 'o' || type == 'g') return sd.sd_bus_message_append_basic((sd_bus_message *)m, type, *(const char *const *)value);
    return sd.sd_bus_message_append_basic((sd_bus_message *)m, type, value);
}

int veil_sdbus_append_array(veil_sdbus_message *m, char type, const void *items, size_t size) {
    return sd.sd_bus_message_append_array((sd_bus_message *)m, type, items, size);
}

int veil_sdbus_open_container(veil_sdbus_message *m, char type, const char *contents) {
    return sd.sd_bus_message_open_container((sd_bus_message *)m, type, contents);
}

int veil_sdbus_close_container(veil_sdbus_message *m) {
    return sd.sd_bus_message_close_container((sd_bus_message *)m);
}

int veil_sdbus_call(veil_sdbus *bus, veil_sdbus_message *m, uint64_t timeout_usec, char *object_path, size_t object_path_size) {
    copy(object_path, object_path_size, "");
    bus->error_name[0] = bus->error_message[0] = 0;
    sd_bus_message *reply = NULL;
    int r = sd.sd_bus_call(bus->bus, (sd_bus_message *)m, timeout_usec, &bus->error, &reply);
    if (r < 0) return remember(bus, r);
    char type = 0;
    const char *contents = NULL;
    if (sd.sd_bus_message_peek_type(reply, &type, &contents) > 0 && type == 'o') {
        const char *path = NULL;
        if (sd.sd_bus_message_read_basic(reply, 'o', &path) >= 0) copy(object_path, object_path_size, path);
    }
    sd.sd_bus_message_unref(reply);
    return 0;
}

static uint64_t now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int veil_sdbus_wait_job(veil_sdbus *bus, const char *job, uint64_t timeout_usec, char *result, size_t result_size) {
    uint64_t deadline = now_usec() + timeout_usec;
    for (;;) {
        for (int i = 0; i < JOB_SLOTS; i++) {
            if (bus->ended[i].path[0] && strcmp(bus->ended[i].path, job) == 0) {
                copy(result, result_size, bus->ended[i].result);
                bus->ended[i].path[0] = 0;
                return 0;
            }
        }
        int r = sd.sd_bus_process(bus->bus, NULL);
        if (r < 0) return remember(bus, r);
        if (r > 0) continue;
        uint64_t now = now_usec();
        if (now >= deadline) return -ETIMEDOUT;
        r = sd.sd_bus_wait(bus->bus, deadline - now);
        if (r < 0 && r != -EINTR) return remember(bus, r);
    }
}
