/* Reads the file named by argv[1] and writes its bytes to the file named by argv[2] (if any). */
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[4096];
    if (argc < 2) return 2;
    int in = open(argv[1], O_RDONLY);
    if (in < 0) return 1;
    int out = argc > 2 ? open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (out >= 0 && write(out, buf, n) != n) return 3;
    return 0;
}
