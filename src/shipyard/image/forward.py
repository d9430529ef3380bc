"""A loopback port forwarder into a container that has no network (``--network none``).

``shipyard verify`` runs images the way SageMaker's network isolation does: no network at all, only the
serving port reachable from the host. Engines cannot publish a port of a container without a network, so
the verifier binds ``127.0.0.1:PORT`` itself and runs this module inside the container's network namespace
(``nsenter --net=/proc/PID/ns/net``) with that listening socket inherited: each accepted connection is
relayed to ``127.0.0.1:8080`` in the container.

    python -m shipyard.image.forward FD TARGET_PORT
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading

__all__ = ["main"]


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


def _relay(client: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        client.close()  # the server is not listening yet: the caller sees a closed connection and retries
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    back.start()
    _pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main(argv: list[str] | None = None) -> None:
    fd, port = (int(x) for x in (argv or sys.argv[1:])[:2])
    listener = socket.socket(fileno=fd)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, port), daemon=True).start()


if __name__ == "__main__":
    main()
