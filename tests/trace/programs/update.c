/* Updates the file named by argv[1] in place: one O_RDWR open (no O_APPEND, no O_TRUNC), reads
 * it, upper-cases its ASCII letters and writes them back over the same bytes. With a second
 * argument "new" it creates a file of its own instead (O_RDWR | O_CREAT | O_EXCL), writes
 * "new\n", reads it back and leaves it: a file the program made, not one it updated. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[4096];
    if (argc < 2) return 2;
    if (argc > 2 && strcmp(argv[2], "new") == 0) {
        int fd = open(argv[1], O_RDWR | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || write(fd, "new\n", 4) != 4) return 1;
        if (pread(fd, buf, 4, 0) != 4) return 3;
        return close(fd);
    }
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) return 1;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) return 3;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 32;
    if (pwrite(fd, buf, n, 0) != n) return 4;
    return close(fd);
}
