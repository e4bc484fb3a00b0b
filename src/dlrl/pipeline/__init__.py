"""``dlrl run``: every experiment in sequence into one run directory, then one self-contained report.

Each section runs in RUN/<section>/ as an ordinary run directory; a failing section is recorded
(RUN/sections.json) and the rest go on. ``--resume`` skips finished sections and continues the
interrupted one. RUN/report.html is rewritten after every section, so a partial report always exists.

RUN/run.json       "kind": "run", profile, seed, --set overrides, section order and selection, total wall time
RUN/env.json       versions, cores, load, seed (the environment of the whole run)
RUN/sections.json  name -> {status: done/failed/interrupted/skipped, seconds, cpu_seconds, error, traceback}

sections.py the section table and choosing among them; state.py run.json / sections.json and resuming;
section.py one section (config -> run directory -> experiment or search); runner.py the sequence and what
follows each section; tensorboard.py the --tensorboard export; environment.py RUN/env.json. The package
imports none of them, so that the CLI can read the section table without the training stack.
"""
