"""How one connection is served, for the two families of models.

`serve_blocking` is the whole life of a connection on a blocking socket (the iterative,
thread- and process-per-connection models). `Connection` is the state of a non-blocking
socket for every readiness model (busy polling, select, poll, epoll, selectors, signals):
the only code that reads or writes such a socket, so the models differ only in how they
learn that a socket is ready. Level-style models call `on_readable` / `on_writable` and
register for what `wants_read` and `out` say; edge-style ones (EPOLLET, SIGIO) call `drain`.
"""

from __future__ import annotations

import socket
import struct

from .protocol import ProtocolError
from .runtime import OUTPUT_HIGH_WATER, RECV_SIZE, Settings, log


def log_protocol_error(sock: socket.socket, exc: ProtocolError) -> None:
    """The one (rate-limited) log line for a connection closed on bad input, naming its peer."""
    try:
        peer = "%s:%s" % sock.getpeername()[:2]
    except OSError:
        peer = "?"
    log.event("protocol_error", f"closing connection from {peer}: {exc}")


def serve_blocking(sock: socket.socket, settings: Settings) -> None:
    """Serve one blocking connection to its end: read, answer every complete frame, repeat.

    A peer that stops reading cannot hold the server forever: a send that makes no
    progress for `send_timeout` seconds (SO_SNDTIMEO) drops the connection.
    """
    proto = settings.new_connection()
    timeout = settings.send_timeout
    seconds = int(timeout)
    sock.setsockopt(
        socket.SOL_SOCKET,
        socket.SO_SNDTIMEO,
        struct.pack("ll", seconds, int((timeout - seconds) * 1e6)),
    )
    recv = sock.recv
    sendall = sock.sendall
    receive_data = proto.receive_data
    try:
        while True:
            data = recv(RECV_SIZE)
            if not data:
                return  # EOF (or half-close): every response is already sent
            reply = receive_data(data)
            if reply:
                sendall(reply)
    except ProtocolError as exc:
        log_protocol_error(sock, exc)
    except OSError:
        pass  # reset, timeout: this connection only
    finally:
        sock.close()


class Connection:
    """A non-blocking connection: replies are sent at once; what the kernel does not take
    is kept and sent when the socket is writable. Reading pauses while more than
    OUTPUT_HIGH_WATER bytes are unsent (a peer that never reads cannot grow us without
    bound), and after EOF the connection lives until its last response is out.

    The socket's recv and send and the codec's receive_data are bound once, here: the
    usual wakeup (one recv, one whole reply sent at once, nothing pending) is those three
    calls and nothing else, the same code for every model."""

    __slots__ = ("sock", "fd", "recv", "send", "receive_data", "out", "eof")

    def __init__(self, sock: socket.socket, settings: Settings) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.recv = sock.recv
        self.send = sock.send
        self.receive_data = settings.new_connection().receive_data
        self.out = bytearray()
        self.eof = False

    def wants_read(self) -> bool:
        return not self.eof and len(self.out) <= OUTPUT_HIGH_WATER

    def on_readable(self) -> bool:
        """Read once and answer; False when the connection should be closed."""
        try:
            data = self.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            self.eof = True
            return bool(self.out)
        try:
            reply = self.receive_data(data)
        except ProtocolError as exc:
            log_protocol_error(self.sock, exc)
            return False
        if not reply:
            return True
        if self.out:
            self.out += reply  # keep the order: behind what is already waiting
            return True
        try:
            sent = self.send(reply)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return False
        if sent < len(reply):
            self.out += memoryview(reply)[sent:]
        return True

    def on_writable(self) -> bool:
        """Send what is pending; False when the connection should be closed."""
        try:
            sent = self.send(self.out)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        del self.out[:sent]
        return bool(self.out) or not self.eof

    def drain(self) -> bool:
        """Write until EAGAIN, read until EAGAIN (or the output cap); False: close it.

        For edge-style notification (EPOLLET, SIGIO), which says "something changed" once,
        not "something is ready" for as long as it is: a wakeup not run to EAGAIN in every
        direction that can make progress is lost for good. After output drains below the
        cap it reads again, since data that came while reading was paused raises no edge."""
        out, recv, send = self.out, self.recv, self.send
        while True:
            while out:
                try:
                    sent = send(out)
                except (BlockingIOError, InterruptedError):
                    break  # a later writable edge (or SIGIO) brings us back
                except OSError:
                    return False
                del out[:sent]
            if self.eof:
                return bool(out)  # wait for the last bytes to drain, then close
            if len(out) > OUTPUT_HIGH_WATER:
                return True  # paused: the writable edge that drains `out` resumes reading
            try:
                data = recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return True  # drained: the next edge is ours
            except OSError:
                return False
            if not data:
                self.eof = True
                continue
            try:
                reply = self.receive_data(data)
            except ProtocolError as exc:
                log_protocol_error(self.sock, exc)
                return False
            if reply:
                out += reply

    def close(self) -> None:
        self.sock.close()
