"""Running the bench across machines on Dask distributed (`python -m bench run --cluster`).

The runner stays on the user's machine as the Dask client; a worker with the resource
`server=1` runs each point's server with its sampler beside it (`tasks.serve`), workers
with `loadgen=1` each run a load generator (`tasks.load`), all starting one window at an
agreed wall-clock instant. Nothing assumes a shared host: what a remote role needs travels
in its task's arguments or is installed on its host, and what it measured comes back as
plain data.

    reach.py      reach the scheduler over tcp:// or tls://, or say in one line why not
    connect.py    check resources and versions, clock offsets, hosts
    placement.py  where every process runs: off the cores each machine measures
    tasks.py      what runs on the hosts: host facts, a served and sampled server, a load
    point.py      one (point, repetition) measured across the hosts (the runner's side)
    merge.py      the load generators' results merged into one, their windows compared
    local.py      a scheduler and two workers on this machine (`bench cluster local`)
"""
