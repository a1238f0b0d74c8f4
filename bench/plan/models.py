"""Every server model the bench knows, one record each: the only place that says a model's
family, how it is started, what it needs, how it waits and how it is drawn.

Why one table: a model's family used to be written in five places (two of which
disagreed), and a model one of them missed was silently drawn grey. Now a record whose
family is unknown fails at import, a model `python -m servers --list` prints but this
table lacks is refused by the runner, and every grouping the claims, scenarios and charts
use ("the multiplexing models", "the epoll-based ones") is derived here from attributes,
never listed by name elsewhere. Servers added with `--server NAME=COMMAND` are not in the
table: they get the family `external` (`model(name)`).

Adding a model: its file in servers/, its line in servers.MODELS, and a record below.
"""

from __future__ import annotations

from dataclasses import dataclass

# How a model is started: `python -m servers NAME`, the compiled native reference, or a
# user's own command line (`--server NAME=COMMAND`).
SERVERS, NATIVE_BUILD, COMMAND = "python -m servers", "native build", "command"


@dataclass(frozen=True)
class Family:
    """A design family: one colour in every chart, so a reader sees the design at a glance
    (Okabe & Ito's colour-blind-safe palette)."""

    name: str
    colour: str


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("blocking", "#D55E00"),
    Family("threads/processes", "#E69F00"),
    Family("readiness", "#0072B2"),
    Family("event-loop libraries", "#009E73"),
    Family("completion", "#CC79A7"),
    Family("reference", "#444444"),  # the native C server: a reference line, not a subject
    Family("external", "#444444"),   # --server NAME=COMMAND
)}
EXTERNAL = "external"


@dataclass(frozen=True)
class Model:
    """One server model. `waits_in` says how it waits (the README's table); the flags say
    what the lecture notes' claims group it by:

    - multiplexes: one thread waits in a readiness call for many sockets, then reads each
      ready one (select, poll, epoll, selectors): the notes' "select/epoll" server, an
      event loop that runs every handler inline;
    - scans_watched: that wait costs in proportion to the watched descriptors (select and
      poll scan them; epoll keeps a ready list);
    - busy_polls: never waits at all (the non-blocking sweep).
    """

    name: str
    family: str
    waits_in: str
    started: str = SERVERS
    needs: tuple[str, ...] = ("linux",)
    multiplexes: bool = False
    scans_watched: bool = False
    busy_polls: bool = False

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"model {self.name!r}: unknown family {self.family!r} "
                             f"(known: {', '.join(FAMILIES)})")

    @property
    def reference(self) -> bool:
        """A reference line in the charts (the native server), not a model under study."""
        return self.family == "reference"

    @property
    def external(self) -> bool:
        return self.started != SERVERS

    @property
    def watches_many(self) -> bool:
        """One thread watches every connection (readiness, event-loop and completion
        models): what idle connections cost it is the question of the `idle` scenario."""
        return self.family in ("readiness", "event-loop libraries", "completion")


# In each family's order: the position picks a model's marker and shade (bench.report.styles).
MODELS: dict[str, Model] = {m.name: m for m in (
    Model("blocking", "blocking", "recv on its one connection (accept between connections)"),
    Model("nonblocking", "blocking", "nothing: it sweeps every socket", busy_polls=True),
    Model("threaded", "threads/processes", "each thread in a blocking recv"),
    Model("forking", "threads/processes", "each child in a blocking recv"),
    Model("select", "readiness", "select.select", multiplexes=True, scans_watched=True),
    Model("poll", "readiness", "select.poll", multiplexes=True, scans_watched=True),
    Model("epoll", "readiness", "select.epoll", multiplexes=True),
    Model("selectors", "readiness", "selectors.DefaultSelector (epoll)", multiplexes=True),
    Model("sigio", "readiness", "sigtimedwait for SIGIO"),
    Model("asyncio", "event-loop libraries", "the asyncio loop's selector"),
    Model("uvloop", "event-loop libraries", "libuv", needs=("linux", "uvloop")),
    Model("iouring", "completion", "io_uring_submit_and_wait",
          needs=("linux", "x86_64", "io_uring", "liburing")),
    Model("native-epoll", "reference", "epoll_wait (C)", started=NATIVE_BUILD,
          needs=("linux", "a C compiler")),
)}
NATIVE = "native-epoll"  # the compiled reference server: every run's CPU-per-request ceiling


def model(name: str) -> Model:
    """The record of `name`; a name not in the table is a `--server` model (external)."""
    return MODELS.get(name) or Model(name, EXTERNAL, "its own", started=COMMAND, needs=())


def family_of(name: str) -> str:
    return model(name).family


def family_members(family: str) -> tuple[str, ...]:
    return tuple(m.name for m in MODELS.values() if m.family == family)


def multiplexing() -> tuple[str, ...]:
    """select, poll, epoll, selectors: wait for readiness, then read (the notes' subject)."""
    return tuple(m.name for m in MODELS.values() if m.multiplexes)


def scanning() -> tuple[str, ...]:
    """The multiplexing models whose wait scans every watched descriptor (select, poll)."""
    return tuple(m.name for m in MODELS.values() if m.multiplexes and m.scans_watched)


def epoll_based() -> tuple[str, ...]:
    """The multiplexing models with a ready list (epoll, and selectors, which is epoll on
    Linux)."""
    return tuple(m.name for m in MODELS.values() if m.multiplexes and not m.scans_watched)


def event_loop_libraries() -> tuple[str, ...]:
    return family_members("event-loop libraries")


def sleeps_in_a_wait() -> tuple[str, ...]:
    """Models that sleep in the kernel until a socket is ready: the multiplexing models and
    the event-loop libraries (claim 7 sets them against busy polling)."""
    return multiplexing() + event_loop_libraries()


def watching_many() -> tuple[str, ...]:
    return tuple(m.name for m in MODELS.values() if m.watches_many)


def busy_polling() -> tuple[str, ...]:
    return tuple(m.name for m in MODELS.values() if m.busy_polls)


def unregistered(names) -> list[str]:
    """Models of `python -m servers --list` this table lacks (the runner refuses them)."""
    return [n for n in names if n not in MODELS]
