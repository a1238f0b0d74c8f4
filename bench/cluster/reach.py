"""Reaching a Dask scheduler over `tcp://` or `tls://`, or saying in one line why not.

Every way the first contact can fail ends in one line (`Unreachable`), never a traceback:
the address is unreachable; `tls://` without the client's TLS settings, or with a CA,
certificate or key that is missing or does not load; a configuration that requires
encryption given a `tcp://` address; a TLS scheduler contacted over `tcp://`, or a plain
one over `tls://`; a certificate the other side does not trust.

The client's TLS settings are Dask's own (bench/README.md, "Encryption (TLS)"): the
configuration keys `distributed.comm.tls.ca-file`, `distributed.comm.tls.client.cert`,
`distributed.comm.tls.client.key` and `distributed.comm.require-encryption`, usually set
through the environment (`DASK_DISTRIBUTED__COMM__TLS__CA_FILE`, ...). They are checked
before any connection is made, so a wrong path is named as such. When Dask's client fails
to connect, a short probe of the address finds out why (only then: a probe shows up in
the scheduler's log): whether anything listens, whether it speaks TLS (a plain Dask
listener sends its handshake at once, a TLS one waits for the client's hello) and, for
`tls://`, which side refused the other's certificate."""

from __future__ import annotations

import os
import socket
import ssl

CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 1.0
ENV = {"ca-file": "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
       "client.cert": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
       "client.key": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY",
       "require-encryption": "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"}
SEE = "bench/README.md, 'Encryption (TLS)'"


class Unreachable(RuntimeError):
    """The scheduler cannot be used from here; the message is the one line to print."""


def scheme(address: str) -> str:
    """'tcp' or 'tls' (an address without a scheme is tcp, as Dask reads it)."""
    return address.split("://", 1)[0].lower() if "://" in address else "tcp"


def host_port(address: str) -> tuple[str, int] | None:
    rest = address.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def tls_settings() -> dict:
    """The client's TLS settings from Dask's configuration (the environment included)."""
    import dask
    import distributed  # noqa: F401 - loads distributed's defaults into dask.config

    get = dask.config.get
    return {"ca-file": get("distributed.comm.tls.ca-file", None),
            "client.cert": get("distributed.comm.tls.client.cert", None),
            "client.key": get("distributed.comm.tls.client.key", None),
            "require-encryption": bool(get("distributed.comm.require-encryption", None))}


def _named(key: str) -> str:
    return ENV[key]


def tls_problem(address: str, settings: dict | None = None) -> str | None:
    """Why the client's TLS settings cannot work for `address`, in one line, or None."""
    settings = tls_settings() if settings is None else settings
    kind = scheme(address)
    if kind not in ("tcp", "tls"):
        return (f"unsupported scheduler address {address}: use tcp://HOST:PORT or "
                "tls://HOST:PORT")
    if kind == "tcp":
        if settings["require-encryption"]:
            return (f"the Dask configuration requires encryption ({ENV['require-encryption']})"
                    f" but the scheduler address {address} is tcp://: use tls://, with the "
                    f"client's certificates ({SEE})")
        return None
    missing = [ENV[k] for k in ("ca-file", "client.cert") if not settings[k]]
    if missing:
        return (f"{address} is a TLS address but this runner's TLS settings lack "
                f"{' and '.join(missing)} (and {ENV['client.key']} unless the key is in the "
                f"certificate's file) ({SEE})")
    for key in ("ca-file", "client.cert", "client.key"):
        value = settings[key]
        if value and "\n" not in value and not os.access(value, os.R_OK):
            why = "no such file" if not os.path.exists(value) else "not readable"
            return f"TLS: {_named(key)} is {value}: {why}"
    return _load_problem(settings)


def _load_problem(settings: dict) -> str | None:
    """Whether the CA and the certificate with its key load, each named if not."""
    ca = settings["ca-file"]
    try:
        if "\n" in ca:
            ssl.create_default_context(cadata=ca)
        else:
            ssl.create_default_context(cafile=ca)
    except (ssl.SSLError, ValueError, OSError) as exc:
        return f"TLS: the CA in {_named('ca-file')} does not load: {_ssl_reason(exc)}"
    try:
        client_context(settings)
    except (ssl.SSLError, ValueError, OSError) as exc:
        key = settings["client.key"]
        return (f"TLS: the client certificate {_shown(settings['client.cert'])} with key "
                f"{_shown(key) if key else '(in the same file)'} does not load: "
                f"{_ssl_reason(exc)}")
    return None


def _shown(value: str | None) -> str:
    return "(given inline)" if value and "\n" in value else str(value)


def client_context(settings: dict) -> ssl.SSLContext:
    """The SSL context Dask's client uses for these settings (its own Security object)."""
    from distributed.security import Security

    security = Security(tls_ca_file=settings["ca-file"],
                        tls_client_cert=settings["client.cert"],
                        tls_client_key=settings["client.key"], require_encryption=True)
    return security.get_connection_args("client")["ssl_context"]


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = getattr(exc, "verify_message", None) or str(exc)
    text = text.split(" (_ssl.c")[0]
    if reason and reason.lower().replace("_", " ") not in text.lower():
        text = f"{reason}: {text}"
    return " ".join(text.split())[:200]


def new_client(address: str, timeout_s: float = CONNECT_TIMEOUT_S):
    """A connected distributed.Client, or Unreachable with the one line saying why."""
    from distributed import Client

    problem = tls_problem(address)
    if problem:
        raise Unreachable(problem)
    client = Client.__new__(Client)
    try:
        client.__init__(address, timeout=f"{timeout_s:g}s", set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - whatever it was, one line
        _discard(client)
        raise Unreachable(diagnose(address, exc, timeout_s)) from None
    return client


def _discard(client) -> None:
    """A Client whose constructor failed still closes itself when collected, and then
    waits 10 s for a loop that is gone (with a traceback): close it now, quietly."""
    try:
        client.status = "closed"
        client._loop_runner.stop()
    except Exception:  # noqa: BLE001 - it got no further than its attributes
        pass


def diagnose(address: str, exc: BaseException, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """One line on why Dask's client could not connect to `address`, from a probe."""
    said = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160] or 'no message'}"
    where = host_port(address)
    if where is None:
        return f"cannot use the Dask scheduler address {address} ({said})"
    heard = probe(*where)
    if heard == "refused":
        return (f"cannot reach the Dask scheduler at {address}: connection refused "
                "(nothing listens there)")
    if heard in ("silent-connect", "unreachable"):
        return (f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
                f"({said})")
    if scheme(address) == "tcp":
        if heard == "waits":  # a listener that says nothing first: does it speak TLS?
            if speaks_tls(*where):
                return (f"the Dask scheduler at {address} speaks TLS: use "
                        f"tls://{where[0]}:{where[1]} with the client's certificates ({SEE})")
        return f"the Dask scheduler at {address} did not accept this client ({said})"
    if heard == "plain":
        return (f"the Dask scheduler at {address} does not speak TLS (it sent a plain Dask "
                f"handshake): use tcp://{where[0]}:{where[1]}, or start the scheduler with "
                f"--tls-ca-file, --tls-cert and --tls-key ({SEE})")
    refused = tls_refusal(*where)
    return refused or f"the Dask scheduler at {address} did not accept this client ({said})"


def probe(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """What listens at host:port: 'refused', 'unreachable', 'silent-connect' (the connect
    itself timed out), 'plain' (a plain Dask listener: it sends its handshake first),
    'waits' (says nothing: a TLS listener waits for the client's hello), 'closed'."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "silent-connect"
    except OSError:
        return "unreachable"
    with sock:
        sock.settimeout(timeout_s / 2)
        try:
            first = sock.recv(16)
        except TimeoutError:
            return "waits"
        except OSError:
            return "closed"
    return "plain" if first else "closed"


def speaks_tls(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TLS handshake with host:port gets a TLS answer (completed, or an alert)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, \
                context.wrap_socket(sock) as tls:
            tls.settimeout(timeout_s)
            tls.recv(1)
    except ssl.SSLError as exc:
        return "ALERT" in str(getattr(exc, "reason", "")) or "alert" in str(exc)
    except OSError:
        return False
    return True


def tls_refusal(host: str, port: int, settings: dict | None = None,
                timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Which side refused which certificate in a handshake with the client's own
    settings, in one line; None when the handshake and the certificates passed."""
    settings = tls_settings() if settings is None else settings
    context = client_context(settings)
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, \
                context.wrap_socket(sock) as tls:
            # TLS 1.3: the server's verdict on our certificate arrives after the
            # handshake, as an alert; an accepted client gets Dask's handshake or silence
            tls.settimeout(timeout_s)
            try:
                tls.recv(1)
            except TimeoutError:
                return None
    except ssl.SSLCertVerificationError as exc:
        return (f"TLS: this runner does not trust the scheduler's certificate at "
                f"{host}:{port} ({_ssl_reason(exc)}): it must be signed by the CA in "
                f"{_named('ca-file')} = {_shown(settings['ca-file'])}")
    except ssl.SSLError as exc:
        return (f"TLS: the scheduler at {host}:{port} refused this runner's certificate "
                f"{_shown(settings['client.cert'])} ({_ssl_reason(exc)}): it must be "
                "signed by the CA the scheduler was started with (--tls-ca-file)")
    except OSError as exc:
        return f"TLS handshake with {host}:{port} failed: {type(exc).__name__}: {exc}"[:300]
    return None
