"""`make docs`: every figure in README.md, docs/*.md and bench/README.md, regenerated from
committed artifacts into marked sections (bench/docs/markers.py). The prose around the
sections is hand-written and holds no figure; a figure is only ever written here.

    from bench.docs.generate import Sources, render, regenerate
    sources = Sources.default(".")            # the committed artifacts; any path may differ
    sections = render(sources)                # {name: Section(body, sources, absent)}
    texts = regenerate(sources)               # {doc path: its text, sections rewritten}

    python -m bench.docs [--check] [--reference RUN] [--faults FILE] ...

Each section is a function of a `Reader` (bench/docs/sources.py), which notes every file
it opens: a section's begin marker names them, and a missing artifact is rendered as
"not measured yet" with the command that makes it. The generator reads the registries of
bench/plan and bench/store and a run through RunView; it writes nothing but the docs.

This package's modules: generate (the section registry and the API), sources (artifact
paths, the reader that notes what it read), markers (the marked sections of a file), fmt
(how a figure is written), run_common / run_tables / run_notes (the reference run),
side_sections / placements / faults (the side artifacts), code_sections (the registries).
Nothing here is imported by the rest of bench/.
"""
