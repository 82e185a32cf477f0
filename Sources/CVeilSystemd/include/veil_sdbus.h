#ifndef VEIL_SDBUS_H
#define VEIL_SDBUS_H

#include <stddef.h>
#include <stdint.h>

/* systemd's manager over sd-bus (libsystemd), loaded with dlopen on first use: only the systemd
   cgroup driver needs it, and linking libsystemd would load it and six more libraries into every
   veil command (~0.7 ms per exec). Callers see opaque handles and plain C types; sd-bus itself
   does the wire protocol. Every int-returning call gives 0 (or a count) or -errno, with a message
   in the connection's last error (veil_sdbus_error_name / _message). Not thread-safe: one
   connection per thread. */

typedef struct veil_sdbus veil_sdbus;
typedef struct veil_sdbus_message veil_sdbus_message;

/* Loads libsystemd.so.0 and connects as systemctl does for root: systemd's private socket
   (/run/systemd/private, peer checked to be uid 0), else the system bus. Subscribes to the
   manager's JobRemoved before any call, so no job's end is missed. On failure *out is NULL and
   `error` holds the reason. */
int veil_sdbus_open(veil_sdbus **out, char *error, size_t error_size);
void veil_sdbus_close(veil_sdbus *bus);

/* The last D-Bus error of a failed call: its name (org.freedesktop.systemd1.UnitExists, ...)
   and message, or "" when none. Valid until the next call. */
const char *veil_sdbus_error_name(veil_sdbus *bus);
const char *veil_sdbus_error_message(veil_sdbus *bus);

/* A method call to org.freedesktop.systemd1 at /org/freedesktop/systemd1 on `interface`. */
int veil_sdbus_new_call(veil_sdbus *bus, const char *interface, const char *member, veil_sdbus_message **out);
void veil_sdbus_message_free(veil_sdbus_message *m);

/* Message building (sd_bus_message_append_basic / append_array / open_container / close_container).
   `value` points at the C value of `type` ('s' and 'o': a char* pointer to the string). */
int veil_sdbus_append_basic(veil_sdbus_message *m, char type, const void *value);
int veil_sdbus_append_array(veil_sdbus_message *m, char type, const void *items, size_t size);
int veil_sdbus_open_container(veil_sdbus_message *m, char type, const char *contents);
int veil_sdbus_close_container(veil_sdbus_message *m);

/* Sends `m` and waits for the reply (timeout_usec 0: sd-bus's 25 s). When the reply carries an
   object path (a job), it is copied to `object_path` (else ""). */
int veil_sdbus_call(veil_sdbus *bus, veil_sdbus_message *m, uint64_t timeout_usec, char *object_path, size_t object_path_size);

/* Waits until JobRemoved names `job` and copies its result ("done", "failed", "canceled", ...).
   -ETIMEDOUT after timeout_usec. */
int veil_sdbus_wait_job(veil_sdbus *bus, const char *job, uint64_t timeout_usec, char *result, size_t result_size);

#endif
