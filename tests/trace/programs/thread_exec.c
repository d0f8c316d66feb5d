/* Execs cat from a thread that is not the main thread. */
#include <pthread.h>
#include <unistd.h>
static void *run(void *arg) {
    (void)arg;
    execl("/bin/cat", "cat", "in.txt", (char *)0);
    _exit(99);
}
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, run, 0);
    pthread_join(t, 0);
    return 98;
}
