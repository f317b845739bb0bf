#pragma once

namespace dsv4 {

// TCP_NOTSENT_LOWAT on a connected TCP socket: the kernel stops taking writes once `bytes`
// of them wait unsent. Returns 0, or the errno of setsockopt (ENOPROTOOPT where the platform
// has no such option, EBADF/ENOTSOCK for a descriptor that is not a socket).
int set_notsent_lowat(int fd, int bytes);

// SO_RCVBUF on a socket: a fixed receive buffer (Linux then stops growing it on its own), so
// a client that stops reading holds a known amount. For tests that play such a client; the
// server never sets it. Returns 0 or the errno of setsockopt.
int set_receive_buffer(int fd, int bytes);

}  // namespace dsv4
