"""The iomodels load generator: K worker processes, each an epoll loop over its share of
N connections, driving any server of the protocol on an address (DESIGN §2 and §3).

    python -m loadgen --host H --port P --connections N [--json] ...
    python -m loadgen.client --host H --port P      (interactive client)

It needs only the codec, `servers.protocol`; never a server model.
"""
