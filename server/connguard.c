/* Connection guard; see connguard.h. */
#include "connguard.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* 1 when fd is a connected TCP socket whose peer is addr:port. */
static int peer_is(int fd, const char *addr, int port) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  char text[INET6_ADDRSTRLEN];
  int p;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    p = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    p = ntohs(in6->sin6_port);
  } else {
    return 0;
  }
  return p == port && strcmp(text, addr) == 0;
}

int connguard_abort(const struct mg_connection *conn) {
  const struct mg_request_info *ri =
      mg_get_request_info((struct mg_connection *)conn);
  if (!ri)
    return -1;
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  int done = -1;
  struct dirent *e;
  while (done && (e = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || fd < 3 || fd == dirfd(d) ||
        !peer_is((int)fd, ri->remote_addr, ri->remote_port))
      continue;
    /* The number may have been closed and reused since: act on a dup,
     * checked again. */
    int dup = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0)
      continue;
    if (peer_is(dup, ri->remote_addr, ri->remote_port)) {
      shutdown(dup, SHUT_RDWR);
      done = 0;
    }
    close(dup);
  }
  closedir(d);
  return done;
}
