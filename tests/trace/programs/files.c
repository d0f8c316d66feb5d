/* Opens files in every mode the tracer must tell apart, renames, and uses symlinks.
 * Run in a directory holding in.txt, exist_w.txt, exist_a.txt, exist_rw.txt, target.txt. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void put(int fd, const char *s) { if (write(fd, s, strlen(s)) < 0) _exit(9); }

int main(void) {
    char buf[64];
    int fd = open("in.txt", O_RDONLY);                       /* read existing */
    if (fd < 0 || read(fd, buf, sizeof buf) < 0) return 1;
    close(fd);
    fd = open("new_w.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644); put(fd, "w\n"); close(fd);
    fd = open("exist_w.txt", O_WRONLY | O_TRUNC); put(fd, "w\n"); close(fd);
    fd = open("exist_a.txt", O_WRONLY | O_APPEND); put(fd, "a\n"); close(fd);
    fd = open("new_a.txt", O_WRONLY | O_APPEND | O_CREAT, 0644); put(fd, "a\n"); close(fd);
    fd = open("exist_rw.txt", O_RDWR); put(fd, "rw"); close(fd);
    fd = openat(AT_FDCWD, "new_rw.txt", O_RDWR | O_CREAT, 0644); put(fd, "rw\n"); close(fd);
    fd = creat("creat.txt", 0644); put(fd, "c\n"); close(fd);
    /* write to a temporary name, then rename into place */
    fd = open("result.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644); put(fd, "final\n"); close(fd);
    if (rename("result.tmp", "result.txt")) return 2;
    /* a working symlink, read through */
    if (symlink("target.txt", "link_ok")) return 3;
    fd = open("link_ok", O_RDONLY); if (fd < 0 || read(fd, buf, sizeof buf) < 0) return 4; close(fd);
    /* a broken symlink: reading through it fails, nothing is read */
    if (symlink("missing.txt", "link_broken")) return 5;
    if (open("link_broken", O_RDONLY) >= 0) return 6;
    /* a directory fd and a path relative to it */
    int dfd = open("sub", O_RDONLY | O_DIRECTORY);
    fd = openat(dfd, "inner.txt", O_RDONLY); if (fd < 0 || read(fd, buf, sizeof buf) < 0) return 7;
    close(fd);
    fd = openat(dfd, "made.txt", O_WRONLY | O_CREAT, 0644); put(fd, "m\n"); close(fd);
    close(dfd);
    /* an O_PATH descriptor names a file without reading it: not an input */
    fd = open("exist_w.txt", O_PATH); if (fd < 0) return 8; close(fd);
    fd = open("pathonly.txt", O_PATH); if (fd < 0) return 9; close(fd);
    /* a temporary: created and removed */
    fd = open("scratch.tmp", O_WRONLY | O_CREAT, 0644); put(fd, "x"); close(fd);
    unlink("scratch.tmp");
    return 0;
}
