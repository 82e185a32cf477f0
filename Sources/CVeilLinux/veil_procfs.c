#define _GNU_SOURCE
#include "veil_procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *const file_names[VEIL_PROCFS_FILES] = { "version", "meminfo", "cpuinfo", "stat", "cmdline", "osrelease", "kernel-version", "loadavg" };

/* Node ids: the root is FUSE_ROOT_ID (1), file i is 2 + i. */
static int file_of(uint64_t node) {
    return node >= 2 && node < 2 + VEIL_PROCFS_FILES ? (int)(node - 2) : -1;
}

int veil_procfs_mount(const char *target) {
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    char options[160];
    snprintf(options, sizeof options, "fd=%d,rootmode=40555,user_id=0,group_id=0,allow_other,default_permissions", fd);
    if (mount("veil", target, "fuse.veil", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, options) != 0) {
        int code = errno;
        close(fd);
        return -code;
    }
    return fd;
}

static void fill_attr(struct fuse_attr *attr, uint64_t node, time_t now, uint64_t size) {
    memset(attr, 0, sizeof *attr);
    attr->ino = node;
    attr->atime = attr->mtime = attr->ctime = (uint64_t)now;
    attr->blksize = 4096;
    if (node == FUSE_ROOT_ID) {
        attr->mode = S_IFDIR | 0555;
        attr->nlink = 2;
    } else {
        attr->mode = S_IFREG | 0444;
        attr->nlink = 1;
        attr->size = size;
    }
}

static int reply(int fd, uint64_t unique, int error, const void *payload, size_t length) {
    struct fuse_out_header header = { .len = (uint32_t)(sizeof header + (error ? 0 : length)), .error = -error, .unique = unique };
    struct iovec parts[2] = { { &header, sizeof header }, { (void *)payload, error ? 0 : length } };
    ssize_t written = writev(fd, parts, error || length == 0 ? 1 : 2);
    /* ENOENT: the request was interrupted meanwhile; nothing to do. */
    return written < 0 && errno != ENOENT ? -errno : 0;
}

static size_t dirent_add(char *buffer, size_t used, size_t capacity, uint64_t node, uint64_t offset, const char *name, uint32_t type) {
    size_t name_length = strlen(name);
    size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + name_length);
    if (used + size > capacity) return 0;
    struct fuse_dirent *entry = (struct fuse_dirent *)(buffer + used);
    memset(entry, 0, size);
    entry->ino = node;
    entry->off = offset;
    entry->namelen = (uint32_t)name_length;
    entry->type = type;
    memcpy(entry->name, name, name_length);
    return size;
}

static int serve_loop(int fd, veil_procfs_fill fill, void *context, int wake,
                      char *request, size_t request_size, char *content, size_t content_size);

int veil_procfs_serve(int fd, veil_procfs_fill fill, void *context, int wake) {
    /* The kernel wants room for a whole request: max_write (4 KiB here) plus headers, at least 8 KiB. */
    enum { REQUEST_SIZE = 16384, CONTENT_SIZE = 65536 };
    char *request = malloc(REQUEST_SIZE + CONTENT_SIZE);
    if (!request) return -ENOMEM;
    char *content = request + REQUEST_SIZE;
    int result = serve_loop(fd, fill, context, wake, request, REQUEST_SIZE, content, CONTENT_SIZE);
    free(request);
    return result;
}

/* Drops the kernel's cached attributes of every file (a one-way notification, no reply). */
static void invalidate_attributes(int fd) {
    for (uint64_t node = 2; node < 2 + VEIL_PROCFS_FILES; node++) {
        struct fuse_notify_inval_inode_out body = { .ino = node, .off = -1, .len = 0 };  /* off < 0: attributes only */
        struct fuse_out_header header = { .len = sizeof header + sizeof body, .error = FUSE_NOTIFY_INVAL_INODE, .unique = 0 };
        struct iovec parts[2] = { { &header, sizeof header }, { &body, sizeof body } };
        (void)writev(fd, parts, 2);  /* ENOENT: that file was never looked up */
    }
}

static int serve_loop(int fd, veil_procfs_fill fill, void *context, int wake,
                      char *request, size_t request_size, char *content, size_t content_size) {
    time_t mounted = time(NULL);
    /* Until the container starts nobody reads the files: only create's mounts look them up and
       stat them (lookup, stat, the bind, the read-only remount), so the create-time server lets
       the kernel keep their attributes, and drops them when it stops. Later every stat asks,
       because a file's size is its content's length at that moment. */
    uint64_t attr_seconds = wake >= 0 ? 60 : 0;
    for (;;) {
        if (wake >= 0) {
            struct pollfd ready[2] = { { .fd = fd, .events = POLLIN }, { .fd = wake, .events = POLLIN } };
            int polled = poll(ready, 2, -1);
            if (polled < 0 && errno == EINTR) continue;
            if (polled < 0) return -errno;
            if (ready[1].revents) {
                invalidate_attributes(fd);
                return 1;
            }
            if (!(ready[0].revents & POLLIN)) return ready[0].revents & POLLERR ? 0 : -EIO;
        }
        ssize_t got = read(fd, request, request_size);
        if (got < 0) {
            if (errno == EINTR || errno == ENOENT || errno == EAGAIN) continue;
            if (errno == ENODEV) return 0;  /* unmounted */
            return -errno;
        }
        if ((size_t)got < sizeof(struct fuse_in_header)) continue;
        struct fuse_in_header *in = (struct fuse_in_header *)request;
        const char *body = request + sizeof *in;
        int file = file_of(in->nodeid);
        int status = 0;
        switch (in->opcode) {
        case FUSE_INIT: {
            const struct fuse_init_in *init = (const struct fuse_init_in *)body;
            struct fuse_init_out out;
            memset(&out, 0, sizeof out);
            out.major = FUSE_KERNEL_VERSION;
            out.minor = FUSE_KERNEL_MINOR_VERSION;
            out.max_readahead = init->max_readahead;
            out.max_background = 16;
            out.congestion_threshold = 12;
            out.max_write = 4096;
            out.time_gran = 1;
            status = reply(fd, in->unique, 0, &out, sizeof out);
            break;
        }
        case FUSE_LOOKUP: {
            int found = -1;
            if (in->nodeid == FUSE_ROOT_ID)
                for (int i = 0; i < VEIL_PROCFS_FILES; i++) if (strcmp(body, file_names[i]) == 0) found = i;
            if (found < 0) { status = reply(fd, in->unique, ENOENT, NULL, 0); break; }
            struct fuse_entry_out out;
            memset(&out, 0, sizeof out);
            out.nodeid = 2 + (uint64_t)found;
            out.entry_valid = 3600;  /* the names never change */
            out.attr_valid = attr_seconds;
            fill_attr(&out.attr, out.nodeid, mounted, fill(context, found, content, content_size));
            status = reply(fd, in->unique, 0, &out, sizeof out);
            break;
        }
        case FUSE_GETATTR: {
            if (in->nodeid != FUSE_ROOT_ID && file < 0) { status = reply(fd, in->unique, ENOENT, NULL, 0); break; }
            struct fuse_attr_out out;
            memset(&out, 0, sizeof out);
            out.attr_valid = file < 0 ? 3600 : attr_seconds;
            fill_attr(&out.attr, in->nodeid, mounted, file < 0 ? 0 : fill(context, file, content, content_size));
            status = reply(fd, in->unique, 0, &out, sizeof out);
            break;
        }
        case FUSE_OPEN: {
            const struct fuse_open_in *open_in = (const struct fuse_open_in *)body;
            if (file < 0) { status = reply(fd, in->unique, EISDIR, NULL, 0); break; }
            if ((open_in->flags & O_ACCMODE) != O_RDONLY) { status = reply(fd, in->unique, EACCES, NULL, 0); break; }
            /* Through the page cache (so that sendfile and mmap work as on procfs), which every
               open empties (no FOPEN_KEEP_CACHE): each open reads the content as it is now. */
            struct fuse_open_out out;
            memset(&out, 0, sizeof out);
            status = reply(fd, in->unique, 0, &out, sizeof out);
            break;
        }
        case FUSE_READ: {
            const struct fuse_read_in *read_in = (const struct fuse_read_in *)body;
            if (file < 0) { status = reply(fd, in->unique, EISDIR, NULL, 0); break; }
            size_t length = fill(context, file, content, content_size);
            if (length > content_size) length = content_size;
            size_t offset = read_in->offset < length ? (size_t)read_in->offset : length;
            size_t count = length - offset < read_in->size ? length - offset : read_in->size;
            status = reply(fd, in->unique, 0, content + offset, count);
            break;
        }
        case FUSE_OPENDIR: {
            struct fuse_open_out out;
            memset(&out, 0, sizeof out);
            status = reply(fd, in->unique, in->nodeid == FUSE_ROOT_ID ? 0 : ENOTDIR, &out, sizeof out);
            break;
        }
        case FUSE_READDIR: {
            const struct fuse_read_in *read_in = (const struct fuse_read_in *)body;
            size_t capacity = read_in->size < content_size ? read_in->size : content_size;
            size_t used = 0;
            /* Offsets: 1 after ".", 2 after "..", 3 + i after file i. */
            for (uint64_t index = read_in->offset; index < 2 + VEIL_PROCFS_FILES; index++) {
                const char *name = index == 0 ? "." : index == 1 ? ".." : file_names[index - 2];
                uint64_t node = index < 2 ? FUSE_ROOT_ID : index;
                size_t added = dirent_add(content, used, capacity, node, index + 1, name, index < 2 ? DT_DIR : DT_REG);
                if (added == 0) break;
                used += added;
            }
            status = reply(fd, in->unique, 0, content, used);
            break;
        }
        case FUSE_STATFS: {
            struct fuse_statfs_out out;
            memset(&out, 0, sizeof out);
            out.st.bsize = out.st.frsize = 4096;
            out.st.namelen = 255;
            status = reply(fd, in->unique, 0, &out, sizeof out);
            break;
        }
        case FUSE_RELEASE: case FUSE_RELEASEDIR: case FUSE_FLUSH: case FUSE_ACCESS:
            status = reply(fd, in->unique, 0, NULL, 0);
            break;
        case FUSE_FORGET: case FUSE_BATCH_FORGET: case FUSE_INTERRUPT:
            break;  /* no reply */
        default:
            status = reply(fd, in->unique, ENOSYS, NULL, 0);
            break;
        }
        if (status == -ENODEV) return 0;
        if (status < 0 && status != -EINTR) return status;
    }
}

int veil_procfs_wake_fd(void) {
    int fd = eventfd(0, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int veil_procfs_wake(int wake) {
    uint64_t one = 1;
    return write(wake, &one, sizeof one) == (ssize_t)sizeof one ? 0 : -errno;
}
