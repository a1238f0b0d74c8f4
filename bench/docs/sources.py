"""Where the docs' figures come from: the committed artifacts, every path a parameter, and
a reader that notes each file a section opens (or looked for and did not find), so every
generated section names its sources and a test can trace them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.report.view import RunView
from bench.store import run_folder, runs

# what a missing artifact is replaced by, and the command that makes it
ABSENT = "not measured yet"


@dataclass(frozen=True)
class Sources:
    """The artifacts the docs are generated from. Any of them may be pointed elsewhere
    (a perturbed copy, an older run): the generator reads nothing else."""

    root: Path
    reference: Path     # the reference run folder (results.csv, meta.json, charts/)
    previous: Path      # the previous reference run, the newest under results/archive/
    placements: Path    # a folder of run folders: one point, several placements
    microbench: Path    # pytest-benchmark JSON (make microbench)
    benchmarks: Path    # folder of the side-by-side benchmark scripts' JSON
    faults: Path        # the fault suite's summary (make faults)

    @classmethod
    def default(cls, root: Path | str) -> "Sources":
        root = Path(root).resolve()
        archived = runs.archived_runs(root / "results")
        return cls(
            root=root,
            reference=runs.newest_run(root / "results" / runs.REFERENCE),
            previous=archived[-1] if archived else root / "results" / runs.ARCHIVE,
            placements=root / "results" / runs.REFERENCE / "three-placements",
            microbench=root / "results" / "microbench" / "microbench.json",
            benchmarks=root / "results" / "benchmarks",
            faults=root / "results" / "faults" / "faults.json",
        )

    def but(self, **changes) -> "Sources":
        return replace(self, **changes)


@dataclass
class Reader:
    """Reads artifacts for one section and remembers which: `read` in the order first
    opened (paths relative to the root where they lie inside it), `absent` for those
    looked for and missing. Runs and JSON files are parsed once per generation (`cache`)."""

    sources: Sources
    cache: dict = field(default_factory=dict)
    read: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    def name(self, path: Path | str) -> str:
        path = Path(path)
        try:
            return path.resolve().relative_to(self.sources.root).as_posix()
        except ValueError:
            return path.as_posix()

    def _note(self, path: Path | str, found: bool = True) -> None:
        target = self.read if found else self.absent
        name = self.name(path)
        if name not in target:
            target.append(name)

    def run(self, run_dir: Path) -> RunView | None:
        """A run read once (RunView); None when its results.csv is missing."""
        run_dir = Path(run_dir)
        results = run_dir / run_folder.RESULTS
        if not results.is_file():
            self._note(results, found=False)
            return None
        self._note(results)
        if (run_dir / run_folder.META).is_file():
            self._note(run_dir / run_folder.META)
        key = ("run", str(run_dir.resolve()))
        if key not in self.cache:
            self.cache[key] = RunView.load(run_dir)
        return self.cache[key]

    def json(self, path: Path) -> dict | None:
        path = Path(path)
        if not path.is_file():
            self._note(path, found=False)
            return None
        self._note(path)
        key = ("json", str(path.resolve()))
        if key not in self.cache:
            self.cache[key] = json.loads(path.read_text())
        return self.cache[key]

    def exists(self, path: Path) -> bool:
        """Whether a file is there (a chart to link), noted like a read."""
        found = Path(path).is_file()
        self._note(path, found)
        return found

    def text(self, path: Path) -> str | None:
        """A file's text (a source file whose size the docs quote), noted like a read."""
        path = Path(path)
        if not path.is_file():
            self._note(path, found=False)
            return None
        self._note(path)
        return path.read_text()

    def size(self, path: Path) -> int | None:
        """A file's size in bytes, noted like a read."""
        path = Path(path)
        if not path.is_file():
            self._note(path, found=False)
            return None
        self._note(path)
        return path.stat().st_size

    def code(self, *modules) -> None:
        """Registries in the code a section renders (bench/plan/models.py, ...)."""
        for module in modules:
            self._note(Path(module.__file__))
