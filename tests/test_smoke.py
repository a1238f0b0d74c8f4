import socket
import subprocess
import sys

from servers.protocol import encode


def test_selectors_server_answers_one_request():
    proc = subprocess.Popen([sys.executable, "-m", "servers", "selectors"],
                            stdout=subprocess.PIPE, text=True)
    try:
        host, port = proc.stdout.readline().split()[-1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(encode(b"abc"))
            assert sock.recv(100) == encode(b"ABC")
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
